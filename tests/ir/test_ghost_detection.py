"""The ghost and detection primitives: validation, shape inference, hand-computed outputs, files.

Outputs are computed by the CPU backend (the conformance suite holds every other engine to it).
"""

from __future__ import annotations

import numpy as np
import pytest

from talon import ir
from talon.backend import get_backend


def run(node: ir.Node, x: np.ndarray) -> np.ndarray:
    """One step of ``node`` on a batch ``x`` ``[B, *shape]``."""
    x = np.asarray(x, np.float32)
    graph = ir.Graph(
        {"input": ir.Input(np.array(x.shape[1:])), "node": node, "output": ir.Output(np.array([0]))},
        [("input", "node"), ("node", "output")],
        validate=False,
    )
    graph.nodes["output"] = ir.Output(np.array(_out_shape(node, x.shape[1:])))
    graph = ir.Graph(graph.nodes, graph.edges)
    return get_backend("cpu").simulate(graph, {"input": x[None]}).outputs["output"][0]


def _out_shape(node, shape):
    node.infer_types([tuple(shape)])
    return node.output_shape


def ghost_1x1(primary=2.0, centre=1.0, right=0.5, pb=0.0, cb=0.0):
    cheap = np.zeros((1, 1, 3, 3), np.float32)
    cheap[0, 0, 1, 1], cheap[0, 0, 1, 2] = centre, right
    return ir.SGhostConv(primary_weight=np.full((1, 1, 1, 1), primary, np.float32), cheap_weight=cheap,
                         primary_bias=np.array([pb], np.float32), cheap_bias=np.array([cb], np.float32))  # fmt: skip


def test_sghostconv_by_hand():
    # p = 2x + 1; g[j] = p[j] + 0.5 p[j+1] (zero padding) - 1
    y = run(ghost_1x1(pb=1.0, cb=-1.0), [[[[1.0, 2.0, 3.0]]]])
    np.testing.assert_array_equal(y[0, 0], [[3.0, 5.0, 7.0]])
    np.testing.assert_array_equal(y[0, 1], [[3 + 2.5 - 1, 5 + 3.5 - 1, 7 - 1]])


def test_ghost_shapes_and_channel_formulas():
    rng = np.random.default_rng(0)
    w = lambda *s: rng.normal(size=s).astype(np.float32)  # noqa: E731
    conv = ir.SGhostConv(primary_weight=w(5, 3, 3, 3), cheap_weight=w(5, 1, 3, 3), primary_stride=2,
                         input_type=[3, 9, 9])  # fmt: skip
    assert conv.output_shape == (10, 5, 5)
    enc = ir.SGhostEncoderLite(conv1_weight=w(16, 3, 3, 3), ghost_primary_weight=w(8, 16, 1, 1),
                               ghost_cheap_weight=w(8, 1, 3, 3), input_type=[3, 32, 32])  # fmt: skip
    assert enc.output_shape == (16, 16, 16)
    # SU-YOLO: cp0 = C2/2, cp2 = C2/4, C2 = cp0 + 2 cp2
    b1 = ir.GhostBasicBlock1(cv0_primary_weight=w(16, 16, 3, 3), cv0_cheap_weight=w(16, 1, 3, 3),
                             cv2_primary_weight=w(8, 16, 1, 1), cv2_cheap_weight=w(8, 1, 3, 3),
                             cvres_primary_weight=w(8, 16, 1, 1), cvres_cheap_weight=w(8, 1, 3, 3),
                             input_type=[16, 16, 16])  # fmt: skip
    assert b1.output_shape == (32, 8, 8)
    b2 = ir.GhostBasicBlock2(cv0_primary_weight=w(16, 32, 1, 1), cv0_cheap_weight=w(16, 1, 3, 3),
                             cv2_primary_weight=w(8, 16, 1, 1), cv2_cheap_weight=w(8, 1, 3, 3),
                             input_type=[32, 8, 8])  # fmt: skip
    assert b2.output_shape == (32, 8, 8)
    head = ir.SDDetect(
        num_classes=3, reg_max=4, cv2_w0=w(8, 32, 3, 3), cv2_w1=w(8, 8, 3, 3), cv2_w2=w(16, 8, 1, 1),
        cv3_w0=w(8, 32, 3, 3), cv3_w1=w(8, 8, 3, 3), cv3_w2=w(3, 8, 1, 1), input_type=[32, 8, 8],
    )  # fmt: skip
    assert head.output_shape == (19, 8, 8)
    assert ir.DFLDecode(reg_max=4, input_type=[19, 8, 8]).output_shape == (7, 8, 8)
    assert ir.Dist2BBox(stride=8, input_type=[7, 8, 8]).output_shape == (64, 7)
    assert ir.NMS(max_detections=0, input_type=[64, 7]).output_shape == (64, 6)
    assert ir.NMS(max_detections=10, input_type=[64, 7]).output_shape == (10, 6)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda w: ir.SGhostConv(primary_weight=w(4, 3, 2, 2), cheap_weight=w(4, 1, 3, 3)), "square odd kernel"),
        (lambda w: ir.SGhostConv(primary_weight=w(4, 3, 1, 1), cheap_weight=w(3, 1, 3, 3)), "depthwise weight"),
        (
            lambda w: ir.GhostBasicBlock1(
                cv0_primary_weight=w(8, 4, 3, 3),
                cv0_cheap_weight=w(8, 1, 3, 3),
                cv2_primary_weight=w(4, 8, 1, 1),
                cv2_cheap_weight=w(4, 1, 3, 3),
                cvres_primary_weight=w(2, 4, 1, 1),
                cvres_cheap_weight=w(2, 1, 3, 3),
            ),
            "they are summed",
        ),
        (
            lambda w: ir.GhostBasicBlock2(
                cv0_primary_weight=w(8, 4, 3, 3),
                cv0_cheap_weight=w(8, 1, 3, 3),
                cv2_primary_weight=w(4, 6, 1, 1),
                cv2_cheap_weight=w(4, 1, 3, 3),
            ),
            "ghost half",
        ),
        (
            lambda w: ir.SDDetect(
                num_classes=2,
                reg_max=4,
                cv2_w0=w(4, 8, 3, 3),
                cv2_w1=w(4, 4, 3, 3),
                cv2_w2=w(15, 4, 1, 1),
                cv3_w0=w(4, 8, 3, 3),
                cv3_w1=w(4, 4, 3, 3),
                cv3_w2=w(2, 4, 1, 1),
            ),
            "4 \\* reg_max",
        ),
        (lambda w: ir.NMS(iou_threshold=float("nan")), "NaN"),
        (lambda w: ir.NMS(max_detections=-1), "max_detections"),
        (lambda w: ir.Dist2BBox(stride=0), "positive"),
    ],
)
def test_bad_parameters_are_refused_with_the_reason(build, message):
    w = lambda *s: np.ones(s, np.float32)  # noqa: E731
    with pytest.raises((ValueError, ir.ShapeError), match=message):
        build(w)


def test_shape_errors_name_the_node():
    with pytest.raises(ir.ShapeError, match="DFLDecode"):
        ir.DFLDecode(reg_max=16, input_type=[63, 4, 4])
    with pytest.raises(ir.ShapeError, match="NMS"):
        ir.NMS(input_type=[10, 4])


def test_dfl_decode_by_hand():
    r = 4
    x = np.zeros((1, 4 * r + 1, 1, 1), np.float32)
    x[0, r : 2 * r, 0, 0] = [0, 0, 50, 0]  # side 1: all the mass in bin 2
    x[0, 3 * r + 3, 0, 0] = 60  # side 3: bin 3
    y = run(ir.DFLDecode(reg_max=r), x)
    np.testing.assert_allclose(y[0, :, 0, 0], [1.5, 2.0, 1.5, 3.0, 0.5], atol=1e-6)  # uniform: (R-1)/2


def test_dist2bbox_by_hand():
    x = np.zeros((1, 5, 2, 3), np.float32)
    x[0, :4, 0, 1] = [0.5, 0.5, 0.5, 0.5]  # cell (i=0, j=1): anchor (1.5, 0.5)
    x[0, :4, 1, 2] = [1.0, 0.0, 0.0, 2.0]  # cell (i=1, j=2): anchor (2.5, 1.5)
    x[0, 4] = 0.75
    y = run(ir.Dist2BBox(stride=8), x)
    assert y.shape == (1, 6, 5)
    np.testing.assert_array_equal(y[0, 1], [12.0, 4.0, 8.0, 8.0, 0.75])  # row i W + j = 1
    np.testing.assert_array_equal(y[0, 5], [16.0, 20.0, 8.0, 16.0, 0.75])  # x: 1.5..2.5, y: 1.5..3.5
    np.testing.assert_array_equal(y[0, 0], [4.0, 4.0, 0.0, 0.0, 0.75])


def rows(*boxes):
    return np.array([boxes], np.float32)


def test_nms_ties_keep_the_lower_index_and_pad_with_class_minus_one():
    # two identical boxes with equal scores: the first row wins; a third box elsewhere survives
    x = rows([5, 5, 4, 4, 0.875, 0.125], [5, 5, 4, 4, 0.875, 0.125], [20, 20, 4, 4, 0.875, 0.125])
    y = run(ir.NMS(0.25, 0.5, 5), x)[0]
    np.testing.assert_array_equal(y[:2], [[5, 5, 4, 4, 0.875, 0], [20, 20, 4, 4, 0.875, 0]])
    np.testing.assert_array_equal(y[2:], [[0, 0, 0, 0, 0, -1]] * 3)


def test_nms_is_class_aware_and_thresholds_are_strict():
    # same box, different best classes: both kept; score exactly at the threshold: dropped
    x = rows([5, 5, 4, 4, 0.875, 0.125], [5, 5, 4, 4, 0.125, 0.75], [30, 5, 4, 4, 0.25, 0.0])
    y = run(ir.NMS(0.25, 0.5, 0), x)[0]
    assert y.shape == (3, 6)
    np.testing.assert_array_equal(y[:, 5], [0, 1, -1])
    # IoU exactly 1/3 (boxes [0,4]x[0,4] and [2,6]x[0,4]): suppressed only when iou_threshold < 1/3
    x = rows([2, 2, 4, 4, 0.875, 0], [4, 2, 4, 4, 0.75, 0])
    assert (run(ir.NMS(0.25, 1 / 3 + 1e-6, 0), x)[0][:, 5] == 0).sum() == 2
    assert (run(ir.NMS(0.25, 0.3, 0), x)[0][:, 5] == 0).sum() == 1


def test_nms_degenerate_boxes_never_suppress_and_max_detections_truncates():
    x = rows([5, 5, 0, 4, 0.875, 0], [5, 5, 4, 4, 0.75, 0], [5, 5, -2, 4, 0.625, 0], [5, 5, 4, 4, 0.5, 0])
    y = run(ir.NMS(0.25, 0.5, 0), x)[0]
    np.testing.assert_array_equal(y[:, 4], [0.875, 0.75, 0.625, 0])  # the 4th duplicates the 2nd
    y = run(ir.NMS(0.25, 0.5, 2), x)[0]
    np.testing.assert_array_equal(y[:, 4], [0.875, 0.75])


def test_primitives_are_registered_and_files_round_trip(tmp_path):
    for name in ("SGhostConv", "SGhostEncoderLite", "GhostBasicBlock1", "GhostBasicBlock2", "SDDetect",
                 "DFLDecode", "Dist2BBox", "NMS"):  # fmt: skip
        assert name in ir.list_primitives()
    from tests.conformance.cases import DETECTION_CASES  # cases imports its detection cases itself

    for case in DETECTION_CASES:
        graph = case.build()
        ir.write(tmp_path / "g.t1c", graph)
        back = ir.read(tmp_path / "g.t1c")
        assert ir.graph_differences(graph, back) == []
        for name, node in graph.nodes.items():
            assert back.nodes[name].params().keys() == node.params().keys()
            for key, value in node.params().items():
                other = back.nodes[name].params()[key]
                if isinstance(value, np.ndarray):
                    assert other.dtype == value.dtype and np.array_equal(other, value)
                else:
                    assert other == value


def test_fixed_point_runs_the_ghost_primitives_in_integers():
    """int8, spikes in: P = 127 (2.0 -> q 127); cheap 1.0 / 0.5 -> q 127 / 64 (63.5, half to even), no
    rescaling (P has one scale and bound 127): g = 127 P[j] + 64 P[j+1] = 24257, 24257, 16129."""
    graph = ir.Graph(
        {"input": ir.Input(np.array([1, 1, 3])), "ghost": ghost_1x1(), "output": ir.Output(np.array([2, 1, 3]))},
        [("input", "ghost"), ("ghost", "output")],
    )
    x = np.ones((2, 1, 1, 1, 3), np.float32)
    result = get_backend("cpu").simulate(graph, {"input": x}, precision="int8", step_by_step=True)
    ints = result.node_states["ghost"]["output_int"][0, 0, :, 0]
    np.testing.assert_array_equal(ints, [[127, 127, 127], [24257, 24257, 16129]])
    assert result.node_precision["ghost"] == "int8" and not result.float_nodes


def test_synthetic_scenes_have_exact_boxes():
    from talon.examples.shapes import make_scene, make_scenes, scene_events

    rng = np.random.default_rng(5)
    for _ in range(20):
        scene = make_scene(rng, size=48, min_radius=4, max_radius=9.6, noise=0.0)
        background = scene.image[:, 0, 0]  # noise-free: the background is one colour per channel
        assert len(scene.boxes) == len(scene.labels) >= 1
        for x1, y1, x2, y2 in scene.boxes.astype(int):
            inside = np.any(scene.image[:, y1:y2, x1:x2] != background[:, None, None], axis=0)
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
    a, b = make_scenes(3, seed=1), make_scenes(3, seed=1)
    assert all(np.array_equal(p.image, q.image) and np.array_equal(p.boxes, q.boxes) for p, q in zip(a, b, strict=True))
    events = scene_events(a[0], steps=4)
    assert events.shape == (4, 2, 64, 64) and set(np.unique(events)) <= {0.0, 1.0} and events.any()
