"""convert_to_spiking, quantize_weights, prune_disconnected, merge_graphs, batch_convert."""

import itertools

import numpy as np
import pytest

from talon import ir, sdk

from . import graphs


def test_convert_to_spiking():
    g = graphs.nested()
    g.nodes["fc"].metadata["origin"] = "encoder"
    out = sdk.convert_to_spiking(g, weight_bits=4, accumulator_bits=12, spike_mode="RATE")
    assert type(g.nodes["fc"]) is ir.Affine  # input untouched
    fc = out.nodes["fc"]
    assert type(fc) is ir.SpikingAffine and (fc.weight_bits, fc.accumulator_bits) == (4, 12)
    assert fc.spike_mode is ir.SpikeMode.RATE and fc.metadata == {"origin": "encoder"}
    assert fc.weight is g.nodes["fc"].weight  # arrays are shared, not copied
    assert type(out.nodes["rnn"].nodes["w"]) is ir.Linear  # Linear is left alone
    assert out.metadata == {
        "converted_to_spiking": True,
        "spiking_config": {"weight_bits": 4, "accumulator_bits": 12, "spike_mode": "rate"},
        "converted_layers": 2,
    }
    assert sdk.compare_graphs(g, out).numerical_match  # the same computation
    with pytest.raises(ValueError, match="accumulator_bits"):
        sdk.convert_to_spiking(g, weight_bits=16, accumulator_bits=8)
    with pytest.raises(ValueError, match="spike_mode"):
        sdk.convert_to_spiking(g, spike_mode="bursty")


def test_quantize_per_tensor_by_hand():
    w = np.array([[0.7, -0.35, 0.1], [0.0, 0.2, -0.05]], np.float32)
    g = ir.Graph(
        {"input": ir.Input(np.array([3])), "fc": ir.Affine(w, np.array([0.123, 0.456], np.float32)),
         "output": ir.Output(np.array([2]))},
        [("input", "fc"), ("fc", "output")],
    )  # fmt: skip
    q = sdk.quantize_weights(g, bits=3, per_channel=False)
    scale = np.float64(np.float32(0.7)) / 3  # qmax = 2**(3-1) - 1 = 3
    expected = (np.clip(np.rint(w.astype(np.float64) / scale), -3, 3) * scale).astype(np.float32)
    np.testing.assert_array_equal(q.nodes["fc"].weight, expected)
    levels = np.round(q.nodes["fc"].weight.astype(np.float64) / scale)
    assert set(levels.ravel()) <= {-3, -2, -1, 0, 1, 2, 3}
    assert q.nodes["fc"].bias is g.nodes["fc"].bias  # biases are not quantized
    record = q.nodes["fc"].metadata["quantization"]
    assert record["bits"] == 3 and record["per_channel"] is False and record["scheme"] == "symmetric"
    assert record["scales"]["weight"] == pytest.approx(scale)
    assert q.metadata["quantized_weights"] == {"bits": 3, "per_channel": False, "layers": 1}
    assert np.all(np.abs(q.nodes["fc"].weight - w) <= scale / 2 + 1e-7)


def test_quantize_per_channel():
    g = graphs.cnn()
    q = sdk.quantize_weights(g, bits=4)
    w, wq = g.nodes["conv"].weight, q.nodes["conv"].weight
    scales = q.nodes["conv"].metadata["quantization"]["scales"]["weight"]
    assert scales.shape == (4,)
    np.testing.assert_allclose(scales, np.abs(w.astype(np.float64)).reshape(4, -1).max(axis=1) / 7)
    for c in range(4):
        levels = wq[c].astype(np.float64) / scales[c]
        np.testing.assert_allclose(levels, np.round(levels), atol=1e-5)
        assert np.abs(np.round(levels)).max() == 7  # the channel's largest weight maps to qmax
    assert wq.dtype == w.dtype and g.nodes["lif"].tau is q.nodes["lif"].tau
    again = sdk.quantize_weights(q, bits=4)
    np.testing.assert_array_equal(again.nodes["conv"].weight, wq)  # idempotent
    # memory does not shrink: the values are dequantized floats
    assert sdk.profile_graph(q).weight_memory == sdk.profile_graph(g).weight_memory


def test_quantize_zero_channel_sepconv_and_round_trip(tmp_path):
    dw = np.ones((2, 1, 3, 3), np.float32)
    dw[1] = 0.0
    g = ir.Graph(
        {"input": ir.Input(np.array([2, 5, 5])), "sep": ir.SepConv2d(dw, np.full((3, 2, 1, 1), 0.3, np.float32)),
         "output": ir.Output(np.array([3, 3, 3]))},
        [("input", "sep"), ("sep", "output")],
    )  # fmt: skip
    q = sdk.quantize_weights(g, bits=8)
    assert np.all(q.nodes["sep"].depthwise_weight[1] == 0)
    scales = q.nodes["sep"].metadata["quantization"]["scales"]
    assert set(scales) == {"depthwise_weight", "pointwise_weight"} and scales["depthwise_weight"][1] == 0
    path = tmp_path / "q.t1c"
    ir.write(path, q)
    assert sdk.compare_graphs(q, path).identical


def test_quantize_bad_arguments():
    with pytest.raises(ValueError, match=r"\[2, 32\]"):
        sdk.quantize_weights(graphs.chain(), bits=1)
    with pytest.raises(TypeError, match="per_channel"):
        sdk.quantize_weights(graphs.chain(), per_channel=1)
    g = ir.Graph(
        {"input": ir.Input(np.array([2])), "fc": ir.Linear(np.ones((2, 2), np.int8)), "output": ir.Output([2])},
        [("input", "fc"), ("fc", "output")],
    )
    with pytest.raises(ir.ConversionError, match="node 'fc': weight has dtype int8"):
        sdk.quantize_weights(g)


def _with_extras():
    nodes = dict(graphs.chain().nodes)
    nodes["side"] = ir.Sigmoid()  # fed, but feeds nothing
    nodes["floating"] = ir.ReLU()  # not connected at all
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "output"), ("lif1", "side")]
    return ir.Graph(nodes, edges)


def test_prune_disconnected():
    g = _with_extras()
    p = sdk.prune_disconnected(g)
    assert list(p.nodes) == ["input", "fc1", "lif1", "fc2", "output"]
    assert p.edges == graphs.chain().edges
    assert p.metadata["pruned_nodes"] == ["side", "floating"]
    assert "side" in g.nodes  # input untouched
    assert sdk.lint_graph(p).issues == []
    assert sdk.prune_disconnected(graphs.chain()).metadata == graphs.chain().metadata  # nothing to prune


def test_prune_refuses_to_break_a_channel_split():
    g = ir.Graph(
        {"input": ir.Input(np.array([4])), "split": ir.ChannelSplit(split_sections=(2, 2)), "a": ir.ReLU(),
         "b": ir.ReLU(), "output": ir.Output(np.array([2]))},
        [("input", "split"), ("split", "a"), ("split", "b"), ("a", "output")],
    )  # fmt: skip
    with pytest.raises(ir.GraphValidationError, match="pruning b leaves an invalid graph"):
        sdk.prune_disconnected(g)


def test_merge_graphs():
    m = sdk.merge_graphs(graphs.chain(), graphs.recurrent())
    assert list(m.nodes)[:5] == ["g0_input", "g0_fc1", "g0_lif1", "g0_fc2", "g0_output"]
    assert len(m.nodes) == 11 and len(m.edges) == 10
    assert ("g1_w_rec", "g1_lif") in m.recurrent_edges
    assert m.metadata["merged_graphs"][0] == {"prefix": "g0_", "metadata": {"name": "chain"}}
    assert sdk.analyze_graph(m).total_params == 66 + 92
    named = sdk.merge_graphs([graphs.chain(), graphs.chain()], prefix=["left_", "right_"])
    assert "right_fc1" in named.nodes
    with pytest.raises(ir.GraphValidationError, match="'input' is already used"):
        sdk.merge_graphs(graphs.chain(), graphs.chain(), prefix=False)
    with pytest.raises(ValueError, match="at least one"):
        sdk.merge_graphs()
    with pytest.raises(ValueError, match="2 prefixes for 1 graphs"):
        sdk.merge_graphs(graphs.chain(), prefix=["a", "b"])


def test_batch_convert(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    ir.write(src / "a.t1c", graphs.chain())
    ir.write(src / "b.t1c", graphs.cnn())
    (src / "broken.t1c").write_bytes(b"not hdf5 at all")
    dest = tmp_path / "out"
    results = sdk.batch_convert(src, dest, processor=sdk.convert_to_spiking)
    assert [(r.source.endswith(n), r.success) for r, n in zip(results, ["a.t1c", "b.t1c", "broken.t1c"], strict=True)] \
        == [(True, True), (True, True), (True, False)]  # fmt: skip
    assert results[0].stats == {"nodes": 5, "edges": 4} and results[0].destination == str(dest / "a.t1c")
    assert "T1CFormatError" in results[2].error and "\n" not in results[2].error
    assert type(ir.read(dest / "a.t1c").nodes["fc1"]) is ir.SpikingAffine
    again = sdk.batch_convert([src / "a.t1c"], dest)
    assert not again[0].success and "overwrite=True" in again[0].error
    assert sdk.batch_convert([src / "a.t1c"], dest, overwrite=True)[0].success
    other = tmp_path / "other"
    other.mkdir()
    ir.write(other / "a.t1c", graphs.chain())
    twice = sdk.batch_convert([src / "a.t1c", other / "a.t1c"], tmp_path / "fresh")
    assert twice[0].success and not twice[1].success and "already written" in twice[1].error
    bad = sdk.batch_convert([src / "a.t1c"], tmp_path / "x", processor=lambda g: "nope")
    assert not bad[0].success and "not a talon.ir.Graph" in bad[0].error
    with pytest.raises(TypeError, match="processor"):
        sdk.batch_convert(src, dest, processor=3)


def test_quantize_reaches_every_kernel_of_the_ghost_blocks_and_the_detection_head():
    # they were skipped: 'talon convert detector.t1c --quantize 8' said "Quantized 0 layer(s)"
    rng = np.random.default_rng(0)

    def w(*shape):
        return rng.normal(size=shape).astype(np.float32)

    nodes = {
        "input": ir.Input(np.array([2, 8, 8])),
        "enc": ir.SGhostEncoderLite(conv1_weight=w(4, 2, 3, 3), ghost_primary_weight=w(3, 4, 1, 1),
                                    ghost_cheap_weight=w(3, 1, 3, 3), conv1_bias=w(4), stride=2),
        "b1": ir.GhostBasicBlock1(cv0_primary_weight=w(4, 6, 3, 3), cv0_cheap_weight=w(4, 1, 3, 3),
                                  cv2_primary_weight=w(2, 4, 1, 1), cv2_cheap_weight=w(2, 1, 3, 3),
                                  cvres_primary_weight=w(2, 6, 1, 1), cvres_cheap_weight=w(2, 1, 3, 3)),
        "b2": ir.GhostBasicBlock2(cv0_primary_weight=w(4, 8, 3, 3), cv0_cheap_weight=w(4, 1, 3, 3),
                                  cv2_primary_weight=w(2, 4, 1, 1), cv2_cheap_weight=w(2, 1, 3, 3)),
        "ghost": ir.SGhostConv(primary_weight=w(4, 8, 3, 3), cheap_weight=w(4, 1, 3, 3), primary_bias=w(4)),
        "head": ir.SDDetect(num_classes=2, reg_max=4, stride=4, cv2_w0=w(4, 8, 3, 3), cv2_w1=w(4, 4, 3, 3),
                            cv2_w2=w(16, 4, 1, 1), cv3_w0=w(4, 8, 3, 3), cv3_w1=w(4, 4, 3, 3), cv3_w2=w(2, 4, 1, 1),
                            cv3_b0=w(4)),
        "output": ir.Output(np.array([18, 2, 2])),
    }  # fmt: skip
    names = list(nodes)
    g = ir.Graph(nodes, list(itertools.pairwise(names)))
    q = sdk.quantize_weights(g, bits=4)
    assert q.metadata["quantized_weights"]["layers"] == 5
    for name in names[1:-1]:
        kernels = q.nodes[name].metadata["quantization"]["scales"]
        arrays = {k: v for k, v in vars(g.nodes[name]).items() if isinstance(v, np.ndarray)}
        assert set(kernels) == {k for k in arrays if k.endswith("weight") or k[:-1].endswith("_w")}, name
        for field, original in arrays.items():
            new = getattr(q.nodes[name], field)
            if field not in kernels:  # biases are left alone
                assert new is original
                continue
            levels = new.astype(np.float64) / kernels[field].reshape(-1, *[1] * (new.ndim - 1))
            np.testing.assert_allclose(levels, np.round(levels), atol=1e-5)
            assert np.abs(np.round(levels)).max(axis=(1, 2, 3)).tolist() == [7] * len(new)  # per output channel
