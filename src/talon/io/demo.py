"""A small event-driven network and recording for the docs and tests of talon.io.

:func:`event_network` is ``Input(2, H, W) → Flatten → Affine(2HW → n_out) → LIF → Output`` with
PyTorch-style uniform weights (seeded), snnTorch ``Leaky(beta=0.9)`` neurons; :func:`moving_bar`
is a recording of a bright vertical bar sweeping across the sensor (ON events at its leading
edge, OFF events at its trailing edge).
"""

from __future__ import annotations

import numpy as np

from talon import ir

from .events import EVENT_DTYPE, concatenate_events


def event_network(sensor_size=(16, 16), n_out: int = 8, *, gain: float = 4.0, seed: int = 0) -> ir.Graph:
    """``Input(2, H, W) → Flatten → Affine → LIF → Output`` for a ``(width, height)`` sensor."""
    width, height = int(sensor_size[0]), int(sensor_size[1])
    fan_in = 2 * width * height
    rng = np.random.default_rng(seed)
    bound = gain / np.sqrt(fan_in)
    weight = rng.uniform(-bound / 2, bound, (n_out, fan_in)).astype(np.float32)
    tau = np.full(n_out, 10.0)  # beta = 0.9
    nodes = {
        "input": ir.Input(np.array([2, height, width])),
        "flatten": ir.Flatten(),
        "fc": ir.Affine(weight=weight, bias=np.zeros(n_out, dtype=np.float32)),
        "lif": ir.LIF(tau=tau, r=tau, v_leak=0.0, v_threshold=1.0, reset_mode="subtract"),
        "output": ir.Output(np.array([n_out])),
    }
    edges = [("input", "flatten"), ("flatten", "fc"), ("fc", "lif"), ("lif", "output")]
    return ir.Graph(nodes, edges)


def moving_bar(sensor_size=(16, 16), *, duration_us: int = 50_000, bar_width: int = 2, seed: int = 0) -> np.ndarray:
    """Events of a bar moving left to right once over ``duration_us``, with 5 % timing jitter (seeded)."""
    width, height = int(sensor_size[0]), int(sensor_size[1])
    rng = np.random.default_rng(seed)
    per_column = duration_us / width
    blocks = []
    for col in range(width):
        t0 = col * per_column
        for x, on in ((col, True), (col - bar_width, False)):
            if not 0 <= x < width:
                continue
            block = np.empty(height, dtype=EVENT_DTYPE)
            block["x"], block["y"], block["p"] = x, np.arange(height), on
            block["t"] = np.round(t0 + rng.uniform(0, 0.05 * per_column, height)).astype(np.int64)
            blocks.append(block)
    events = concatenate_events(blocks)
    return events[np.argsort(events["t"], kind="stable")]
