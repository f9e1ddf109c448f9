"""Integer arithmetic of the fixed-point datapath (docs/backend.md, "Fixed point").

Every tensor is an int64 array ``q`` with a :class:`QFormat`: its real value is ``q * scale``
(``scale`` positive float64, one per tensor, per channel or per element) and ``|q| <= bound``,
a static bound used to prove that no int64 (or float64-exact) intermediate can overflow.

* ``quantize_symmetric``: ``q = clip(rint(x / s), -qmax, qmax)``, ``s = amax / qmax``,
  ``qmax = 2**(bits-1) - 1`` (round half to even);
* ``saturate``: clamp to the two's-complement range of ``bits``;
* ``round_shift(a, k) = floor((a + 2**(k-1)) / 2**k)`` (round half up, arithmetic shift);
* a :class:`Multiplier` rescales by a real ratio ``r``: ``round_shift(q * m, k)`` with
  ``m = rint(r * 2**k)`` holding ``coefficient_bits`` significant bits (``r = 1`` is exact).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talon import ir
from talon._compiled import WorkThreshold, compiled

INT = np.int64
FLOAT_EXACT = 2**53  # every integer below this is exact in float64
FLOAT32_EXACT = 2**24  # every integer below this is exact in float32
INT_SAFE = 2**62  # headroom below the int64 limit

# When the compiled quantize_dyadic is worth starting numba for (talon._compiled.WorkThreshold); work:
# elements of x. Measured (load 4-5, 2 cores): twin vs compiled 0.19 vs 0.09 ms at 1e5 elements, 7.6 vs
# 0.9 ms at 1e6, 161 vs 40 ms at 1e7; starting numba in a process cost 0.5-1.5 s, about 1e8 elements.
QUANTIZE_WORK = WorkThreshold("input quantization", cold_from=100_000_000, warm_from=1_000)


def qmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def saturate(q: np.ndarray, bits: int) -> np.ndarray:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(q, lo, hi)


def round_shift(a: np.ndarray, k) -> np.ndarray:
    """``floor((a + 2**(k-1)) / 2**k)``; ``k`` may be an array; ``k = 0`` returns ``a``."""
    k = np.asarray(k, INT)
    if k.ndim == 0:
        k = int(k)
        return a if k == 0 else (a + (1 << (k - 1))) >> k
    half = np.where(k > 0, np.left_shift(1, np.maximum(k - 1, 0)), 0)
    return (a + half) >> k


@dataclass(frozen=True, eq=False)
class QFormat:
    """Real value = ``q * scale``; ``|q| <= bound``.

    ``bounds`` (optional, per element): tighter bounds where they differ — a Concat of inputs with
    different bounds keeps each part's own; ``bound`` is their maximum.
    """

    scale: np.ndarray
    bound: int
    bounds: np.ndarray | None = None

    def __post_init__(self) -> None:
        scale = np.asarray(self.scale, np.float64)
        if scale.size and np.all(scale == scale.reshape(-1)[0]):
            scale = np.asarray(scale.reshape(-1)[0], np.float64)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "bound", int(self.bound))
        if self.bounds is not None:
            bounds = np.asarray(self.bounds, np.float64)
            object.__setattr__(self, "bounds", None if np.all(bounds == self.bound) else bounds)

    def element_bounds(self, shape: tuple[int, ...]) -> np.ndarray:
        """The bound of every element of a batchless ``shape``."""
        return np.broadcast_to(np.float64(self.bound) if self.bounds is None else self.bounds, shape)

    @property
    def scalar(self) -> bool:
        return self.scale.ndim == 0

    def same(self, other: QFormat | None) -> bool:
        return (
            other is not None
            and self.bound == other.bound
            and self.scale.shape == other.scale.shape
            and bool(np.array_equal(self.scale, other.scale))
            and (self.bounds is None) == (other.bounds is None)
            and (self.bounds is None or bool(np.array_equal(self.bounds, other.bounds)))
        )

    def full_scale(self, shape: tuple[int, ...]) -> np.ndarray:
        """The scale broadcast to a batchless ``shape``."""
        return np.broadcast_to(self.scale, shape)

    def describe(self) -> dict:
        s = self.scale
        return {"scale": float(s) if s.ndim == 0 else s.reshape(-1).tolist(), "scale_shape": list(s.shape),
                "bound": self.bound}  # fmt: skip


SPIKES = QFormat(np.float64(1.0), 1)


@dataclass(frozen=True, eq=False)
class Multiplier:
    """Multiply by a real ratio in integers: ``round_shift(q * m, shift)``."""

    m: np.ndarray
    shift: np.ndarray

    @classmethod
    def of(cls, ratio, bits: int) -> Multiplier:
        ratio = np.asarray(ratio, np.float64)
        _, exponent = np.frexp(np.abs(ratio))  # |ratio| = mantissa * 2**exponent, mantissa in [0.5, 1)
        shift = np.maximum(bits - exponent, 0).astype(INT)
        m = np.rint(np.abs(ratio) * np.exp2(shift.astype(np.float64))).astype(INT) * np.sign(ratio).astype(INT)
        m = np.where(ratio == 0, 0, m)
        shift = np.where(ratio == 0, 0, shift)
        if shift.size and np.all(shift == shift.reshape(-1)[0]):
            shift = np.asarray(shift.reshape(-1)[0], INT)
        return cls(m, shift)

    @property
    def max_abs(self) -> int:
        return int(np.abs(self.m).max()) if self.m.size else 0

    def apply(self, q: np.ndarray) -> np.ndarray:
        return round_shift(q * self.m, self.shift)

    def bound(self, bound_in: int) -> int:
        """A bound of ``|apply(q)|`` for ``|q| <= bound_in``."""
        if not self.m.size:
            return 0
        ratio = np.abs(self.m) / np.exp2(np.asarray(self.shift, np.float64))
        return int(np.ceil(bound_in * float(ratio.max()))) + 1


def quantize_symmetric(
    x: np.ndarray, bits: int, axis: int | None, where: tuple[str, str] = ("?", "weight")
) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric quantization: per tensor (``axis=None``) or one scale per index of ``axis``.

    Returns ``(q, scale)`` with ``scale`` shaped to broadcast against ``x``; an all-zero slice gets
    scale 1. ``x`` must be finite (NaN has no integer: numpy would cast it to an arbitrary one):
    otherwise :class:`talon.ir.NonFiniteParameterError` names ``where`` = ``(node, field)``.
    """
    ir.check_finite_param(x, *where, what="the fixed-point quantiser")
    x = np.asarray(x, np.float64)
    top = qmax(bits)
    if axis is None:
        amax = np.abs(x).max(initial=0.0)
        scale = np.asarray(amax / top if amax > 0 else 1.0)
    else:
        reduce = tuple(a for a in range(x.ndim) if a != axis)
        amax = np.abs(x).max(axis=reduce, keepdims=True, initial=0.0)
        scale = np.where(amax > 0, amax / top, 1.0)
    q = np.clip(np.rint(x / scale), -top, top).astype(INT)
    return q, scale


def quantize_dyadic(x: np.ndarray, exponent: int, bound: int, dtype=INT) -> tuple[np.ndarray, int, int]:
    """``clip(rint(x * 2**exponent), -bound, bound)`` as ``dtype`` (int64, or float32 for a ``bound``
    below ``2**24``, which holds every such integer exactly) for a float32 ``x`` and ``exponent >= 0``:
    the quantization of an input whose scale is ``2**-exponent``; with it, how many elements
    saturated (``|x * 2**exponent| > bound``) and how many of the others were rounded (not on a
    step; NaN counts here).

    ``x * 2**exponent`` is exact in float32 (an overflow to inf saturates like the exact value), and
    ``rint`` and ``clip`` commute for integer bounds: the result equals the float64 formula. One
    compiled pass with numba (when ``QUANTIZE_WORK`` says it pays), else numpy passes (the same
    integers and counts).
    """
    dtype = np.dtype(dtype)
    if dtype != INT and not (dtype == np.float32 and bound < FLOAT32_EXACT):
        raise ValueError(f"quantize_dyadic: {dtype} cannot hold every integer up to {bound} exactly")
    kernel = compiled(_quantize_dyadic) if QUANTIZE_WORK.use_compiled(x.size) else None
    factor = np.float32(2.0**exponent)
    if kernel is not None:
        out = np.empty(x.shape, dtype)
        saturated, rounded = kernel(np.ascontiguousarray(x).reshape(-1), factor, float(bound), out.reshape(-1))
        return out, int(saturated), int(rounded)
    with np.errstate(over="ignore"):
        q = x * factor if exponent else x.copy()
    over = np.abs(q) > bound
    rounded = int(np.count_nonzero(~over & (q != np.rint(q))))
    np.clip(q, -bound, bound, out=q)
    return np.rint(q, out=q).astype(dtype, copy=False), int(np.count_nonzero(over)), rounded


def _quantize_dyadic(x, factor, bound, out):
    saturated = 0
    rounded = 0
    for k in range(x.shape[0]):  # branch-free, so that the loop vectorises
        v = x[k] * factor
        over = abs(v) > bound
        saturated += 1 if over else 0
        rounded += 1 if (not over and v != np.rint(v)) else 0
        out[k] = np.rint(min(max(v, -bound), bound))  # an integer: the same value in int64 or float32
    return saturated, rounded


def check_range(amax: float, where: str, what: str) -> float:
    """``amax`` (a calibrated ``max |x|``), refused naming the node when it is NaN or infinite: no
    scale ``amax / qmax`` exists for it (NaN would pass ``amax > 0`` as "no range" and give scale 1,
    inf a scale of inf, and every rescale downstream NaN)."""
    from ...errors import BackendError

    if not np.isfinite(amax):
        raise BackendError(
            f"node {where!r}: {what} reached {amax} in the fp32 calibration run, so it has no fixed-point scale. "
            "The float model overflows there: check the node and those before it (a time constant below one "
            "step, beta = 1 - 1/tau < 0, makes a state grow without bound; `talon lint` names it) and the "
            "calibration inputs (they must be finite)"
        )
    return amax


def check_int(bound: float, where: str, what: str) -> None:
    """Refuse a datapath whose intermediates could overflow int64."""
    from ...errors import BackendError

    if bound >= INT_SAFE:
        raise BackendError(
            f"node {where!r}: {what} could reach {bound:.3g}, beyond the int64 datapath; "
            "lower accumulator_bits / state_bits / coefficient_bits in the CompileConfig"
        )


def int_matmul(x: np.ndarray, w_t: np.ndarray, exact_in_float: bool) -> np.ndarray:
    """Exact integer ``x @ w_t``: float64 BLAS when every partial sum is below 2**53, else int64."""
    if exact_in_float:
        return np.rint(np.matmul(x.astype(np.float64), w_t.astype(np.float64))).astype(INT)
    return np.matmul(x.astype(INT), w_t.astype(INT))
