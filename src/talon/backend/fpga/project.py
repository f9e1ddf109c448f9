"""Writing a generated HLS project to disk (firmware, parameters, testbench, TCL scripts).

Layout (hls4ml's, so its users find their way)::

    <output_dir>/
      firmware/<project>.cpp, <project>.h      top function: one timestep per call
      firmware/defines.h, parameters.h         types, layer configurations
      firmware/weights.h, firmware/weights/    the integers: compiled in (synthesis) / loaded (C sim)
      firmware/nnet_talon_*.h                  talon's layer and neuron implementations
      firmware/nnet_utils/, firmware/ap_types/ hls4ml's nnet_utils and the ap_types headers
      <project>_test.cpp                       C-simulation testbench
      build_csim.sh                            g++ C simulation without talon or vendor tools
      build_prj.tcl, vivado_synth.tcl          vendor flow (csim / synth / cosim / export / bitstream)
      talon_project.json                       ports, probes, formats and the resource estimate

A project is written to a temporary sibling directory and renamed into place, so a failed write
never leaves a half-written project (an existing directory is replaced only after success, and only
when it is empty or a previous talon project: any other directory is refused, never deleted).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from importlib import resources
from pathlib import Path

from talon.ir.errors import MissingDependencyError, install_hint

from ..errors import BackendError
from .codegen import GeneratedProject
from .templates import render

FIRMWARE_HEADERS = (
    "nnet_talon_common.h",
    "nnet_talon_conv.h",
    "nnet_talon_dense.h",
    "nnet_talon_elementwise.h",
    "nnet_talon_neuron.h",
    "nnet_talon_io.h",
)


def hls4ml_templates() -> Path:
    """hls4ml's Vivado templates directory (ap_types, nnet_utils); a clear error without hls4ml."""
    try:
        import hls4ml
    except ImportError as exc:
        raise MissingDependencyError(
            "the FPGA backend needs hls4ml (its nnet_utils and ap_types headers); " + install_hint("fpga")
        ) from exc
    path = Path(hls4ml.__file__).parent / "templates" / "vivado"
    if not (path / "ap_types" / "ap_int.h").is_file():
        raise BackendError(f"hls4ml at {path.parent.parent} has no ap_types headers; reinstall hls4ml")
    return path


def firmware_sources() -> dict[str, str]:
    """talon's own C++ headers, by file name."""
    root = resources.files("talon.backend.fpga").joinpath("firmware")
    return {name: root.joinpath(name).read_text() for name in FIRMWARE_HEADERS}


def project_files(gen: GeneratedProject, part: str, clock_period: float) -> dict[str, str]:
    """Every text file of the project except hls4ml's headers (relative path -> content)."""
    files = dict(gen.files)
    for name, text in firmware_sources().items():
        files[f"firmware/{name}"] = text
    from .csim import CXXFLAGS

    ctx = {
        "project": gen.project_name,
        "part": part,
        "clock_period": f"{clock_period:g}",
        "cxxflags": " ".join(CXXFLAGS),
    }
    files["build_prj.tcl"] = render("build_prj.tcl", ctx)
    files["build_csim.sh"] = render("build_csim.sh", ctx)
    files["vivado_synth.tcl"] = render("vivado_synth.tcl", ctx)
    return files


def write_project(
    output_dir: str | os.PathLike, files: dict[str, str], manifest: dict, binaries: dict[str, bytes] | None = None
) -> Path:
    """Write ``files``, the parameter ``binaries`` (under ``firmware/``), hls4ml's headers and
    ``talon_project.json`` atomically to ``output_dir``."""
    target = Path(output_dir)
    if not target.name:  # "." or "/": name the directory itself
        target = target.resolve()
    if target.exists() and not target.is_dir():
        raise BackendError(f"output_dir {str(target)!r} exists and is not a directory")
    _check_replaceable(target)
    hls = hls4ml_templates()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}"
    staging.mkdir(mode=0o777)  # the umask's permissions (tempfile.mkdtemp's 0700 would make the project private)
    try:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            if rel.endswith(".sh"):
                path.chmod(0o755)
        for rel, data in (binaries or {}).items():
            path = staging / "firmware" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        shutil.copytree(hls / "ap_types", staging / "firmware" / "ap_types")
        shutil.copytree(hls / "nnet_utils", staging / "firmware" / "nnet_utils")
        (staging / "tb_data").mkdir(exist_ok=True)
        (staging / "talon_project.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            staging.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _check_replaceable(target: Path) -> None:
    """An existing ``output_dir`` is replaced whole: only when it is empty or a talon project
    (``talon_project.json``); any other directory (a home, a working folder holding the model) is
    refused rather than deleted."""
    if not target.is_dir() or (target / "talon_project.json").is_file():
        return
    found = sorted(p.name for p in target.iterdir())
    if found:
        shown = ", ".join(repr(n) for n in found[:3]) + (", ..." if len(found) > 3 else "")
        raise BackendError(
            f"output_dir {str(target)!r} is not a talon HLS project and is not empty ({shown}); the project "
            "directory is replaced as a whole, so give a new or empty directory (or a previous project's)"
        )
