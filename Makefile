# `make demo` and `make test` set up everything they need in .venv on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := .ci/constraints.txt
STAMP := $(VENV)/.talon-installed

.PHONY: install demo test docs bench fuzz lint format clean viz-assets wheel

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch first, from the pinned CPU wheel, so no other requirement pulls a CUDA build;
# norse last with --no-deps (it declares torchvision, needed only for its example tasks);
# neurobench (test reference) --no-deps too: it declares torchaudio/tonic/librosa for its data sets only;
# SpikingJelly, Sinabs and Rockpool (NIR profile tests) --no-deps too: they declare torchvision/torchaudio,
# samna, nir<=1.0.4.
# tonic likewise (it declares librosa and numba, needed only for its audio datasets).
$(STAMP): pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP) install -q -c $(CONSTRAINTS) torch
	$(PIP) install -q -c $(CONSTRAINTS) -e '.[all]'
	$(PIP) install -q -c $(CONSTRAINTS) --no-deps norse
	$(PIP) install -q -c $(CONSTRAINTS) --no-deps neurobench
	$(PIP) install -q -c $(CONSTRAINTS) --no-deps spikingjelly sinabs rockpool
	$(PIP) install -q -c $(CONSTRAINTS) --no-deps tonic
	touch $(STAMP)

# talon.viz page scripts: npm packages pinned by package-lock.json, bundled by esbuild into
# package data (src/talon/viz/static, not in git). A wheel built by `python -m build` carries them
# (setup.py runs the same build when they are missing).
VIZ_WEB := src/talon/viz/web
VIZ_BUNDLE := src/talon/viz/static/viewer.js
$(VIZ_WEB)/node_modules/.package-lock.json: $(VIZ_WEB)/package.json $(VIZ_WEB)/package-lock.json
	cd $(VIZ_WEB) && npm ci --no-audit --no-fund
$(VIZ_BUNDLE): $(VIZ_WEB)/node_modules/.package-lock.json $(VIZ_WEB)/build.mjs $(wildcard $(VIZ_WEB)/src/*)
	cd $(VIZ_WEB) && node build.mjs

viz-assets: $(VIZ_BUNDLE)

install: $(STAMP) $(VIZ_BUNDLE)

demo: $(STAMP) $(VIZ_BUNDLE)
	$(PY) -m talon demo

test: $(STAMP) $(VIZ_BUNDLE)
	$(PY) -m pytest -q

# the user guide and the API reference as a website in site/; strict: a broken link or reference fails
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# results go to bench/results/latest.md (untracked); BENCH_ARGS=--update-docs also rewrites docs/benchmarks.md
bench: $(STAMP) $(VIZ_BUNDLE)
	$(PY) -m bench $(BENCH_ARGS)

# Byte-flip fuzz of ir.read (tests/fuzz_t1c.py): 2,000 files, each read in a child process with a
# timeout; then the same with the checksum recomputed after each flip (the adversary's view); then
# structure-aware edits of re-sealed .t1c files and damaged NIR paper files (tests/fuzz_readers.py).
fuzz: $(STAMP)
	$(PY) tests/fuzz_t1c.py --count 2000
	$(PY) tests/fuzz_t1c.py --count 2000 --reseal --seed 1
	$(PY) tests/fuzz_readers.py --target t1c --count 2000
	$(PY) tests/fuzz_readers.py --target nir --count 2000

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

format: $(STAMP)
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

wheel: $(STAMP) $(VIZ_BUNDLE)
	$(PY) -m pip install -q -c $(CONSTRAINTS) build
	$(PY) -m build

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site src/talon/viz/static
