"""Which values of a step can never be a multiplication XLA fuses into the sum that reads them.

XLA on CPU contracts ``a*b + c`` into one fused multiply-add, so every sum of the engine rounds
its terms on their own first (:func:`.neurons.rounded`: ``t + 0`` behind a barrier, an
``fma(a, b, 0)`` when ``t`` is a product). A term whose last operation is not a multiplication —
a sum (``dot + bias``), a matrix product kept as a dot, a spike, a membrane, a value read from the
loop's carry — cannot be contracted, and ``t + 0`` leaves it as it is except that it turns
``-0.0`` into ``+0.0``. So a sum needs ``+ 0`` only on its products, and on one term so that a
``-0.0`` never reaches its result (:func:`.layers.merge`, :func:`.neurons._decay`): the same bits
with one elementwise add less per term.

:func:`plain_values` lists the nodes whose values are such terms; anything it does not know is
treated as a possible product (rounded as before).
"""

from __future__ import annotations

import numpy as np

from ... import ir
from . import layers
from .plan import BOUNDARY, DELAY, INPUT, NEURON, Plan

# value-preserving nodes: their output is a product only when their input is (a pool of one
# element, a reshape); for several inputs the merged input is a sum
_PASSING = (ir.Flatten, ir.SumPool2d, ir.MaxPool2d)


def plain_values(plan: Plan) -> frozenset[str]:
    """The flat nodes whose per-step values are never a floating-point multiplication:

    * Inputs (read from memory) and neurons (spikes are compared values, membranes end in a sum);
    * Affine, Linear and convolutions summing more than one product per output (a dot ends in
      a sum; XLA rewrites a dot of one term into a multiplication, and folds a bias of
      constant zeros when the parameters are constants of the caller's ``jit``);
    * Boundaries, Delays and Flatten / sum / max pools whose input is one of these (or a sum of
      several edges).
    """
    plain: set[str] = set()
    for path in plan.order:
        flat = plan.nodes[path]
        node = flat.node
        sources = [e.src for e in flat.inputs]
        if flat.kind in (INPUT, NEURON):
            ok = True
        elif isinstance(node, (ir.Affine, ir.Linear)) or layers.is_convolution(node):
            ok = _terms(node.weight) > 1
        elif flat.kind in (BOUNDARY, DELAY) or isinstance(node, _PASSING):
            ok = len(sources) > 1 or (len(sources) == 1 and edge_is_plain(flat.inputs[0], plain))
        else:
            ok = False
        if ok:
            plain.add(path)
    return frozenset(plain)


def _terms(weight) -> int:
    """Products summed per output: the input features of a dense weight ``(out, in)``, the
    input channels (per group) times the kernel size of a convolution's ``(out, in, *k)``."""
    return int(np.prod(np.shape(weight)[1:], dtype=np.int64))


def edge_is_plain(edge, plain: set[str] | frozenset[str]) -> bool:
    """Whether the value on ``edge`` is never a multiplication (see :func:`plain_values`)."""
    return edge.src in plain and edge.port is None
