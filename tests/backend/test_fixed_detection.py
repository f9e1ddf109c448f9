"""Fixed point of the ghost blocks, SDDetect and the float decode (docs/backend.md §4.6).

* hand-worked integers (worked out by hand from docs/backend.md §4.2–4.3, the products with a
  calculator) for SGhostConv's cheap-stage rescaling and GhostBasicBlock1's residual join;
* every ghost block and SDDetect against the same computation written out by hand as ordinary
  Conv2d / ChannelSplit / Concat / residual Skip nodes and run in fixed point: identical integers
  (int8 and int16), part by part and on a whole trained detector;
* a briefly trained detector: int16 / int8 detections close to fp32 (mAP@0.5), the decode reported
  as float32; the FPGA backend refuses the ghost and decode nodes by name.
"""

import json

import numpy as np
import pytest

from talon import ir
from talon.backend import CompileConfig, UnsupportedNodeError, get_backend
from talon.backend.cpu.kernels.build import fixed_kernels
from talon.backend.cpu.lowering.program import lower
from talon.backend.cpu.run.engine import calibrate

from .graphs import chain

CPU = get_backend("cpu")


def _ghost_ints(graph, x, node="node", precision="int8"):
    result = CPU.simulate(graph, {"input": x}, precision=precision, step_by_step=True)
    return result.node_states[node]["output_int"][0, 0]


def test_hand_worked_ghost_conv_rescales_the_primary_output_for_the_cheap_stage():
    """int8, input [1, 0.5] (dyadic: scale 1/2, q = [2, 1], bound 2).

    Primary 1x1 (2 channels) w = [0.5, -0.25], b = [0.25, 0]: per-channel scales 0.5/127 and
    0.25/127, q_w = [127, -127]; accumulator scales 0.25/127, 0.125/127; bias q = [127, 0];
    P = [127·[2, 1] + 127, −127·[2, 1]] = [[381, 254], [−254, −127]], bound 254 + 127 = 381.
    P has two scales, so the cheap convolution rescales it to its calibrated range 0.75 (s = 0.75/127):
    ratios 1/3 and 1/6 -> m = 43691 with shifts 17 and 18 -> rs(381 m, 17) = 127, rs(254 m, 17) = 85,
    rs(−254 m, 18) = −42, rs(−127 m, 18) = −21. Cheap depthwise w = [1.0, 0.5] -> q = [127, 127]:
    C = [[16129, 10795], [−5334, −2667]]. Output = concat(P, C).
    """
    node = ir.SGhostConv(
        np.array([0.5, -0.25], np.float32).reshape(2, 1, 1, 1),
        np.array([1.0, 0.5], np.float32).reshape(2, 1, 1, 1),
        np.array([0.25, 0.0], np.float32),
    )
    graph = chain([1, 1, 2], ("node", node))
    x = np.array([1.0, 0.5], np.float32).reshape(1, 1, 1, 1, 2)
    ints = _ghost_ints(graph, x)
    np.testing.assert_array_equal(ints[:, 0], [[381, 254], [-254, -127], [16129, 10795], [-5334, -2667]])
    descriptor = CPU.compile(graph, precision="int8", calibration_inputs=x)
    (op,) = [op for c in descriptor.schedule for op in c["ops"] if op["node"] == "node"]
    parts = {p["node"]: p for p in op["precision"]["expansion"]}
    assert list(parts) == ["primary", "cheap", "concat"]
    assert not parts["primary"]["input_rescaled"] and parts["cheap"]["input_rescaled"]
    np.testing.assert_allclose(parts["cheap"]["in_formats"][0]["scale"], [0.25 / 127, 0.125 / 127])


def test_hand_worked_ghost_block1_residual_join():
    """int8, one spike in, 1x1 pixels, every kernel 1x1 (weights below; biases 0).

    cv0: primary 0.5 -> P0 = 127 (scale 0.5/127, bound 127, one channel: no rescale for the cheap
    stage); cheap 0.25 -> C0 = 127·127 = 16129 (scale 0.125/16129). Split: Z1 = 127, Z2 = 16129.
    cv2: Z2's bound 16129 exceeds 127, so it is rescaled to its range 0.125 (s = 0.125/127): ratio
    1/127, m = 33026, shift 22 -> rs(16129 m, 22) = 127; primary 1.0 -> 16129 (0.125/16129), rescaled
    again to 127; cheap 0.5 -> 16129 (0.0625/16129).
    cvres: primary 0.25 -> 127 (0.25/127); cheap −1.0 -> −16129 (0.25/16129).
    Residual sum at the finer scale of each channel (0.125/16129, 0.0625/16129): cvres is multiplied
    by 254 (m = 65024, shift 8) and by 4 (m = 32768, shift 13): [16129 + 32258, 16129 − 64516].
    Output concat(Z1, sum) = [127, 48387, −48387] = [0.5, 0.375, −0.1875] exactly.
    """

    def w(v):
        return np.array([[[[v]]]], np.float32)

    node = ir.GhostBasicBlock1(w(0.5), w(0.25), w(1.0), w(0.5), w(0.25), w(-1.0), stride=2)
    graph = chain([1, 1, 1], ("node", node))
    x = np.ones((1, 1, 1, 1, 1), np.float32)
    result = CPU.simulate(graph, {"input": x}, precision="int8", step_by_step=True)
    np.testing.assert_array_equal(result.node_states["node"]["output_int"][0, 0, :, 0, 0], [127, 48387, -48387])
    np.testing.assert_array_equal(result.outputs["output"][0, 0, :, 0, 0], [0.5, 0.375, -0.1875])


# ---- the same computations written out as ordinary primitives -------------------------------


def _conv(w, b, stride=1, groups=1):
    k = w.shape[2]
    return ir.Conv2d(weight=w, bias=b, stride=(stride, stride), padding=(k // 2, k // 2), groups=groups)


def _ghost_by_hand(nodes, edges, node, prefix, src, stride=1, padding=None):
    pw, pb = getattr(node, f"{prefix}primary_weight"), getattr(node, f"{prefix}primary_bias")
    cw, cb = getattr(node, f"{prefix}cheap_weight"), getattr(node, f"{prefix}cheap_bias")
    if padding is None:
        primary = _conv(pw, pb, stride)
    else:  # SGhostConv: its own stride and padding pairs
        primary = ir.Conv2d(weight=pw, bias=pb, stride=tuple(stride), padding=tuple(padding))
    nodes[f"{prefix}p"], nodes[f"{prefix}c"] = primary, _conv(cw, cb, groups=cw.shape[0])
    nodes[f"{prefix}cat"] = ir.Concat(dim=1)
    edges += [(src, f"{prefix}p"), (f"{prefix}p", f"{prefix}c"), (f"{prefix}p", f"{prefix}cat"),
              (f"{prefix}c", f"{prefix}cat")]  # fmt: skip
    return f"{prefix}cat"


def by_hand(node) -> ir.Graph:
    """``node`` as a subgraph of Conv2d / ChannelSplit / Concat / Skip nodes (docs/semantics.md §4.1)."""
    nodes, edges = {"in": ir.Input(np.array(node.input_shape))}, []
    if isinstance(node, ir.SGhostConv):
        last = _ghost_by_hand(nodes, edges, node, "", "in", node.primary_stride, node.primary_padding)
    elif isinstance(node, ir.SGhostEncoderLite):
        nodes["c1"] = _conv(node.conv1_weight, node.conv1_bias, node.stride)
        edges.append(("in", "c1"))
        last = _ghost_by_hand(nodes, edges, node, "ghost_", "c1")
    elif isinstance(node, ir.SDDetect):
        nodes["out"] = ir.Concat(dim=1)
        for branch in ("cv2", "cv3"):
            src = "in"
            for i in range(3):
                nodes[f"{branch}{i}"] = _conv(getattr(node, f"{branch}_w{i}"), getattr(node, f"{branch}_b{i}"))
                edges.append((src, f"{branch}{i}"))
                src = f"{branch}{i}"
            edges.append((src, "out"))
        last = "out"
    else:
        stride = node.stride if isinstance(node, ir.GhostBasicBlock1) else 1
        main = _ghost_by_hand(nodes, edges, node, "cv0_", "in", stride)
        half = node.cv0_primary_weight.shape[0]
        nodes["split"], nodes["out"] = ir.ChannelSplit([half, half]), ir.Concat(dim=1)
        edges += [(main, "split"), ("split", "out")]
        mid = _ghost_by_hand(nodes, edges, node, "cv2_", "split")
        if isinstance(node, ir.GhostBasicBlock1):
            res = _ghost_by_hand(nodes, edges, node, "cvres_", "in", stride)
            nodes["add"] = ir.Skip(skip_type="residual")
            edges += [(mid, "add"), (res, "add")]
            mid = "add"
        edges.append((mid, "out"))
        last = "out"
    nodes["o"] = ir.Output(np.array(node.output_shape))
    edges.append((last, "o"))
    return ir.Graph(nodes, edges)


def _random_node(kind: str, rng):
    def f(*shape, scale=0.5):
        return (rng.normal(size=shape) * scale).astype(np.float32)

    if kind == "SGhostConv":
        return ir.SGhostConv(f(4, 6, 3, 3), f(4, 1, 3, 3), f(4, scale=0.1), f(4, scale=0.1), primary_stride=2)
    if kind == "SGhostEncoderLite":
        return ir.SGhostEncoderLite(f(8, 6, 3, 3), f(4, 8, 1, 1), f(4, 1, 3, 3), f(8), f(4), f(4), stride=2)
    if kind == "GhostBasicBlock1":
        return ir.GhostBasicBlock1(f(4, 6, 3, 3), f(4, 1, 3, 3), f(2, 4, 3, 3), f(2, 1, 3, 3), f(2, 6, 1, 1),
                                   f(2, 1, 3, 3), f(4), f(4), f(2), f(2), f(2), f(2), stride=2)  # fmt: skip
    if kind == "GhostBasicBlock2":
        return ir.GhostBasicBlock2(f(4, 6, 1, 1), f(4, 1, 3, 3), f(2, 4, 1, 1), f(2, 1, 3, 3), f(4), f(4))
    return ir.SDDetect(f(5, 6, 3, 3), f(5, 5, 3, 3), f(8, 5, 1, 1), f(4, 6, 3, 3), f(4, 4, 3, 3), f(3, 4, 1, 1),
                       num_classes=3, reg_max=2, cv2_b2=f(8), cv3_b2=f(3))  # fmt: skip


KINDS = ["SGhostConv", "SGhostEncoderLite", "GhostBasicBlock1", "GhostBasicBlock2", "SDDetect"]


def _pair(kind: str, front: str):
    """The node and its hand-written expansion, each between ``front`` and an IF layer."""
    node = _random_node(kind, np.random.default_rng(KINDS.index(kind)))
    node.infer_types([(6, 8, 8)])
    graphs = []
    for body in (node, by_hand(node)):
        if front == "spikes":
            first = ir.IF(v_threshold=np.float32(0.5))
        else:  # a per-channel Scale: the block's input has six scales and is rescaled by the first convolution
            first = ir.Scale(np.linspace(0.3, 1.7, 6, dtype=np.float32).reshape(6, 1, 1))
        graphs.append(chain([6, 8, 8], ("front", first), ("node", body), ("if", ir.IF(v_threshold=np.float32(1.0)))))
    return graphs


@pytest.mark.parametrize("front", ["spikes", "scaled"])
@pytest.mark.parametrize("kind", KINDS)
def test_each_block_gives_the_integers_of_its_expansion_into_primitives(kind, front):
    ghost, expanded = _pair(kind, front)
    x = np.random.default_rng(5).uniform(-0.5, 1.5, (3, 2, 6, 8, 8)).astype(np.float32)
    fp32 = CPU.simulate(ghost, {"input": x})
    np.testing.assert_array_equal(fp32.outputs["output"], CPU.simulate(expanded, {"input": x}).outputs["output"])
    last = {"SDDetect": "node.out"}.get(kind, "node.out" if "Block" in kind else None)
    for precision in ("int8", "int16"):
        a = CPU.simulate(ghost, {"input": x}, precision=precision, step_by_step=True)
        b = CPU.simulate(expanded, {"input": x}, precision=precision, step_by_step=True)
        end = last or ("node.ghost_cat" if kind == "SGhostEncoderLite" else "node.cat")
        np.testing.assert_array_equal(a.node_states["node"]["output_int"], b.node_states[end]["output_int"])
        np.testing.assert_array_equal(a.node_states["if"]["v_int"], b.node_states["if"]["v_int"])
        assert a.spike_counts["if"] == b.spike_counts["if"] > 0
        assert a.quantization.output_relative_error["output"] < (0.02 if precision == "int16" else 0.2)
    # part by part: the parts of the expansion equal the hand-written nodes
    program = lower(ghost)
    cal, _ = calibrate(program, {"input": x})
    kernels = fixed_kernels(program, CompileConfig("int8"), cal)
    block = kernels[program.op("node").index]
    merged = CPU.simulate(ghost, {"input": x}, precision="int8", step_by_step=True).node_states["front"]
    parts = block.part_integers(merged["output_int"].reshape(-1, 6, 8, 8))
    hand = CPU.simulate(expanded, {"input": x}, precision="int8", step_by_step=True).node_states
    names = {"primary": "p", "cheap": "c", "concat": "cat", "conv1": "c1", "cv0_split:0": "split", "residual": "add"}
    compared = 0
    for part, ints in parts.items():
        prefix = next((p for p in ("ghost_", "cv0_", "cv2_", "cvres_") if part.startswith(p)), "")
        rest = part[len(prefix) :]
        hand_name = f"node.{prefix}{names[rest]}" if rest in names else None
        if kind == "SDDetect" and part.startswith("cv"):
            hand_name = f"node.{part.replace('_', '')}"
        if hand_name is None or hand_name not in hand:
            continue
        key = "output_int" if ":" not in part else "output_0_int"
        np.testing.assert_array_equal(ints, hand[hand_name][key].reshape(ints.shape), err_msg=part)
        compared += 1
    assert compared >= 3


def test_the_decode_runs_in_float32_and_nothing_integer_may_follow_it():
    graph = chain([6, 3, 4], ("boxes", ir.Dist2BBox(stride=8)), ("fc", ir.Affine(np.ones((2, 6)), np.zeros(2))))
    problems = CPU.validate(graph, CompileConfig("int8")).unsupported_nodes
    assert problems == [
        "fc (Affine): it follows the detection decode, which runs in float32 at fixed-point precisions, and has "
        "no float tail kernel (only Concat, Skip, Flatten, ChannelSplit, Dropout, Output may follow DFLDecode / "
        "Dist2BBox / NMS) (precision int8)"
    ]
    with pytest.raises(UnsupportedNodeError, match=r"fc \(Affine\): it follows the detection decode"):
        CPU.simulate(graph, n_steps=2, precision="int8")
    assert CPU.validate(graph).is_valid  # fp32 runs it


def test_the_decode_reads_the_dequantized_integers():
    """Dist2BBox at int8 on dyadic distances: exact, and the same as fp32."""
    graph = chain([5, 2, 2], ("boxes", ir.Dist2BBox(stride=8)))
    x = (np.random.default_rng(0).integers(0, 16, (2, 1, 5, 2, 2)) / 4).astype(np.float32)
    fixed = CPU.simulate(graph, {"input": x}, precision="int8", step_by_step=True)
    assert fixed.node_precision == {"input": "int8", "boxes": "float32", "output": "float32"}
    assert fixed.float_nodes == ["boxes", "output"] and "float32 after the fixed-point" in fixed.summary()
    np.testing.assert_array_equal(fixed.outputs["output"], CPU.simulate(graph, {"input": x}).outputs["output"])
    assert "output_int" not in fixed.node_states["boxes"]
    assert "decode boundary: boxes, output" in CPU.profile(graph, {"input": x}, precision="int8").summary()


def test_cli_reports_the_float_decode(tmp_path):
    from click.testing import CliRunner

    from talon.cli import main

    path = tmp_path / "boxes.t1c"
    ir.write(str(path), chain([5, 2, 2], ("boxes", ir.Dist2BBox(stride=8))))
    out = CliRunner().invoke(main, ["simulate", str(path), "--precision", "int8", "--steps", "2", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["float32_nodes"] == ["boxes", "output"]


# ---- a trained detector ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    torch = pytest.importorskip("torch")
    from talon.bridge import to_ir
    from talon.examples.shapes import make_scenes
    from talon.examples.spiking_detector import SpikingGhostDetector, batch_images, detection_loss

    torch.manual_seed(0)
    shape = dict(size=48, min_radius=4, max_radius=9.6)
    train, test = make_scenes(256, seed=1, **shape), make_scenes(32, seed=2, **shape)
    model = SpikingGhostDetector()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(150):  # ~5 s: enough for real detections (mAP@0.5 ~ 0.24 on these 32 scenes)
            scenes = [train[i] for i in rng.choice(len(train), 16, replace=False)]
            loss = detection_loss(model.forward_sequence(batch_images(scenes)), scenes, model.reg_max, model.stride)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    images = batch_images(test)
    graph = to_ir(model, images[:1])
    frames = np.ascontiguousarray(np.broadcast_to(images.numpy(), (model.steps, *images.shape)))
    return graph, frames, test


def test_trained_detector_in_int16_and_int8_is_close_to_fp32(trained):
    pytest.importorskip("pycocotools")
    from talon.examples.spiking_detector import coco_map50

    graph, frames, scenes = trained
    fp32 = CPU.simulate(graph, {"input": frames}).outputs["output"][-1]
    reference = coco_map50(list(fp32), scenes)
    assert reference > 0.1 and (fp32[..., 5] >= 0).sum() > 20
    for precision, tolerance, agreement in (("int16", 0.01, 0.99), ("int8", 0.03, 0.9)):
        result = CPU.simulate(graph, {"input": frames}, precision=precision)
        detections = result.outputs["output"][-1]
        assert abs(coco_map50(list(detections), scenes) - reference) <= tolerance, precision
        assert result.quantization.spike_agreement >= agreement, precision
        assert result.float_nodes == ["dfl", "boxes", "nms", "output"]
        assert {p for n, p in result.node_precision.items() if n not in result.float_nodes} == {precision}
    descriptor = CPU.compile(graph, precision="int8", calibration_inputs=frames[:, :4])
    dtypes = {op["node"]: op["precision"]["dtype"] for c in descriptor.schedule for op in c["ops"]}
    assert dtypes["nms"] == dtypes["dfl"] == "float32" and dtypes["block1"] == "int64 container"


def test_trained_detector_gives_the_integers_of_its_expansion(trained):
    graph, frames, _ = trained
    nodes = {
        name: by_hand(node)
        if isinstance(node, (ir.SGhostEncoderLite, ir.GhostBasicBlock1, ir.GhostBasicBlock2, ir.SDDetect))
        else node
        for name, node in graph.nodes.items()
    }
    expanded = ir.Graph(nodes, graph.edges)
    x = frames[:, :6]
    a = CPU.simulate(graph, {"input": x}, precision="int8", step_by_step=True)
    b = CPU.simulate(expanded, {"input": x}, precision="int8", step_by_step=True)
    for name in ("if0", "if1", "if2", "if3", "average"):
        np.testing.assert_array_equal(a.node_states[name]["v_int"], b.node_states[name]["v_int"], err_msg=name)
    np.testing.assert_array_equal(a.outputs["output"], b.outputs["output"])


def test_fpga_backend_refuses_the_ghost_and_decode_nodes_by_name(trained):
    graph = trained[0]
    problems = get_backend("fpga").validate(graph, {"precision": "int8"}).unsupported_nodes
    named = {p.split(" ")[0] for p in problems}
    assert named == {"encoder", "block1", "block2", "block3", "head", "dfl", "boxes", "nms"}
    assert all("no HLS implementation" in p for p in problems)
