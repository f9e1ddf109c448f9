"""Stage 3: C simulation of a generated project with g++ (no vendor tools).

The project's firmware and testbench are compiled once per content: the executable is cached
under a key that hashes every source file, the compiler's version and its flags (directory
``$TALON_FPGA_CACHE``, default ``~/.cache/talon/fpga-csim``), so simulating the same network on
new inputs, or the same graph twice, compiles nothing. Inputs go in as float32 or float64 (as
given) and are quantized by the testbench (``nnet_talon_io.h``) exactly as the CPU backend's Input
kernel does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import BackendError
from .codegen import GeneratedProject

CXXFLAGS = ("-std=c++14", "-O2", "-w")  # -O2: vectorises the dense kernel; builds in about the time of -O1
# C runtime linked in when the toolchain has it: the simulation starts about 1 ms sooner (no
# dynamic relocation of libstdc++), which is most of a run of a small network
STATIC_RUNTIME = ("-static-libstdc++", "-static-libgcc")
CACHE_ENV = "TALON_FPGA_CACHE"
NUMBERS_ONLY = {"firmware/weights.h"}


def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "talon" / "fpga-csim"


def compiler() -> str:
    cxx = os.environ.get("CXX") or shutil.which("g++")
    if not cxx or not shutil.which(cxx):
        raise BackendError(
            "C simulation needs a C++ compiler: g++ was not found on PATH (apt-get install g++, or set CXX)"
        )
    return cxx


@lru_cache(maxsize=4)
def _compiler_version(cxx: str) -> str:
    out = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else cxx


def build_key(files: dict[str, str], project: str) -> str:
    cxx = compiler()
    h = hashlib.sha256()
    for part in (_compiler_version(cxx), " ".join(CXXFLAGS + STATIC_RUNTIME), project):
        h.update(part.encode() + b"\0")
    for rel in sorted(files):
        if rel in NUMBERS_ONLY:
            continue  # parameter values are loaded at run time
        h.update(rel.encode() + b"\0" + files[rel].encode() + b"\0")
    return h.hexdigest()[:32]


def build(files: dict[str, str], project: str) -> Path:
    """The cached C-simulation executable of a project's ``files`` (compiled in a scratch copy if new)."""
    from .project import hls4ml_templates, write_project

    key = build_key(files, project)
    exe = cache_dir() / f"{key}-{_hls4ml_version()}" / "csim"
    if exe.is_file():
        return exe
    cxx = compiler()
    hls = hls4ml_templates()
    scratch = Path(tempfile.mkdtemp(prefix="talon-hls-"))
    try:
        project_dir = write_project(scratch / project, files, {})
        fw = project_dir / "firmware"
        includes = [f"-I{fw}", f"-I{hls / 'ap_types'}", f"-I{project_dir}"]
        sources = [fw / f"{project}.cpp", project_dir / f"{project}_test.cpp"]
        objects = [scratch / f"unit{k}.o" for k in range(len(sources))]
        # the two translation units compile side by side (most of the build is parsing ap_types)
        jobs = [
            subprocess.Popen([cxx, *CXXFLAGS, *includes, "-c", str(src), "-o", str(obj)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for src, obj in zip(sources, objects, strict=True)
        ]  # fmt: skip
        errors = [job.communicate()[1] for job in jobs]
        for job, err in zip(jobs, errors, strict=True):
            if job.returncode != 0:
                tail = "\n".join(err.strip().splitlines()[-20:])
                raise BackendError(f"g++ could not compile the generated HLS project {project!r}:\n{tail}")
        exe.parent.mkdir(parents=True, exist_ok=True)
        tmp = exe.with_name(f"csim.{os.getpid()}.tmp")
        link = [cxx, *map(str, objects), "-o", str(tmp)]
        done = subprocess.run([*link, *STATIC_RUNTIME], capture_output=True, text=True, check=False)
        if done.returncode != 0:  # no static libstdc++ in this toolchain: link it dynamically
            done = subprocess.run(link, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tmp.unlink(missing_ok=True)
            tail = "\n".join(done.stderr.strip().splitlines()[-20:])
            raise BackendError(f"g++ could not link the C simulation of {project!r}:\n{tail}")
        os.replace(tmp, exe)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return exe


@lru_cache(maxsize=1)
def _hls4ml_version() -> str:  # cached: importlib.metadata scans the environment (~15 ms a call)
    try:
        from importlib.metadata import version

        return version("hls4ml")
    except Exception:
        return "unknown"


def write_inputs(path: Path, gen: GeneratedProject, arrays: dict[str, np.ndarray]) -> tuple[int, int]:
    """``tb_data/inputs.bin``: int64 B, int64 T, int64 bytes per value (4: float32, 8: float64),
    then the values ordered [B, T, input, element]. float32 when every input is float32 (the
    values as given, half the bytes), else float64; the testbench widens both to double before
    quantizing, so either gives the same integers."""
    first = next(iter(arrays.values()))
    steps, batch = first.shape[:2]
    dtype = np.float32 if all(np.asarray(arrays[p.name]).dtype == np.float32 for p in gen.inputs) else np.float64
    data = np.empty((batch, steps, sum(p.size for p in gen.inputs)), dtype)
    offset = 0
    for p in gen.inputs:  # one strided copy per input, straight into the file's layout
        data[:, :, offset : offset + p.size] = np.asarray(arrays[p.name]).reshape(steps, batch, p.size).swapaxes(0, 1)
        offset += p.size
    with open(path, "wb") as f:
        f.write(np.asarray([batch, steps, data.itemsize], np.int64).tobytes())
        data.tofile(f)
    return steps, batch


def run(exe: Path, gen: GeneratedProject, arrays: dict[str, np.ndarray], work: Path | None = None) -> dict:
    """Run the testbench on ``arrays`` (``{input: [T, B, *shape]}``); returns ``{probe key: int64
    [T, B, *shape]}`` (a value id, or ``("state", path, var)``). ``work`` (a project directory)
    keeps the input and result files in its ``tb_data/`` and the parameters in
    ``firmware/weights/``; by default they share one flat scratch directory (each directory
    made and removed costs more than the files in it on a busy disk)."""
    own = work is None
    if own:
        work = Path(tempfile.mkdtemp(prefix="talon-csim-"))
        tb = weights = work
    else:
        work = Path(work)
        tb, weights = work / "tb_data", work / "firmware" / "weights"
        tb.mkdir(parents=True, exist_ok=True)
        weights.mkdir(parents=True, exist_ok=True)
    try:
        for rel, data in gen.binaries.items():
            (weights / Path(rel).name).write_bytes(data)
        in_path, out_path = tb / "inputs.bin", tb / "csim_results.bin"
        steps, batch = write_inputs(in_path, gen, arrays)
        done = subprocess.run(
            [str(exe), str(in_path), str(out_path), str(weights)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise BackendError(f"the C simulation failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
        raw = np.fromfile(out_path, np.int64)
        per_step = sum(p.size for p in gen.probes)
        if raw.size != batch * steps * per_step:
            raise BackendError(
                f"the C simulation wrote {raw.size} integers, expected {batch * steps * per_step} "
                f"({batch} samples x {steps} steps x {per_step})"
            )
        raw = raw.reshape(batch, steps, per_step)
        out, offset = {}, 0
        for p in gen.probes:
            block = raw[:, :, offset : offset + p.size].transpose(1, 0, 2)
            out[p.key] = np.ascontiguousarray(block).reshape(steps, batch, *p.shape)
            offset += p.size
        return out
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
