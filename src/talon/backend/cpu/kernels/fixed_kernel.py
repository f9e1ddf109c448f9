"""The base of the fixed-point kernels: the context they share and the fan-in merge.

A :class:`FixedKernel` is built from the formats of its incoming edges; its default merge sums
them at a common scale (the finest per element that keeps the worst-case sum within
``accumulator_bits``; in a feedback sum only the same-step edges choose it), saturating. The
kernels of the primitives are in :mod:`.fixed_ops` (docs/backend.md, "Fixed point").
"""

from __future__ import annotations

import numpy as np

from talon import ir

from ...config import FixedPointSpec
from ..formats.fixed_point import Multiplier, QFormat, check_int, check_range, qmax, saturate
from ..lowering.program import Op
from .kernel import StatelessKernel


class FixedContext:
    """What every fixed-point kernel needs: bit widths, weight scaling mode and the calibration."""

    def __init__(self, spec: FixedPointSpec, per_channel: bool, calibration) -> None:
        self.spec = spec
        self.per_channel = per_channel
        self.calibration = calibration

    def activation_scale(self, amax: float, where: str, what: str) -> float:
        """``amax / qmax(activation_bits)`` (1 when ``amax`` is 0); a non-finite ``amax`` is refused
        naming ``where``."""
        amax = check_range(amax, where, what)
        return amax / qmax(self.spec.activation_bits) if amax > 0 else 1.0


def common_scale(formats: list[QFormat], shape: tuple[int, ...]) -> np.ndarray:
    """The finest scale per element of several formats (the common scale of a sum)."""
    out = formats[0].full_scale(shape)
    for f in formats[1:]:
        out = np.minimum(out, f.full_scale(shape))
    return np.asarray(out)


class FixedKernel(StatelessKernel):
    """Base: merge = sum of the edges at a common scale (saturating); one output.

    Values are integers held in int64, or in float32 where their static bound is below ``2**24``
    (every such integer is exact in float32, so the value is the same; see :func:`.build.float32_storage`).
    A kernel whose ``reads_exact_float`` is false gets its inputs as int64 (the executor converts);
    ``float32_out_ok`` (set by the engine) says every reader of its outputs takes float32.
    """

    float32_out_ok = False

    @property
    def reads_exact_float(self) -> bool:
        return False

    def __init__(self, op: Op, ctx: FixedContext, in_formats: list[QFormat | None]) -> None:
        super().__init__(op)
        self.ctx = ctx
        self.spec = ctx.spec
        self.in_formats = in_formats
        self.in_shape = tuple(op.node.input_shape) if op.node.input_shape is not None else None
        self.out_formats: list[QFormat | None] = []
        self.setup(op.node)

    # ---- fan-in ---------------------------------------------------------------------------

    def setup_sum(self) -> QFormat | None:
        """Prepare the default merge; returns the merged format (None while an edge is unknown)."""
        fmts = self.in_formats
        self.multipliers: list[Multiplier] | None = None
        self.merge_bits = self.spec.accumulator_bits
        self.saturating = False
        known = [f for f in fmts if f is not None]
        if not known:
            return None
        if len(fmts) == 1:
            return fmts[0]
        delayed = [ref.delayed for ref in self.op.inputs]
        if any(delayed):
            # A feedback sum: its format must not depend on itself. The scale comes from the
            # same-step edges (the delayed ones are rescaled into it) and only saturation bounds it.
            same_step = [f for f, d in zip(fmts, delayed, strict=True) if f is not None and not d]
            target = common_scale(same_step or known, self.in_shape)
            self._rescale_to(target)
            return QFormat(target, qmax(self.merge_bits) + 1)
        if all(f.same(known[0]) for f in known):
            total = sum(f.bound for f in known)
            self.saturating = total > qmax(self.merge_bits)
            return QFormat(known[0].scale, min(total, qmax(self.merge_bits) + 1))
        # the finest scale at which the worst-case sum still fits in accumulator_bits
        worst = sum(f.full_scale(self.in_shape) * float(f.bound) for f in known)
        target = np.maximum(common_scale(known, self.in_shape), worst / qmax(self.merge_bits))
        bound = self._rescale_to(target)
        return QFormat(target, min(bound, qmax(self.merge_bits) + 1))

    def _rescale_to(self, target: np.ndarray) -> int:
        """Multipliers taking every edge to ``target``; returns a bound of their sum."""
        fmts = self.in_formats
        self.multipliers = [
            None if f is None else Multiplier.of(f.full_scale(self.in_shape) / target, self.spec.coefficient_bits)
            for f in fmts
        ]
        bound = 0
        for f, m in zip(fmts, self.multipliers, strict=True):
            if f is not None:
                check_int(float(f.bound) * m.max_abs, self.op.path, "rescaling a fan-in edge")
                bound += m.bound(f.bound)
        self.saturating = True
        return bound

    def merge(self, xs):
        if len(xs) == 1:
            return xs[0]
        if self.multipliers is None:
            total = xs[0]
            for x in xs[1:]:
                total = total + x
        else:
            total = self.multipliers[0].apply(xs[0])
            for m, x in zip(self.multipliers[1:], xs[1:], strict=True):
                total = total + m.apply(x)
        return saturate(total, self.merge_bits) if self.saturating else total

    def setup(self, node: ir.Node) -> None:
        self.out_formats = [self.setup_sum()]

    def forward(self, x):
        return [self.compute(x)]

    def compute(self, x):
        return x

    def describe(self):
        out = {"in_formats": [f.describe() if f else None for f in self.in_formats]}
        out["out_formats"] = [f.describe() if f else None for f in self.out_formats]
        return out
