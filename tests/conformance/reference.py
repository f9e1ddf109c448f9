"""An independent, deliberately plain transcription of ``docs/semantics.md`` (the test oracle).

It supports the nodes the golden cases use and nothing clever: a per-step loop over the
topological order, numpy float32 arithmetic in exactly the order the document prescribes. The
engines under test (PyTorch executor, CPU backend, JAX executor) must agree with it.
"""

from __future__ import annotations

import numpy as np

from talon import ir

DTYPE = np.float32


def coef(values, dtype=DTYPE) -> np.ndarray:
    """Coefficients are computed in float64 from the stored parameters, then cast once."""
    return np.asarray(values, dtype=np.float64).astype(dtype)


def per_neuron(arr: np.ndarray, shape: tuple[int, ...], dtype=DTYPE) -> np.ndarray:
    """Broadcast a neuron parameter (layer-shaped, per-channel or scalar) to ``shape``."""
    arr = np.asarray(arr)
    if arr.ndim == 1 and len(shape) > 1 and arr.shape[0] == shape[0] and arr.shape != shape:
        arr = arr.reshape((shape[0],) + (1,) * (len(shape) - 1))
    return np.broadcast_to(arr.astype(dtype) if arr.dtype != dtype else arr, shape)


def _neuron_coefficients(node: ir.Node, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    with np.errstate(divide="ignore"):
        if isinstance(node, (ir.LIF, ir.LI)):
            tau = np.asarray(node.tau, np.float64)
            c = {"beta": 1 - 1 / tau, "g": node.r / tau, "c": node.v_leak / tau}
            c.update(k=1 / tau, r=np.asarray(node.r, np.float64), v_leak=np.asarray(node.v_leak, np.float64))
        elif isinstance(node, (ir.CubaLIF, ir.CubaLI)):
            tm, ts = np.asarray(node.tau_mem, np.float64), np.asarray(node.tau_syn, np.float64)
            c = {"beta": 1 - 1 / tm, "g": node.r / tm, "c": node.v_leak / tm, "alpha": 1 - 1 / ts, "gs": node.w_in / ts}
        elif isinstance(node, (ir.IF, ir.Integrator)):
            c = {"beta": np.ones(()), "g": np.asarray(node.r, np.float64), "c": np.zeros(())}
        else:
            raise TypeError(type(node).__name__)
    # tau = inf: g = r/inf = 0 and c = 0 (nan only arises from inf/inf, which validation excludes)
    out = {k: per_neuron(coef(v), shape) for k, v in c.items()}
    if hasattr(node, "v_threshold"):
        out["theta"] = per_neuron(node.v_threshold, shape)
        out["v_reset"] = per_neuron(node.v_reset, shape)
    return out


def _cmp(a, theta, comparison):
    return (a >= theta if comparison == ">=" else a > theta).astype(DTYPE)


def _reset(v, z, k, mode):
    if mode == "value":
        return np.where(z > 0, k["v_reset"], v).astype(DTYPE)
    if mode == "subtract":
        return (v - z * k["theta"]).astype(DTYPE)
    return v


def _leaky(node, k, v, x):
    """The leaky update of LIF / LI in the node's integration order."""
    if node.integration.value == "euler":
        return (v + k["k"] * ((k["v_leak"] - v) + k["r"] * x)).astype(DTYPE)
    return ((k["beta"] * v + k["g"] * x) + k["c"]).astype(DTYPE)


def neuron_step(node: ir.Node, x: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
    """One step of a stateful node. Returns (output, new state)."""
    shape = x.shape[1:]
    k = _neuron_coefficients(node, shape)
    v0 = getattr(node, "v_init", None)  # the membrane at t = 0: v_init, or 0
    v = state.get("v", np.zeros_like(x) if v0 is None else np.broadcast_to(per_neuron(v0, shape), x.shape))
    i = state.get("i", np.zeros_like(x))
    if getattr(node, "synapse", "decay") == "input_first":  # i = alpha*(i + gs*x)
        i = (k["alpha"] * (i + (k["gs"] * x).astype(DTYPE)).astype(DTYPE)).astype(DTYPE)
        drive = i
    elif isinstance(node, (ir.CubaLIF, ir.CubaLI)):
        i = (k["alpha"] * i + k["gs"] * x).astype(DTYPE)
        drive = i
    else:
        drive = x
    if isinstance(node, ir.LI):
        v = _leaky(node, k, v, drive)
        return v, {"v": v}
    if isinstance(node, ir.CubaLI):
        v = ((k["beta"] * v + k["g"] * drive) + k["c"]).astype(DTYPE)
        return v, {"v": v, "i": i}
    if isinstance(node, ir.Integrator):
        v = (v + k["g"] * drive).astype(DTYPE)
        return v, {"v": v}
    mode, timing = node.reset_mode.value, node.reset_timing.value
    z_prev = _cmp(v, k["theta"], node.comparison.value)
    if timing == "delayed_pre_decay":
        v = _reset(v, z_prev, k, mode)
    u = _leaky(node, k, v, drive) if isinstance(node, ir.LIF) else ((k["beta"] * v + k["g"] * drive) + k["c"])
    u = u.astype(DTYPE)
    if timing == "delayed":
        u = _reset(u, z_prev, k, mode)
    if timing == "snntorch_immediate":
        u = _reset(u, z_prev, k, mode)
    z = _cmp(u, k["theta"], node.comparison.value)
    if node.spike_mode.value == "multi":  # n = (u >= theta) * floor(u / theta), u - n*theta
        z = np.where(z > 0, np.floor((u / k["theta"]).astype(DTYPE)), DTYPE(0)).astype(DTYPE)
        if node.max_spikes is not None:
            z = np.minimum(z, DTYPE(node.max_spikes))
    if timing == "immediate":
        u = _reset(u, z, k, mode)
    if node.v_min is not None:  # the floor, after the reset: max(u - v_min, 0) + v_min
        v_min = per_neuron(node.v_min, shape)
        u = (np.maximum((u - v_min).astype(DTYPE), DTYPE(0)) + v_min).astype(DTYPE)
    if timing == "snntorch_immediate":
        u = (u - (z - z_prev) * k["theta"]).astype(DTYPE)
    spike = z if node.spike_timing.value == "post" else z_prev
    new = {"v": u, "i": i} if isinstance(node, ir.CubaLIF) else {"v": u}
    return spike, new


def conv2d(x: np.ndarray, node: ir.Conv2d) -> np.ndarray:
    """Cross-correlation with zero padding and groups, accumulated in float64."""
    (sh, sw), (ph, pw), (dh, dw) = node.stride, node.padding, node.dilation
    w = node.weight.astype(np.float64)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    _, h_out, w_out = node.output_shape
    out = np.zeros((x.shape[0], w.shape[0], h_out, w_out))
    c_in, c_out = w.shape[1], w.shape[0] // node.groups  # per group
    for g in range(node.groups):
        xs, ws = xp[:, g * c_in : (g + 1) * c_in], w[g * c_out : (g + 1) * c_out]
        for i in range(w.shape[2]):
            for j in range(w.shape[3]):
                patch = xs[:, :, i * dh : i * dh + sh * h_out : sh, j * dw : j * dw + sw * w_out : sw]
                out[:, g * c_out : (g + 1) * c_out] += np.einsum("bchw,oc->bohw", patch, ws[:, :, i, j])
    return (out + node.bias.reshape(1, -1, 1, 1)).astype(DTYPE)


def pool2d(x: np.ndarray, node: ir.MaxPool2d | ir.SumPool2d) -> np.ndarray:
    """Max (padding = -inf) or sum (padding = 0) over each window; floor mode, no dilation."""
    (kh, kw), (sh, sw), (ph, pw) = node.kernel_size, node.stride, node.padding
    is_max = isinstance(node, ir.MaxPool2d)
    assert not is_max or (node.dilation == (1, 1) and not node.ceil_mode)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf if is_max else 0)
    _, h_out, w_out = node.output_shape
    windows = [xp[:, :, i : i + sh * h_out : sh, j : j + sw * w_out : sw] for i in range(kh) for j in range(kw)]
    if is_max:
        return np.max(np.stack(windows), axis=0).astype(DTYPE)
    return np.sum(np.stack(windows).astype(np.float64), axis=0).astype(DTYPE)


STATEFUL = (ir.LIF, ir.IF, ir.CubaLIF, ir.LI, ir.CubaLI, ir.Integrator)


def _stateless(node: ir.Node, inputs: list[np.ndarray]):
    if isinstance(node, (ir.Concat, ir.Skip)) and (isinstance(node, ir.Concat) or node.skip_type == "concatenate"):
        dim = node.dim if isinstance(node, ir.Concat) else 1
        return np.concatenate(inputs, axis=dim)
    x = inputs[0]
    for extra in inputs[1:]:
        x = (x + extra).astype(DTYPE)
    if isinstance(node, (ir.Input, ir.Output, ir.Skip, ir.HybridRegion, ir.Dropout)):
        return x
    if isinstance(node, ir.Affine):
        return (x.astype(np.float64) @ node.weight.T.astype(np.float64) + node.bias).astype(DTYPE)
    if isinstance(node, ir.Linear):
        return (x.astype(np.float64) @ node.weight.T.astype(np.float64)).astype(DTYPE)
    if isinstance(node, ir.Scale):
        return (x * node.scale.astype(DTYPE)).astype(DTYPE)
    if isinstance(node, ir.ReLU):
        return np.where(x > 0, x, x * DTYPE(node.negative_slope)).astype(DTYPE)
    if isinstance(node, ir.Conv2d):
        return conv2d(x, node)
    if isinstance(node, (ir.MaxPool2d, ir.SumPool2d)):
        return pool2d(x, node)
    if isinstance(node, ir.Flatten):
        return x.reshape((x.shape[0], *node.output_shape))
    if isinstance(node, ir.Threshold):
        return _cmp(x, per_neuron(node.threshold, x.shape[1:]), node.comparison.value)
    if isinstance(node, ir.ChannelSplit):
        bounds = np.cumsum(node.split_sections)[:-1]
        return np.split(x, bounds, axis=node.dim)
    from .reference_detection import detection

    y = detection(node, x)
    if y is not None:
        return y
    raise TypeError(f"the reference does not implement {type(node).__name__}")


def run(graph: ir.Graph, x: np.ndarray) -> dict:
    """Run ``graph`` on time-major input ``x`` [T, B, *shape] (its single Input node).

    Returns ``{"outputs": {output node: [T, B, ...]}, "states": {node: {"v": [T, B, ...], ...}}}``
    with the state *after* each step.
    """
    (input_name,) = graph.input_nodes
    runner = _GraphRunner(graph)
    outputs = {n: [] for n in graph.output_nodes}
    states: dict[str, dict[str, list]] = {}
    for t in range(x.shape[0]):
        values = runner.step({input_name: x[t].astype(DTYPE)})
        for n in outputs:
            outputs[n].append(values[n])
        for path, st in runner.state_items():
            for key, val in st.items():
                states.setdefault(path, {}).setdefault(key, []).append(val)
    return {
        "outputs": {n: np.stack(v) for n, v in outputs.items()},
        "states": {n: {k: np.stack(v) for k, v in d.items()} for n, d in states.items()},
    }


class _GraphRunner:
    def __init__(self, graph: ir.Graph, prefix: str = ""):
        self.graph, self.prefix = graph, prefix
        self.order = graph.topological_order()
        self.mask = graph.recurrent_mask()
        self.incoming = {n: [] for n in graph.nodes}
        for idx, (_, d) in enumerate(graph.edges):
            self.incoming[d].append(idx)
        self.prev: dict[int, np.ndarray] = {}  # recurrent edge index -> value at t - 1
        self.state: dict[str, dict] = {}
        self.children = {
            n: _GraphRunner(node, f"{prefix}{n}.") for n, node in graph.nodes.items() if isinstance(node, ir.Graph)
        }

    def edge_value(self, idx: int, values: dict) -> np.ndarray:
        src = self.graph.edges[idx][0]
        out = values[src]
        if isinstance(out, list):
            out = out[self.graph.out_edges(src).index(idx)]
        return out

    def step(self, external: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values: dict[str, np.ndarray] = {}
        for name in self.order:
            node = self.graph.nodes[name]
            if name in external:
                values[name] = external[name]
                continue
            inputs = []
            for idx in self.incoming[name]:
                if self.mask[idx]:
                    shape = self.graph.edge_shape(idx)
                    batch = next(iter(external.values())).shape[0]
                    inputs.append(self.prev.get(idx, np.zeros((batch, *shape), DTYPE)))
                else:
                    inputs.append(self.edge_value(idx, values))
            if isinstance(node, ir.Graph):
                x = _stateless(ir.Skip("residual"), inputs)
                child = self.children[name]
                inner = child.step({node.input_nodes[0]: x})
                values[name] = inner[node.output_nodes[0]]
            elif isinstance(node, STATEFUL):
                x = _stateless(ir.Skip("residual"), inputs)
                values[name], self.state[name] = neuron_step(node, x, self.state.get(name, {}))
            elif isinstance(node, ir.Delay):
                x = _stateless(ir.Skip("residual"), inputs)
                hist = self.state.setdefault(name, {"hist": []})["hist"]
                hist.append(x)
                d = per_neuron(node.delay, x.shape[1:], np.int64)
                out = np.zeros_like(x)
                for idx_el in np.ndindex(*x.shape[1:]):
                    lag = int(d[idx_el])
                    if len(hist) > lag:
                        out[(slice(None), *idx_el)] = hist[-1 - lag][(slice(None), *idx_el)]
                values[name] = out
            else:
                values[name] = _stateless(node, inputs)
        for idx, rec in enumerate(self.mask):
            if rec:
                self.prev[idx] = self.edge_value(idx, values)
        return values

    def state_items(self):
        for name, st in self.state.items():
            if "hist" not in st:
                yield f"{self.prefix}{name}", st
        for child in self.children.values():
            yield from child.state_items()
