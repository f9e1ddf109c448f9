"""Synthetic detection scenes: random filled shapes on a noisy background, with exact boxes.

``make_scene(rng)`` draws one ``[3, size, size]`` float32 image with 1 to ``max_objects`` shapes of
the classes :data:`CLASSES` (square, disc, triangle) in random colours. A shape's box is the
exact bounding box of its rasterised pixels, ``(x1, y1, x2, y2)`` in pixels with ``x2`` / ``y2``
one past the last covered pixel, so a box matches the picture exactly. Later shapes are drawn
over earlier ones; a shape is only placed where it overlaps earlier boxes by at most 30 % IoU,
so every object stays visible. ``scene_events`` turns a scene into ON/OFF event frames (the
shapes sweeping in from a shifted position), for event-camera style inputs.

numpy only; deterministic for a given ``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSES = ("square", "disc", "triangle")


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # [3, size, size] float32 in [0, 1]
    boxes: np.ndarray  # [n, 4] float32 (x1, y1, x2, y2), pixels
    labels: np.ndarray  # [n] int64, index into CLASSES


def _mask(kind: int, size: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    if kind == 0:
        return (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r)
    if kind == 1:
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    # upward triangle with apex at (cx, cy - r) and base at y = cy + r
    inside_y = (yy >= cy - r) & (yy <= cy + r)
    half = (yy - (cy - r)) / 2.0
    return inside_y & (np.abs(xx - cx) <= half)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def make_scene(rng: np.random.Generator, size: int = 64, max_objects: int = 3, min_radius: float = 5.0,
               max_radius: float = 13.0, noise: float = 0.05) -> Scene:  # fmt: skip
    """One scene (see the module docstring)."""
    if size < 4 * max_radius:
        raise ValueError(f"size={size} is too small for shapes of radius up to {max_radius}")
    image = np.empty((3, size, size), np.float32)
    image[:] = rng.uniform(0.0, 0.3, (3, 1, 1))
    image += rng.normal(0.0, noise, image.shape).astype(np.float32)
    boxes, labels = [], []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            kind = int(rng.integers(len(CLASSES)))
            r = float(rng.uniform(min_radius, max_radius))
            cx, cy = rng.uniform(r, size - r, 2)
            mask = _mask(kind, size, cx, cy, r)
            ys, xs = np.nonzero(mask)
            if len(xs) < 9:
                continue
            box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
            if all(_iou(box, b) <= 0.3 for b in boxes):
                colour = rng.uniform(0.55, 1.0, 3).astype(np.float32)
                image[:, mask] = colour[:, None]
                boxes.append(box)
                labels.append(kind)
                break
    np.clip(image, 0.0, 1.0, out=image)
    return Scene(image, np.array(boxes, np.float32).reshape(-1, 4), np.array(labels, np.int64))


def make_scenes(n: int, seed: int, **kwargs) -> list[Scene]:
    """``n`` scenes from ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return [make_scene(rng, **kwargs) for _ in range(n)]


def scene_events(scene: Scene, steps: int, shift: int = 2) -> np.ndarray:
    """ON/OFF event frames ``[steps, 2, size, size]`` (float32 0/1) of the scene's brightness.

    Frame ``t`` compares the grey image translated by ``(steps - 1 - t) * shift`` pixels with the
    one of the previous step (the scene slides into place): channel 0 marks brightness increases
    above 0.1 (ON), channel 1 decreases (OFF).
    """
    grey = scene.image.mean(axis=0)
    frames = [np.roll(grey, (steps - t) * shift, axis=1) for t in range(steps + 1)]
    out = np.zeros((steps, 2, *grey.shape), np.float32)
    for t in range(steps):
        diff = frames[t + 1] - frames[t]
        out[t, 0] = diff > 0.1
        out[t, 1] = diff < -0.1
    return out
