"""IR → IR transforms used by the exporter."""

from __future__ import annotations

import warnings

import numpy as np

from talon import ir


def fold_batchnorm(graph: ir.Graph) -> ir.Graph:
    """Fold every BatchNorm that directly follows an Affine, Linear or Conv (its only consumer)
    into that layer's weights, in inference form::

        s = gamma / sqrt(running_var + eps)
        W' = W * s (per output channel)      b' = (b - running_mean) * s + beta

    computed in float64 and cast back to the layer's dtype (so outputs change by rounding: a
    ``UserWarning`` names the folded nodes, recorded in ``metadata['folded_batchnorm']``).
    """
    nodes = dict(graph.nodes)
    edges = list(graph.edges)
    folded = []
    for name, node in graph.nodes.items():
        if not isinstance(node, (ir.BatchNorm1d, ir.BatchNorm2d)):
            continue
        preds = [s for s, d in edges if d == name]
        if len(preds) != 1:
            continue
        prev = nodes[preds[0]]
        if (
            not isinstance(prev, (ir.Affine, ir.Linear, ir.Conv1d, ir.Conv2d))
            or sum(s == preds[0] for s, _ in edges) != 1
        ):
            continue
        gamma = np.ones(node.num_features) if node.weight is None else node.weight.astype(np.float64)
        beta = np.zeros(node.num_features) if node.bias is None else node.bias.astype(np.float64)
        scale = gamma / np.sqrt(node.running_var.astype(np.float64) + node.eps)
        w = prev.weight.astype(np.float64) * scale.reshape(-1, *([1] * (prev.weight.ndim - 1)))
        b_prev = getattr(prev, "bias", None)
        b_prev = np.zeros(node.num_features) if b_prev is None else b_prev.astype(np.float64)
        b = (b_prev - node.running_mean.astype(np.float64)) * scale + beta
        params = prev.params()
        params["weight"] = w.astype(prev.weight.dtype)
        if isinstance(prev, ir.Linear):
            nodes[preds[0]] = ir.Affine(params["weight"], b.astype(prev.weight.dtype), metadata=dict(prev.metadata))
        else:
            params["bias"] = b.astype(prev.weight.dtype)
            nodes[preds[0]] = type(prev)(**params, metadata=dict(prev.metadata))
        del nodes[name]
        edges = [(preds[0] if s == name else s, d) for s, d in edges if d != name]
        folded.append(name)
    if not folded:
        return graph
    warnings.warn(
        f"fold_batchnorm: BatchNorm {', '.join(repr(n) for n in folded)} folded into the preceding layer's "
        "weights; outputs change by float rounding (recorded in metadata['folded_batchnorm'])",
        UserWarning,
        stacklevel=3,
    )
    metadata = dict(graph.metadata)
    metadata["folded_batchnorm"] = folded
    return ir.Graph(nodes, edges, metadata)
