"""Greedy class-aware NMS of ``talon.ir.NMS`` on numpy rows, shared by the CPU backend and the
PyTorch module (docs/semantics.md §4.1).

Suppression only acts within a class, so each class is scanned on its own (its candidates in
visiting order: score descending, then row index) and the kept boxes of all classes are merged back
into visiting order and cut at ``max_detections`` — the same kept set as one scan over all rows.
Every quantity is computed in the rows' dtype in the documented order (corners ``c ∓ s/2``,
``inter = max(min − max, 0) · …``, ``union = (area_j + area_i) − inter``, ``inter / union > thr``),
so the compiled scan (numba, float32 / float64) and its numpy twin give identical kept sets; float16
rows always use the twin.
"""

from __future__ import annotations

import numpy as np

from ._compiled import WorkThreshold, compiled

COMPILED_FROM = 64  # candidates from which the compiled scan beats the twin per call (1.35 ms vs 0.13 ms at 64)
# work: candidates of one call. Measured (load 4-5, 2 cores): twin - compiled = 0.24 s at 4 000 candidates,
# 0.76 s at 16 000 (3 classes, float32); starting numba in a process (import, cached scan loaded) cost 1.0-1.5 s.
NMS_WORK = WorkThreshold("NMS", cold_from=20_000, warm_from=COMPILED_FROM)


def _scan_classes(x1, y1, x2, y2, area, starts, ends, thr, zero, limit, kept, by_x1, x1_sorted):
    """Compiled kernel: greedy scan of each class segment ``[starts[c], ends[c])``; marks ``kept``
    (1 kept, 2 suppressed). A kept box only tests the boxes of its class whose left edge lies in
    ``[x1_i − w_max − slack, x2_i)`` (``by_x1`` / ``x1_sorted``: the segment's positions ordered by
    ``x1``, in float64) — every box it could suppress, since overlapping needs ``x2_j > x1_i`` and
    ``x1_j < x2_i``; the exact test is the one of the numpy twin."""
    for c in range(starts.shape[0]):
        s, e = starts[c], ends[c]
        w_max = 0.0
        for p in range(s, e):
            d = np.float64(x2[p]) - np.float64(x1[p])
            if d > w_max:  # NaN never is
                w_max = d
        count = 0
        for i in range(s, e):
            if kept[i] == 2:  # suppressed
                continue
            kept[i] = 1
            count += 1
            if count == limit:
                break
            if not area[i] > zero:  # a degenerate box suppresses nothing
                continue
            ax1, ay1, ax2, ay2, a_area = x1[i], y1[i], x2[i], y2[i], area[i]
            left = np.float64(ax1)
            low = left - w_max - (abs(left) + w_max) * 2.0**-40  # rounding slack: a superset of the window
            # bisection: the first p with not x1_sorted[p] < bound (NaN sorts last and is never below)
            first, hi = s, e
            while first < hi:
                mid = (first + hi) // 2
                if x1_sorted[mid] < low:
                    first = mid + 1
                else:
                    hi = mid
            last, hi, right = first, e, np.float64(ax2)
            while last < hi:
                mid = (last + hi) // 2
                if x1_sorted[mid] < right:
                    last = mid + 1
                else:
                    hi = mid
            for p in range(first, last):
                j = by_x1[p]
                if j <= i or kept[j] == 2:
                    continue
                # the intersection is positive only if these four hold (all False with a NaN: no NaN
                # below); then max(min − max, 0) > 0 exactly when min − max > 0
                if not ((x2[j] > ax1) & (ax2 > x1[j]) & (y2[j] > ay1) & (ay2 > y1[j])):
                    continue
                if not area[j] > zero:
                    continue
                iw = min(x2[j], ax2) - max(x1[j], ax1)
                ih = min(y2[j], ay2) - max(y1[j], ay1)
                if not ((iw > zero) & (ih > zero)):  # a negative-size box: no intersection
                    continue
                inter = iw * ih
                if not inter > zero:
                    continue
                union = area[j] + a_area - inter
                if union > zero and inter / union > thr:
                    kept[j] = 2


def _scan_classes_numpy(x1, y1, x2, y2, area, starts, ends, thr, zero, limit, kept, by_x1=None, x1_sorted=None):
    """Numpy twin of :func:`_scan_classes`: each kept box suppresses the later boxes of its class at once."""
    for c in range(starts.shape[0]):
        count = 0
        for i in range(starts[c], ends[c]):
            if kept[i] == 2:
                continue
            kept[i] = 1
            count += 1
            if count == limit:
                break
            if not area[i] > zero:
                continue
            j = slice(i + 1, ends[c])
            iw = np.maximum(np.minimum(x2[j], x2[i]) - np.maximum(x1[j], x1[i]), zero)
            ih = np.maximum(np.minimum(y2[j], y2[i]) - np.maximum(y1[j], y1[i]), zero)
            inter = iw * ih
            union = area[j] + area[i] - inter
            with np.errstate(divide="ignore", invalid="ignore"):
                hit = (inter > zero) & (area[j] > zero) & (union > zero) & (inter / union > thr)
            kept[j][hit & (kept[j] != 1)] = 2


def nms_rows(
    rows: np.ndarray, score_threshold: float, iou_threshold: float, max_detections: int, *, use_compiled=None
) -> np.ndarray:
    """Greedy class-aware NMS of one ``[N, 4 + nc]`` array (see :class:`talon.ir.NMS`): ``[K, 6]``.

    ``use_compiled``: None picks the numba scan when the dtype is float32 / float64 and
    ``NMS_WORK`` (:class:`talon._compiled.WorkThreshold`, by the number of candidates) says the
    scan is worth it; False forces the numpy twin, True requires numba.
    """
    with np.errstate(all="ignore"):  # inf / NaN rows never suppress (their comparisons are False)
        return _nms_rows(rows, score_threshold, iou_threshold, max_detections, use_compiled)


def _nms_rows(rows, score_threshold, iou_threshold, max_detections, use_compiled):
    dt = rows.dtype.type
    n = rows.shape[0]
    k = max_detections or n
    out = np.zeros((k, 6), rows.dtype)
    out[:, 5] = -1
    columns = np.ascontiguousarray(rows[:, 4:].T)  # reductions over classes run along rows (vectorised)
    score = columns.max(axis=0)  # NaN if any score is NaN: never a candidate
    cand = np.flatnonzero(score > dt(score_threshold))
    cls = np.zeros(n, np.int64)
    cls[cand] = columns[:, cand].argmax(axis=0)  # the first best class
    order = cand[np.argsort(-score[cand], kind="stable")]  # visiting order
    by_class = np.argsort(cls[order], kind="stable")  # positions in visiting order, grouped by class
    r = rows[order[by_class]]
    c = cls[order[by_class]]
    half_w, half_h = r[:, 2] / dt(2), r[:, 3] / dt(2)
    x1, x2 = r[:, 0] - half_w, r[:, 0] + half_w
    y1, y2 = r[:, 1] - half_h, r[:, 1] + half_h
    area = (x2 - x1) * (y2 - y1)
    bounds = np.flatnonzero(np.diff(c)) + 1
    starts = np.concatenate([[0], bounds]).astype(np.int64) if len(c) else np.zeros(0, np.int64)
    ends = np.concatenate([bounds, [len(c)]]).astype(np.int64) if len(c) else np.zeros(0, np.int64)
    kept = np.zeros(len(c), np.int8)  # 0 unvisited, 1 kept, 2 suppressed
    args = (x1, y1, x2, y2, area, starts, ends, dt(iou_threshold), dt(0), k, kept)
    kernel = None
    native = rows.dtype in (np.float32, np.float64)
    wanted = use_compiled or (use_compiled is None and native and NMS_WORK.use_compiled(len(c)))
    if wanted and native:
        kernel = compiled(_scan_classes)
        if kernel is None and use_compiled:
            raise RuntimeError("use_compiled=True needs numba (the fast extra) and TALON_DISABLE_NUMBA unset")
    if kernel is None:
        _scan_classes_numpy(*args)
    else:
        by_x1 = np.lexsort((x1, c))  # per class, by left edge (NaN last)
        kernel(*args, by_x1, x1[by_x1].astype(np.float64))
    visiting = np.empty(len(c), bool)
    visiting[by_class] = kept == 1
    idx = order[np.flatnonzero(visiting)[:k]]
    out[: len(idx), :4] = rows[idx, :4]
    out[: len(idx), 4] = score[idx]
    out[: len(idx), 5] = cls[idx]
    return out
