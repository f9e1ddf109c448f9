"""NMS: talon's engines against ONNX Runtime's NonMaxSuppression on the same random scene.

The kept sets are identical (``tests/ir/test_nms_onnxruntime.py``); this measures the time of one
scene of N boxes and 3 classes: the CPU backend's kernel (numpy, per-kept-box vectorised), the
PyTorch module (a candidates-by-candidates suppression matrix), each against ONNX Runtime (C++).
"""

from __future__ import annotations

import numpy as np

from .common import Row, median_time, print_rows


def _case(n: int):
    rng = np.random.default_rng(0)
    rows = np.empty((n, 7), np.float32)
    rows[:, :2] = rng.uniform(0, 640, (n, 2))
    rows[:, 2:4] = rng.uniform(8, 96, (n, 2))
    rows[:, 4:] = rng.uniform(0, 1, (n, 3))
    return rows


def _onnx_session():
    import onnxruntime as ort
    from onnx import TensorProto, helper

    node = helper.make_node("NonMaxSuppression", ["boxes", "scores", "max_out", "iou", "score"], ["selected"],
                            center_point_box=1)  # fmt: skip
    inputs = [
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, None, 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3, None]),
        helper.make_tensor_value_info("max_out", TensorProto.INT64, [1]),
        helper.make_tensor_value_info("iou", TensorProto.FLOAT, [1]),
        helper.make_tensor_value_info("score", TensorProto.FLOAT, [1]),
    ]
    output = helper.make_tensor_value_info("selected", TensorProto.INT64, [None, 3])
    model = helper.make_model(helper.make_graph([node], "nms", inputs, [output]),
                              opset_imports=[helper.make_opsetid("", 11)])  # fmt: skip
    model.ir_version = 7
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def main() -> list[Row]:
    import torch

    from talon.backend.cpu.detection_ops import nms_rows
    from talon.bridge.detection import nms_rows as torch_nms_rows

    session = _onnx_session()
    rows_out = []
    for n in (500, 2000):
        rows = _case(n)
        score, cls = rows[:, 4:].max(axis=1), rows[:, 4:].argmax(axis=1)
        per_class = np.full((3, n), -np.inf, np.float32)
        per_class[cls, np.arange(n)] = score
        feeds = {"boxes": rows[None, :, :4], "scores": per_class[None], "max_out": np.array([n], np.int64),
                 "iou": np.array([0.45], np.float32), "score": np.array([0.25], np.float32)}  # fmt: skip
        ref = median_time(lambda feeds=feeds: session.run(None, feeds), repeats=5)
        ours = median_time(lambda rows=rows: nms_rows(rows, 0.25, 0.45, 0), repeats=5)
        tensor = torch.from_numpy(rows)
        ours_torch = median_time(lambda tensor=tensor: torch_nms_rows(tensor, 0.25, 0.45, 0), repeats=5)
        rows_out.append(Row("detection", f"NMS cpu backend, {n} boxes", ours, "onnxruntime", ref))
        rows_out.append(Row("detection", f"NMS torch module, {n} boxes", ours_torch, "onnxruntime", ref))
    return rows_out


if __name__ == "__main__":
    print_rows("NMS", main())
