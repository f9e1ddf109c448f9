"""Graphs for the viz tests and the viz benchmark: a residual/concat network with every pattern
the viewer folds, a recurrent one with a nested subgraph, a partitioned graph annotated by hand
following the mapping contract, and a deep residual graph of any size."""

from __future__ import annotations

import numpy as np

from talon import ir


def _w(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def residual_concat(seed: int = 0) -> ir.Graph:
    """Input[4,8,8] -> stem Conv2d(4->8) -> lif0
    -> RepConv  (rep3 3x3, rep1 1x1, identity -> rep_add Skip residual)
    -> SkipConnection (c1 -> relu -> c2 -> res_add, bypass from rep_add)
    -> SPPF (res_add -> p1 -> p2 -> p3 MaxPool 3x3 s1 p1; sppf_cat Concat of res_add,p1,p2,p3: 32 ch)
    -> SPP (sppf_cat -> mp5, mp9 MaxPool s1; ident passthrough Skip; spp_cat Skip concatenate: 96 ch)
    -> head Conv2d(96->2, 1x1) -> flat -> fc Affine(128->10) -> Output[10].
    """
    rng = np.random.default_rng(seed)
    nodes = {
        "input": ir.Input(np.array([4, 8, 8])),
        "stem": ir.Conv2d(_w(rng, 8, 4, 3, 3), _w(rng, 8), padding=1),
        "lif0": ir.LIF(tau=np.full(8, 4.0), r=4.0, v_threshold=np.full(8, 0.5)),
        "rep3": ir.Conv2d(_w(rng, 8, 8, 3, 3), _w(rng, 8), padding=1),
        "rep1": ir.Conv2d(_w(rng, 8, 8, 1, 1), _w(rng, 8)),
        "rep_add": ir.Skip(skip_type="residual"),
        "c1": ir.Conv2d(_w(rng, 8, 8, 3, 3), _w(rng, 8), padding=1),
        "relu": ir.ReLU(),
        "c2": ir.Conv2d(_w(rng, 8, 8, 3, 3), _w(rng, 8), padding=1),
        "res_add": ir.Skip(skip_type="residual"),
        "p1": ir.MaxPool2d(kernel_size=3, stride=1, padding=1),
        "p2": ir.MaxPool2d(kernel_size=3, stride=1, padding=1),
        "p3": ir.MaxPool2d(kernel_size=3, stride=1, padding=1),
        "sppf_cat": ir.Concat(num_inputs=4, dim=1),
        "mp5": ir.MaxPool2d(kernel_size=5, stride=1, padding=2),
        "mp9": ir.MaxPool2d(kernel_size=9, stride=1, padding=4),
        "ident": ir.Skip(skip_type="passthrough"),
        "spp_cat": ir.Skip(skip_type="concatenate"),
        "head": ir.Conv2d(_w(rng, 2, 96, 1, 1), _w(rng, 2)),
        "flat": ir.Flatten(),
        "fc": ir.Affine(_w(rng, 10, 128), _w(rng, 10)),
        "output": ir.Output(np.array([10])),
    }
    edges = [
        ("input", "stem"), ("stem", "lif0"),
        ("lif0", "rep3"), ("lif0", "rep1"), ("rep3", "rep_add"), ("rep1", "rep_add"), ("lif0", "rep_add"),
        ("rep_add", "c1"), ("c1", "relu"), ("relu", "c2"), ("c2", "res_add"), ("rep_add", "res_add"),
        ("res_add", "p1"), ("p1", "p2"), ("p2", "p3"),
        ("res_add", "sppf_cat"), ("p1", "sppf_cat"), ("p2", "sppf_cat"), ("p3", "sppf_cat"),
        ("sppf_cat", "mp5"), ("sppf_cat", "mp9"), ("sppf_cat", "ident"),
        ("ident", "spp_cat"), ("mp5", "spp_cat"), ("mp9", "spp_cat"),
        ("spp_cat", "head"), ("head", "flat"), ("flat", "fc"), ("fc", "output"),
    ]  # fmt: skip
    return ir.Graph(nodes, edges, metadata={"name": "residual_concat"})


def recurrent_nested(seed: int = 0) -> ir.Graph:
    """Input[3] -> fc_in Affine(3->5) -> lif CubaLIF(5) <-> w_rec Linear(5->5) (recurrent)
    -> rnn (subgraph: Input[5] -> inner_lif LIF(5) <-> inner_w Linear(5->5), -> Output[5])
    -> fc_out Affine(5->2) -> Output[2]."""
    rng = np.random.default_rng(seed)
    inner = ir.Graph(
        {
            "input": ir.Input(np.array([5])),
            "inner_lif": ir.LIF(tau=np.full(5, 3.0)),
            "inner_w": ir.Linear(_w(rng, 5, 5)),
            "output": ir.Output(np.array([5])),
        },
        [("input", "inner_lif"), ("inner_lif", "inner_w"), ("inner_w", "inner_lif"), ("inner_lif", "output")],
    )
    return ir.Graph(
        {
            "input": ir.Input(np.array([3])),
            "fc_in": ir.Affine(_w(rng, 5, 3), _w(rng, 5)),
            "lif": ir.CubaLIF(tau_syn=np.full(5, 2.0), tau_mem=np.full(5, 4.0), r=4.0, w_in=2.0),
            "w_rec": ir.Linear(_w(rng, 5, 5)),
            "rnn": inner,
            "fc_out": ir.Affine(_w(rng, 2, 5), _w(rng, 2)),
            "output": ir.Output(np.array([2])),
        },
        [
            ("input", "fc_in"),
            ("fc_in", "lif"),
            ("lif", "w_rec"),
            ("w_rec", "lif"),
            ("lif", "rnn"),
            ("rnn", "fc_out"),
            ("fc_out", "output"),
        ],
        metadata={"name": "recurrent_nested"},
    )


def annotate_partition(graph: ir.Graph, assignments: dict[str, int], algorithm: str = "by-hand") -> ir.Graph:
    """Annotate ``graph`` in place as talon.graph.partition documents it: ``node.core_id`` and
    ``metadata["partition_metadata"]``."""
    for name, node in graph.nodes.items():
        node.core_id = assignments[name]
    cross = [(s, d) for s, d in graph.edges if assignments[s] != assignments[d]]
    graph.metadata["partition_metadata"] = {
        "algorithm": algorithm,
        "num_cores_used": len(set(assignments.values())),
        "assignments": dict(assignments),
        "cross_core_edges": cross,
        "metrics": {"cut_ratio": len(cross) / len(graph.edges)},
    }
    return graph


def deep_residual(n_nodes: int = 5000, width: int = 8, seed: int = 0) -> ir.Graph:
    """A chain of residual blocks (fc_a Affine -> lif LIF -> fc_b Affine -> add Skip residual, bypass
    from the previous block's output) with about ``n_nodes`` nodes (4 per block, plus Input, stem,
    Output)."""
    rng = np.random.default_rng(seed)
    nodes: dict[str, ir.Node] = {"input": ir.Input(np.array([width])), "stem": ir.Affine(_w(rng, width, width))}
    edges = [("input", "stem")]
    prev = "stem"
    for b in range((n_nodes - 3) // 4):
        a, lif, fb, add = f"b{b}_fc_a", f"b{b}_lif", f"b{b}_fc_b", f"b{b}_add"
        nodes[a] = ir.Affine(_w(rng, width, width), _w(rng, width))
        nodes[lif] = ir.LIF(tau=np.full(width, 4.0))
        nodes[fb] = ir.Affine(_w(rng, width, width), _w(rng, width))
        nodes[add] = ir.Skip(skip_type="residual")
        edges += [(prev, a), (a, lif), (lif, fb), (fb, add), (prev, add)]
        prev = add
    nodes["output"] = ir.Output(np.array([width]))
    edges.append((prev, "output"))
    return ir.Graph(nodes, edges, metadata={"name": f"deep_residual_{len(nodes)}"})
