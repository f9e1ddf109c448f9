"""``surrogate`` is part of the model: validated and canonical, kept by ``.t1c`` and NIR files, left
out where it is the default (files and fingerprints of graphs that do not state one stay what they
were), honoured and overridable by both engines (talon.ir.surrogate)."""

import re
import zlib

import h5py
import numpy as np
import pytest

from talon import ir
from talon.sdk.fingerprint import fingerprint_graph

SPIKING = ((ir.LIF, {"tau": 2.0}), (ir.IF, {}), (ir.CubaLIF, {"tau_syn": 2.0, "tau_mem": 3.0}), (ir.Threshold, {}))


def _graph(surrogate: str = ir.DEFAULT_SURROGATE, reset_mode: str = "value") -> ir.Graph:
    rng = np.random.default_rng(0)
    return ir.Graph(
        {
            "input": ir.Input(np.array([4])),
            "fc": ir.Affine(weight=rng.normal(0, 1, (5, 4)).astype(np.float32), bias=np.zeros(5, np.float32)),
            "lif": ir.LIF(
                tau=np.full(5, 4.0), r=np.full(5, 4.0), reset_mode=reset_mode, comparison=">", surrogate=surrogate
            ),
            "spike": ir.Threshold(threshold=np.full(5, 0.5), surrogate=surrogate),
            "output": ir.Output(np.array([5])),
        },
        [("input", "fc"), ("fc", "lif"), ("lif", "spike"), ("spike", "output")],
    )


def test_the_field_is_canonical_validated_and_named():
    for cls, args in SPIKING:
        assert cls(**args).surrogate == "atan(alpha=2.0)"
        assert cls(**args, surrogate="atan").surrogate == "atan(alpha=2.0)"
        assert cls(**args, surrogate=" SuperSpike( k = 10 ) ").surrogate == "superspike(k=10.0)"
        assert cls(**args, surrogate="fast_sigmoid(slope=5)").surrogate == "superspike(k=5.0)"
        assert cls(**args, surrogate="triangular").surrogate == "triangle(alpha=1.0, k=2.0)"
        assert cls(**args, surrogate="boxcar(height=0.25)").surrogate == "boxcar(width=2.0, height=0.25)"
        assert cls(**args, surrogate="straight_through_estimator()").surrogate == "straight_through"
        name = cls.__name__
        for bad, message in (
            ("sigmoidish", rf"{name}: surrogate kind 'sigmoidish' is unknown; kinds are atan\(alpha\), arctan\(k\)"),
            ("atan(k=2)", rf"{name}: surrogate 'atan' takes \['alpha'\], got \['k'\]"),
            ("atan(alpha=inf)", rf"{name}: surrogate='atan\(alpha=inf\)': alpha must be finite"),
            ("atan(alpha=two)", rf"{name}: surrogate='atan\(alpha=two\)': alpha must be a number"),
            ("atan(alpha=1, alpha=2)", r"alpha is given twice"),
            ("none(x=1)", r"surrogate 'none' takes no parameters, got \['x'\]"),
            (2.0, rf"{name}: surrogate must be a string such as 'atan\(alpha=2.0\)', got 2.0"),
        ):
            with pytest.raises(ValueError, match=message):
                cls(**args, surrogate=bad)


def test_every_kind_round_trips_its_text():
    for kind, params in ir.SURROGATE_KINDS.items():
        values = {p: default + (1.0 if p == "n" else 0.5) for p, default in params}  # n: a whole number
        text = ir.format_surrogate(kind, **values)
        assert ir.surrogate_parts(text) == (kind, values)
        assert ir.canonical_surrogate(text) == text


def test_parameters_outside_a_kinds_domain_are_refused():
    """Where SpikingJelly's formula needs it (its own asserts, or a division by zero)."""
    for bad, needs in (
        ("soft_sign(alpha=0)", "alpha > 0"),
        ("piecewise_leaky_relu(w=-1)", "w > 0"),
        ("squarewave_fourier(n=2.5)", "n a whole number >= 1 and period > 0"),
        ("squarewave_fourier(n=0)", "n a whole number >= 1 and period > 0"),
        ("squarewave_fourier(period=0)", "n a whole number >= 1 and period > 0"),
        ("q_pseudo_spike(alpha=1)", "alpha > 1"),
    ):
        with pytest.raises(ValueError, match=rf"LIF: surrogate={re.escape(repr(bad))}: \w+ needs {re.escape(needs)}"):
            ir.canonical_surrogate(bad, "LIF")
    assert ir.canonical_surrogate("squarewave_fourier(n=1)") == "squarewave_fourier(n=1.0, period=8.0)"


def _manifest(path) -> str:
    with h5py.File(path, "r") as f:
        return zlib.decompress(bytes(f["manifest"][()])).decode()


def test_t1c_keeps_it_and_leaves_the_default_out(tmp_path):
    ir.write(tmp_path / "default.t1c", _graph())
    ir.write(tmp_path / "alias.t1c", _graph("atan"))  # the default, written another way
    ir.write(tmp_path / "superspike.t1c", _graph("superspike(k=3)"))
    assert "surrogate" not in _manifest(tmp_path / "default.t1c")
    assert (tmp_path / "default.t1c").read_bytes() == (tmp_path / "alias.t1c").read_bytes()
    assert _manifest(tmp_path / "superspike.t1c").count('"surrogate":"superspike(k=3.0)"') == 2
    read = ir.read(tmp_path / "superspike.t1c")
    assert (read.nodes["lif"].surrogate, read.nodes["spike"].surrogate) == ("superspike(k=3.0)",) * 2
    assert ir.graph_differences(_graph("superspike(k=3)"), read) == []
    assert ir.read(tmp_path / "default.t1c").nodes["lif"].surrogate == ir.DEFAULT_SURROGATE
    assert "surrogate" not in repr(_graph().nodes["lif"]) and "surrogate" not in _graph().nodes["lif"].stored_params()
    assert fingerprint_graph(_graph()) == fingerprint_graph(_graph("atan(alpha=2)"))
    assert fingerprint_graph(_graph()) != fingerprint_graph(_graph("superspike"))


def test_a_hostile_surrogate_in_a_file_is_refused_naming_the_node(tmp_path):
    path = tmp_path / "bad.t1c"
    graph = _graph("superspike(k=3)")
    ir.write(path, graph)
    _rewrite_manifest(path, _manifest(path).replace("superspike(k=3.0)", "__import__('os')"))
    with pytest.raises(
        ir.T1CFormatError, match=r"bad.t1c: graph node 'lif' \(LIF\) cannot be rebuilt: LIF: surrogate="
    ):
        ir.read(path)


def _rewrite_manifest(path, text: str) -> None:
    """Replace the manifest and re-seal the integrity header (a file written by someone else)."""
    from talon.ir import t1c_header

    packed = np.frombuffer(zlib.compress(text.encode()), np.uint8)
    with h5py.File(path, "r+") as f:
        del f["manifest"]
        f.create_dataset("manifest", data=packed, track_times=False)
    with open(path, "rb+") as fh:
        t1c_header.seal(fh, 3)


@pytest.mark.parametrize("reset_mode", ["value", "none"])
def test_nir_round_trip_keeps_it_in_metadata(reset_mode):
    pytest.importorskip("nir")
    from talon.interop.nir import from_nir, to_nir

    graph = _graph("tanh(k=2)", reset_mode)
    nir_graph = to_nir(graph)
    recorded = [n.metadata.get("talon_surrogate") for n in nir_graph.nodes.values()]
    assert recorded.count("tanh(k=2.0)") == 2  # the LIF (or, without reset, its Threshold) and the Threshold
    back = from_nir(nir_graph)
    spiking = [n for n in back.nodes.values() if isinstance(n, (ir.LIF, ir.Threshold))]
    assert [n.surrogate for n in spiking] == ["tanh(k=2.0)"] * 2
    assert all("talon_surrogate" not in n.metadata for n in to_nir(_graph(reset_mode=reset_mode)).nodes.values())


def test_both_engines_use_the_node_surrogate_and_the_override():
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    from talon import bridge
    from talon.interop.jax import JaxGraph

    x = np.linspace(-2.0, 2.0, 41, dtype=np.float32).reshape(1, 1, 41)  # x - theta over [-2.5, 1.5]
    graph = ir.Graph(
        {"input": ir.Input(np.array([41])), "spike": ir.Threshold(threshold=0.5, surrogate="triangle(alpha=2, k=1)"),
         "output": ir.Output(np.array([41]))},
        [("input", "spike"), ("spike", "output")],
    )  # fmt: skip
    u = x.reshape(-1).astype(np.float64) - 0.5
    triangle, atan = 2 * np.maximum(0, 1 - np.abs(u)), 1 / (1 + (np.pi * u) ** 2)
    for surrogate, expected in ((None, triangle), ("atan", atan)):
        xs = torch.from_numpy(x.copy()).requires_grad_(True)
        y, _ = bridge.ir_to_torch(graph, surrogate=surrogate).run_sequence(xs)
        y.sum().backward()
        np.testing.assert_allclose(xs.grad.numpy().reshape(-1), expected, rtol=1e-6, atol=1e-7)
        engine = JaxGraph(graph, surrogate=surrogate)
        grad = jax.grad(lambda v, e=engine: e.run(e.params, v)[0].sum())(jax.numpy.asarray(x))
        np.testing.assert_allclose(np.asarray(grad).reshape(-1), expected, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="ir_to_torch: surrogate kind 'bogus' is unknown"):
        bridge.ir_to_torch(graph, surrogate="bogus")
    with pytest.raises(ValueError, match="JaxGraph: surrogate kind 'bogus' is unknown"):
        JaxGraph(graph, surrogate="bogus")
