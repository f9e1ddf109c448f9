"""NMS: talon's engines against ONNX Runtime's NonMaxSuppression on the same random scene.

The kept sets are identical (``tests/ir/test_nms_onnxruntime.py``, ``tests/backend/test_nms_scan.py``);
this measures the time of one scene of N boxes and 3 classes, interleaved with ONNX Runtime (C++,
one thread): the CPU backend's scan (``talon._nms``) compiled with numba and its numpy twin, and
the PyTorch module (the same scan on the tensor's memory). The first call of the numba scan
(compilation, or loading numba's on-disk cache) is reported on its own row.
"""

from __future__ import annotations

import numpy as np

from .common import Row, median_times, print_rows


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
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1  # pinned, like torch and numpy here
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def main() -> list[Row]:
    import time

    import torch

    from talon._compiled import compiled, numba_available
    from talon._nms import _scan_classes, nms_rows
    from talon.bridge.detection import NMS

    torch.set_num_threads(1)
    session = _onnx_session()
    rows_out = []
    if numba_available():
        start = time.perf_counter()
        nms_rows(_case(50), 0.25, 0.45, 0, use_compiled=True)  # compiles (or loads the cache)
        rows_out.append(Row("detection", "NMS numba scan: first call (compile or cache load)",
                            time.perf_counter() - start, "onnxruntime", None))  # fmt: skip
        assert compiled(_scan_classes) is not None
    module = NMS(0.25, 0.45, 0)
    for n in (500, 2000):
        rows = _case(n)
        score, cls = rows[:, 4:].max(axis=1), rows[:, 4:].argmax(axis=1)
        per_class = np.full((3, n), -np.inf, np.float32)
        per_class[cls, np.arange(n)] = score
        feeds = {"boxes": rows[None, :, :4], "scores": per_class[None], "max_out": np.array([n], np.int64),
                 "iou": np.array([0.45], np.float32), "score": np.array([0.25], np.float32)}  # fmt: skip
        tensor = torch.from_numpy(rows[None])
        onnx = {"onnxruntime": lambda feeds=feeds: session.run(None, feeds)}
        fast = {"torch": lambda tensor=tensor: module(tensor)}
        if numba_available():
            fast["numba"] = lambda rows=rows: nms_rows(rows, 0.25, 0.45, 0, use_compiled=True)
        # the slow numpy twin is timed on its own round: a long call ahead of a short one slows the short one
        times = median_times({**onnx, **fast}, repeats=41, warmup=3)
        twin = median_times({**onnx, "numpy": lambda rows=rows: nms_rows(rows, 0.25, 0.45, 0, use_compiled=False)},
                            repeats=5, warmup=1)  # fmt: skip
        ref = times["onnxruntime"]
        if "numba" in times:
            rows_out.append(Row("detection", f"NMS cpu backend (numba), {n} boxes", times["numba"], "onnxruntime", ref))
        rows_out.append(Row("detection", f"NMS cpu backend (numpy twin), {n} boxes", twin["numpy"], "onnxruntime",
                            twin["onnxruntime"]))  # fmt: skip
        rows_out.append(Row("detection", f"NMS torch module, {n} boxes", times["torch"], "onnxruntime", ref))
    return rows_out


if __name__ == "__main__":
    print_rows("NMS", main())
