"""Simulation inputs: the default stimulus and the checking of user inputs.

**Default stimulus** (used when ``simulate`` / ``profile`` get no inputs): for every Input node,
in node order, independent Bernoulli spike trains ``x[t, b, ...] ~ Bernoulli(rate)`` of 0.0 / 1.0
(float32), drawn from ``numpy.random.default_rng(seed)`` with ``rate = 0.5``, ``seed = 0`` and
one batch entry. Half of the inputs spike at every step: a network initialised the usual way
(PyTorch's uniform ±1/sqrt(fan_in) weights, LIF thresholds of about 1) receives drive of the order
of its threshold and fires, unlike the all-silent examples of the original documentation.

**User inputs**: a dict ``{input_name: array}`` with every Input node, or a bare array when the
graph has one Input. An array of an Input of shape ``S`` may be ``S`` (one sample held constant
for ``n_steps``), ``[B, *S]`` (a batch held constant) or ``[T, B, *S]`` (a time-major sequence;
``n_steps`` defaults to ``T``). A numpy masked array is refused when any entry is masked (a
simulation has no missing values: fill them first); one with nothing masked is its data.

**Sources**: a simulation reads its inputs chunk by chunk (:class:`InputSource`,
:func:`prepare_source`), so neither the default stimulus nor an input held constant is ever
materialised for all steps: the stimulus is drawn as it is needed, each Input from its own
position in the seeded stream (``PCG64.advance``), giving the same numbers as
:func:`default_stimulus`; a held input is a broadcast view.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import numpy as np

from talon import ir

from .errors import BackendError

_F32_MAX = float(np.finfo(np.float32).max)
DEFAULT_N_STEPS = 100
DEFAULT_RATE = 0.5
DEFAULT_SEED = 0


def default_stimulus(
    graph: ir.Graph,
    n_steps: int = DEFAULT_N_STEPS,
    *,
    batch_size: int = 1,
    rate: float = DEFAULT_RATE,
    seed: int = DEFAULT_SEED,
) -> dict[str, np.ndarray]:
    """Bernoulli(``rate``) 0/1 spike trains ``[n_steps, batch_size, *shape]`` for every Input node."""
    n_steps = check_steps(n_steps)
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise BackendError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not 0.0 <= float(rate) <= 1.0:
        raise BackendError(f"rate must be in [0, 1], got {rate!r}")
    elements = sum(n_steps * int(batch_size) * math.prod(graph.nodes[name].shape) for name in graph.input_nodes)
    check_memory(elements * _DRAW_BYTES, f"the default stimulus of {n_steps:,} steps")
    rng = np.random.default_rng(seed)
    return {
        name: (rng.random((n_steps, int(batch_size), *graph.nodes[name].shape)) < rate).astype(np.float32)
        for name in graph.input_nodes
    }


_DRAW_BYTES = 13  # per element while drawing: a float64 uniform, the bool test and the float32 result


def memory_limit() -> int:
    """The most bytes one simulation buffer may take: half of the machine's physical memory."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):  # not POSIX
        return 1 << 34


def check_memory(nbytes: int, what: str) -> None:
    """Refuse, before allocating, a buffer larger than :func:`memory_limit`."""
    limit = memory_limit()
    if nbytes > limit:
        raise BackendError(
            f"{what} needs {nbytes:,} bytes, more than half of this machine's memory ({limit:,} bytes); "
            "run fewer steps or a smaller batch"
        )


NO_STATE = (
    "the backends take no state: simulate(graph, inputs, n_steps, step_by_step) runs the whole sequence, every "
    "neuron starting at its v_init; pass all steps in one call (chunk_steps bounds the memory)"
)


def check_steps(n_steps) -> int:
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        hint = f"; {NO_STATE}" if isinstance(n_steps, Mapping) else ""
        raise BackendError(f"n_steps must be a positive integer, got {n_steps!r}{hint}")
    return int(n_steps)


class InputSource:
    """The inputs of a run by Input name, produced chunk by chunk: ``chunk(start, stop)`` returns
    ``{name: float32 [stop - start, B, *shape]}`` (C-contiguous). ``arrays()`` materialises all steps."""

    steps: int
    batch: int

    def chunk(self, start: int, stop: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        return self.chunk(0, self.steps)


class ArrayInputs(InputSource):
    """Caller arrays ``[T, B, *shape]`` (float32), or broadcast views of a held sample or batch."""

    def __init__(self, arrays: dict[str, np.ndarray], steps: int, batch: int) -> None:
        self._arrays, self.steps, self.batch = arrays, steps, batch

    def chunk(self, start: int, stop: int) -> dict[str, np.ndarray]:
        return {name: np.ascontiguousarray(a[start:stop], dtype=np.float32) for name, a in self._arrays.items()}


class DefaultStimulus(InputSource):
    """:func:`default_stimulus` drawn chunk by chunk: the same numbers, only one chunk at a time.

    ``default_stimulus`` draws every Input's ``[T, B, *shape]`` uniforms in node order from one
    ``default_rng(seed)`` stream; a float64 uniform consumes exactly one 64-bit output of PCG64, so
    Input ``i`` starts ``sum_{j<i} T*B*size_j`` outputs into the stream (``advance``) and its steps
    follow one another. Chunks must be asked for in order from step 0 (each restart at 0 re-seeds).
    """

    def __init__(self, graph: ir.Graph, steps: int, batch: int = 1, rate: float = DEFAULT_RATE,
                 seed: int = DEFAULT_SEED) -> None:  # fmt: skip
        self.steps, self.batch, self.rate, self.seed = steps, batch, rate, seed
        self.shapes = {name: tuple(graph.nodes[name].shape) for name in graph.input_nodes}
        self._streams: dict[str, np.random.Generator] = {}
        self._next = 0

    def _restart(self) -> None:
        offset = 0
        self._streams = {}
        for name, shape in self.shapes.items():
            bits = np.random.PCG64(self.seed)
            bits.advance(offset)
            self._streams[name] = np.random.Generator(bits)
            offset += self.steps * self.batch * math.prod(shape)
        self._next = 0

    def chunk(self, start: int, stop: int) -> dict[str, np.ndarray]:
        if start == 0:
            self._restart()
        if start != self._next:
            raise BackendError(f"the default stimulus is drawn in order: asked for step {start}, next is {self._next}")
        self._next = stop
        return {
            name: (self._streams[name].random((stop - start, self.batch, *shape)) < self.rate).astype(np.float32)
            for name, shape in self.shapes.items()
        }


def prepare_source(graph: ir.Graph, inputs, n_steps: int | None) -> tuple[InputSource, int, int, bool]:
    """Check ``inputs`` (as :func:`prepare_inputs`) and return ``(source, T, B, used_default)``
    without materialising the default stimulus or a held input for all steps."""
    arrays, steps, batch = _checked(graph, inputs, n_steps)
    if arrays is None:
        return DefaultStimulus(graph, steps), steps, 1, True
    return ArrayInputs(arrays, steps, batch), steps, batch, False


def prepare_inputs(graph: ir.Graph, inputs, n_steps: int | None) -> tuple[dict[str, np.ndarray], int, int, bool]:
    """Check ``inputs`` and return ``({name: float32 [T, B, *shape]}, T, B, used_default)``."""
    arrays, steps, batch = _checked(graph, inputs, n_steps)
    if arrays is None:
        return default_stimulus(graph, steps), steps, 1, True
    for name, arr in arrays.items():
        if arr.strides[0] == 0:  # held constant: materialised for every step
            check_memory(arr.size * 4, f"input {name!r} held for {steps:,} steps")
    return {name: np.ascontiguousarray(arr, dtype=np.float32) for name, arr in arrays.items()}, steps, batch, False


def _checked(graph: ir.Graph, inputs, n_steps: int | None) -> tuple[dict[str, np.ndarray] | None, int, int]:
    """``(arrays, T, B)`` of checked ``inputs``, or ``(None, T, 1)`` when the default stimulus feeds
    the graph (``inputs`` is None)."""
    if not graph.input_nodes:
        raise BackendError("the graph has no Input node; add ir.Input(shape) nodes to feed it")
    if inputs is None:
        return None, DEFAULT_N_STEPS if n_steps is None else check_steps(n_steps), 1
    return _check_inputs(graph, inputs, n_steps)


def _check_inputs(graph: ir.Graph, inputs, n_steps: int | None) -> tuple[dict[str, np.ndarray], int, int]:
    """The checked inputs ``{name: [T, B, *shape]}`` (a held sample or batch as a broadcast view), T, B."""
    names = graph.input_nodes
    if not isinstance(inputs, Mapping):
        if len(names) != 1:
            raise BackendError(
                f"the graph has {len(names)} Input nodes ({', '.join(names)}); pass inputs as a dict by name"
            )
        inputs = {names[0]: inputs}
    unknown = [k for k in inputs if k not in names]
    if unknown:
        raise BackendError(f"inputs name unknown Input nodes {unknown}; the graph's Input nodes are {names}")
    missing = [n for n in names if n not in inputs]
    if missing:
        raise BackendError(f"no input given for Input node(s) {missing} (every Input node needs one)")
    if n_steps is not None:
        n_steps = check_steps(n_steps)
    arrays, steps_seen, batch_seen = {}, set(), set()
    for name in names:
        arr, kind = _as_sequence(name, inputs[name], graph.nodes[name].shape)
        arrays[name] = (arr, kind)
        if kind == "sequence":
            steps_seen.add(arr.shape[0])
        batch_seen.add(arr.shape[-len(graph.nodes[name].shape) - 1] if kind != "sample" else 1)
    if len(steps_seen) > 1:
        raise BackendError(f"the input sequences have different lengths {sorted(steps_seen)}")
    if len(batch_seen) > 1:
        raise BackendError(f"the inputs have different batch sizes {sorted(batch_seen)}")
    steps = steps_seen.pop() if steps_seen else (DEFAULT_N_STEPS if n_steps is None else n_steps)
    if n_steps is not None and steps != n_steps:
        raise BackendError(f"n_steps={n_steps} but the input sequences have {steps} steps")
    batch = batch_seen.pop()
    out = {}
    for name, (arr, kind) in arrays.items():
        shape = graph.nodes[name].shape
        if kind == "sample":
            arr = arr.reshape(1, *shape)
        if kind != "sequence":
            arr = np.broadcast_to(np.asarray(arr, np.float32), (steps, *arr.shape))
        out[name] = arr
    return out, steps, batch


def _as_sequence(name: str, value, shape: tuple[int, ...]) -> tuple[np.ndarray, str]:
    if isinstance(value, np.ma.MaskedArray) and np.ma.getmaskarray(value).any():
        raise BackendError(
            f"input {name!r} is a masked array and {int(np.ma.count_masked(value)):,} of its {value.size:,} entries "
            "are masked: a simulation has no missing values and would read the data under the mask; fill them first "
            "(e.g. value.filled(0.0)) or pass the plain array"
        )
    try:
        arr = np.asarray(value)
    except Exception as exc:
        raise BackendError(f"input {name!r} cannot be converted to an array: {exc}") from None
    if arr.dtype.kind not in "fiub":
        raise BackendError(f"input {name!r} must be a real numeric array, got dtype {arr.dtype}")
    extra = arr.ndim - len(shape)
    if extra not in (0, 1, 2) or tuple(arr.shape[extra:]) != tuple(shape):
        raise BackendError(
            f"input {name!r} has shape {list(arr.shape)}; Input {name!r} expects {list(shape)} (one sample), "
            f"[B, {', '.join(map(str, shape))}] (a batch) or [T, B, {', '.join(map(str, shape))}] (a sequence)"
        )
    if arr.size and arr.dtype.kind == "f" and not _all_finite(arr):
        raise BackendError(f"input {name!r} contains NaN or infinite values")
    if arr.size and arr.dtype.kind == "f" and arr.dtype.itemsize > 4 and np.max(np.abs(arr)) > _F32_MAX:
        raise BackendError(
            f"input {name!r} has values up to {float(np.max(np.abs(arr))):.3g} in magnitude, beyond float32's "
            f"{_F32_MAX:.3g}: the simulation runs in float32 and they would become infinite"
        )
    if extra == 2 and arr.shape[0] == 0:
        raise BackendError(f"input {name!r} has no time steps")
    if extra >= 1 and arr.shape[extra - 1] == 0:
        raise BackendError(f"input {name!r} has an empty batch (shape {list(arr.shape)})")
    return arr, ("sample", "batch", "sequence")[extra]


def _all_finite(arr: np.ndarray) -> bool:
    """``np.all(np.isfinite(arr))`` without a boolean temporary: the minimum and maximum propagate
    NaN and are infinite exactly when some element is."""
    return bool(np.isfinite(arr.min()) and np.isfinite(arr.max()))
