"""The IR graph an exporter route builds: nodes and edges in the order they are made, with the
IR's multi-output routing rule (a ChannelSplit sends section *i* along its *i*-th outgoing edge)."""

from __future__ import annotations

from collections.abc import Sequence

from talon import ir


class GraphBuilder:
    """Nodes and edges under construction, with the multi-output routing rule of the IR."""

    def __init__(self):
        self.nodes: dict[str, ir.Node] = {}
        self.edges: list[tuple[str, str]] = []

    def name(self, wanted: str) -> str:
        out, k = wanted, 1
        while out in self.nodes:
            out, k = f"{wanted}_{k}", k + 1
        return out

    def add(self, wanted: str, node: ir.Node, sources: Sequence[str] = ()) -> str:
        name = self.name(wanted)
        self.nodes[name] = node
        self.edges.extend((s, name) for s in sources)
        return name

    def add_multi_output(self, wanted: str, node: ir.Node, source: str, n: int) -> list[str]:
        """A multi-output node followed by one passthrough Skip per output (removed later where
        the consumer has a single input), so edge order never depends on consumer order."""
        name = self.add(wanted, node, [source])
        return [self.add(f"{name}_out{k}", ir.Skip("passthrough"), [name]) for k in range(n)]

    def graph(self, metadata: dict) -> ir.Graph:
        self._drop_section_skips()
        return ir.Graph(self.nodes, self.edges, metadata)

    def _drop_section_skips(self) -> None:
        for name in [n for n, node in self.nodes.items() if node.is_multi_output]:
            for k in range(len(self.nodes[name].split_sections)):
                skip = f"{name}_out{k}"
                outs = [i for i, (s, _) in enumerate(self.edges) if s == skip]
                if len(outs) != 1:
                    continue
                dst = self.edges[outs[0]][1]
                if sum(1 for _, d in self.edges if d == dst) != 1:
                    continue
                into = self.edges.index((name, skip))
                self.edges[into] = (name, dst)
                del self.edges[outs[0]]
                del self.nodes[skip]
