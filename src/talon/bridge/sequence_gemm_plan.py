"""Exact time-batched ``nn.Linear`` products for ``run_sequence``: the per-step sums, many steps per GEMM.

``run_sequence`` must give, bit for bit, ``addmm(bias, x[t], W.t())`` for every step ``t`` of
``B`` rows — what ``F.linear`` computes when the executor (or snnTorch's loop) steps. One GEMM on
all ``T·B`` rows does not: the BLAS sums an output's ``K`` products in an order that depends on
the number of rows and of threads. But the order for ``B`` rows is a fixed *summation tree* over
the ``K`` products (and the bias), and MKL's trees are made of a few *chains* — sequential
fused multiply-adds over a contiguous range of ``K`` — joined by single additions. On this
library, for example, ``[32, 784] @ [784, 2048]`` on two threads computes
``((b + S[0:196]) + S[196:392]) + (S[392:588] + S[588:784])`` (the two threads split ``K`` in
halves, each in two blocks), and on one thread ``((b + S[0:384]) + S[384:768]) + S[768:784]``.

A chain is what a GEMM whose ``K`` is one block computes for *any* row count, so the same tree
can be evaluated on many steps' rows at once: one GEMM per chain on ``c·B`` rows (``mm`` or
``addmm`` into an accumulator, which adds a chain to what the accumulator holds), and one
elementwise ``add_`` per joint of two composite subtrees — the weight is streamed once per
``c`` steps instead of once per step.

Nothing here is assumed about the BLAS. Per shape (rows ``B``, ``K``, ``N``, dtype, bias or not,
torch thread count, steps per chunk, input alignment) and at first use:

1. the tree is *measured* with the real per-step call (``discover_tree``): for a product ``i``
   set to ``+H`` and ``j`` to ``-H`` (``H`` large enough to absorb every partial sum of the
   other products, which are ones), the output is ``K`` minus the size of the smallest subtree
   holding both (the FPRev technique); one GEMM probes ``N`` pairs, one per output column, and
   the bias (``+H``) is located the same way;
2. the plan built from it is *verified*: on random data, ``c`` per-step ``addmm`` calls and the
   plan on their ``c·B`` rows must agree in every bit of every output.

Only a verified plan is used; a tree that is not made of contiguous chains, a probe whose rows
disagree, or any bit of difference in the verification leaves that shape on the per-step calls
(``plan_for`` returns ``None``). The guarantee is therefore the per-step contract itself; the speed
is the BLAS's: it holds where the library's trees are chains (MKL on x86, as measured in
``docs/benchmarks.md``).
"""

from __future__ import annotations

import dataclasses
import math
import threading

import torch

from . import sequence_workspace

_MAX_PROBE_CALLS = 512  # per shape; a tree needing more probes (tiny N, huge K) stays per-step
_MAX_K = 1 << 20  # the ones of a probe must sum exactly in float32


@dataclasses.dataclass(frozen=True)
class Chain:
    """Products ``start <= k < stop`` summed in one sequential chain from zero."""

    start: int
    stop: int


@dataclasses.dataclass(frozen=True)
class Spine:
    """``((parts[0] + parts[1]) + parts[2]) + ...``; ``parts[0]`` is a chain, the others a chain or a subtree."""

    parts: tuple[Chain | Spine, ...]

    @property
    def start(self) -> int:
        return self.parts[0].start

    @property
    def stop(self) -> int:
        return self.parts[-1].stop


@dataclasses.dataclass(frozen=True)
class Plan:
    """The summation tree of one per-step call and where its bias joins it: ``b + (the node
    covering products bias_start <= k < bias_stop)``, or no bias."""

    tree: Spine
    bias_range: tuple[int, int] | None


class _NotChains(Exception):
    """The measured tree is not made of contiguous chains (or the probes disagree)."""


# ---- measuring the tree ---------------------------------------------------------------------


class _Prober:
    """Runs the per-step call ``addmm(bias, x[B, K], W.t())`` on crafted inputs of ones.

    A probe of the pairs ``(i, j)`` for many ``j`` puts ``+H`` at product ``i`` of every output
    and ``-H`` at product ``j`` of one output per ``j``: along the output columns (``W[c, j] = -H``)
    or, when there are more rows than columns, along the rows (``x[m, j] = -H``), so one call
    probes ``max(B, N)`` pairs. Every output of the other axis must agree."""

    def __init__(self, rows: int, k: int, n: int, dtype: torch.dtype, has_bias: bool):
        self.rows, self.k, self.n, self.dtype, self.has_bias = rows, k, n, dtype, has_bias
        mantissa = {torch.float32: 24, torch.float64: 53}[dtype]
        self.big = 2.0 ** (mantissa + 2 + math.ceil(math.log2(k + 1)))  # ulp(big)/2 > k
        self.along_rows = rows > n
        self.calls = 0

    def _run(self, x: torch.Tensor, weight: torch.Tensor, bias_value: float) -> torch.Tensor:
        self.calls += 1
        if self.calls > _MAX_PROBE_CALLS:
            raise _NotChains("too many probe calls")
        if self.has_bias:
            out = torch.addmm(torch.full((self.n,), bias_value, dtype=self.dtype), x, weight.t())
        else:
            out = torch.mm(x, weight.t())
        if self.along_rows:
            out = out.t()
        if not bool((out == out[0]).all()):
            raise _NotChains("outputs of a probe disagree")
        return out[0]

    def subtree_sizes(self, i: int | None, js: range) -> dict[int, int]:
        """For each ``j`` in ``js``: how many products the smallest subtree holding product ``j``
        and product ``i`` (the bias when ``i`` is None) sums."""
        sizes = {}
        js = list(js)
        width = self.rows if self.along_rows else self.n
        for chunk_start in range(0, len(js), width):
            chunk = js[chunk_start : chunk_start + width]
            x = torch.ones(self.rows, self.k, dtype=self.dtype)
            weight = torch.ones(self.n, self.k, dtype=self.dtype)
            probed = x if self.along_rows else weight  # the axis that varies j
            if i is not None:
                weight[:, i] = self.big
            probed[torch.arange(len(chunk)), torch.tensor(chunk)] = -self.big
            if not self.has_bias and i is None:
                raise AssertionError("a bias probe needs a bias")
            out = self._run(x, weight, self.big if i is None else 0.0)
            for c, j in enumerate(chunk):
                sizes[j] = self.k - int(out[c])
        return sizes


def _decompose(prober: _Prober, start: int, stop: int) -> Spine:
    """The tree of the node summing exactly the products ``start <= k < stop``."""
    if stop - start == 1:
        return Spine((Chain(start, stop),))
    sizes = prober.subtree_sizes(start, range(start + 1, stop))
    if any(not 2 <= s <= stop - start for s in sizes.values()):
        raise _NotChains(f"subtree sizes out of range in [{start}, {stop})")
    chain_stop = start + 1  # the chain from `start`: j joins at size j - start + 1
    while chain_stop < stop and sizes[chain_stop] == chain_stop - start + 1:
        chain_stop += 1
    parts: list[Chain | Spine] = [Chain(start, chain_stop)]
    covered = chain_stop
    while covered < stop:  # each further node on the spine adds one contiguous sibling
        size = sizes[covered]
        sibling_stop = start + size
        if sibling_stop > stop or any(sizes[j] != size for j in range(covered, sibling_stop)):
            raise _NotChains(f"non-contiguous subtree at product {covered}")
        sibling = _decompose(prober, covered, sibling_stop)
        parts.append(sibling.parts[0] if len(sibling.parts) == 1 else sibling)
        covered = sibling_stop
    return Spine(tuple(parts))


def _node_ranges(tree: Spine) -> set[tuple[int, int]]:
    """The product ranges of every node of the tree (spine prefixes and their parts)."""
    ranges = set()
    for part in tree.parts:
        ranges.add((tree.start, part.stop))
        ranges.add((part.start, part.stop))
        if isinstance(part, Spine):
            ranges |= _node_ranges(part)
    return ranges


def discover_tree(rows: int, k: int, n: int, dtype: torch.dtype, has_bias: bool) -> Plan:
    """Measure the summation tree of ``addmm(bias, x[rows, k], W[n, k].t())`` (``mm`` without a
    bias) at the current torch thread count; raises ``_NotChains`` when it is not made of chains."""
    prober = _Prober(rows, k, n, dtype, has_bias)
    tree = _decompose(prober, 0, k)
    if not has_bias:
        return Plan(tree, None)
    sizes = prober.subtree_sizes(None, range(k))
    smallest = min(sizes.values())
    joined = sorted(j for j, s in sizes.items() if s == smallest)
    bias_range = (joined[0], joined[-1] + 1)
    if len(joined) != smallest or bias_range[1] - bias_range[0] != smallest or bias_range not in _node_ranges(tree):
        raise _NotChains("the bias does not join one node of the tree")
    return Plan(tree, bias_range)


# ---- evaluating a plan on many steps' rows --------------------------------------------------


def evaluate(plan: Plan, x: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor) -> None:
    """The plan's tree on every row of ``x[M, K]`` into ``out[M, N]`` (contiguous)."""
    _evaluate_spine(plan.tree, x, weight_t, bias, plan.bias_range, out)


def _evaluate_spine(spine: Spine, x, weight_t, bias, bias_range, out) -> None:
    first = spine.parts[0]
    if bias_range == (first.start, first.stop):
        torch.addmm(bias, x[:, first.start : first.stop], weight_t[first.start : first.stop], out=out)
    else:
        torch.mm(x[:, first.start : first.stop], weight_t[first.start : first.stop], out=out)
    for part in spine.parts[1:]:
        if isinstance(part, Chain) and bias_range != (part.start, part.stop):
            out.addmm_(x[:, part.start : part.stop], weight_t[part.start : part.stop])
        else:
            sub = part if isinstance(part, Spine) else Spine((part,))
            partial = sequence_workspace.empty(tuple(out.shape), out.dtype)
            _evaluate_spine(sub, x, weight_t, bias, bias_range, partial)
            out.add_(partial)
            sequence_workspace.release(partial)
        if bias_range == (spine.start, part.stop):
            out.add_(bias)


# ---- plans per shape, measured and verified at first use ------------------------------------

_TREES: dict[tuple, Plan | None] = {}  # per-step shape -> measured tree (None: not chains)
_PLANS: dict[tuple, Plan | None] = {}  # ... and steps per chunk, alignment -> verified plan
_LOCK = threading.Lock()
_ALIGN = 64


def plan_for(rows: int, weight: torch.Tensor, bias: torch.Tensor | None, steps: int, x_address: int) -> Plan | None:
    """A verified plan for ``steps`` per-step calls of ``rows`` rows on ``weight`` at once, or
    None (use the per-step calls). Measured and verified once per shape, dtype, bias presence,
    torch thread count, ``steps`` and the alignment of the input (at ``x_address``) and weight."""
    n, k = weight.shape
    shape = (rows, k, n, weight.dtype, bias is not None, torch.get_num_threads())
    alignments = (x_address % _ALIGN, weight.data_ptr() % _ALIGN)
    key = (*shape, steps, alignments)
    with _LOCK:
        if key not in _PLANS:
            if shape not in _TREES:
                _TREES[shape] = _measure(*shape[:5])
            tree = _TREES[shape]
            _PLANS[key] = tree if tree is not None and verify(tree, *shape[:5], steps, alignments) else None
        return _PLANS[key]


def clear_plans() -> None:
    """Forget every measured plan (they are measured again at next use)."""
    with _LOCK:
        _TREES.clear()
        _PLANS.clear()


def _measure(rows, k, n, dtype, has_bias) -> Plan | None:
    if k > _MAX_K or dtype not in (torch.float32, torch.float64) or rows < 1 or n < 1 or k < 1:
        return None
    try:
        return discover_tree(rows, k, n, dtype, has_bias)
    except _NotChains:
        return None


def verify(
    plan: Plan, rows: int, k: int, n: int, dtype, has_bias: bool, steps: int, alignments: tuple[int, int] = (0, 0)
) -> bool:
    """``plan`` on ``steps·rows`` random rows equals ``steps`` per-step ``addmm`` calls bit for
    bit, with the input and the weight at the given byte offsets modulo 64."""
    generator = torch.Generator().manual_seed(0x7A10)
    buffers = []  # from the workspace (no page faults on fresh memory), given back at the end
    x = _aligned((steps, rows, k), dtype, alignments[0], buffers).uniform_(-1, 1, generator=generator)
    weight = _aligned((n, k), dtype, alignments[1], buffers).uniform_(-1, 1, generator=generator)
    bias = torch.empty(n, dtype=dtype).uniform_(-1, 1, generator=generator) if has_bias else None
    expected = sequence_workspace.empty((steps, rows, n), dtype)
    for t in range(steps):
        if bias is None:
            torch.mm(x[t], weight.t(), out=expected[t])
        else:
            torch.addmm(bias, x[t], weight.t(), out=expected[t])
    got = sequence_workspace.empty((steps, rows, n), dtype)
    evaluate(plan, x.view(steps * rows, k), weight.t(), bias, got.view(steps * rows, n))
    bits = torch.int32 if dtype == torch.float32 else torch.int64
    same = torch.equal(got.view(-1).view(bits), expected.view(-1).view(bits))
    del x, weight
    for buffer in (*buffers, expected, got):
        sequence_workspace.release(buffer)
    return same


def _aligned(shape: tuple[int, ...], dtype: torch.dtype, misalign: int, buffers: list) -> torch.Tensor:
    """An uninitialised contiguous tensor whose data starts ``misalign`` bytes past a 64-byte
    boundary, a view of a workspace buffer appended to ``buffers``."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    storage = sequence_workspace.empty((math.prod(shape) + _ALIGN // itemsize,), dtype)
    buffers.append(storage)
    offset = ((misalign - storage.data_ptr()) % _ALIGN) // itemsize
    return storage[offset : offset + math.prod(shape)].view(shape)
