"""``reset_gradient`` is part of the model: validated, kept by ``.t1c`` and NIR files, invisible where it
is the default (older files and fingerprints stay what they were), honoured and overridable by both
engines (docs/semantics.md §3.1)."""

import zlib

import h5py
import numpy as np
import pytest

from talon import ir
from talon.sdk.fingerprint import fingerprint_graph


def _graph(reset_gradient="detached", reset_mode="subtract") -> ir.Graph:
    rng = np.random.default_rng(0)
    return ir.Graph(
        {
            "input": ir.Input(np.array([4])),
            "fc": ir.Affine(weight=rng.normal(0, 1, (5, 4)).astype(np.float32), bias=np.zeros(5, np.float32)),
            "lif": ir.LIF(
                tau=np.full(5, 4.0),
                r=np.full(5, 4.0),
                v_threshold=np.ones(5),
                v_reset=np.full(5, -0.5),
                reset_mode=reset_mode,
                comparison=">",
                reset_gradient=reset_gradient,
            ),
            "output": ir.Output(np.array([5])),
        },
        [("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )


def test_the_field_is_validated_and_named():
    for cls, args in ((ir.LIF, {"tau": 2.0}), (ir.IF, {}), (ir.CubaLIF, {"tau_syn": 2.0, "tau_mem": 3.0})):
        assert cls(**args).reset_gradient is ir.ResetGradient.DETACHED
        assert cls(**args, reset_gradient="THROUGH").reset_gradient is ir.ResetGradient.THROUGH
        with pytest.raises(ValueError, match=r"reset_gradient='surrogate' is not one of 'detached', 'through'"):
            cls(**args, reset_gradient="surrogate")


def test_t1c_round_trip_keeps_it(tmp_path):
    for convention in ("detached", "through"):
        ir.write(tmp_path / f"{convention}.t1c", _graph(convention))
        node = ir.read(tmp_path / f"{convention}.t1c").nodes["lif"]
        assert node.reset_gradient == convention
    assert ir.graph_differences(_graph("through"), ir.read(tmp_path / "through.t1c")) == []


def test_the_default_is_left_out_of_files_and_fingerprints(tmp_path):
    """A graph that does not use the field writes the file it wrote before the field existed (so an
    older file reads as 'detached', the convention it was trained with), and fingerprints as before."""
    ir.write(tmp_path / "default.t1c", _graph("detached"))
    ir.write(tmp_path / "through.t1c", _graph("through"))

    def texts(path) -> str:  # the manifest (zlib-compressed JSON) holds every node field
        with h5py.File(path, "r") as f:
            return zlib.decompress(bytes(f["manifest"][()])).decode()

    assert "reset_gradient" not in texts(tmp_path / "default.t1c")
    assert "through" in texts(tmp_path / "through.t1c")
    assert "reset_gradient" not in repr(_graph("detached").nodes["lif"])
    assert fingerprint_graph(_graph("detached")) != fingerprint_graph(_graph("through"))
    assert "reset_gradient" not in _graph("detached").nodes["lif"].stored_params()


def test_nir_round_trip_records_it():
    pytest.importorskip("nir")
    from talon.interop.nir import from_nir, to_nir

    for convention in ("detached", "through"):
        graph = _graph(convention, reset_mode="value")
        nir_graph = to_nir(graph)
        recorded = [n.metadata.get("talon_reset_gradient") for n in nir_graph.nodes.values()]
        assert recorded.count("through") == (convention == "through")
        assert from_nir(nir_graph).nodes["lif"].reset_gradient == convention


def test_nir_file_round_trip_records_it(tmp_path):
    pytest.importorskip("nir")
    from talon.interop.nir import read_nir, write_nir

    write_nir(tmp_path / "g.nir", _graph("through", reset_mode="value"))
    assert read_nir(tmp_path / "g.nir").nodes["lif"].reset_gradient == "through"


def test_engines_honour_and_override_it():
    """The node's convention by default, the override when given; the forward is the same bits."""
    jax = pytest.importorskip("jax")
    torch = pytest.importorskip("torch")
    import jax.numpy as jnp

    from talon import bridge
    from talon.interop.jax import JaxGraph

    xs = np.random.default_rng(1).normal(0.8, 1.5, (20, 2, 4)).astype(np.float32)

    def jax_grad(graph, **options):
        engine = JaxGraph(graph, surrogate="atan", **options)
        y, _ = engine.run(engine.params, jnp.asarray(xs))
        g = jax.grad(lambda p: engine.run(p, jnp.asarray(xs))[0].sum())(engine.params)
        return np.asarray(y), np.asarray(g["fc"]["weight"])

    def torch_grad(graph, **options):
        executor = bridge.ir_to_torch(graph, **options)
        y, _ = executor.run_sequence(torch.from_numpy(xs))
        y.sum().backward()
        assert executor.graph.nodes["lif"].reset_gradient == graph.nodes["lif"].reset_gradient  # recorded as is
        again = bridge.to_ir(executor, torch.zeros(1, 4))  # a re-export keeps the graph's own
        assert again.nodes["lif"].reset_gradient == graph.nodes["lif"].reset_gradient
        return y.detach().numpy(), executor.module_of("fc").weight.grad.numpy()

    for grad in (jax_grad, torch_grad):
        for mode in ("subtract", "value"):
            y_detached, g_detached = grad(_graph("detached", mode))
            y_through, g_through = grad(_graph("through", mode))
            assert 0.05 < y_detached.mean() < 0.95
            np.testing.assert_array_equal(y_detached, y_through)
            assert not np.allclose(g_detached, g_through, rtol=1e-3, atol=0)
            np.testing.assert_array_equal(grad(_graph("detached", mode), reset_gradient="through")[1], g_through)
            np.testing.assert_array_equal(grad(_graph("through", mode), reset_gradient="detached")[1], g_detached)
    with pytest.raises(ValueError, match=r"JaxGraph: reset_gradient='both' is not one of"):
        JaxGraph(_graph(), reset_gradient="both")
    with pytest.raises(ValueError, match=r"ir_to_torch: reset_gradient='both' is not one of"):
        bridge.ir_to_torch(_graph(), reset_gradient="both")


def test_spyx_from_ir_warns_that_spyx_trains_through_the_reset():
    pytest.importorskip("spyx")
    from talon.interop import spyx as tspyx

    graph = ir.Graph(
        {
            "input": ir.Input(np.array([3])),
            "lif": ir.LIF(
                tau=np.full(3, 5.0),
                r=np.full(3, 5.0),
                reset_mode="subtract",
                reset_timing="delayed",
                spike_timing="pre",
                comparison=">",
            ),
            "output": ir.Output(np.array([3])),
        },
        [("input", "lif"), ("lif", "output")],
    )
    with pytest.warns(tspyx.ResetGradientWarning, match=r"node 'lif' \(LIF\): reset_gradient='detached'"):
        tspyx.from_ir(graph)
    graph.nodes["lif"].reset_gradient = ir.ResetGradient.THROUGH
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", tspyx.ResetGradientWarning)
        tspyx.from_ir(graph)
