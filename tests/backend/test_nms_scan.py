"""The NMS scan (talon._nms): the numba kernel and its numpy twin keep exactly the boxes of the
straightforward greedy loop (below, the previous implementation), on adversarial rows (ties, grids,
degenerate and negative boxes, NaN, ±inf, 1e-30 … 3e38 coordinates, IoU thresholds ≤ 0), and
exactly ONNX Runtime's kept sets; the PyTorch module runs the same scan."""

import numpy as np
import pytest

from talon._nms import nms_rows

from ..markers import needs_numba

PATHS = [False, pytest.param(True, marks=needs_numba)]


def greedy_reference(rows, score_threshold, iou_threshold, max_detections):
    """One pass over all candidates in visiting order; each kept box suppresses the later boxes of its class."""
    dt = rows.dtype.type
    k = max_detections or rows.shape[0]
    out = np.zeros((k, 6), rows.dtype)
    out[:, 5] = -1
    score, cls = rows[:, 4:].max(axis=1), rows[:, 4:].argmax(axis=1)
    cand = np.flatnonzero(score > dt(score_threshold))
    order = cand[np.argsort(-score[cand], kind="stable")]
    r, c = rows[order], cls[order]
    x1, x2 = r[:, 0] - r[:, 2] / dt(2), r[:, 0] + r[:, 2] / dt(2)
    y1, y2 = r[:, 1] - r[:, 3] / dt(2), r[:, 1] + r[:, 3] / dt(2)
    area, zero = (x2 - x1) * (y2 - y1), dt(0)
    removed, kept = np.zeros(len(order), bool), []
    for i in range(len(order)):
        if removed[i]:
            continue
        kept.append(order[i])
        if len(kept) == k:
            break
        j = slice(i + 1, None)
        iw = np.maximum(np.minimum(x2[j], x2[i]) - np.maximum(x1[j], x1[i]), zero)
        ih = np.maximum(np.minimum(y2[j], y2[i]) - np.maximum(y1[j], y1[i]), zero)
        inter = iw * ih
        union = area[j] + area[i] - inter
        valid = (inter > zero) & (area[j] > zero) & (area[i] > zero) & (union > zero) & (c[j] == c[i])
        removed[j] |= valid & (inter / union > dt(iou_threshold))
    idx = np.asarray(kept, np.int64)
    out[: len(idx), :4], out[: len(idx), 4], out[: len(idx), 5] = rows[idx, :4], score[idx], cls[idx]
    return out


def _rows(rng, trial: int, dtype):
    n, nc = int(rng.integers(1, 160)), int(rng.integers(1, 4))
    rows = np.empty((n, 4 + nc), np.float64)
    if trial % 5 == 0:  # a coarse grid: ties, identical boxes, IoU exactly at the threshold
        rows[:, :2] = rng.integers(0, 24, (n, 2)) / 2
        rows[:, 2:4] = rng.integers(-2, 16, (n, 2)) / 2
        rows[:, 4:] = rng.integers(0, 9, (n, nc)) / 8
    else:
        scale = (1.0, 1e-30, 1e20, 3e37)[trial % 4]
        rows[:, :2] = rng.normal(size=(n, 2)) * 10 * scale
        rows[:, 2:4] = rng.uniform(-0.5, 6, (n, 2)) * 5 * scale
        rows[:, 4:] = rng.uniform(0, 1, (n, nc))
    if trial % 3 == 0:
        hit = rng.random((n, 4)) < 0.05
        rows[:, :4][hit] = rng.choice([np.inf, -np.inf, np.nan], int(hit.sum()))
    with np.errstate(all="ignore"):
        return rows.astype(dtype)


# float16 rows always take the numpy twin
@pytest.mark.parametrize(
    ("dtype", "use_compiled"),
    [
        (np.float32, False),
        (np.float64, False),
        (np.float16, False),
        pytest.param(np.float32, True, marks=needs_numba),
        pytest.param(np.float64, True, marks=needs_numba),
    ],
)
def test_scan_keeps_what_the_greedy_loop_keeps(dtype, use_compiled):
    rng = np.random.default_rng(3)
    for trial in range(120):
        rows = _rows(rng, trial, dtype)
        iou = float(rng.choice([-0.5, 0.0, 0.3, 0.45, 0.9]))
        for max_det in (0, 1, 5):
            with np.errstate(all="ignore"):
                want = greedy_reference(rows, 0.2, iou, max_det)
            got = nms_rows(rows, 0.2, iou, max_det, use_compiled=use_compiled)
            np.testing.assert_array_equal(got, want, err_msg=f"trial {trial}, iou {iou}, max {max_det}")


@pytest.mark.parametrize("use_compiled", PATHS)
def test_scan_keeps_what_onnxruntime_keeps(use_compiled):
    from ..ir.test_nms_onnxruntime import _expected, _onnx_session, _random_rows

    session = _onnx_session()
    rng = np.random.default_rng(11)
    for score_thr, iou_thr in ((0.25, 0.5), (0.0, 0.0), (0.5, 0.25)):
        for _ in range(20):
            rows = _random_rows(rng, 64)
            want = _expected(session, rows, score_thr, iou_thr)
            np.testing.assert_array_equal(nms_rows(rows, score_thr, iou_thr, 0, use_compiled=use_compiled), want)
    rows = _random_rows(np.random.default_rng(7), 2000)
    want = _expected(session, rows, 0.25, 0.45)
    np.testing.assert_array_equal(nms_rows(rows, 0.25, 0.45, 0, use_compiled=use_compiled), want)


def test_torch_module_runs_the_same_scan_in_its_dtype():
    torch = pytest.importorskip("torch")
    from talon.bridge.detection import nms_rows as torch_nms_rows

    rng = np.random.default_rng(5)
    for trial in range(30):
        for dtype, torch_dtype in ((np.float32, torch.float32), (np.float64, torch.float64)):
            rows = _rows(rng, trial, dtype)
            got = torch_nms_rows(torch.from_numpy(rows), 0.2, 0.45, 3)
            assert got.dtype == torch_dtype
            with np.errstate(all="ignore"):
                np.testing.assert_array_equal(got.numpy(), greedy_reference(rows, 0.2, 0.45, 3))
    rows = _rows(rng, 5, np.float32)  # bfloat16 keeps the torch loop, in bfloat16
    out = torch_nms_rows(torch.from_numpy(rows).to(torch.bfloat16), 0.2, 0.45, 0)
    assert out.dtype == torch.bfloat16 and out.shape == (rows.shape[0], 6)
