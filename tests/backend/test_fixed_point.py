"""The fixed-point datapath against hand-worked integer examples (docs/backend.md, "Fixed point").

The expected integers below were worked out by hand from the documented algorithm (with a
calculator for the 11-digit products); the backend must produce exactly these integers.
"""

import numpy as np
import pytest

from talon import ir
from talon.backend import BackendError, CompileConfig, UnsupportedNodeError, get_backend
from talon.backend.cpu.formats.fixed_point import Multiplier, QFormat, quantize_symmetric, round_shift, saturate

from ..ir.examples import EXAMPLES, chain_graph
from .graphs import chain, hybrid_graph, mlp_graph

CPU = get_backend("cpu")


def test_round_shift_rounds_half_up():
    a = np.array([5, 6, 7, -5, -6, -7, 2, -2, 3])
    # a / 2:        2.5 3  3.5 -2.5 -3 -3.5 1  -1  1.5
    np.testing.assert_array_equal(round_shift(a, 1), [3, 3, 4, -2, -3, -3, 1, -1, 2])
    # a / 4:        1.25 1.5 1.75 -1.25 -1.5 -1.75 0.5 -0.5 0.75
    np.testing.assert_array_equal(round_shift(a, 2), [1, 2, 2, -1, -1, -2, 1, 0, 1])
    np.testing.assert_array_equal(round_shift(a, 0), a)
    np.testing.assert_array_equal(round_shift(a, np.array([1, 2, 0, 1, 2, 0, 1, 2, 0])), [3, 2, 7, -2, -1, -7, 1, 0, 3])


def test_saturation_and_quantization():
    np.testing.assert_array_equal(saturate(np.array([-200, -128, 5, 127, 300]), 8), [-128, -128, 5, 127, 127])
    q, s = quantize_symmetric(np.array([0.5, -0.25, 0.1]), 8, axis=None)
    assert s == 0.5 / 127
    np.testing.assert_array_equal(q, [127, -64, 25])  # -63.5 rounds half to even, 25.4 to 25
    q, s = quantize_symmetric(np.array([[0.7, 0.3], [-0.2, 0.0], [0.0, 0.0]]), 4, axis=0)
    np.testing.assert_array_equal(q, [[7, 3], [-7, 0], [0, 0]])
    np.testing.assert_allclose(s.reshape(-1), [0.1, 0.2 / 7, 1.0])  # an all-zero row keeps scale 1


def test_multipliers():
    q = np.arange(-1000, 1000, 7)
    np.testing.assert_array_equal(Multiplier.of(1.0, 16).apply(q), q)  # ratio 1 is exact
    np.testing.assert_array_equal(Multiplier.of(0.375, 16).apply(np.array([8, -8, 3, -3])), [3, -3, 1, -1])
    # 3 * 0.375 = 1.125 -> 1; -1.125 -> -1
    m = Multiplier.of(np.array([0.1, 3.0, 0.0]), 16)
    assert m.m.tolist()[2] == 0 and 2**15 <= m.m[0] < 2**16
    assert QFormat(np.array([2.0, 2.0]), 3).scalar  # an all-equal scale collapses to one number


def _spiking_affine_if():
    w = np.array([[0.7, 0.3], [-0.2, 0.5]])
    fc = ir.SpikingAffine(w, np.zeros(2), weight_bits=4, accumulator_bits=8)
    neuron = ir.IF(v_threshold=np.ones(2), reset_mode="subtract")  # '>=' and immediate reset (defaults)
    return chain([2], ("fc", fc), ("if", neuron))


def test_hand_worked_spiking_affine_and_if():
    """int8 (state 24 bits, 16 fraction bits); the SpikingAffine's own 4-bit weights.

    Weights per row: row 0 amax 0.7 -> s = 0.1, q = [7, 3]; row 1 amax 0.5 -> s = 0.5/7,
    q = [-2.8 -> -3, 7]. Inputs are spikes (scale 1): acc = [10, 4] every step.
    Membrane: calibrated |v| <= 1 -> s_v = 2**-22, THETA = 2**22 = 4194304.
    Row 0: G = rint(0.1 * 2**38) = 27487790694, rs(10 G, 16) = 4194304 >= THETA: a spike each step,
    subtract -> v = 0 (fp32: exactly 1.0 >= 1 as well; truncating instead of rounding would miss it).
    """
    x = np.ones((3, 1, 2), np.float32)
    result = CPU.simulate(_spiking_affine_if(), {"input": x}, precision="int8", step_by_step=True)
    fc, neuron = result.node_states["fc"], result.node_states["if"]
    np.testing.assert_array_equal(fc["output_int"][:, 0], [[10, 4]] * 3)
    np.testing.assert_array_equal(neuron["output_int"][:, 0], [[1, 0]] * 3)
    v = neuron["v_int"][:, 0]
    np.testing.assert_array_equal(v[:, 0], [0, 0, 0])
    # row 1: s_e = 0.5/7, G = rint(0.5/7 * 2**38) = 19634136210; +rs(4 G, 16) = 1198373 per step
    np.testing.assert_array_equal(v[:, 1], [1198373, 2396746, 3595119])
    np.testing.assert_allclose(neuron["v"][:, 0, 1], np.array([1198373, 2396746, 3595119]) / 2**22)
    assert result.quantization.spike_agreement == 1.0


def test_hand_worked_lif_decay():
    """LIF tau = 4 (beta = 0.75 -> B = 49152), r = 4 (g = 1), threshold 2, reset to 0, '>='.

    Input 0.7 per step through a 4-bit weight (q = 7, s = 0.1). Calibrated |v| max 1.914 and
    threshold 2 -> s_v = 2**1 / 2**22 = 2**-21, THETA = 4194304, G = rint(0.1 * 2**37) = 13743895347.
    u1 = rs(7 G) = 1468006; u2 = rs(49152 u1 + 7 G) = 2569011; u3 = 3394765; u4 = 4014080;
    u5 = 4478566 >= THETA -> spike, v = 0; then 1468006 again.
    """
    graph = chain(
        [1],
        ("fc", ir.SpikingAffine(np.array([[0.7]]), np.zeros(1), weight_bits=4, accumulator_bits=8)),
        ("lif", ir.LIF(tau=np.array([4.0]), r=4.0, v_threshold=2.0)),
    )
    result = CPU.simulate(graph, {"input": np.ones((6, 1, 1), np.float32)}, precision="int8", step_by_step=True)
    lif = result.node_states["lif"]
    np.testing.assert_array_equal(lif["v_int"][:, 0, 0], [1468006, 2569011, 3394765, 4014080, 0, 1468006])
    np.testing.assert_array_equal(lif["output_int"][:, 0, 0], [0, 0, 0, 0, 1, 0])


def test_accumulator_saturates_at_accumulator_bits():
    w = np.array([[0.7] * 6, [-0.7] * 6, [0.7, -0.7, 0.7, -0.7, 0.7, 0.7]])
    graph = chain([6], ("fc", ir.SpikingAffine(w, np.zeros(3), weight_bits=4, accumulator_bits=5)))
    result = CPU.simulate(graph, {"input": np.ones((2, 1, 6), np.float32)}, precision="int16", step_by_step=True)
    # exact sums 42, -42, 14 -> saturated to the 5-bit range [-16, 15]
    np.testing.assert_array_equal(result.node_states["fc"]["output_int"][0, 0], [15, -16, 14])
    np.testing.assert_allclose(result.outputs["output"][0, 0], [1.5, -1.6, 1.4], rtol=1e-6)


def test_per_channel_and_per_tensor_weight_scales():
    w = np.array([[1.0, -0.5], [0.01, 0.02]])
    graph = chain([2], ("fc", ir.Affine(w, np.zeros(2))))
    x = np.ones((1, 1, 2), np.float32)
    per_channel = CPU.simulate(graph, {"input": x}, config=CompileConfig("int8", per_channel=True), step_by_step=True)
    per_tensor = CPU.simulate(graph, {"input": x}, config=CompileConfig("int8", per_channel=False), step_by_step=True)
    # per channel: row 1 has its own scale 0.02/127 -> q = [64, 127] (63.5 -> 64, half to even)
    np.testing.assert_array_equal(per_channel.node_states["fc"]["output_int"][0, 0], [127 - 64, 64 + 127])
    # per tensor: scale 1/127 -> row 1 = rint([1.27, 2.54]) = [1, 3]
    np.testing.assert_array_equal(per_tensor.node_states["fc"]["output_int"][0, 0], [127 - 64, 4])
    row1 = [abs(float(r.outputs["output"][0, 0, 1]) - 0.03) for r in (per_channel, per_tensor)]
    assert row1[0] < 1e-4 < 1e-3 < row1[1]
    descriptor = CPU.compile(graph, CompileConfig("int8", per_channel=False), calibration_inputs=x)
    (fc_op,) = [op for c in descriptor.schedule for op in c["ops"] if op["node"] == "fc"]
    assert fc_op["precision"]["weight_scaling"] == "per_tensor" and fc_op["precision"]["weight_bits"] == 8


def test_dyadic_inputs_are_represented_exactly():
    x = (np.random.default_rng(0).integers(-8, 16, (4, 2, 3)) / 8).astype(np.float32)  # n/8, |n| <= 15
    graph = chain([3], ("relu", ir.ReLU()))
    exact = CPU.simulate(graph, {"input": x}, precision="int8", step_by_step=True)
    np.testing.assert_array_equal(exact.node_states["input"]["output_int"], x * 8)  # scale 1/8
    assert exact.quantization.output_max_abs_error["output"] == 0.0
    # in 4 bits 15/8 needs 15 > qmax = 7: the input is quantized with scale amax / 7 instead
    coarse = CPU.simulate(graph, {"input": x}, precision="int4", step_by_step=True)
    assert coarse.node_states["input"]["output_int"].max() == 7
    assert coarse.quantization.output_max_abs_error["output"] > 0


@pytest.mark.parametrize(("precision", "agreement"), [("int16", 0.999), ("int8", 0.97), ("int4", 0.7)])
def test_reduced_precision_error_is_reported(precision, agreement):
    graph = mlp_graph(7, sizes=(100, 64, 10))
    result = CPU.simulate(graph, n_steps=40, precision=precision)
    report = result.quantization
    assert report.precision == precision and report.spike_agreement >= agreement
    assert set(report.per_node_spike_agreement) == {"lif1", "lif2"}
    assert report.spike_counts_fp32["lif1"] > 0
    assert report.output_relative_error["output"] >= 0 and "spike agreement" in report.summary()


def test_error_grows_as_bits_shrink():
    graph = hybrid_graph(3)
    errors = [
        CPU.simulate(graph, n_steps=10, precision=p, step_by_step=True).quantization.output_rmse["output"]
        for p in ("int16", "int8", "int4")
    ]
    assert errors[0] < errors[1] < errors[2]


def test_every_primitive_with_an_integer_kernel_runs_in_int8():
    caps = CPU.get_capabilities()
    fixed, in_float = set(caps.fixed_point_primitives), set(caps.fixed_point_float_primitives)
    assert in_float == {"DFLDecode", "Dist2BBox", "NMS"} and not fixed & in_float
    for name in EXAMPLES:
        graph = chain_graph(name)
        if name in in_float:  # the detection decode runs in float32 on the dequantized input
            result = CPU.simulate(graph, n_steps=2, precision="int8")
            assert result.node_precision["node"] == "float32" and result.float_nodes == ["node", "output_0"], name
            assert result.node_precision["input"] == "int8"
            continue
        if name not in fixed:
            with pytest.raises(UnsupportedNodeError, match=rf"node \({name}\): {name} is"):
                CPU.simulate(graph, n_steps=4, precision="int8")
            assert not CPU.validate(graph, CompileConfig("int8")).is_valid
            continue
        result = CPU.simulate(graph, n_steps=4, precision="int8")
        assert result.outputs_valid, name
        assert result.quantization.spike_agreement == 1.0, name
        # the SpikingAffine example asks for 4-bit weights (step max|w|/7): 0.03-0.12 over 40 random draws
        limit = 0.15 if name == "SpikingAffine" else 0.02
        for out_name, err in result.quantization.output_relative_error.items():
            assert err < limit, (name, out_name, err)


def test_bilinear_upsample_has_no_integer_kernel():
    graph = chain([1, 3, 3], ("up", ir.Upsample(mode="bilinear")))
    problems = CPU.validate(graph, {"precision": "int8"}).unsupported_nodes
    assert problems and "bilinear" in problems[0]
    assert CPU.validate(graph).is_valid


def test_config_checks():
    with pytest.raises(BackendError, match="precision"):
        CompileConfig("int3")
    with pytest.raises(BackendError, match="weight_bits"):
        CompileConfig("int8", weight_bits=1)
    with pytest.raises(BackendError, match="accumulator_bits"):
        CompileConfig("int8", weight_bits=16, accumulator_bits=8)
    spec = CompileConfig("int8", state_bits=16).fixed_point
    assert (spec.weight_bits, spec.accumulator_bits, spec.state_bits) == (8, 32, 16)
    with pytest.raises(BackendError, match="floating-point"):
        _ = CompileConfig("fp16").fixed_point


def test_cycles_in_fixed_point():
    from .test_simulate import _cyclic_with_subgraph_and_delay

    graph = _cyclic_with_subgraph_and_delay()
    x = (np.random.default_rng(2).integers(-4, 12, (30, 2, 4)) / 8).astype(np.float32)
    result = CPU.simulate(graph, {"input": x}, precision="int16")
    assert result.quantization.spike_agreement > 0.97 and result.spike_counts["rnn.lif"] > 0
    modes = {op["node"]: c["mode"] for c in CPU.compile(graph, precision="int8").schedule for op in c["ops"]}
    assert modes["rnn.lif"] == "step"


def test_a_stateless_feedback_loop_settles_on_a_format():
    """y_t = x_t + 0.5 y_(t-1): a first-order IIR filter built from Skip and Scale (no neuron)."""
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([2])),
            "acc": ir.Skip("residual"),
            "half": ir.Scale(np.full(2, 0.5, np.float32)),
            "output": ir.Output(np.array([2])),
        },
        [("input", "acc"), ("acc", "half"), ("half", "acc"), ("acc", "output")],
    )
    x = np.zeros((10, 1, 2), np.float32)
    x[0] = 96.0
    result = CPU.simulate(graph, {"input": x}, precision="int8", step_by_step=True)
    # the input has scale 1 (integers); the feedback 0.5 y (scale 0.5) is rescaled into scale 1 by
    # rounding half up: 3 -> 1.5 -> 2, and 1 -> 0.5 -> 1 forever (the classic fixed-point limit cycle)
    np.testing.assert_array_equal(result.node_states["acc"]["output_int"][:, 0, 0], [96, 48, 24, 12, 6, 3, 2, 1, 1, 1])
    fp32 = CPU.simulate(graph, {"input": x}).outputs["output"][:, 0, 0]
    np.testing.assert_array_equal(fp32, 96 * 0.5 ** np.arange(10))
    assert result.quantization.output_max_abs_error["output"] == 1 - 96 * 0.5**9


def test_fan_in_of_very_different_scales_does_not_overflow():
    """Spikes (scale 1) plus a fine accumulator: the finest scale would need more than 16 bits."""
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([3])),
            "fc": ir.SpikingAffine(np.full((3, 3), 1e-4), np.zeros(3), weight_bits=8, accumulator_bits=16),
            "sum": ir.Skip("residual"),
            "output": ir.Output(np.array([3])),
        },
        [("input", "fc"), ("fc", "sum"), ("input", "sum"), ("sum", "output")],
    )
    x = np.ones((2, 1, 3), np.float32)
    result = CPU.simulate(graph, {"input": x}, config=CompileConfig("int8", accumulator_bits=16))
    np.testing.assert_allclose(result.outputs["output"], 1 + 3e-4, rtol=1e-3)  # 3e-4 needs the fine scale
    assert result.quantization.output_relative_error["output"] < 1e-3


@pytest.mark.parametrize("pool", ["MaxPool2d", "AvgPool2d", "SumPool2d"])
@pytest.mark.parametrize("before", ["batchnorm", "residual", "concat"])
def test_pooling_after_per_channel_formats(pool, before):
    """Pooling after a node whose scale is per channel but stored per element (BatchNorm, a residual sum
    of two convolutions, a concatenation) keeps one scale per channel for the pooled output."""
    rng = np.random.default_rng(0)

    def conv(c_in, c_out):
        return ir.Conv2d((rng.standard_normal((c_out, c_in, 3, 3)) * 0.3).astype(np.float32), padding=1)

    nodes = {"input": ir.Input(np.array([2, 8, 8])), "a": conv(2, 4), "b": conv(2, 4)}
    edges = [("input", "a"), ("input", "b")]
    if before == "batchnorm":
        nodes["mid"] = ir.BatchNorm2d(4, running_var=rng.uniform(0.5, 2, 4).astype(np.float32))
        edges += [("a", "mid")]
        nodes.pop("b"), edges.remove(("input", "b"))
        channels = 4
    elif before == "residual":
        nodes["mid"] = ir.Skip("residual")
        edges += [("a", "mid"), ("b", "mid")]
        channels = 4
    else:
        nodes["mid"] = ir.Concat(dim=1)
        edges += [("a", "mid"), ("b", "mid")]
        channels = 8
    nodes["pool"] = getattr(ir, pool)(kernel_size=2)
    nodes["output"] = ir.Output(np.array([channels, 4, 4]))
    edges += [("mid", "pool"), ("pool", "output")]
    graph = ir.Graph(nodes, edges)
    x = rng.uniform(0, 1, (3, 2, 2, 8, 8)).astype(np.float32)
    cpu = get_backend("cpu")
    ref = cpu.simulate(graph, inputs=x, precision="fp32").outputs["output"]
    got = cpu.simulate(graph, inputs=x, precision="int8").outputs["output"]
    assert got.shape == ref.shape == (3, 2, channels, 4, 4)
    assert np.max(np.abs(got - ref)) < 0.05 * np.max(np.abs(ref))  # int8 error, not a wrong layout


@pytest.mark.parametrize("path", ["compiled", "numpy"])
def test_dyadic_input_quantization_rounds_half_to_even_and_saturates(path, monkeypatch):
    from talon._compiled import numba_available
    from talon.backend.cpu.formats import fixed_point

    if path == "numpy":
        monkeypatch.setattr(fixed_point, "compiled", lambda kernel: None)
    elif not numba_available():
        pytest.skip("the fast extra (numba) is not installed")
    else:
        monkeypatch.setenv("TALON_FORCE_NUMBA", "1")  # a small input: force the compiled pass
    x = np.array([[0.5, 1.5, 2.5, -0.5, -2.5, 3e38, -3e38, 126.75]], np.float32)
    q, saturated, rounded = fixed_point.quantize_dyadic(x, 0, 127)
    assert q.dtype == np.int64 and q.shape == x.shape
    assert q.tolist() == [[0, 2, 2, 0, -2, 127, -127, 127]]
    assert (saturated, rounded) == (2, 6)  # +-3e38; the halves and 126.75
    # 2**2: 2, 6, 10, -2, -10, inf -> 5, -inf -> -5, 507 -> 5 (bound 5)
    q, saturated, rounded = fixed_point.quantize_dyadic(x, 2, 5)
    assert q.tolist() == [[2, 5, 5, -2, -5, 5, -5, 5]] and (saturated, rounded) == (6, 0)
    q, saturated, rounded = fixed_point.quantize_dyadic(np.array([0.375, -0.125], np.float32), 3, 127)
    assert q.tolist() == [3, -1] and (saturated, rounded) == (0, 0)
