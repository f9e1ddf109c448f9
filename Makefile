# `make demo` and `make test` set up everything they need in .venv on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := .ci/constraints.txt
STAMP := $(VENV)/.talon-installed

.PHONY: install demo test docs bench fuzz lint format clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch first, from the pinned CPU wheel, so no other requirement pulls a CUDA build;
# norse last with --no-deps (it declares torchvision, needed only for its example tasks);
# neurobench (test reference) --no-deps too: it declares torchaudio/tonic/librosa for its data sets only.
$(STAMP): pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP) install -q -c $(CONSTRAINTS) torch
	$(PIP) install -q -c $(CONSTRAINTS) -e '.[all]'
	$(PIP) install -q -c $(CONSTRAINTS) --no-deps norse
	$(PIP) install -q -c $(CONSTRAINTS) --no-deps neurobench
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m talon demo

test: $(STAMP)
	$(PY) -m pytest -q

# the user guide and the API reference as a website in site/; strict: a broken link or reference fails
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

bench: $(STAMP)
	$(PY) -m bench

# Byte-flip fuzz of ir.read (tests/fuzz_t1c.py): 2,000 files, each read in a child process with a
# timeout; then the same with the checksum recomputed after each flip (the adversary's view).
fuzz: $(STAMP)
	$(PY) tests/fuzz_t1c.py --count 2000
	$(PY) tests/fuzz_t1c.py --count 2000 --reseal --seed 1

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

format: $(STAMP)
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site
