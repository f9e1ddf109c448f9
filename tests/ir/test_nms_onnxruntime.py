"""NMS against an independent implementation: ONNX Runtime's ``NonMaxSuppression`` (center_point_box=1).

Thousands of random boxes on a coarse grid (equal scores, identical boxes, IoU exactly at the
threshold) plus zero- and negative-size boxes. ONNX NMS is per class; talon's is class-aware on
each box's best class, so ONNX gets each box's score in its best class only. ONNX returns the
kept ``(class, box)`` pairs; talon's output rows must be exactly those boxes, in talon's visiting
order (score descending, then row index), in every engine.
"""

from __future__ import annotations

import numpy as np
import pytest

from talon import ir

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

NC = 3


def _onnx_session():
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores", "max_out", "iou", "score"], ["selected"],
                            center_point_box=1)  # fmt: skip
    graph = helper.make_graph(
        [node], "nms",
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, None, 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, NC, None]),
         helper.make_tensor_value_info("max_out", TensorProto.INT64, [1]),
         helper.make_tensor_value_info("iou", TensorProto.FLOAT, [1]),
         helper.make_tensor_value_info("score", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("selected", TensorProto.INT64, [None, 3])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _random_rows(rng, n: int) -> np.ndarray:
    rows = np.empty((n, 4 + NC), np.float32)
    rows[:, :2] = rng.integers(0, 24, (n, 2)) / 2  # centres on a half-pixel grid
    rows[:, 2:4] = rng.integers(-2, 16, (n, 2)) / 2  # sizes: some zero or negative (degenerate)
    rows[:, 4:] = rng.integers(0, 9, (n, NC)) / 8  # scores: many ties, some exactly at the threshold
    dup = rng.random(n) < 0.1  # identical boxes
    rows[dup, :4] = rows[0, :4]
    return rows


def _expected(session, rows: np.ndarray, score_thr: float, iou_thr: float) -> np.ndarray:
    score = rows[:, 4:].max(axis=1)
    cls = rows[:, 4:].argmax(axis=1)
    per_class = np.full((NC, rows.shape[0]), -np.inf, np.float32)
    per_class[cls, np.arange(rows.shape[0])] = score
    (selected,) = session.run(None, {
        "boxes": rows[None, :, :4], "scores": per_class[None], "max_out": np.array([rows.shape[0]], np.int64),
        "iou": np.array([iou_thr], np.float32), "score": np.array([score_thr], np.float32),
    })  # fmt: skip
    kept = selected[:, 2]
    assert np.all(selected[:, 1] == cls[kept])
    kept = sorted(kept.tolist(), key=lambda i: (-score[i], i))
    out = np.zeros((rows.shape[0], 6), np.float32)
    out[:, 5] = -1
    for r, i in enumerate(kept):
        out[r] = [*rows[i, :4], score[i], cls[i]]
    return out


def _graph(n: int, score_thr: float, iou_thr: float) -> ir.Graph:
    return ir.Graph(
        {"input": ir.Input(np.array([n, 4 + NC])), "nms": ir.NMS(score_thr, iou_thr, 0),
         "output": ir.Output(np.array([n, 6]))},
        [("input", "nms"), ("nms", "output")],
    )  # fmt: skip


def _engines():
    from talon.backend import get_backend

    def cpu(graph, x):
        return get_backend("cpu").simulate(graph, {"input": x[None]}).outputs["output"][0]

    def torch_executor(graph, x):
        import torch

        from talon.bridge import ir_to_torch

        with torch.no_grad():
            return ir_to_torch(graph)(torch.from_numpy(x)).numpy()

    def jax_engine(graph, x):
        pytest.importorskip("jax")
        from talon.interop.jax import JaxGraph

        model = JaxGraph(graph)
        return np.asarray(model.run(model.params, x[None])[0])[0]

    return {"cpu": cpu, "torch": torch_executor, "jax": jax_engine}


@pytest.mark.parametrize("engine", ["cpu", "torch", "jax"])
@pytest.mark.parametrize(("score_thr", "iou_thr"), [(0.25, 0.5), (0.0, 0.0), (0.5, 0.25)])
def test_nms_keeps_what_onnxruntime_keeps(engine, score_thr, iou_thr):
    session = _onnx_session()
    rng = np.random.default_rng(int(score_thr * 100 + iou_thr * 10))
    n, batch = 48, 64  # 3072 boxes per engine and setting
    x = np.stack([_random_rows(rng, n) for _ in range(batch)])
    got = _engines()[engine](_graph(n, score_thr, iou_thr), x)
    kept_total = 0
    for b in range(batch):
        want = _expected(session, x[b], score_thr, iou_thr)
        np.testing.assert_array_equal(got[b], want, err_msg=f"scene {b}")
        kept_total += int((want[:, 5] >= 0).sum())
    assert 0 < kept_total < n * batch  # something kept, something suppressed


def test_nms_large_scene_matches_onnxruntime():
    session = _onnx_session()
    rows = _random_rows(np.random.default_rng(7), 2000)
    got = _engines()["cpu"](_graph(2000, 0.25, 0.45), rows[None])[0]
    np.testing.assert_array_equal(got, _expected(session, rows, 0.25, 0.45))
