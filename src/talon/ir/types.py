"""Type aliases and the enumerations used by node parameters.

The enums are ``StrEnum`` so a node field compares equal to its plain string value
(``skip.skip_type == "residual"``) and serializes as that string.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .node import Node

Shape = tuple[int, ...]
"""A tensor shape without the batch (and time) dimension."""

Nodes = dict[str, "Node"]
Edges = list[tuple[str, str]]
Types = dict[str, np.ndarray]


class SkipType(StrEnum):
    """How a :class:`~talon.ir.Skip` merges its inputs."""

    RESIDUAL = "residual"  # element-wise sum of all inputs
    CONCATENATE = "concatenate"  # concatenation along the channel axis, in edge order
    PASSTHROUGH = "passthrough"  # identity of a single input


class SpikeMode(StrEnum):
    """What a :class:`~talon.ir.SpikingAffine` layer's inputs carry (a compiler hint)."""

    BINARY = "binary"
    GRADED = "graded"
    RATE = "rate"
    TEMPORAL = "temporal"


class UpsampleMode(StrEnum):
    NEAREST = "nearest"
    BILINEAR = "bilinear"


class NeuronMode(StrEnum):
    """Computation domain of a :class:`~talon.ir.HybridRegion`."""

    ANN = "ann"
    SNN = "snn"


class ResetMode(StrEnum):
    """What a spike does to the membrane (see docs/semantics.md)."""

    VALUE = "value"  # v <- v_reset (reset to zero when v_reset = 0)
    SUBTRACT = "subtract"  # v <- v - v_threshold
    NONE = "none"  # no reset


class ResetTiming(StrEnum):
    """When the reset caused by a spike is applied (see docs/semantics.md)."""

    IMMEDIATE = "immediate"  # in the same step, after the spike is taken from the new state
    DELAYED = "delayed"  # next step, to the integrated value (snnTorch reset_delay=True)
    DELAYED_PRE_DECAY = "delayed_pre_decay"  # next step, before decay (Spyx CuBaLIF)
    # snnTorch's reset_delay=False with subtraction: the spike test sees the delayed reset, then
    # the reset is corrected to this step's spike: v = u - (z - z_prev) * theta
    SNNTORCH_IMMEDIATE = "snntorch_immediate"


class ResetGradient(StrEnum):
    """How the spike that drives a reset is differentiated (training only; see docs/semantics.md §3.1)."""

    DETACHED = "detached"  # a constant: no gradient through R (snnTorch's detached reset)
    THROUGH = "through"  # carries its surrogate derivative (Spyx, Norse, SpikingJelly's default)


class SpikeTiming(StrEnum):
    """Which state the emitted spike is taken from."""

    POST = "post"  # from the state after this step's update (snnTorch, Norse, NIR)
    PRE = "pre"  # from the state before this step's update (Spyx)


class Integration(StrEnum):
    """How a leaky membrane is advanced one step (same value; float rounding differs)."""

    DECAY = "decay"  # u = (beta*v + g*x) + c          (snnTorch, Spyx, TALON's LIFModule)
    EULER = "euler"  # u = v + k*((v_leak - v) + r*x), k = 1/tau   (Norse; NIR's forward Euler)


class SpikeCount(StrEnum):
    """How many spikes a spiking neuron emits per step (see docs/semantics.md §3.1)."""

    BINARY = "binary"  # 0 or 1: the threshold comparison
    MULTI = "multi"  # n = floor(u / theta) when u >= theta (Sinabs MultiSpike, Rockpool), reset by n*theta


class SynapseOrder(StrEnum):
    """How CubaLIF's synaptic current takes its input (see docs/semantics.md §3.1)."""

    DECAY = "decay"  # i = alpha*i + g_s*x                    (TALON, snnTorch Synaptic, NIR's Euler step)
    INPUT_FIRST = "input_first"  # i = alpha*(i + g_s*x)      (Rockpool LIFTorch, Sinabs tau_syn)


class Comparison(StrEnum):
    """Threshold comparison: spike when ``v > theta`` or ``v >= theta``."""

    GT = ">"
    GE = ">="


def coerce_enum(enum: type[StrEnum], value: Any, field: str, where: str) -> StrEnum:
    """Return ``value`` as a member of ``enum`` or raise a ValueError naming the choices."""
    if isinstance(value, enum):
        return value
    try:
        return enum(str(value).lower() if isinstance(value, str) else value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in enum)
        raise ValueError(f"{where}: {field}={value!r} is not one of {choices}") from None
