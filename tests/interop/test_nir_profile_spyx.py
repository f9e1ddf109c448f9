"""The Spyx 1.0.0 profile against real Spyx (JAX on CPU): its own models, exported by ``spyx.nir.to_nir``,
spike in talon with ``producer="spyx"`` exactly as the Spyx model itself (and ``spyx.nir.from_nir``) runs
them, and talon graphs written with ``consumer="spyx"`` run in ``spyx.nir.from_nir`` exactly as in talon,
or are refused naming the field. T = 120 steps; every model's output layer fires on 5-95 % of the steps."""

from __future__ import annotations

import itertools
import warnings
from dataclasses import replace

import numpy as np
import pytest

from talon import ir
from talon.backend import get_backend
from talon.interop.nir import read_nir, write_nir
from talon.interop.nir.profile_spyx import spyx_decay

jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx")
snn = pytest.importorskip("spyx.nn")
snir = pytest.importorskip("spyx.nir")
nir = pytest.importorskip("nir")
torch = pytest.importorskip("torch")
import jax.numpy as jnp  # noqa: E402

from talon.interop import spyx as tspyx  # noqa: E402

T, B = 120, 2
R = nnx.Rngs(3)


def _init(scale, seed, mean=0.0):
    rng = np.random.default_rng(seed)
    return lambda key, shape, dtype=jnp.float32: jnp.asarray(rng.normal(mean, scale, shape), dtype)


def dense(n_in, n_out, seed, bias=True):
    return nnx.Linear(n_in, n_out, use_bias=bias, kernel_init=_init(0.9 / np.sqrt(n_in), seed, 0.15),
                      bias_init=_init(0.1, seed + 50), rngs=R)  # fmt: skip


def lif():
    beta = jnp.asarray(np.random.default_rng(0).uniform(0.5, 0.98, 7), jnp.float32)  # per-neuron decays
    layer = snn.LIF((7,), beta=0.9, threshold=0.8, rngs=R)
    layer.beta = nnx.Param(beta)
    return snn.Sequential(dense(6, 7, 1, bias=False), layer), (6,), (7,)


def if_():
    return snn.Sequential(dense(6, 5, 2), snn.IF((5,), threshold=1.2)), (6,), (5,)


def cubalif():
    return snn.Sequential(dense(6, 5, 3), snn.CuBaLIF((5,), alpha=0.7, beta=0.85, threshold=1.0, rngs=R)), (6,), (5,)


def psu_lif():
    return snn.Sequential(dense(6, 4, 4), snn.PSU_LIF((4,), beta=0.6, threshold=0.9, rngs=R)), (6,), (4,)


def conv_chain():
    conv = nnx.Conv(2, 3, (3, 3), padding="SAME", kernel_init=_init(0.45, 5, 0.05), bias_init=_init(0.1, 6), rngs=R)
    model = snn.Sequential(conv, snn.LIF((6, 6, 3), beta=0.8, rngs=R), snn.SumPool((2, 2), (2, 2), "VALID"),
                           snn.Flatten(), dense(27, 5, 7), snn.IF((5,), threshold=3.0))  # fmt: skip
    return model, (6, 6, 2), (5,)


MODELS = [lif, if_, cubalif, psu_lif, conv_chain]


def spyx_run(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(snn.run(model, jnp.asarray(x))[0])


def channels_first(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(x, -1, 2)) if x.ndim == 5 else x


def talon_runs(graph: ir.Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """The CPU backend and the PyTorch executor's run_sequence on the same (channels-first) input."""
    from talon.bridge import ir_to_torch

    cpu = next(iter(get_backend("cpu").simulate(graph, x).outputs.values()))
    with torch.no_grad():
        seq = ir_to_torch(graph).run_sequence(torch.from_numpy(x))[0].numpy()
    return {"cpu": np.asarray(cpu), "torch": seq}


def spyx_file(model, nir_shape, out_shape, path, dt=1.0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nir.write(path, snir.to_nir(model, {"input": nir_shape}, {"output": out_shape}, dt=dt))
    return path


def spyx_from_file(path, x: np.ndarray, dt=1.0) -> np.ndarray:
    """What Spyx's own importer runs from the file (``x`` channels-last, as Spyx takes it)."""
    return np.asarray(snir.from_nir(nir.read(path), jnp.asarray(x), dt=dt)[1])


@pytest.mark.parametrize("build", MODELS, ids=lambda f: f.__name__)
def test_spyx_models_spike_in_talon_as_in_spyx(build, tmp_path, capsys):
    model, shape, out_shape = build()
    x = np.random.default_rng(1).normal(0.5, 1.0, (T, B, *shape)).astype(np.float32)
    theirs = spyx_run(model, x)
    nir_shape = (shape[-1], *shape[:-1]) if len(shape) == 3 else shape
    path = spyx_file(model, nir_shape, out_shape, tmp_path / "spyx.nir")
    assert np.array_equal(spyx_from_file(path, x), theirs)  # Spyx's importer runs its own model
    assert 0.05 < theirs.mean() < 0.95, f"fires on {theirs.mean():.1%} of the steps"
    graph = read_nir(path, producer="spyx")
    assert graph.metadata["nir"]["producer"] == "spyx 1.0.0"
    for engine, ours in talon_runs(graph, channels_first(x)).items():
        assert np.array_equal(ours, theirs), f"{engine}: {(ours != theirs).sum()} of {ours.size} differ"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        standard = read_nir(path, dt=1.0)  # NIR's own reading of the file
    differ = int((talon_runs(standard, channels_first(x))["cpu"] != theirs).sum())
    print(f"{build.__name__}: firing {theirs.mean():.1%}, NIR-standard reading differs in {differ} of {theirs.size}")
    assert differ > 0


def test_the_importer_dt_is_the_one_spyx_runs_at(tmp_path):
    model, shape, out_shape = lif()
    x = np.random.default_rng(2).normal(0.5, 1.0, (T, B, *shape)).astype(np.float32)
    path = spyx_file(model, shape, out_shape, tmp_path / "spyx.nir", dt=1e-3)  # tau = 1e-3 / (1 - beta)
    theirs = spyx_from_file(path, x, dt=1e-3)
    assert np.array_equal(theirs, spyx_run(model, x))
    graph = read_nir(path, producer="spyx", dt=1e-3)
    assert graph.metadata["nir"]["dt"] == 1e-3
    for engine, ours in talon_runs(graph, x).items():
        assert np.array_equal(ours, theirs), f"{engine}: {(ours != theirs).sum()} differ"
    at_one = talon_runs(read_nir(path, producer="spyx"), x)["cpu"]  # what from_nir's default dt = 1 would run
    assert np.array_equal(at_one, spyx_from_file(path, x))


def _file(tmp_path, nodes, edges, name="f.nir"):
    path = tmp_path / name
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    return path


def _chain(*middle):
    nodes = {"input": nir.Input({"input": np.array([3])}), "output": nir.Output({"output": np.array([3])})}
    names = [f"n{i}" for i in range(len(middle))]
    nodes.update(zip(names, middle, strict=True))
    path = ["input", *names, "output"]
    return nodes, list(itertools.pairwise(path))


def test_files_spyx_would_drop_or_run_differently_are_refused_by_name(tmp_path):
    lif3 = nir.LIF(tau=np.full(3, 5.0), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3))
    cases = [
        (_chain(nir.Delay(np.ones(3)), lif3), r"'n0' \(Delay\): Spyx's importer has no mapping for it and drops it"),
        (_chain(nir.LI(tau=np.full(3, 5.0), r=np.ones(3), v_leak=np.zeros(3))), r"'n0' \(LI\): .* not followed by a "
         "Threshold"),
        (_chain(nir.Threshold(np.ones(3))), r"'n0' \(Threshold\): .* drops it"),
    ]  # fmt: skip
    for i, ((nodes, edges), match) in enumerate(cases):
        with pytest.raises(ir.ConversionError, match=match):
            read_nir(_file(tmp_path, nodes, edges, f"{i}.nir"), producer="spyx")
    nodes, edges = _chain(lif3)
    nodes["side"] = nir.LIF(tau=np.full(3, 5.0), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3))
    edges = [*edges, ("input", "side"), ("side", "output")]
    with pytest.raises(ir.ConversionError, match="node 'input' has 2 outgoing edges; Spyx's importer follows one"):
        read_nir(_file(tmp_path, nodes, edges, "branch.nir"), producer="spyx", type_check=False)
    renamed = {"in": nodes["input"], "n0": lif3, "out": nodes["output"]}
    with pytest.raises(ir.ConversionError, match="starts at the Input node named 'input'"):
        read_nir(_file(tmp_path, renamed, [("in", "n0"), ("n0", "out")], "names.nir"), producer="spyx")
    with pytest.raises(ir.ConversionError, match=r"'pool' \(SumPool2d\): Spyx pools .* 'SAME', here the uneven"):
        read_nir(pooled(tmp_path, stride=2), producer="spyx")
    recurrent = snn.Sequential(dense(6, 5, 8), snn.RLIF((5,), beta=0.8, rngs=R))
    path = spyx_file(recurrent, (6,), (5,), tmp_path / "rlif.nir")
    with pytest.raises(ir.ConversionError, match=r"\(a subgraph\)|RIF/RLIF/RCuBaLIF"):
        read_nir(path, producer="spyx")


def pooled(tmp_path, stride: int):
    """IF -> SumPool2d(3, stride, padding 1) -> Flatten -> Affine -> IF on a (2, 6, 6) input, written by hand
    (Spyx's own exporter writes SAME pooling's total padding per side, which NIR's type check rejects)."""
    rng = np.random.default_rng(12)
    out = (6 + 2 - 3) // stride + 1
    nodes = {
        "input": nir.Input({"input": np.array([2, 6, 6])}),
        "if0": nir.IF(r=np.ones((2, 6, 6)), v_threshold=np.full((2, 6, 6), 0.8)),
        "pool": nir.SumPool2d(
            kernel_size=np.array([3, 3]), stride=np.array([stride, stride]), padding=np.array([1, 1])
        ),
        "flat": nir.Flatten({"input": np.array([2, out, out])}, start_dim=0),
        "dense": nir.Affine(rng.normal(0.0, 0.3, (3, 2 * out * out)).astype(np.float32), np.zeros(3, np.float32)),
        "if1": nir.IF(r=np.ones(3), v_threshold=np.full(3, 2.0)),
        "output": nir.Output({"output": np.array([3])}),
    }
    edges = [
        ("input", "if0"),
        ("if0", "pool"),
        ("pool", "flat"),
        ("flat", "dense"),
        ("dense", "if1"),
        ("if1", "output"),
    ]
    return _file(tmp_path, nodes, edges, f"pool{stride}.nir")


def test_nonzero_sum_pool_padding_runs_as_jax_same(tmp_path):
    x = np.random.default_rng(6).normal(0.5, 1.0, (T, B, 6, 6, 2)).astype(np.float32)
    path = pooled(tmp_path, stride=1)
    theirs = spyx_from_file(path, x)
    print(f"SAME pooling: firing {theirs.mean():.1%}")
    assert 0.05 < theirs.mean() < 0.95
    for engine, ours in talon_runs(read_nir(path, producer="spyx"), channels_first(x)).items():
        assert np.array_equal(ours, theirs), f"{engine}: {(ours != theirs).sum()} of {ours.size} differ"


# ---- consumer ----------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [lif, if_, cubalif, conv_chain], ids=lambda f: f.__name__)
def test_talon_graphs_run_in_spyx_exactly(build, tmp_path):
    model, shape, _ = build()
    graph = tspyx.to_ir(model, shape)  # talon's exact statement of the Spyx model
    x = np.random.default_rng(3).normal(0.5, 1.0, (T, B, *shape)).astype(np.float32)
    ours = talon_runs(graph, channels_first(x))["cpu"]
    assert 0.05 < ours.mean() < 0.95
    write_nir(tmp_path / "talon.nir", graph, consumer="spyx")
    written = nir.read(tmp_path / "talon.nir")
    for name, node in graph.nodes.items():  # Spyx's float32 decays from the file are talon's, bit for bit
        for field in ("tau", "tau_mem", "tau_syn"):
            if isinstance(node, (ir.LIF, ir.CubaLIF)) and hasattr(node, field):
                talon_decay = (1 - 1 / np.asarray(getattr(node, field), np.float64)).astype(np.float32)
                assert np.array_equal(spyx_decay(getattr(written.nodes[name], field), 1), talon_decay), (name, field)
    theirs = spyx_from_file(tmp_path / "talon.nir", x)
    print(f"{build.__name__}: firing {ours.mean():.1%}, {(theirs != ours).sum()} of {ours.size} differ in Spyx")
    assert np.array_equal(theirs, ours), f"{(theirs != ours).sum()} of {ours.size} differ"


def test_a_spyx_file_read_and_written_back_runs_in_spyx_unchanged(tmp_path):
    model, shape, out_shape = psu_lif()
    x = np.random.default_rng(4).normal(0.5, 1.0, (T, B, *shape)).astype(np.float32)
    graph = read_nir(spyx_file(model, shape, out_shape, tmp_path / "spyx.nir"), producer="spyx")
    write_nir(tmp_path / "back.nir", graph, consumer="spyx")
    theirs = spyx_from_file(tmp_path / "back.nir", x)
    assert np.array_equal(theirs, spyx_run(model, x))
    assert np.array_equal(theirs, talon_runs(graph, x)["cpu"])


def _spyx_lif(**changes):
    graph = tspyx.to_ir(lif()[0], (6,))
    node = replace(graph.nodes["layer_1"], **changes)
    return ir.Graph({**graph.nodes, "layer_1": node}, graph.edges)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"spike_timing": "post"}, "would misread 'spike_timing'"),
        ({"reset_mode": "value"}, "would misread 'reset_mode'"),
        ({"comparison": ">="}, "would misread 'comparison'"),
        ({"r": np.full(7, 3.0)}, "would misread 'r': it adds the input unscaled"),
        ({"v_leak": np.full(7, 0.1)}, "would misread 'v_leak'"),
        ({"integration": "euler"}, "would misread 'integration'"),
        ({"v_init": np.full(7, 0.2)}, "would misread 'v_init'"),
    ],
)
def test_talon_graphs_spyx_would_misread_are_refused_naming_the_field(changes, match, tmp_path):
    with pytest.raises(ir.ConversionError, match=r"node 'layer_1' \(LIF\): Spyx 1.0.0 " + match):
        write_nir(tmp_path / "x.nir", _spyx_lif(**changes), consumer="spyx")
    assert not (tmp_path / "x.nir").exists()


def test_consumer_spyx_refuses_other_dt_and_unmapped_nodes(tmp_path):
    with pytest.raises(ir.ConversionError, match=r"consumer='spyx' writes at dt=1\.0"):
        write_nir(tmp_path / "x.nir", _spyx_lif(), consumer="spyx", dt=1e-3)
    graph = _spyx_lif()
    delayed = ir.Graph({**graph.nodes, "d": ir.Delay(np.ones(7, np.int64))},
                       [("input", "layer_0"), ("layer_0", "d"), ("d", "layer_1"), ("layer_1", "output")])  # fmt: skip
    with pytest.raises(ir.ConversionError, match=r"node 'd' \(Delay\): Spyx 1.0.0 would misread 'type'"):
        write_nir(tmp_path / "x.nir", delayed, consumer="spyx")


def test_membranes_differ_from_spyx_only_by_xlas_fused_multiply_add(tmp_path):
    """Spikes are identical above, membranes are not bit for bit: XLA:CPU contracts Spyx's ``beta*V + x`` into
    one fused multiply-add (one rounding), talon's engines round the product and the sum. An IF (no
    multiply) is bit-exact; a PSU_LIF's membrane is talon's exactly when the FMA is emulated."""
    x = np.random.default_rng(5).normal(0.3, 1.0, (T, B, 7)).astype(np.float32)
    for layer in (snn.IF((7,), threshold=1.2), snn.PSU_LIF((7,), beta=0.6, threshold=0.9, rngs=R)):
        path = spyx_file(snn.Sequential(layer), (7,), (7,), tmp_path / f"{type(layer).__name__}.nir")
        spikes, states = snir.from_nir(nir.read(path), jnp.asarray(x), return_all_states=True)[1]
        theirs = np.asarray(states[0])
        graph = read_nir(path, producer="spyx")
        result = get_backend("cpu").simulate(graph, x, step_by_step=True)
        ours = np.asarray(result.node_states[graph.successors("input")[0]]["v"])
        assert np.array_equal(next(iter(result.outputs.values())), np.asarray(spikes))
        if isinstance(layer, snn.IF):
            assert np.array_equal(ours, theirs)
            continue
        assert (ours != theirs).sum() > 0.1 * ours.size
        plain, fused = np.zeros((B, 7), np.float32), np.zeros((B, 7), np.float32)
        beta = np.float32(0.6)
        for t in range(T):
            plain = beta * plain + x[t]
            fused = (np.float64(beta) * fused + x[t].astype(np.float64)).astype(np.float32)  # fma: exact product
            assert np.array_equal(ours[t], plain) and np.array_equal(theirs[t], fused), t
