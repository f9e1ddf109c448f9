"""Lint rules of the ghost and detection primitives (hooked into ``talon.sdk.lint``).

``DECODE_MISMATCH`` when a DFLDecode's ``reg_max`` or a Dist2BBox's ``stride`` differs from the
SDDetect that feeds it (through Integrator, identity and DFLDecode nodes); ``NMS_THRESHOLD_RANGE``
when an NMS threshold lies outside ``[0, 1]``. The MAC counts are in
:mod:`talon.ir.counting.detection`.
"""

from __future__ import annotations

from talon import ir
from talon.ir import Graph

_PASS_THROUGH = (ir.Integrator, ir.Skip, ir.HybridRegion, ir.Dropout, ir.DFLDecode)


def _source_head(graph: Graph, name: str, incoming: dict[str, list[str]]) -> tuple[str, ir.SDDetect] | None:
    seen = set()
    while True:
        sources = incoming.get(name, [])
        if len(sources) != 1 or sources[0] in seen:
            return None
        name = sources[0]
        seen.add(name)
        node = graph.nodes[name]
        if isinstance(node, ir.SDDetect):
            return name, node
        if not isinstance(node, _PASS_THROUGH):
            return None


def lint_detection(linter, graph: Graph, q: dict[str, str]) -> None:
    """Add the detection findings of one graph level to ``linter`` (a ``talon.sdk.lint._Linter``)."""
    incoming: dict[str, list[str]] = {}
    for s, d in graph.edges:
        if s in graph.nodes and d in graph.nodes:
            incoming.setdefault(d, []).append(s)
    for name, node in graph.nodes.items():
        if isinstance(node, ir.NMS):
            for field in ("score_threshold", "iou_threshold"):
                value = getattr(node, field)
                if not 0.0 <= value <= 1.0:
                    linter.add("NMS_THRESHOLD_RANGE", f"Node '{q[name]}' has {field}={value:g}, outside [0, 1]",
                               q[name], "scores are sigmoid probabilities and IoU lies in [0, 1]")  # fmt: skip
        if not isinstance(node, (ir.DFLDecode, ir.Dist2BBox)):
            continue
        found = _source_head(graph, name, incoming)
        if found is None:
            continue
        head_name, head = found
        if isinstance(node, ir.DFLDecode) and node.reg_max != head.reg_max:
            linter.add("DECODE_MISMATCH", f"Node '{q[name]}' decodes reg_max={node.reg_max} but its head "
                       f"'{q[head_name]}' has reg_max={head.reg_max}", q[name], "use the head's reg_max")  # fmt: skip
        if isinstance(node, ir.Dist2BBox) and node.stride != head.stride:
            linter.add("DECODE_MISMATCH", f"Node '{q[name]}' uses stride={node.stride:g} but its head "
                       f"'{q[head_name]}' has stride={head.stride}", q[name], "use the head's stride")  # fmt: skip
