"""The Spyx 1.0.0 profile: what ``spyx.nir.from_nir(graph, x, dt)`` runs, restated as talon nodes.

Spyx's importer (``spyx/nir.py``) builds a ``spyx.nn.Sequential`` by walking the edges from the
node named ``input`` (always the first edge out of a node) to the node named ``output``, and maps:

* ``LIF`` → ``spyx.nn.LIF``: ``β = 1 − dt/τ`` computed by numpy in the file's dtype, cast to
  float32 (jax) and clipped to [0, 1]; per step ``s = H(V − θ)`` on the membrane *before* the
  update, ``V = β·V + x − s·θ`` (subtractive reset with the input; ``r``, ``v_leak`` and
  ``v_reset`` ignored; membrane starts at 0);
* ``IF`` → ``spyx.nn.IF``: ``s = H(V − θ)``, ``V = V + x − s·θ`` (``r`` and ``v_reset`` ignored);
* ``CubaLIF`` → ``spyx.nn.CuBaLIF`` with ``α = 1 − dt/τ_syn``, ``β = 1 − dt/τ_mem`` (as above):
  ``s = H(V − θ)``, ``V = V − s·θ``, ``I = α·I + x``, ``V = β·V + I`` (``r``, ``w_in``,
  ``v_leak``, ``v_reset`` ignored); it only runs on 1-d layers;
* ``LI`` followed by ``Threshold`` → ``PSU_LIF``: ``V = β·V + x``, ``s = H(V − θ)`` (``r``,
  ``v_leak`` ignored); an ``LI`` without a following ``Threshold`` makes Spyx raise;
* ``Affine``/``Linear`` → ``nnx.Linear``; ``Conv2d`` → ``nnx.Conv`` (channels-last; ``dilation``
  and ``groups`` ignored); ``SumPool2d`` → ``SumPool`` with ``'VALID'`` for zero padding and
  JAX's ``'SAME'`` for any other; ``Flatten`` → flatten every axis in channels-last order, so
  the dense weight that follows reads Spyx's ``(h, w, c)`` feature order.

Anything else (``Delay``, ``Scale``, ``Conv1d``, ``AvgPool2d``, a lone ``Threshold`` ...) maps to
nothing and is **dropped without error**; a node off the ``input`` → ``output`` path is never run.

In talon (the dynamics :mod:`talon.interop.spyx` states for ``spyx.nn``): ``comparison='>'``,
``reset_mode='subtract'``, ``spike_timing='pre'``, ``reset_timing='delayed'`` (CubaLIF:
``'delayed_pre_decay'``), ``integration='decay'``, ``v_leak = 0``, and each float32 decay ``d`` as
``tau = r = 1/(1 − d)`` in float64 (``d = 1`` as ``tau = 2**30``), so that talon's
``1 − 1/tau`` gives back ``d`` and ``r/tau`` exactly 1 in float32. A dense weight after a Flatten
of a spatial tensor is permuted to talon's ``(c, h, w)`` order (and so are per-neuron parameters in
between). Refused by name: every node Spyx drops or runs differently than talon can state, subgraphs
and recurrent edges (Spyx rebuilds them as RIF/RLIF/RCuBaLIF, routing the input through ``w_rec``).

Writing for Spyx (``consumer="spyx"``) is the inverse: the graph must run Spyx's dynamics above
(or be refused naming the field), and is written at ``dt = 1`` (``from_nir``'s default) so that
Spyx's ``1 − 1/τ`` in float64 is talon's ``β``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from talon import ir

VERSION = "1.0.0"
NO_LEAK_TAU = 2.0**30  # 1 - 2**-30 rounds to 1 in float32 (as talon.ir.timeconst)
# reset_gradient: Spyx's neurons differentiate their reset `- s·θ` through the spike (the surrogate of the
# layers Spyx's importer builds, superspike(k=25), is given by .surrogate_conventions)
_DYNAMICS = dict(reset_mode="subtract", reset_timing="delayed", spike_timing="pre", comparison=">", v_init=None,
                 spike_mode="binary", v_min=None, max_spikes=None, reset_gradient="through")  # fmt: skip
_RECURRENT = (
    "Spyx's importer rebuilds a subgraph (or a neuron <-> dense cycle) as its RIF/RLIF/RCuBaLIF with the input routed "
    "through w_rec, which this profile does not restate"
)


def _refuse(path: str, node: ir.Node, why: str) -> ir.ConversionError:
    return ir.ConversionError(f"node {path!r} ({type(node).__name__}): {why}")


def spyx_decay(tau: np.ndarray, dt: float) -> np.ndarray:
    """Spyx's float32 decay of a file's ``tau``: ``1 - (dt / tau)`` in numpy (the array's dtype), cast to
    float32 as ``jnp.array`` does, clipped to [0, 1] as every ``spyx.nn`` neuron does on each call."""
    with np.errstate(divide="ignore"):
        return np.clip(np.asarray(1 - (dt / np.asarray(tau))).astype(np.float32), 0, 1)


def tau_of_decay(path: str, node: ir.Node, field: str, decay32: np.ndarray) -> np.ndarray:
    """float64 ``tau`` with ``float32(1 - 1/tau) == decay32`` (talon's decay), or refuse naming ``field``."""
    d64 = decay32.astype(np.float64)
    with np.errstate(divide="ignore"):
        tau = np.where(d64 == 1.0, NO_LEAK_TAU, 1.0 / (1.0 - d64))
    if not np.array_equal((1.0 - 1.0 / tau).astype(np.float32), decay32):
        bad = d64[(1.0 - 1.0 / tau).astype(np.float32) != decay32].reshape(-1)[0]
        raise _refuse(path, node, f"Spyx's float32 decay {bad!r} from {field!r} has no talon time constant that "
                      "reproduces it (decays between 0 and 2**-29 have none)")  # fmt: skip
    return tau


def _spatial_order(shape: tuple[int, ...]) -> np.ndarray:
    """Spyx's flattened index of talon's flattened feature ``j`` for a ``(C, H, W)`` tensor."""
    c, *spatial = shape
    return np.moveaxis(np.arange(int(np.prod(shape))).reshape(*spatial, c), -1, 0).reshape(-1)


def _chain(graph: ir.Graph, direction: str) -> list[str]:
    """The node names Spyx's importer runs, ``input`` to ``output`` (or ConversionError)."""
    if graph.recurrent_edges:
        raise ir.ConversionError(f"the graph's recurrent edges {graph.recurrent_edges}: {_RECURRENT}")
    if "input" not in graph.nodes or not isinstance(graph.nodes["input"], ir.Input):
        raise ir.ConversionError(f"{direction}: Spyx's importer starts at the Input node named 'input'; the graph's "
                                 f"inputs are {graph.input_nodes}")  # fmt: skip
    chain, current = [], "input"
    while current != "output":
        successors = graph.successors(current)
        if len(successors) != 1:
            raise ir.ConversionError(f"{direction}: node {current!r} has {len(successors)} outgoing edges; Spyx's "
                                     "importer follows one path from 'input' to 'output' (a Sequential)")  # fmt: skip
        (current,) = successors
        if len(graph.predecessors(current)) != 1:
            raise ir.ConversionError(f"{direction}: node {current!r} has several inputs; Spyx runs a chain")
        chain.append(current)
    if not isinstance(graph.nodes["output"], ir.Output):
        raise ir.ConversionError(f"{direction}: Spyx's importer ends at the node named 'output', not an Output here")
    stray = sorted(set(graph.nodes) - {"input", *chain})
    if stray:
        raise ir.ConversionError(f"{direction}: nodes {stray} are off the 'input' -> 'output' path, which is all "
                                 "Spyx's importer runs")  # fmt: skip
    return chain[:-1]


# ---- producer ----------------------------------------------------------------------------------


def restate(graph: ir.Graph, dt: float) -> ir.Graph:
    """The graph (read with the file's own values) as Spyx 1.0.0's ``from_nir(..., dt=dt)`` runs it."""
    for name, node in graph.nodes.items():
        if isinstance(node, ir.Graph):
            raise _refuse(name, node, _RECURRENT)
    nodes = dict(graph.nodes)
    chain = _chain(graph, "producer='spyx'")
    order = None  # talon feature j is the file's (Spyx's) feature order[j] after a spatial Flatten
    i = 0
    while i < len(chain):
        name = chain[i]
        node = nodes[name]
        shape = tuple(node.input_shape)
        perm = _Ordered(shape, order)
        if isinstance(node, (ir.Affine, ir.Linear)):
            if len(shape) != 1:
                raise _refuse(name, node, f"Spyx's nnx.Linear acts on the last (channel) axis of its {shape} input; "
                              "NIR's on the flat vector")  # fmt: skip
            weight = node.weight if order is None else np.ascontiguousarray(node.weight[:, order])
            nodes[name], order = replace(node, weight=weight), None
        elif isinstance(node, ir.Conv2d):
            for field in ("dilation", "groups"):
                if np.any(np.asarray(getattr(node, field)) != 1):
                    raise _refuse(name, node, f"Spyx's importer ignores {field!r} (it builds nnx.Conv with 1)")
        elif isinstance(node, ir.SumPool2d):
            nodes[name] = _sumpool(name, node, shape)
        elif isinstance(node, ir.Flatten):
            if len(shape) not in (1, 3):
                raise _refuse(name, node, f"Spyx flattens its channels-last data; a {len(shape)}-d input is not "
                              "restated")  # fmt: skip
            if len(shape) == 3:
                order = _spatial_order(shape)
            nodes[name] = ir.Flatten(0, -1, metadata=dict(node.metadata))  # Spyx flattens every axis
        elif isinstance(node, (ir.IF, ir.LIF, ir.CubaLIF)):
            nodes[name] = _spiking(name, node, dt, perm)
        elif isinstance(node, ir.LI):
            following = nodes[chain[i + 1]] if i + 1 < len(chain) else None
            if not isinstance(following, ir.Threshold):
                raise _refuse(name, node, "Spyx's importer raises on an LI not followed by a Threshold (it runs "
                              "LI only as the membrane of a PSU_LIF)")  # fmt: skip
            tau = tau_of_decay(name, node, "tau", spyx_decay(perm(node.tau), dt))
            nodes[name] = replace(node, tau=tau, r=tau.copy(), v_leak=np.zeros_like(tau), integration="decay")
            nodes[chain[i + 1]] = replace(following, threshold=perm(following.threshold), comparison=">")
            i += 1
        else:
            why = ("Spyx's importer has no mapping for it and drops it without error (its model then differs from the "
                   "file)")  # fmt: skip
            raise _refuse(name, node, why)
        i += 1
    if order is not None and not np.array_equal(order, np.arange(order.size)):
        raise ir.ConversionError("producer='spyx': the file ends with features Spyx flattened in (h, w, c) order, "
                                 "which talon (c, h, w) cannot reorder without a dense layer")  # fmt: skip
    return ir.Graph(nodes, list(graph.edges), metadata=dict(graph.metadata))


class _Ordered:
    """A per-neuron parameter of the file (Spyx's feature order) in talon's order, broadcast to the layer."""

    def __init__(self, shape: tuple[int, ...], order: np.ndarray | None):
        self.shape, self.order = shape, order

    def __call__(self, arr) -> np.ndarray:
        arr = np.broadcast_to(np.asarray(arr), self.shape)
        return np.array(arr[self.order] if self.order is not None else arr)


def _spiking(name: str, node: ir.Node, dt: float, perm) -> ir.Node:
    theta = perm(node.v_threshold)
    zeros = np.zeros(theta.shape, np.float64)
    if isinstance(node, ir.IF):
        return replace(node, v_threshold=theta, r=np.ones_like(zeros), v_reset=zeros, **_DYNAMICS)
    if isinstance(node, ir.LIF):
        tau = tau_of_decay(name, node, "tau", spyx_decay(perm(node.tau), dt))
        return replace(node, tau=tau, r=tau.copy(), v_leak=zeros, v_threshold=theta, v_reset=zeros,
                       integration="decay", **_DYNAMICS)  # fmt: skip
    if theta.ndim != 1:
        raise _refuse(name, node, "Spyx's CuBaLIF keeps (V, I) concatenated on the last axis and doubles every axis "
                      f"of its state, so it runs only on 1-d layers; this one is {theta.shape}")  # fmt: skip
    tau_syn = tau_of_decay(name, node, "tau_syn", spyx_decay(perm(node.tau_syn), dt))
    tau_mem = tau_of_decay(name, node, "tau_mem", spyx_decay(perm(node.tau_mem), dt))
    return replace(node, tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem.copy(), w_in=tau_syn.copy(), v_leak=zeros,
                   v_threshold=theta, v_reset=zeros, synapse="decay",
                   **{**_DYNAMICS, "reset_timing": "delayed_pre_decay"})  # fmt: skip


def _same_pads(shape, kernel, stride) -> list[tuple[int, int]]:
    """JAX's ``'SAME'`` padding (``lax.padtype_to_pads``) of each spatial axis."""
    pads = []
    for n, k, s in zip(shape, kernel, stride, strict=True):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def _sumpool(name: str, node: ir.SumPool2d, shape) -> ir.SumPool2d:
    if all(p == 0 for p in node.padding):
        return node
    pads = _same_pads(shape[1:], node.kernel_size, node.stride)
    if any(lo != hi for lo, hi in pads):
        raise _refuse(name, node, f"Spyx pools any non-zero padding as JAX's 'SAME', here the uneven {pads}, which "
                      "talon's symmetric padding cannot state")  # fmt: skip
    return replace(node, padding=tuple(lo for lo, _ in pads))


# ---- consumer ----------------------------------------------------------------------------------

_NIR_NEURON = dict(reset_mode="value", reset_timing="immediate", spike_timing="post", comparison=">")


def check_consumer(graph: ir.Graph) -> ir.Graph:
    """Refuse what Spyx 1.0.0's ``from_nir`` would run differently (naming node and field); return the
    graph to write with the standard exporter at ``dt = 1``: Input and Output named ``input`` and
    ``output`` (where Spyx's importer looks), dense weights and per-neuron parameters after a spatial
    Flatten in Spyx's ``(h, w, c)`` order, neurons with NIR's fields (Spyx reads only τ and θ)."""
    graph = _named_ends(graph)
    for name, node in graph.nodes.items():
        if isinstance(node, ir.Graph):
            raise _refuse(name, node, f"Spyx {VERSION} would misread 'type': {_RECURRENT}")
    chain = _chain(graph, "consumer='spyx'")
    nodes = dict(graph.nodes)
    order = None
    i = 0
    while i < len(chain):
        name = chain[i]
        node = nodes[name]
        kind = type(node).__name__
        shape = tuple(node.input_shape)

        def refuse(field: str, why: str, name=name, kind=kind) -> ir.ConversionError:
            return ir.ConversionError(f"node {name!r} ({kind}): Spyx {VERSION} would misread {field!r}: {why}")

        to_file = _ToFile(shape, order)
        if isinstance(node, (ir.Affine, ir.Linear)):
            if len(shape) != 1:
                raise refuse("weight", f"its nnx.Linear acts on the last (channel) axis of this {shape} input")
            if order is not None:
                weight = np.empty_like(node.weight)
                weight[:, order] = node.weight
                nodes[name] = replace(node, weight=weight)
            order = None
        elif isinstance(node, ir.Conv2d):
            for field in ("dilation", "groups"):
                if np.any(np.asarray(getattr(node, field)) != 1):
                    raise refuse(field, "its importer builds nnx.Conv without it (1)")
        elif isinstance(node, ir.SumPool2d):
            if any(p != 0 for p in node.padding):
                pads = _same_pads(shape[1:], node.kernel_size, node.stride)
                if [(p, p) for p in node.padding] != pads:
                    raise refuse("padding", f"it pools any non-zero padding as JAX's 'SAME', here {pads}")
        elif isinstance(node, ir.Flatten):
            rank = len(shape)
            if node.start_dim not in (0, -rank) or node.end_dim not in (-1, rank - 1) or rank not in (1, 3):
                raise refuse("start_dim", "it flattens every axis of its channels-last data (start_dim=0, end_dim=-1 "
                             "of a 1-d or (C, H, W) input)")  # fmt: skip
            if rank == 3:
                order = _spatial_order(shape)
        elif isinstance(node, (ir.IF, ir.LIF, ir.CubaLIF)):
            nodes[name] = _consumed_spiking(node, refuse, to_file)
        elif isinstance(node, ir.LI):
            following = nodes[chain[i + 1]] if i + 1 < len(chain) else None
            if not isinstance(following, ir.Threshold):
                raise refuse("type", "its importer runs an LI only as a PSU_LIF's membrane, followed by a Threshold")
            if following.comparison != ">":
                raise ir.ConversionError(f"node {chain[i + 1]!r} (Threshold): Spyx {VERSION} would misread "
                                         "'comparison': its PSU_LIF spikes on V > threshold")  # fmt: skip
            tau = _consumed_leak(node, refuse, "tau", "r", node.integration)
            nodes[name] = replace(node, tau=to_file(tau), r=to_file(tau), v_leak=to_file(node.v_leak))
            nodes[chain[i + 1]] = replace(following, threshold=to_file(following.threshold))
            i += 1
        else:
            raise refuse("type", "its NIR importer maps only Affine, Linear, Conv2d, SumPool2d, Flatten, IF, LIF, "
                         "CubaLIF and LI -> Threshold, and drops anything else without error")  # fmt: skip
        i += 1
    if order is not None:
        raise ir.ConversionError("consumer='spyx': the graph ends with flattened spatial features, which Spyx "
                                 "orders (h, w, c) and talon (c, h, w)")  # fmt: skip
    return ir.Graph(nodes, list(graph.edges), metadata=dict(graph.metadata))


class _ToFile:
    """A per-neuron parameter in talon's order, as the file must hold it for Spyx (its feature order)."""

    def __init__(self, shape: tuple[int, ...], order: np.ndarray | None):
        self.shape, self.order = shape, order

    def __call__(self, arr) -> np.ndarray:
        arr = np.broadcast_to(np.asarray(arr), self.shape)
        if self.order is None:
            return np.array(arr)
        out = np.empty_like(arr)
        out[self.order] = arr
        return out


def _named_ends(graph: ir.Graph) -> ir.Graph:
    """The graph with its one Input and one Output named ``input`` and ``output`` (Spyx's importer walks
    from and to those names); unchanged when they are already, or when that is ambiguous."""
    if len(graph.input_nodes) != 1 or len(graph.output_nodes) != 1:
        raise ir.ConversionError(f"consumer='spyx': Spyx runs one input and one output; the graph has Input nodes "
                                 f"{graph.input_nodes} and Output nodes {graph.output_nodes}")  # fmt: skip
    rename = {graph.input_nodes[0]: "input", graph.output_nodes[0]: "output"}
    rename = {old: new for old, new in rename.items() if old != new}
    if not rename:
        return graph
    taken = set(rename.values()) & (set(graph.nodes) - set(rename))
    if taken:
        raise ir.ConversionError(f"consumer='spyx': Spyx's importer needs the Input named 'input' and the Output "
                                 f"'output', but {sorted(taken)} name other nodes; rename them")  # fmt: skip
    nodes = {rename.get(n, n): node for n, node in graph.nodes.items()}
    edges = [(rename.get(a, a), rename.get(b, b)) for a, b in graph.edges]
    return ir.Graph(nodes, edges, metadata=dict(graph.metadata))


def _consumed_leak(node, refuse, tau_field: str, gain_field: str, integration) -> np.ndarray:
    """A leak Spyx runs as ``β·V + x``: decay order, unit gain, no leak drive, 1 ≤ τ. Returns float64 τ,
    whose ``1 − 1/τ`` Spyx computes (dt = 1) in float64 and casts to float32, as talon's engines do."""
    tau = np.asarray(getattr(node, tau_field), np.float64)
    if integration != "decay":
        raise refuse("integration", "it computes beta*V + x; set integration='decay'")
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = (np.asarray(getattr(node, gain_field), np.float64) / tau).astype(np.float32)
    if np.any(gain != 1):
        raise refuse(gain_field, f"it adds the input unscaled; set {gain_field} = {tau_field}")
    if hasattr(node, "v_leak") and np.any(np.asarray(node.v_leak) != 0):
        raise refuse("v_leak", "its neurons have no leak drive (they decay towards 0)")
    if np.any(~(tau >= 1)):
        raise refuse(tau_field, "it clips its decay 1 - 1/tau to [0, 1]; a tau below 1 step decays differently")
    return tau


def _consumed_spiking(node, refuse, to_file) -> ir.Node:
    if node.reset_mode == "none":
        raise refuse("reset_mode", "its LIF, IF and CuBaLIF always reset; write a reset-free neuron as LI -> Threshold")
    reset_timing = "delayed_pre_decay" if isinstance(node, ir.CubaLIF) else "delayed"
    wanted = {"spike_timing": "pre", "comparison": ">", "reset_mode": "subtract", "reset_timing": reset_timing}
    for field, value in wanted.items():
        if getattr(node, field) != value:
            raise refuse(field, f"its neurons spike on V > threshold of the membrane before the update and subtract "
                         f"the threshold with the next input; set {field}={value!r}")  # fmt: skip
    if node.multi_spike:
        raise refuse("spike_mode", "its neurons emit one spike per step at most")
    if node.v_min is not None:
        raise refuse("v_min", "its neurons have no membrane floor")
    if node.v_init is not None and np.any(np.asarray(node.v_init) != 0):
        raise refuse("v_init", "it starts every membrane at 0")
    theta = to_file(node.v_threshold)
    standard = dict(_NIR_NEURON, v_reset=np.zeros(theta.shape), v_threshold=theta, v_init=None, max_spikes=None)
    if isinstance(node, ir.IF):
        if np.any(np.asarray(node.r) != 1):
            raise refuse("r", "its IF adds the input unscaled; set r=1")
        return replace(node, r=np.ones(theta.shape), **standard)
    if isinstance(node, ir.LIF):
        tau = _consumed_leak(node, refuse, "tau", "r", node.integration)
        return replace(node, tau=to_file(tau), r=to_file(tau), v_leak=to_file(node.v_leak), **standard)
    if len(theta.shape) != 1:
        raise refuse("type", f"its CuBaLIF runs only on 1-d layers; this one is {theta.shape}")
    if node.synapse != "decay":
        raise refuse("synapse", "its CuBaLIF decays the current before adding the input")
    tau_mem = _consumed_leak(node, refuse, "tau_mem", "r", "decay")
    tau_syn = _consumed_leak(node, refuse, "tau_syn", "w_in", "decay")
    return replace(node, tau_mem=tau_mem, tau_syn=tau_syn, r=tau_mem.copy(), w_in=tau_syn.copy(),
                   v_leak=np.zeros(theta.shape), **standard)  # fmt: skip
