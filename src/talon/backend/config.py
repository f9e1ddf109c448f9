"""Compilation settings: the numeric precision and the bit widths of the fixed-point datapath.

Precisions (``CompileConfig.precision``):

* ``fp32`` — the reference: float32 values and state; matmul and convolution products summed in
  float64 and rounded once to float32 (``exact_accumulation=True``, deterministic whatever the
  batch or BLAS), or summed by float32 BLAS (``exact_accumulation=False``).
* ``fp16`` — float16 weights, activations, coefficients and state; every elementwise operation
  rounds to float16; matmul and convolution products are summed in float32 and rounded to float16.
* ``int16``, ``int8``, ``int4`` — the bit-accurate fixed-point datapath of docs/backend.md
  (integer weights, activations, accumulators, membranes and thresholds). Default bit widths:

  ========= ======= =========== =========== ===== ==============
  precision weights activations accumulator state coefficients
  ========= ======= =========== =========== ===== ==============
  int16     16      16          48          32    16 fraction bits
  int8      8       8           32          24    16 fraction bits
  int4      4       4           16          16    16 fraction bits
  ========= ======= =========== =========== ===== ==============

  A :class:`~talon.ir.SpikingAffine` node's own ``weight_bits`` / ``accumulator_bits`` override the
  defaults for that node (they are the node's declared hardware precision).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import BackendError

PRECISIONS = ("fp32", "fp16", "int16", "int8", "int4")
FLOAT_PRECISIONS = ("fp32", "fp16")


@dataclass(frozen=True)
class FixedPointSpec:
    """Bit widths of the integer datapath (all two's complement, saturating)."""

    weight_bits: int
    activation_bits: int
    accumulator_bits: int
    state_bits: int
    coefficient_bits: int  # fraction bits of decays, gains and rescaling multipliers


FIXED_POINT_DEFAULTS = {
    "int16": FixedPointSpec(16, 16, 48, 32, 16),
    "int8": FixedPointSpec(8, 8, 32, 24, 16),
    "int4": FixedPointSpec(4, 4, 16, 16, 16),
}

_LIMITS = {  # (minimum, maximum) accepted for each width
    "weight_bits": (2, 32),
    "activation_bits": (2, 32),
    "accumulator_bits": (2, 62),
    "state_bits": (4, 40),
    "coefficient_bits": (4, 24),
}


@dataclass(frozen=True)
class CompileConfig:
    """How :meth:`BackendBase.compile` lowers a graph.

    ``precision`` is one of :data:`PRECISIONS`. The ``*_bits`` fields override the fixed-point
    defaults of the precision (None keeps them; they are ignored by ``fp32`` / ``fp16``).
    ``per_channel`` quantizes weights with one scale per output channel (else one per tensor).
    """

    precision: str = "fp32"
    weight_bits: int | None = None
    activation_bits: int | None = None
    accumulator_bits: int | None = None
    state_bits: int | None = None
    coefficient_bits: int | None = None
    per_channel: bool = True
    exact_accumulation: bool = True

    def __post_init__(self) -> None:
        precision = str(self.precision).lower()
        if precision not in PRECISIONS:
            raise BackendError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        object.__setattr__(self, "precision", precision)
        for name, (low, high) in _LIMITS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise BackendError(f"CompileConfig.{name} must be an integer in [{low}, {high}], got {value!r}")
        object.__setattr__(self, "per_channel", bool(self.per_channel))
        object.__setattr__(self, "exact_accumulation", bool(self.exact_accumulation))
        if self.is_fixed_point:
            spec = self.fixed_point
            if spec.accumulator_bits < spec.weight_bits:
                raise BackendError(
                    f"accumulator_bits ({spec.accumulator_bits}) must be >= weight_bits ({spec.weight_bits})"
                )

    @property
    def is_fixed_point(self) -> bool:
        return self.precision not in FLOAT_PRECISIONS

    @property
    def fixed_point(self) -> FixedPointSpec:
        """The effective bit widths (defaults of the precision with this config's overrides)."""
        if not self.is_fixed_point:
            raise BackendError(f"precision {self.precision!r} is a floating-point precision")
        base = asdict(FIXED_POINT_DEFAULTS[self.precision])
        for name in base:
            if getattr(self, name) is not None:
                base[name] = getattr(self, name)
        return FixedPointSpec(**base)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.is_fixed_point:
            out.update(asdict(self.fixed_point))
        return out

    @classmethod
    def coerce(cls, config: CompileConfig | dict | None, precision: str | None = None) -> CompileConfig:
        """Accept a CompileConfig, a dict of its fields or None; ``precision`` overrides."""
        if config is None:
            config = cls()
        elif isinstance(config, dict):
            unknown = set(config) - {f.name for f in fields(cls)}
            if unknown:
                raise BackendError(f"unknown CompileConfig fields: {sorted(unknown)}")
            config = cls(**config)
        elif not isinstance(config, cls):
            raise BackendError(f"config must be a CompileConfig or a dict, got {type(config).__name__}")
        if precision is not None and str(precision).lower() != config.precision:
            values = {f.name: getattr(config, f.name) for f in fields(cls)}
            values["precision"] = precision
            config = cls(**values)
        return config
