"""The vendor steps of ``build_bitstream``: HLS synthesis, co-simulation, IP export (Vitis HLS or
Vivado HLS), logic synthesis and the bitstream (Vivado). Without the tool on PATH each step raises
a :class:`BackendError` naming the tool it needs; with it, the project's TCL script runs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..errors import BackendError

HLS_TOOLS = ("vitis_hls", "vivado_hls")
VIVADO = "vivado"


def find_hls_tool(step: str) -> str:
    for tool in HLS_TOOLS:
        path = shutil.which(tool)
        if path:
            return path
    raise BackendError(
        f"BitstreamConfig({step}=True) needs AMD/Xilinx Vitis HLS ('vitis_hls') or Vivado HLS ('vivado_hls') "
        f"on PATH; neither was found. Install Vitis and source its settings64.sh, or run {step}=False "
        "(csim needs g++ only)"
    )


def find_vivado(step: str) -> str:
    path = shutil.which(VIVADO)
    if not path:
        raise BackendError(
            f"BitstreamConfig({step}=True) needs AMD/Xilinx Vivado ('vivado') on PATH; it was not found. "
            "Install Vivado and source its settings64.sh, or run without vsynth / bitfile"
        )
    return path


def check_tools(synth: bool, cosim: bool, export: bool, vsynth: bool, bitfile: bool) -> dict[str, str]:
    """The tools the requested steps need (raises before anything runs if one is missing)."""
    tools: dict[str, str] = {}
    for step, wanted in (("synth", synth), ("cosim", cosim), ("export", export)):
        if wanted:
            tools["hls"] = find_hls_tool(step)
    for step, wanted in (("vsynth", vsynth), ("bitfile", bitfile)):
        if wanted:
            tools["vivado"] = find_vivado(step)
    return tools


def run_hls(tool: str, project_dir: Path, synth: bool, cosim: bool, export: bool) -> Path:
    args = f"csim=0 synth={int(synth)} cosim={int(cosim)} export={int(export)}"
    return _run([tool, "-f", "build_prj.tcl", args], project_dir, "hls_build.log")


def run_vivado(tool: str, project_dir: Path, bitfile: bool) -> Path:
    cmd = [tool, "-mode", "batch", "-source", "vivado_synth.tcl", "-tclargs", f"bitfile={int(bitfile)}"]
    return _run(cmd, project_dir, "vivado_build.log")


def _run(cmd: list[str], cwd: Path, log_name: str) -> Path:
    log = cwd / log_name
    with open(log, "w") as f:
        done = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise BackendError(f"{Path(cmd[0]).name} failed (exit {done.returncode}); see {log}")
    return log
