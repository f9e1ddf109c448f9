"""talon <-> NIR conversion: every primitive both ways, dt, exact lowerings, lossy rules, metadata."""

from __future__ import annotations

import warnings

import nir
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from talon import ir
from talon.interop.nir import (
    LossyConversionWarning,
    NIRCompatibilityWarning,
    from_nir,
    read_nir,
    to_nir,
    write_nir,
)
from talon.interop.nir._common import same_bits
from talon.interop.nir.importer import object_to_dict

from .nir_helpers import ENGINES, chain, nir_chain, run

DT = 1e-4
F32 = np.float32


def import_quiet(graph, **kw) -> ir.Graph:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRCompatibilityWarning)
        return from_nir(graph, **kw)


def export_quiet(graph, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRCompatibilityWarning)
        return to_nir(graph, **kw)


def assert_same_nir(a, b, where="graph"):
    """Two NIR graphs hold the same nodes, fields (bit for bit) and edges."""
    da, db = object_to_dict(a), object_to_dict(b)
    assert list(da["nodes"]) == list(db["nodes"]), where
    assert [tuple(e) for e in da["edges"]] == [tuple(e) for e in db["edges"]], where
    for name in da["nodes"]:
        na, nb = da["nodes"][name], db["nodes"][name]
        assert na["type"] == nb["type"], f"{where}.{name}"
        if na["type"] == "NIRGraph":
            assert_same_nir(a.nodes[name], b.nodes[name], f"{where}.{name}")
            continue
        for key in na.keys() - {"metadata"}:
            va, vb = na[key], nb.get(key)
            if isinstance(va, str) or isinstance(vb, str):
                assert va == vb, f"{where}.{name}.{key}"
            else:
                assert same_bits(np.asarray(va), np.asarray(vb)), f"{where}.{name}.{key}: {va!r} vs {vb!r}"


def talon_round_trip(graph: ir.Graph, **kw) -> ir.Graph:
    back = import_quiet(export_quiet(graph, **kw))
    assert back.metadata.get("nir", {}).get("dt") == kw.get("dt", DT)
    assert ir.graph_differences(graph, back, metadata=False) == []
    return back


# ---- time constants: forward Euler of the NIR equation is talon's update ----------------------


def euler_lif(tau, r, v_leak, x, dt=DT):
    """Forward Euler of tau dv/dt = (v_leak - v) + r x, in float64: (decay, gain, drive)."""
    return 1 - dt / tau, dt * r / tau, dt * v_leak / tau


def test_lif_time_constants_follow_the_euler_identity():
    tau, r, v_leak = np.array([2.5e-3, 1e-3, 7e-4]), np.array([1.0, 10.0, 2.5]), np.array([0.0, 0.3, -0.2])
    g = from_nir(nir_chain([3], ("lif", nir.LIF(tau=tau, r=r, v_leak=v_leak, v_threshold=np.ones(3)))))
    lif = g.nodes["lif"]
    assert (lif.comparison, lif.reset_mode, lif.reset_timing, lif.spike_timing) == (">", "value", "immediate", "post")
    beta, gain, drive = euler_lif(tau, r, v_leak, None)
    np.testing.assert_allclose(1 - 1 / lif.tau, beta, rtol=0, atol=1e-15)
    np.testing.assert_allclose(lif.r / lif.tau, gain, rtol=1e-15)
    np.testing.assert_allclose(lif.v_leak / lif.tau, drive, rtol=1e-15, atol=1e-18)
    assert same_bits(lif.r, r) and same_bits(lif.v_leak, v_leak)


def test_cubalif_if_integrator_and_delay_units():
    ts, tm = np.array([2.2222e-4, 5e-4]), np.array([1e-3, 2e-3])
    cuba = nir.CubaLIF(tau_syn=ts, tau_mem=tm, r=tm / DT, v_leak=np.zeros(2), v_threshold=np.ones(2), w_in=ts / DT)
    g = from_nir(nir_chain([2], ("c", cuba)))
    c = g.nodes["c"]
    np.testing.assert_allclose(c.tau_syn, ts / DT, rtol=1e-15)
    np.testing.assert_allclose(c.tau_mem, tm / DT, rtol=1e-15)
    # w_in = tau_syn/dt and r = tau_mem/dt make both gains exactly 1 (snnTorch's Synaptic)
    np.testing.assert_allclose(c.w_in / c.tau_syn, 1.0, rtol=1e-15)
    np.testing.assert_allclose(c.r / c.tau_mem, 1.0, rtol=1e-15)
    g = from_nir(nir_chain([2], ("if", nir.IF(r=np.array([1.0, 5e3]), v_threshold=np.ones(2)))))
    np.testing.assert_allclose(g.nodes["if"].r, [1e-4, 0.5], rtol=1e-15)  # v += dt * R * I
    g = from_nir(nir_chain([2], ("i", nir.I(r=np.array([2e4, 1.0])))))
    assert isinstance(g.nodes["i"], ir.Integrator)
    np.testing.assert_allclose(g.nodes["i"].r, [2.0, 1e-4], rtol=1e-15)
    g = from_nir(nir_chain([3], ("d", nir.Delay(np.array([0.0, 3e-4, 2e-3])))))
    assert g.nodes["d"].delay.tolist() == [0, 3, 20]
    assert g.nodes["d"].delay.dtype == np.int64


def test_delay_that_is_not_a_whole_number_of_steps_is_refused():
    graph = nir_chain([2], ("d", nir.Delay(np.array([1e-4, 1.5e-4]))))
    with pytest.raises(ir.ConversionError, match=r"node 'd'.*not whole multiples of dt=0.0001"):
        from_nir(graph)
    assert from_nir(graph, dt=5e-5).nodes["d"].delay.tolist() == [2, 3]


@pytest.mark.parametrize("engine", ENGINES)
def test_euler_simulation_of_the_nir_ode_matches_a_talon_engine(engine):
    """An independent float64 forward-Euler simulation of NIR's LIF gives the same spikes."""
    rng = np.random.default_rng(1)
    tau, r, v_leak, theta = rng.uniform(5e-4, 3e-3, 5), rng.uniform(0.5, 3, 5), rng.uniform(-0.1, 0.2, 5), 0.6
    v_reset = rng.uniform(-0.2, 0.1, 5)
    node = nir.LIF(tau=tau, r=r, v_leak=v_leak, v_threshold=np.full(5, theta), v_reset=v_reset)
    g = from_nir(nir_chain([5], ("lif", node)))
    x = rng.uniform(0, 2.5, (300, 1, 5)).astype(F32)
    out = run(engine, g, x)
    v, spikes, vs = np.zeros(5), [], []
    for t in range(300):
        v = v + DT / tau * (v_leak - v + r * x[t, 0].astype(np.float64))
        z = v > theta
        v = np.where(z, v_reset, v)
        spikes.append(z)
        vs.append(v)
    spikes = np.array(spikes, dtype=F32)
    assert 20 < spikes.sum() < 1400
    np.testing.assert_array_equal(out["outputs"]["output"][:, 0], spikes)
    np.testing.assert_allclose(out["states"]["lif"]["v"][:, 0], np.array(vs), atol=2e-6)


# ---- every NIR primitive, NIR -> talon -> NIR ----------------------------------------------------


def _primitives():
    rng = np.random.default_rng(0)
    w = lambda *s: rng.normal(size=s).astype(F32)  # noqa: E731
    yield "Affine", [3], [("a", nir.Affine(w(4, 3), w(4)))], ir.Affine
    yield "Linear", [3], [("a", nir.Linear(w(4, 3)))], ir.Linear
    yield "Scale", [3], [("a", nir.Scale(w(3)))], ir.Scale
    yield "Conv1d", [2, 9], [("a", nir.Conv1d(9, w(4, 2, 3), 2, 1, 1, 1, w(4)))], ir.Conv1d
    yield "Conv2d", [2, 8, 8], [("a", nir.Conv2d((8, 8), w(4, 2, 3, 3), 1, 1, 1, 1, w(4)))], ir.Conv2d
    yield "Conv2d-same", [2, 7, 7], [("a", nir.Conv2d((7, 7), w(4, 2, 3, 5), 1, "same", 1, 1, w(4)))], ir.Conv2d
    yield "Conv2d-valid", [2, 7, 7], [("a", nir.Conv2d((7, 7), w(4, 2, 3, 3), 1, "valid", 1, 1, w(4)))], ir.Conv2d
    s2 = np.array([2, 2])
    yield "SumPool2d", [2, 6, 6], [("a", nir.SumPool2d(s2, s2, np.array([1, 1])))], ir.SumPool2d
    yield "AvgPool2d", [2, 6, 6], [("a", nir.AvgPool2d(s2, np.array([1, 1]), np.array([0, 0])))], ir.AvgPool2d
    yield "Flatten", [2, 3, 4], [("a", nir.Flatten(np.array([2, 3, 4]), start_dim=0, end_dim=-1))], ir.Flatten
    yield "Flatten-partial", [2, 3, 4], [("a", nir.Flatten(np.array([2, 3, 4]), start_dim=1, end_dim=2))], ir.Flatten
    yield "Delay", [3], [("a", nir.Delay(np.array([1e-4, 0.0, 5e-4])))], ir.Delay
    yield "Delay-float32", [3], [("a", nir.Delay(np.array([3e-4, 0.0, 7e-4], F32)))], ir.Delay
    yield "Threshold", [3], [("a", nir.Threshold(w(3)))], ir.Threshold
    yield "I", [3], [("a", nir.I(r=w(3)))], ir.Integrator
    tau = rng.uniform(1e-4, 1e-2, 3).astype(F32)
    yield "LI", [3], [("a", nir.LI(tau=tau, r=w(3), v_leak=w(3)))], ir.LI
    yield "LIF", [3], [("a", nir.LIF(tau=tau, r=w(3), v_leak=w(3), v_threshold=w(3), v_reset=w(3)))], ir.LIF
    yield "IF", [3], [("a", nir.IF(r=w(3), v_threshold=w(3), v_reset=w(3)))], ir.IF
    yield "CubaLI", [3], [("a", nir.CubaLI(tau_syn=tau, tau_mem=tau * 2, r=w(3), v_leak=w(3), w_in=w(3)))], ir.CubaLI
    cubalif = nir.CubaLIF(tau_syn=tau, tau_mem=tau * 3, r=w(3), v_leak=w(3), v_threshold=w(3), v_reset=w(3), w_in=w(3))
    yield "CubaLIF", [3], [("a", cubalif)], ir.CubaLIF
    tau64 = rng.uniform(1e-4, 1e-2, (4, 3, 3))
    yield (
        "IF-conv-shaped",
        [4, 3, 3],
        [("a", nir.LIF(tau=tau64, r=tau64 / DT, v_leak=0 * tau64, v_threshold=1 + tau64))],
        ir.LIF,
    )


PRIMITIVES = list(_primitives())


@pytest.mark.parametrize(
    ("layers", "shape", "talon_type"), [(p[2], p[1], p[3]) for p in PRIMITIVES], ids=[p[0] for p in PRIMITIVES]
)
def test_every_nir_primitive_converts_both_ways_bit_exactly(layers, shape, talon_type):
    original = nir_chain(shape, *layers)
    graph = import_quiet(original)
    assert type(graph.nodes["a"]) is talon_type
    assert list(graph.nodes["a"].output_shape) == list(original.nodes["output"].output_type["output"])
    back = export_quiet(graph)
    assert_same_nir(original, back)
    assert float(back.metadata["dt"]) == DT
    back.check_types()  # the types talon sets are consistent along every edge
    again = import_quiet(back)
    assert ir.graph_differences(graph, again) == []


def test_conv2d_shapes_are_inferred_by_talon_not_by_nir():
    # nir 1.0.8 infers a 3x5 kernel as 3x3 and a grouped conv's channels as C_in/groups (nir.md §1.3)
    w = np.ones((4, 1, 3, 5), F32)
    graph = nir_chain([2, 10, 10], ("c", nir.Conv2d((10, 10), w, 1, 0, 1, 2, np.zeros(4, F32))), type_check=False)
    assert list(graph.nodes["c"].output_type["output"]) == [4, 8, 8]  # nir's (wrong) inference
    del graph.nodes["output"]
    graph.nodes["output"] = nir.Output(np.array([4, 8, 6]))
    g = from_nir(graph)
    assert g.nodes["c"].input_shape == (2, 10, 10)
    assert g.nodes["c"].output_shape == (4, 8, 6)
    with pytest.warns(NIRCompatibilityWarning, match=r"3x5 kernel.*groups=2"):
        back = to_nir(g)
    assert list(back.nodes["c"].output_type["output"]) == [4, 8, 6]
    assert list(back.nodes["c"].input_type["input"]) == [2, 10, 10]


def test_padding_same_with_an_even_kernel_is_refused():
    conv = nir.Conv2d((6, 6), np.ones((1, 1, 2, 2), F32), 1, "same", 1, 1, np.zeros(1, F32))
    with pytest.raises(ir.ConversionError, match=r"node 'a'.*asymmetric padding"):
        from_nir(nir_chain([1, 6, 6], ("a", conv)))


def test_batched_affine_weights_are_refused():
    graph = nir.NIRGraph(
        {
            "input": nir.Input(np.array([2])),
            "a": nir.Linear(np.ones((3, 4, 2))),
            "output": nir.Output(np.array([3, 4])),
        },
        [("input", "a"), ("a", "output")],
        type_check=False,
    )
    with pytest.raises(ir.ConversionError, match=r"node 'a' \(Linear\).*2-d"):
        from_nir(graph)


# ---- every talon primitive NIR can state, talon -> NIR -> talon --------------------------------


def _talon_graphs():
    rng = np.random.default_rng(2)
    w = lambda *s: rng.normal(size=s).astype(F32)  # noqa: E731
    nir_lif = dict(comparison=">")
    yield (
        "affine-lif",
        chain([3], ("a", ir.Affine(w(4, 3), w(4))), ("lif", ir.LIF(tau=w(4) ** 2 + 2, r=w(4), **nir_lif))),
    )
    yield "spiking-affine-hints", chain([3], ("a", ir.SpikingAffine(w(4, 3), spike_mode="rate", weight_bits=4)))
    yield (
        "linear-if",
        chain([3], ("a", ir.Linear(w(2, 3))), ("if", ir.IF(v_threshold=[0.5, 2.0], r=[1.0, 3.0], **nir_lif))),
    )
    yield "scale-per-channel", chain([2, 3, 3], ("s", ir.Scale(w(2, 1, 1))))
    yield "conv1d", chain([2, 9], ("c", ir.Conv1d(w(3, 2, 4), w(3), stride=2, padding=1, dilation=2)))
    yield "sconv", chain([2, 6, 6], ("c", ir.SConv(w(3, 2, 3, 3), padding=(1, 1))))
    yield "sdconv", chain([3, 6, 6], ("c", ir.SDConv(w(3, 1, 3, 3), padding=(1, 1))))
    yield "pools", chain([2, 8, 8], ("p", ir.SumPool2d(2)), ("q", ir.AvgPool2d(3, 1, 1)))
    yield "flatten-negative", chain([2, 3, 4], ("f", ir.Flatten(start_dim=-2, end_dim=-1)))
    yield "delay", chain([3], ("d", ir.Delay(np.array([0, 2, 5]))))
    yield "threshold", chain([3], ("t", ir.Threshold(w(3))))
    yield "li", chain([3], ("n", ir.LI(tau=[2.0, 3.0, np.inf], r=[1.0, 2.0, 3.0], v_leak=[0.1, 0.0, -0.1])))
    yield "cubali", chain([2], ("n", ir.CubaLI(tau_syn=[2.0, 3.0], tau_mem=[4.0, 5.0], w_in=[2.0, 3.0])))
    yield "integrator", chain([2], ("n", ir.Integrator(r=[0.5, 2.0])))
    cuba = ir.CubaLIF(
        tau_syn=[2.0, 5.0], tau_mem=[3.0, 7.0], r=[3.0, 7.0], w_in=[2.0, 5.0], v_reset=[-0.5, 0.25], **nir_lif
    )
    yield "cubalif", chain([2], ("n", cuba))
    per_channel = ir.LIF(tau=np.array([2.0, 3.0], F32), r=np.array([2.0, 3.0], F32), v_threshold=0.5, **nir_lif)
    yield "lif-per-channel-after-conv", chain([1, 5, 5], ("c", ir.Conv2d(w(2, 1, 3, 3))), ("lif", per_channel))
    inner = ir.Graph(
        {
            "input": ir.Input(np.array([3])),
            "lif": ir.LIF(tau=[4.0, 5.0, 6.0], r=[4.0, 5.0, 6.0], **nir_lif),
            "w_rec": ir.Affine(w(3, 3), w(3)),
            "output": ir.Output(np.array([3])),
        },
        [("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
    )
    yield "nested-rnn", chain([2], ("fc", ir.Linear(w(3, 2))), ("rnn", inner))


TALON_GRAPHS = list(_talon_graphs())


@pytest.mark.parametrize("graph", [g for _, g in TALON_GRAPHS], ids=[n for n, _ in TALON_GRAPHS])
def test_talon_graph_survives_nir_bit_exactly(graph, tmp_path):
    nir_graph = export_quiet(graph)
    nir_graph.check_types()
    talon_round_trip(graph)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRCompatibilityWarning)
        write_nir(tmp_path / "g.nir", graph)
    back = read_nir(tmp_path / "g.nir")
    assert ir.graph_differences(graph, back, metadata=False) == []
    assert back.metadata == {"nir": {"dt": DT}}


def test_hints_ride_in_nir_metadata_and_other_tools_see_plain_primitives():
    graph = dict(TALON_GRAPHS)["spiking-affine-hints"]
    nir_graph = to_nir(graph)
    assert type(nir_graph.nodes["a"]) is nir.Affine
    back = from_nir(nir_graph).nodes["a"]
    assert isinstance(back, ir.SpikingAffine) and (back.spike_mode, back.weight_bits) == ("rate", 4)


def test_nested_graph_becomes_a_nested_nir_graph():
    nir_graph = to_nir(dict(TALON_GRAPHS)["nested-rnn"])
    sub = nir_graph.nodes["rnn"]
    assert isinstance(sub, nir.NIRGraph)
    assert sub.edges == [("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")]
    assert "dt" not in sub.metadata


@given(
    tau=st.floats(1.0001, 1e4, allow_nan=False, allow_infinity=False),
    dtype=st.sampled_from([np.float32, np.float64]),
    dt=st.sampled_from([1e-4, 1e-3, 1.0, 3e-5]),
)
def test_time_constants_round_trip_exactly_both_ways(tau, dtype, dt):
    """Rounding never changes a value: x/dt*dt need not give x back, so the other side's value is kept."""
    taus = np.array([tau, tau * 1.37, tau + 1], dtype=dtype)
    talon_graph = chain([3], ("lif", ir.LIF(tau=taus, r=taus, comparison=">")))
    nir_graph = to_nir(talon_graph, dt=dt)
    back = from_nir(nir_graph, dt=dt)
    assert ir.graph_differences(talon_graph, back, metadata=False) == []
    seconds = (taus.astype(np.float64) * 1e-4).astype(dtype)
    nir_in = nir_chain(
        [3], ("lif", nir.LIF(tau=seconds, r=np.ones(3, dtype), v_leak=np.zeros(3), v_threshold=np.ones(3)))
    )
    assert_same_nir(nir_in, to_nir(from_nir(nir_in, dt=dt), dt=dt))


# ---- behaviour NIR cannot state: exact lowerings --------------------------------------------------


RESET_FREE = [
    ("lif", lambda **d: ir.LIF(tau=[2.0, 4.0, 8.0], r=[2.0, 4.0, 8.0], v_threshold=1.0, **d), "LI"),
    ("if", lambda **d: ir.IF(v_threshold=[1.0, 2.0, 1.5], **d), "I"),
    (
        "cubalif",
        lambda **d: ir.CubaLIF(tau_syn=[2.0, 2.0, 4.0], tau_mem=[4.0, 2.0, 8.0], r=4.0, w_in=2.0, **d),
        "CubaLI",
    ),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("spike_timing", ["post", "pre"])
@pytest.mark.parametrize(("name", "make", "membrane"), RESET_FREE, ids=[r[0] for r in RESET_FREE])
def test_reset_free_neuron_is_exactly_a_membrane_and_a_threshold(engine, spike_timing, name, make, membrane):
    timing = "delayed" if spike_timing == "pre" else "immediate"
    node = make(reset_mode="none", comparison=">", reset_timing=timing, spike_timing=spike_timing)
    graph = chain([3], ("n", node))
    nir_graph = to_nir(graph)
    expected_types = [membrane, "Threshold"] + (["Delay"] if spike_timing == "pre" else [])
    assert [type(n).__name__ for k, n in nir_graph.nodes.items() if k.startswith("n")] == expected_types
    lowered = from_nir(nir_graph)
    x = (np.random.default_rng(3).integers(-2, 9, (40, 2, 3)) / 8).astype(F32)
    want, have = run(engine, graph, x), run(engine, lowered, x)
    assert 0 < want["outputs"]["output"].sum() < want["outputs"]["output"].size
    np.testing.assert_array_equal(have["outputs"]["output"], want["outputs"]["output"])
    np.testing.assert_array_equal(have["states"]["n"]["v"], want["states"]["n"]["v"])


def test_pre_spikes_with_a_negative_threshold_are_not_a_delay():
    node = ir.LIF(
        tau=[2.0], v_threshold=-0.5, reset_mode="none", comparison=">", reset_timing="delayed", spike_timing="pre"
    )
    with pytest.raises(ir.ConversionError, match="spike_timing='pre'"):
        to_nir(chain([1], ("n", node)))


def _sum_graph(order):
    eye = np.eye(3, dtype=F32)
    nodes = {
        "input": ir.Input(np.array([3])),
        "a": ir.Linear(eye * 0.1),
        "b": ir.Linear(eye * 0.2),
        "c": ir.Linear(eye * 0.3),
        "s": ir.Skip("residual"),
        "d": ir.Dropout(p=0.3),
        "h": ir.HybridRegion("snn"),
        "output": ir.Output(np.array([3])),
    }
    into_out = [("c", "output"), ("h", "output")] if order == "skip-second" else [("h", "output"), ("c", "output")]
    edges = [("input", "a"), ("input", "b"), ("input", "c"), ("a", "s"), ("b", "s"), ("s", "d"), ("d", "h"), *into_out]
    return ir.Graph(nodes, edges)


@pytest.mark.parametrize("engine", ENGINES)
def test_identities_are_removed_where_the_fan_in_sum_keeps_its_order(engine):
    graph = _sum_graph("skip-first")
    nir_graph = to_nir(graph)
    assert sorted(nir_graph.nodes) == ["a", "b", "c", "input", "output"]
    assert nir_graph.edges == [
        ("input", "a"),
        ("input", "b"),
        ("input", "c"),
        ("a", "output"),
        ("b", "output"),
        ("c", "output"),
    ]
    x = np.random.default_rng(4).normal(size=(5, 2, 3)).astype(F32)
    np.testing.assert_array_equal(
        run(engine, from_nir(nir_graph), x)["outputs"]["output"], run(engine, graph, x)["outputs"]["output"]
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_a_sum_that_would_change_order_becomes_an_exact_scale_of_one(engine):
    graph = _sum_graph("skip-second")  # output = c + (a + b): dropping every identity would give (c + a) + b
    nir_graph = to_nir(graph)
    # the skip and the dropout pass the sum on; the last identity before the output keeps it as Scale(1)
    assert "s" not in nir_graph.nodes and "d" not in nir_graph.nodes
    assert type(nir_graph.nodes["h"]) is nir.Scale and np.all(nir_graph.nodes["h"].scale == 1)
    assert [e for e in nir_graph.edges if e[1] in ("h", "output")] == [
        ("a", "h"),
        ("b", "h"),
        ("c", "output"),
        ("h", "output"),
    ]
    back = from_nir(nir_graph)
    assert isinstance(back.nodes["h"], ir.HybridRegion) and back.nodes["h"].mode == "snn"  # from talon_node
    x = np.random.default_rng(5).normal(size=(5, 2, 3)).astype(F32)
    np.testing.assert_array_equal(run(engine, back, x)["outputs"]["output"], run(engine, graph, x)["outputs"]["output"])


def test_identity_on_a_cycle_is_kept_as_scale():
    nodes = {
        "input": ir.Input(np.array([2])),
        "lif": ir.LIF(tau=[2.0, 2.0], comparison=">"),
        "w": ir.Linear(np.eye(2) * 0.5),
        "s": ir.Skip("passthrough"),
        "output": ir.Output(np.array([2])),
    }
    graph = ir.Graph(nodes, [("input", "lif"), ("lif", "w"), ("w", "s"), ("s", "lif"), ("lif", "output")])
    nir_graph = to_nir(graph)
    assert type(nir_graph.nodes["s"]) is nir.Scale
    assert ir.graph_differences(graph, from_nir(nir_graph), metadata=False) == []


def test_sepconv_is_its_depthwise_and_pointwise_convolutions():
    rng = np.random.default_rng(6)
    sep = ir.SepConv2d(
        rng.normal(size=(2, 1, 3, 3)),
        rng.normal(size=(4, 2, 1, 1)),
        rng.normal(size=2),
        rng.normal(size=4),
        padding=(1, 1),
    )
    with pytest.warns(NIRCompatibilityWarning, match="grouped Conv2d"):
        nir_graph = to_nir(chain([2, 5, 5], ("sep", sep)))
    dw, pw = nir_graph.nodes["sep"], nir_graph.nodes["sep_pointwise"]
    assert dw.groups == 2 and same_bits(dw.weight, sep.depthwise_weight) and same_bits(dw.bias, sep.depthwise_bias)
    assert pw.groups == 1 and same_bits(pw.weight, sep.pointwise_weight) and same_bits(pw.bias, sep.pointwise_bias)
    assert ("sep", "sep_pointwise") in nir_graph.edges and ("sep_pointwise", "output") in nir_graph.edges
    back = from_nir(nir_graph)
    assert back.nodes["sep_pointwise"].output_shape == (4, 5, 5)


# ---- behaviour NIR cannot state: refusal, or lossy with a record --------------------------------


LOSSY = [
    ("ge", dict(comparison=">="), "comparison '>='"),
    ("subtract", dict(comparison=">", reset_mode="subtract"), "reset by subtraction"),
    ("delayed", dict(comparison=">", reset_timing="delayed"), "reset_timing='delayed'"),
    ("pre_decay", dict(comparison=">", reset_timing="delayed_pre_decay"), "reset_timing='delayed_pre_decay'"),
    ("pre", dict(comparison=">", reset_timing="delayed", spike_timing="pre"), "spike_timing='pre'"),
]


@pytest.mark.parametrize(("dynamics", "behaviour"), [(d, b) for _, d, b in LOSSY], ids=[n for n, _, _ in LOSSY])
def test_neuron_behaviour_nir_cannot_state_is_refused_or_converted_with_a_record(dynamics, behaviour):
    graph = chain([3], ("lif", ir.LIF(tau=[2.0, 3.0, 4.0], r=[2.0, 3.0, 4.0], **dynamics)))
    with pytest.raises(ir.ConversionError, match=rf"node 'lif' \(LIF\).*NIR cannot state.*{behaviour}.*lossy=True"):
        to_nir(graph)
    with pytest.warns(LossyConversionWarning, match=rf"lif: .*{behaviour}"):
        nir_graph = to_nir(graph, lossy=True)
    assert behaviour in nir_graph.nodes["lif"].metadata["talon_lossy"]
    assert behaviour in nir_graph.metadata["talon_lossy"]["lif"]
    back = from_nir(nir_graph)
    assert behaviour in back.nodes["lif"].metadata["nir"]["lossy"]
    assert behaviour in back.metadata["nir"]["lossy"]["lif"]
    lif = back.nodes["lif"]
    assert (lif.comparison, lif.reset_mode, lif.reset_timing, lif.spike_timing) == (">", "value", "immediate", "post")


@pytest.mark.parametrize("engine", ENGINES)
def test_lossy_ge_lowering_is_exact_in_float32(engine):
    # inputs land exactly on the threshold: '>=' and '>' differ on every one of them
    graph = chain([3], ("lif", ir.LIF(tau=[2.0, 4.0, 8.0], r=[2.0, 4.0, 8.0], v_threshold=[1.0, 0.5, 0.25])))
    with pytest.warns(LossyConversionWarning):
        back = from_nir(to_nir(graph, lossy=True))
    assert np.all(back.nodes["lif"].v_threshold < graph.nodes["lif"].v_threshold)
    x = (np.random.default_rng(7).integers(0, 9, (40, 2, 3)) / 8).astype(F32)
    want, have = run(engine, graph, x), run(engine, back, x)
    np.testing.assert_array_equal(have["outputs"]["output"], want["outputs"]["output"])
    np.testing.assert_array_equal(have["states"]["lif"]["v"], want["states"]["lif"]["v"])


@pytest.mark.parametrize("engine", ENGINES)
def test_lossy_subtract_becomes_reset_to_zero(engine):
    graph = chain([2], ("if", ir.IF(v_threshold=[1.0, 0.75], reset_mode="subtract", comparison=">")))
    with pytest.warns(LossyConversionWarning):
        back = from_nir(to_nir(graph, lossy=True))
    as_described = chain([2], ("if", ir.IF(v_threshold=[1.0, 0.75], reset_mode="value", v_reset=0.0, comparison=">")))
    assert ir.graph_differences(back, as_described, metadata=False) == []
    x = (np.random.default_rng(8).integers(0, 12, (30, 1, 2)) / 8).astype(F32)
    assert not np.array_equal(run(engine, graph, x)["states"]["if"]["v"], run(engine, back, x)["states"]["if"]["v"])


def test_batchnorm_is_refused_or_folded_with_lossy():
    rng = np.random.default_rng(9)
    bn = ir.BatchNorm1d(4, rng.normal(size=4), rng.normal(size=4), rng.normal(size=4), rng.uniform(0.5, 2, 4))
    graph = chain([4], ("bn", bn))
    with pytest.raises(ir.ConversionError, match=r"node 'bn' \(BatchNorm1d\).*lossy=True"):
        to_nir(graph)
    with pytest.warns(LossyConversionWarning, match="BatchNorm1d folded"):
        nir_graph = to_nir(graph, lossy=True)
    x = rng.normal(size=(6, 4))
    expected = (x - bn.running_mean) / np.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    affine = nir_graph.nodes["bn"]
    np.testing.assert_allclose(x @ affine.weight.T + affine.bias, expected, rtol=1e-6, atol=1e-6)


def test_avgpool_divisor_override_is_lossy():
    graph = chain([1, 4, 4], ("p", ir.AvgPool2d(2, divisor_override=3)))
    with pytest.raises(ir.ConversionError, match="divisor_override"):
        to_nir(graph)
    with pytest.warns(LossyConversionWarning):
        nir_graph = to_nir(graph, lossy=True)
    assert type(nir_graph.nodes["p"]) is nir.SumPool2d and type(nir_graph.nodes["p_scale"]) is nir.Scale


REFUSED = [
    ("maxpool", chain([1, 4, 4], ("x", ir.MaxPool2d(2))), "max pooling"),
    ("relu", chain([3], ("x", ir.ReLU())), "no such primitive"),
    ("concat-skip", None, "concatenation"),
    ("layernorm", chain([3], ("x", ir.LayerNorm((3,)))), "normalization"),
    ("upsample", chain([1, 2, 2], ("x", ir.Upsample(2))), "upsampling"),
    ("affine-on-2d", chain([2, 3], ("x", ir.Linear(np.ones((4, 3))))), "1-d inputs"),
]


@pytest.mark.parametrize(("graph", "reason"), [(g, r) for _, g, r in REFUSED], ids=[n for n, _, _ in REFUSED])
def test_nodes_without_nir_counterpart_are_refused_even_lossy(graph, reason):
    if graph is None:
        nodes = {"input": ir.Input(np.array([2])), "x": ir.Skip("concatenate"), "output": ir.Output(np.array([4]))}
        graph = ir.Graph(nodes, [("input", "x"), ("input", "x"), ("x", "output")])
    with pytest.raises(ir.ConversionError, match=rf"node 'x'.*{reason}"):
        to_nir(graph, lossy=True)


def test_channel_split_and_concat_are_refused():
    nodes = {
        "input": ir.Input(np.array([4])),
        "x": ir.ChannelSplit([2, 2]),
        "c": ir.Concat(),
        "output": ir.Output(np.array([4])),
    }
    graph = ir.Graph(nodes, [("input", "x"), ("x", "c"), ("x", "c"), ("c", "output")])
    with pytest.raises(ir.ConversionError, match=r"node 'x' \(ChannelSplit\).*multi-output"):
        to_nir(graph, lossy=True)


def test_node_names_with_a_slash_are_refused():
    graph = chain([2], ("a/b", ir.Linear(np.eye(2))))
    with pytest.raises(ir.ConversionError, match=r"'a/b'.*cannot contain '/'"):
        to_nir(graph)


@pytest.mark.parametrize("reset_mode", ["value", "none"])
def test_a_float32_w_in_next_to_a_float64_v_leak_survives_nir(reset_mode):
    """NIR's Cuba* rebuild ``w_in`` as ``ones_like(v_leak) * w_in`` (taking ``v_leak``'s dtype): the
    export keeps talon's float32 ``w_in``, so the graph comes back (a per-channel CubaLIF after a
    convolution used to come back with parameters of two shapes and was refused)."""
    neuron = ir.CubaLIF(
        tau_syn=np.array([3.0, 5.0]),
        tau_mem=np.array([4.0, 2.0]),
        r=np.array([1.5, 2.0], F32),
        v_leak=np.zeros(2),  # float64
        w_in=np.array([1.25, 2.5], F32),
        v_threshold=np.array([1.0, 0.5], F32),
        reset_mode=reset_mode,
        comparison=">",
    )
    conv = ir.Graph(
        {
            "input": ir.Input(np.array([1, 3, 3])),
            "conv": ir.Conv2d(np.ones((2, 1, 1, 1), F32), np.zeros(2, F32)),
            "n": neuron,
            "output": ir.Output(np.array([2, 3, 3])),
        },
        [("input", "conv"), ("conv", "n"), ("n", "output")],
    )
    back = import_quiet(export_quiet(conv, dt=DT), dt=DT)
    assert back.nodes["n"].w_in.dtype == F32 and back.nodes["n"].w_in.shape == (2,)
    params = {k: getattr(neuron, k) for k in ("tau_syn", "tau_mem", "r", "v_leak", "w_in")}
    flat = chain([2], ("n", ir.CubaLIF(**params, comparison=">")))
    back_flat = import_quiet(export_quiet(flat, dt=DT), dt=DT)
    assert ir.graph_differences(flat, back_flat, metadata=False) == []


def test_a_lossy_per_channel_neuron_after_a_convolution_reads_back():
    """A lossy export writes NIR's full-shape threshold (just below ``v_threshold``) and zero ``v_reset``
    next to per-channel parameters the import restores as ``(C,)``: the import broadcasts the restored
    ones instead of building a node with parameters of two shapes (which was refused)."""
    lif = ir.LIF(tau=np.array([2.0, 3.0]), r=np.array([1.0, 2.0], F32), v_threshold=np.array([1.0, 0.5], F32),
                 reset_mode="subtract")  # fmt: skip
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([1, 3, 3])),
            "conv": ir.Conv2d(np.full((2, 1, 1, 1), 0.5, F32), np.zeros(2, F32)),
            "lif": lif,
            "output": ir.Output(np.array([2, 3, 3])),
        },
        [("input", "conv"), ("conv", "lif"), ("lif", "output")],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LossyConversionWarning)
        back = import_quiet(export_quiet(graph, dt=DT, lossy=True), dt=DT)
    node = back.nodes["lif"]
    assert {np.shape(getattr(node, f)) for f in ("tau", "r", "v_leak", "v_threshold", "v_reset")} == {(2, 3, 3)}
    np.testing.assert_array_equal(node.tau, np.broadcast_to(np.array([2.0, 3.0])[:, None, None], (2, 3, 3)))
