"""talon.backend: backends that compile, simulate and profile TALON IR graphs.

``get_backend("cpu")`` is the reference engine of docs/semantics.md (numpy only; float32,
float16 and bit-accurate int16 / int8 / int4 fixed point) with a profiler and energy presets.
Quick start::

    from talon.backend import get_backend
    cpu = get_backend("cpu")
    sim = cpu.simulate(graph, n_steps=10)              # default stimulus: seeded Bernoulli spikes
    prof = cpu.profile(graph, n_steps=10, energy_preset="45nm_cmos")
    print(prof.summary())

Imports numpy and talon.ir only (never torch or jax).
"""

from .base import BackendBase
from .config import FIXED_POINT_DEFAULTS, PRECISIONS, CompileConfig, FixedPointSpec
from .cpu import CPUBackend
from .cpu.backend import CalibrationRangeWarning
from .descriptor import HardwareDescriptor
from .energy import DEFAULT_PRESET, ENERGY_PRESETS, EnergyPreset, get_energy_preset
from .errors import BackendError, UnsupportedNodeError
from .fpga import BitstreamConfig, FPGABackend
from .registry import BackendRegistry, get_backend, list_backends, query_backends, register_backend
from .results import (
    BackendCapabilities,
    LayerProfile,
    ProfileResult,
    QuantizationReport,
    SimulationResult,
    ValidationResult,
)
from .run import RunResult, run_graph
from .stimulus import DEFAULT_N_STEPS, default_stimulus

register_backend("cpu", CPUBackend)
register_backend("fpga", FPGABackend)

__all__ = [
    "DEFAULT_N_STEPS",
    "DEFAULT_PRESET",
    "ENERGY_PRESETS",
    "FIXED_POINT_DEFAULTS",
    "PRECISIONS",
    "BackendBase",
    "BackendCapabilities",
    "BackendError",
    "BackendRegistry",
    "BitstreamConfig",
    "CPUBackend",
    "CalibrationRangeWarning",
    "CompileConfig",
    "EnergyPreset",
    "FPGABackend",
    "FixedPointSpec",
    "HardwareDescriptor",
    "LayerProfile",
    "ProfileResult",
    "QuantizationReport",
    "RunResult",
    "SimulationResult",
    "UnsupportedNodeError",
    "ValidationResult",
    "default_stimulus",
    "get_backend",
    "get_energy_preset",
    "list_backends",
    "query_backends",
    "register_backend",
    "run_graph",
]
