"""Lint: find graphs that are broken, will not behave, or will trip up tools.

``lint_graph`` runs every check of :data:`CATALOGUE` (documented in ``docs/lint.md``) on the graph
and, recursively, on its subgraphs (nodes named ``outer.inner``). It works on graphs built with
``Graph(..., validate=False)`` too, reporting what validation would refuse instead of raising.
Each code has one severity: errors make ``is_valid`` False; ``strict=True`` promotes warnings to
errors; infos never fail.
"""

from __future__ import annotations

import keyword
import math
import os
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from talon import ir
from talon.ir import Graph, Node
from talon.ir.graph import SEP, reachable, walk
from talon.ir.names import attribute_base, is_module_path

from ._common import GraphLike, load_graph, shallow_copy_graph
from .detection_rules import lint_detection

__all__ = ["CATALOGUE", "HIGH_TAU_STEPS", "LARGE_MODEL_PARAMS", "LintIssue", "LintResult", "Severity", "lint_graph"]

LARGE_MODEL_PARAMS = 10_000_000
"""``LARGE_MODEL`` fires above this many parameters (array elements, neuron parameters included)."""
HIGH_TAU_STEPS = 1000.0
"""``LIF_HIGH_TAU`` fires for a finite time constant above this many timesteps (beta > 0.999)."""


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Rule:
    code: str
    severity: Severity
    category: str
    summary: str


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO
CATALOGUE: dict[str, Rule] = {
    r.code: r
    for r in (
        Rule("EMPTY_GRAPH", _E, "structure", "the graph has no nodes"),
        Rule("DANGLING_EDGE", _E, "structure", "an edge names a node the graph does not have"),
        Rule("SELF_LOOP", _W, "structure", "an edge from a node to itself (a one-step-delayed self-connection)"),
        Rule("NO_INPUT", _E, "structure", "the graph has no Input node"),
        Rule("NO_OUTPUT", _E, "structure", "the graph has no Output node"),
        Rule("UNREACHABLE", _W, "structure", "no path from any Input reaches the node"),
        Rule("DEAD_END", _W, "structure", "no path from the node reaches any Output (its result is unused)"),
        Rule("OUTPUT_FAN_IN", _I, "structure", "an Output node sums several incoming edges"),
        Rule("BOUNDARY_EDGE", _E, "arity", "an edge enters an Input or leaves an Output"),
        Rule("SKIP_ARITY", _E, "arity", "a passthrough Skip without exactly one input"),
        Rule("SKIP_SINGLE_INPUT", _W, "arity", "a residual or concatenating Skip with a single input"),
        Rule("CONCAT_ARITY", _E, "arity", "a Concat whose num_inputs differs from its incoming edges"),
        Rule("CONCAT_SINGLE_INPUT", _W, "arity", "a Concat with a single input"),
        Rule("SPLIT_ARITY", _E, "arity", "a ChannelSplit whose sections differ from its outgoing edges"),
        Rule("SUBGRAPH_PORTS", _E, "arity", "a subgraph used as a node without exactly one Input and one Output"),
        Rule("BAD_ARITY", _E, "arity", "any other node refuses its number of incoming or outgoing edges"),
        Rule("SHAPE_MISMATCH", _E, "shapes", "shapes along the edges do not fit a node's parameters"),
        Rule("PARAM_NOT_FINITE", _E, "parameters", "an array parameter holds NaN or infinity (tau may be +inf)"),
        Rule("THRESHOLD_NONPOSITIVE", _E, "neurons", "a spiking neuron with v_threshold <= 0"),
        Rule("TAU_BELOW_ONE_STEP", _E, "neurons", "a time constant below one timestep (beta = 1 - 1/tau < 0)"),
        Rule("BETA_ZERO", _W, "neurons", "a time constant of exactly one timestep (beta = 0: no memory)"),
        Rule("LIF_HIGH_TAU", _W, "neurons", f"a finite time constant above {HIGH_TAU_STEPS:g} timesteps"),
        Rule("NO_LEAK", _I, "neurons", "an infinite time constant (beta = 1: no leak)"),
        Rule("V_RESET_ABOVE_THRESHOLD", _W, "neurons", "a reset-to-value neuron whose v_reset reaches the threshold"),
        Rule("ZERO_INPUT_GAIN", _W, "neurons", "a neuron whose input gain (r or w_in) is zero"),
        Rule("QUANT_HINT_RANGE", _E, "quantization", "weight/accumulator bits or recorded quantization out of range"),
        Rule("ACCUMULATOR_NARROW", _I, "quantization", "a SpikingAffine accumulator that can overflow"),
        Rule("PYTHON_KEYWORD", _W, "naming", "a node name that is a Python keyword"),
        Rule("INVALID_NAME", _W, "naming", "a node name that is not a Python identifier"),
        Rule("PATH_COLLISION", _E, "naming", "two nodes with one path once subgraphs are inlined ('rec.neuron')"),
        Rule("LARGE_MODEL", _W, "size", f"more than {LARGE_MODEL_PARAMS:,} parameters"),
        Rule("DECODE_MISMATCH", _E, "detection", "a DFLDecode reg_max or Dist2BBox stride differs from its SDDetect"),
        Rule("NMS_THRESHOLD_RANGE", _W, "detection", "an NMS score or IoU threshold outside [0, 1]"),
    )
}


@dataclass(frozen=True)
class LintIssue:
    """One finding: ``severity``, ``code`` (see :data:`CATALOGUE`), ``message``, the qualified
    ``node`` name (None for graph-level findings) and a ``suggestion`` (or None)."""

    severity: Severity
    code: str
    message: str
    node: str | None = None
    suggestion: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "node": self.node,
            "suggestion": self.suggestion,
        }


@dataclass
class LintResult:
    """The issues of :func:`lint_graph`, in check order. ``is_valid`` means no errors."""

    issues: list[LintIssue] = field(default_factory=list)
    strict: bool = False

    def _of(self, severity: Severity) -> list[LintIssue]:
        return [i for i in self.issues if i.severity is severity]

    @property
    def errors(self) -> list[LintIssue]:
        return self._of(Severity.ERROR)

    @property
    def warnings(self) -> list[LintIssue]:
        return self._of(Severity.WARNING)

    @property
    def infos(self) -> list[LintIssue]:
        return self._of(Severity.INFO)

    @property
    def is_valid(self) -> bool:
        return not self.errors

    @property
    def codes(self) -> list[str]:
        return [i.code for i in self.issues]

    def to_dict(self) -> dict[str, Any]:
        return {
            "is_valid": self.is_valid,
            "strict": self.strict,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "infos": len(self.infos),
            "issues": [i.to_dict() for i in self.issues],
        }


class _Linter:
    def __init__(self, high_tau: float, validated: bool):
        self.issues: list[LintIssue] = []
        self.high_tau = high_tau
        # True for a graph ir.read has just built (it validated every level) that nobody else holds:
        # shape inference on a copy would pass, so it is not repeated
        self.validated = validated
        self.paths: set[str] = set()  # qualified names seen: engines inline subgraphs under these paths

    def add(self, code: str, message: str, node: str | None = None, suggestion: str | None = None) -> None:
        self.issues.append(LintIssue(CATALOGUE[code].severity, code, message, node, suggestion))

    # ---- one graph level ----------------------------------------------------------------------

    def graph(self, graph: Graph, prefix: str, top: bool) -> None:
        where = f"subgraph '{prefix[:-1]}'" if prefix else "the graph"
        if not graph.nodes:
            self.add("EMPTY_GRAPH", f"{where.capitalize()} has no nodes", prefix[:-1] or None)
            return
        q = {name: f"{prefix}{name}" for name in graph.nodes}
        edges = []
        for s, d in graph.edges:
            missing = [e for e in (s, d) if e not in graph.nodes]
            if missing:
                self.add(
                    "DANGLING_EDGE",
                    f"Edge ({s!r}, {d!r}) in {where} refers to unknown node {missing[0]!r}",
                    suggestion="add the node or remove the edge",
                )
                continue
            edges.append((s, d))
            if s == d:
                self.add(
                    "SELF_LOOP",
                    f"Node '{q[s]}' feeds itself (its previous step's output is added to its input)",
                    q[s],
                    "put a weight node (Linear/Affine) on the feedback path if a recurrent connection is meant",
                )
        inputs = [n for n, node in graph.nodes.items() if isinstance(node, ir.Input)]
        outputs = [n for n, node in graph.nodes.items() if isinstance(node, ir.Output)]
        if top and not inputs:
            self.add("NO_INPUT", "The graph has no Input node", suggestion="add an ir.Input with the input shape")
        if top and not outputs:
            self.add("NO_OUTPUT", "The graph has no Output node", suggestion="add an ir.Output fed by the last layer")
        arity_ok = self.arity(graph, edges, q)
        self.reachability(graph, edges, inputs, outputs, q)
        for name, node in graph.nodes.items():
            if isinstance(node, Graph):
                self.graph(node, f"{q[name]}{SEP}", top=False)
        if arity_ok and len(edges) == len(graph.edges):
            self.shapes(graph, prefix)
        for name, node in graph.nodes.items():
            self.name(name, q[name])
            if not isinstance(node, Graph):
                self.node(node, q[name])
        lint_detection(self, graph, q)

    def arity(self, graph: Graph, edges: list[tuple[str, str]], q: dict[str, str]) -> bool:
        n_in = dict.fromkeys(graph.nodes, 0)
        n_out = dict.fromkeys(graph.nodes, 0)
        for s, d in edges:
            n_out[s] += 1
            n_in[d] += 1
        ok = True
        for name, node in graph.nodes.items():
            problem = node.arity_error(n_in[name], n_out[name])
            if problem:
                ok = False
                self.add(_arity_code(node), f"Node '{q[name]}': {problem}", q[name])
            elif isinstance(node, ir.Skip) and node.skip_type is not ir.SkipType.PASSTHROUGH and n_in[name] == 1:
                self.add(
                    "SKIP_SINGLE_INPUT",
                    f"Node '{q[name]}' is a {node.skip_type.value} Skip with a single input (an identity)",
                    q[name],
                    "connect the skip branch, or use skip_type='passthrough' for an identity",
                )
            elif isinstance(node, ir.Concat) and n_in[name] == 1:
                self.add(
                    "CONCAT_SINGLE_INPUT",
                    f"Node '{q[name]}' concatenates a single input (an identity)",
                    q[name],
                    "connect the other branches or remove the Concat",
                )
            if isinstance(node, ir.Output) and n_in[name] > 1:
                self.add("OUTPUT_FAN_IN", f"Output '{q[name]}' sums its {n_in[name]} incoming edges", q[name])
        return ok

    def reachability(
        self,
        graph: Graph,
        edges: list[tuple[str, str]],
        inputs: list[str],
        outputs: list[str],
        q: dict[str, str],
    ) -> None:
        forward = reachable(edges, inputs) if inputs else set(graph.nodes)
        backward = reachable(edges, outputs, reverse=True) if outputs else set(graph.nodes)
        for name, node in graph.nodes.items():
            if name not in forward:
                unknown = " (its shapes cannot be inferred)" if node.output_type is None else ""
                self.add(
                    "UNREACHABLE",
                    f"Node '{q[name]}' is not reachable from any Input{unknown}",
                    q[name],
                    "connect it to the graph or remove it (sdk.prune_disconnected)",
                )
            elif name not in backward:
                what = "Input" if isinstance(node, ir.Input) else "Node"
                self.add(
                    "DEAD_END",
                    f"{what} '{q[name]}' does not reach any Output: its result is unused",
                    q[name],
                    "connect it to an Output or remove it (sdk.prune_disconnected)",
                )

    def shapes(self, graph: Graph, prefix: str) -> None:
        if self.validated:
            return
        copy = shallow_copy_graph(graph)
        try:
            copy.validate()
        except ir.GraphValidationError as exc:
            text = str(exc)
            match = re.match(r"node '([^']+)'", text)
            node = f"{prefix}{match.group(1)}" if match else None
            where = f" in subgraph '{prefix[:-1]}'" if prefix else ""
            self.add("SHAPE_MISMATCH", f"Shape inference fails{where}: {text}", node)

    # ---- one node -------------------------------------------------------------------------------

    def name(self, name: str, qualified: str) -> None:
        if qualified in self.paths:
            self.add(
                "PATH_COLLISION",
                f"Node path '{qualified}' names two nodes once subgraphs are inlined (a node name with a '.' "
                "collides with a subgraph's node); the CPU backend and the mapper refuse the graph",
                qualified,
                "rename the node whose name contains the '.'",
            )
        self.paths.add(qualified)
        if keyword.iskeyword(name):
            self.add(
                "PYTHON_KEYWORD",
                f"Node name '{name}' is a Python keyword",
                qualified,
                f"rename it (e.g. '{name}_'): PyTorch module attributes cannot be keywords",
            )
        elif not is_module_path(name):  # fc1, 0, block.0: the module paths to_ir names nodes after
            self.add(
                "INVALID_NAME",
                f"Node name '{name}' is not an identifier or module path (such as 'fc1', '0', 'block.0')",
                qualified,
                f"rename it (e.g. '{attribute_base(name)}', the attribute the PyTorch executor gives it)",
            )

    def node(self, node: Node, q: str) -> None:
        self.finite(node, q)
        if isinstance(node, (ir.LIF, ir.IF, ir.CubaLIF)):
            self.spiking(node, q)
        for tau_field in ("tau", "tau_mem", "tau_syn"):
            if isinstance(node, (ir.LIF, ir.LI, ir.CubaLIF, ir.CubaLI)) and hasattr(node, tau_field):
                self.tau(np.asarray(getattr(node, tau_field), dtype=np.float64), tau_field, q)
        if isinstance(node, (ir.LIF, ir.IF, ir.CubaLIF, ir.LI, ir.CubaLI, ir.Integrator)):
            for gain in ("r", "w_in"):
                value = getattr(node, gain, None)
                if value is not None and np.any(np.asarray(value) == 0):
                    count = int(np.count_nonzero(np.asarray(value) == 0))
                    self.add(
                        "ZERO_INPUT_GAIN",
                        f"Node '{q}' has {gain} = 0 for {count} of {np.asarray(value).size} values: "
                        "those neurons ignore their input",
                        q,
                        f"set {gain} > 0 (snnTorch's convention is r = tau)",
                    )
        self.quantization(node, q)

    def finite(self, node: Node, q: str) -> None:
        bad = ir.non_finite_fields(node)  # the rule every engine refuses by (talon.ir.finite)
        if bad:
            self.add(
                "PARAM_NOT_FINITE",
                f"Node '{q}' has NaN or infinite values in {', '.join(bad)}",
                q,
                "fix the exported values; only time constants may be +inf (no leak)",
            )

    def spiking(self, node: Node, q: str) -> None:
        theta = np.asarray(node.v_threshold, dtype=np.float64)
        low = theta <= 0
        if low.any():
            self.add(
                "THRESHOLD_NONPOSITIVE",
                f"Node '{q}' has v_threshold <= 0 for {int(low.sum())} of {theta.size} neurons "
                f"(min {theta.min():g}): it fires at rest or on any positive input, and a subtract "
                "reset raises v instead of lowering it",
                q,
                "use a positive v_threshold",
            )
        if node.reset_mode is ir.ResetMode.VALUE and node.v_reset is not None:
            try:
                reset, th = np.broadcast_arrays(np.asarray(node.v_reset, dtype=np.float64), theta)
            except ValueError:
                return
            above = (reset >= th if node.comparison is ir.Comparison.GE else reset > th) & (th > 0)
            if above.any():
                self.add(
                    "V_RESET_ABOVE_THRESHOLD",
                    f"Node '{q}' resets v to v_reset >= v_threshold for {int(above.sum())} neurons: "
                    "after one spike they may fire on every step",
                    q,
                    "use v_reset below v_threshold",
                )

    def tau(self, tau: np.ndarray, name: str, q: str) -> None:
        finite = tau[np.isfinite(tau)]
        below = finite[finite < 1]
        if below.size:
            t = float(below.min())
            self.add(
                "TAU_BELOW_ONE_STEP",
                f"Node '{q}' has {name}={t:g} < 1 timestep: beta = 1 - 1/{name} = {1 - 1 / t:g} < 0, "
                "so the state flips sign every step",
                q,
                "talon time constants are in timesteps (beta = 1 - 1/tau); convert seconds with tau / dt",
            )
        if np.any(finite == 1):
            self.add(
                "BETA_ZERO",
                f"Node '{q}' has {name}=1 timestep: beta = 0, the state keeps no memory of the previous step",
                q,
                "use a time constant > 1 timestep unless a memoryless neuron is intended",
            )
        high = finite[finite > self.high_tau]
        if high.size:
            t = float(high.max())
            self.add(
                "LIF_HIGH_TAU",
                f"Node '{q}' has high {name}={t:g} (beta = {1 - 1 / t:.6f}): the leak is negligible",
                q,
                "check the time constant is in timesteps, not in seconds x 1e4 or similar",
            )
        if np.isinf(tau).any():
            self.add(
                "NO_LEAK",
                f"Node '{q}' has {name}=inf: beta = 1, the state never decays",
                q,
                "IF / Integrator state this directly" if name == "tau" else None,
            )

    def quantization(self, node: Node, q: str) -> None:
        if isinstance(node, ir.SpikingAffine):
            wb, ab = node.weight_bits, node.accumulator_bits
            if not (_int_in(wb, 1, 32) and _int_in(ab, 1, 64) and ab >= wb):
                self.add(
                    "QUANT_HINT_RANGE",
                    f"Node '{q}' has weight_bits={wb!r}, accumulator_bits={ab!r}: need 1 <= weight_bits <= 32, "
                    "weight_bits <= accumulator_bits <= 64",
                    q,
                )
            elif node.spike_mode is ir.SpikeMode.BINARY:
                fan_in = int(node.weight.shape[1])
                needed = wb + math.ceil(math.log2(fan_in)) if fan_in > 1 else wb
                if ab < needed:
                    self.add(
                        "ACCUMULATOR_NARROW",
                        f"Node '{q}' sums {fan_in} {wb}-bit weights into a {ab}-bit accumulator: "
                        f"the worst case needs {needed} bits",
                        q,
                        f"use accumulator_bits >= {needed}, or check the activity is sparse enough",
                    )
        record = node.metadata.get("quantization") if isinstance(node.metadata, dict) else None
        if isinstance(record, dict) and "bits" in record and not _int_in(record["bits"], 2, 32):
            self.add(
                "QUANT_HINT_RANGE",
                f"Node '{q}' records quantization bits={record['bits']!r}: symmetric quantization needs 2..32 bits",
                q,
            )


def _int_in(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and lo <= value <= hi


def _arity_code(node: Node) -> str:
    if isinstance(node, (ir.Input, ir.Output)):
        return "BOUNDARY_EDGE"
    if isinstance(node, ir.Skip):
        return "SKIP_ARITY"
    if isinstance(node, ir.Concat):
        return "CONCAT_ARITY"
    if isinstance(node, ir.ChannelSplit):
        return "SPLIT_ARITY"
    if isinstance(node, Graph):
        return "SUBGRAPH_PORTS"
    return "BAD_ARITY"


def lint_graph(
    graph: GraphLike,
    strict: bool = False,
    *,
    large_model_params: int = LARGE_MODEL_PARAMS,
    high_tau: float = HIGH_TAU_STEPS,
) -> LintResult:
    """Check a graph (or ``.t1c`` file) against :data:`CATALOGUE`; ``strict`` makes warnings errors.

    The thresholds of ``LARGE_MODEL`` and ``LIF_HIGH_TAU`` can be changed with
    ``large_model_params`` and ``high_tau`` (timesteps). A path is read with ``ir.read``, which
    validates every level, so shapes are not inferred again; a Graph (which may have changed since
    it was validated) has its shapes inferred again on a copy.
    """
    return _lint(load_graph(graph), not isinstance(graph, Graph), strict, large_model_params, high_tau)


def lint_file(path: str | os.PathLike, strict: bool = False, **thresholds: Any) -> tuple[Graph, LintResult]:
    """Read ``path`` (``ir.read`` validates it) and lint it: the graph and :func:`lint_graph`'s result."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be the path of a .t1c file, got {type(path).__name__}")
    graph = load_graph(path)
    return graph, _lint(graph, True, strict, **thresholds)


def _lint(
    graph: Graph,
    validated: bool,
    strict: bool,
    large_model_params: int = LARGE_MODEL_PARAMS,
    high_tau: float = HIGH_TAU_STEPS,
) -> LintResult:
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be a bool, got {type(strict).__name__}")
    if not high_tau > 1:
        raise ValueError(f"high_tau must be > 1 timestep, got {high_tau!r}")
    linter = _Linter(float(high_tau), validated)
    linter.graph(graph, "", top=True)
    # count_node's params rule (every array element), without the rest of its counts
    params = sum(int(a.size) for _, node, _ in walk(graph) for a in node.arrays().values())
    if params > large_model_params:
        linter.add(
            "LARGE_MODEL",
            f"Graph has {params:,} parameters",
            suggestion="consider pruning or quantizing (sdk.quantize_weights) before deployment",
        )
    issues = linter.issues
    if strict:
        issues = [
            LintIssue(Severity.ERROR, i.code, i.message, i.node, i.suggestion) if i.severity is Severity.WARNING else i
            for i in issues
        ]
    return LintResult(issues, strict)
