"""talon.backend.fpga: HLS projects (hls4ml layout) whose C simulation is bit-exact against the
CPU backend's fixed-point datapath (docs/fpga.md).

    from talon.backend import get_backend
    fpga = get_backend("fpga")
    fpga.validate(graph)
    desc = fpga.compile(graph, output_dir="hls_prj", default_precision="int8")
    sim = fpga.simulate(graph, inputs, precision="int8")      # g++ C simulation

Needs g++ and the ``fpga`` extra (hls4ml: its ``nnet_utils`` dense kernel and the ``ap_types``
headers); Vitis HLS / Vivado only for synthesis and the bitstream.
"""

from .backend import (
    DEFAULT_PART,
    BitstreamConfig,
    FPGABackend,
    HLS4MLBackend,
    Zynq7020Backend,
    ZynqUSPlusBackend,
)
from .config_map import ir_to_hls4ml_config

__all__ = [
    "DEFAULT_PART",
    "BitstreamConfig",
    "FPGABackend",
    "HLS4MLBackend",
    "Zynq7020Backend",
    "ZynqUSPlusBackend",
    "ir_to_hls4ml_config",
]
