"""Kernel interfaces: how the executor runs one lowered operation.

A **stateless** kernel maps a batch ``[N, *in_shape]`` to ``[N, *out_shape]`` (``N`` is the batch,
or time × batch when a whole sequence runs at once): ``merge`` combines the incoming edges,
``forward`` computes the outputs (a list: one array per output port).

A **stateful** kernel (neurons, Delay) keeps state across steps: ``init_state(batch)``,
``step(xs, state)`` for one step of ``[B, ...]`` inputs, and ``run(xs, record, state)`` for a whole
``[T, B, ...]`` sequence (a loop over ``step`` unless the kernel does better). ``run`` starts from
``state`` when one is given and leaves the state after its last step in it, so a long run can be
cut into consecutive pieces of steps (the executor's chunks) with the same values as one call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..lowering.program import Op

State = dict[str, np.ndarray]


class Kernel:
    """Base of every kernel; ``op`` is the lowered operation it executes."""

    stateful = False
    spiking = False  # outputs are 0/1 spikes

    def __init__(self, op: Op) -> None:
        self.op = op

    def describe(self) -> dict[str, Any]:
        """Per-node precision facts for the hardware descriptor (see docs/backend.md)."""
        return {}


class StatelessKernel(Kernel):
    def merge(self, xs: list[np.ndarray]) -> Any:
        raise NotImplementedError

    def forward(self, x: Any) -> list[np.ndarray]:
        raise NotImplementedError


class StatefulKernel(Kernel):
    stateful = True
    state_names: tuple[str, ...] = ("v",)

    def init_state(self, batch: int) -> State:
        raise NotImplementedError

    def step(self, xs: list[np.ndarray], state: State) -> tuple[list[np.ndarray], State]:
        raise NotImplementedError

    def recorded(self, state: State) -> dict[str, np.ndarray]:
        """The state variables an executor reports (docs/semantics.md: ``v``, and ``i`` for Cuba)."""
        return {k: state[k] for k in self.state_names}

    def run(
        self, xs: list[np.ndarray], record: bool, state: State | None = None
    ) -> tuple[list[np.ndarray], dict[str, np.ndarray] | None]:
        """Run a whole sequence ``[T, B, ...]``; returns outputs and (if ``record``) state traces.

        ``state``: the state to start from (``init_state`` when None); updated in place to the
        state after the last step."""
        steps, batch = xs[0].shape[:2]
        carried = state
        if state is None:
            state = self.init_state(batch)
        outs: list[np.ndarray] | None = None
        trace: dict[str, np.ndarray] | None = None
        for t in range(steps):
            ys, state = self.step([x[t] for x in xs], state)
            if outs is None:
                outs = [np.empty((steps, *y.shape), y.dtype) for y in ys]
            for buf, y in zip(outs, ys, strict=True):
                buf[t] = y
            if record:
                rec = self.recorded(state)
                if trace is None:
                    trace = {k: np.empty((steps, *a.shape), a.dtype) for k, a in rec.items()}
                for k, a in rec.items():
                    trace[k][t] = a
        assert outs is not None
        if carried is not None and carried is not state:
            carried.clear()
            carried.update(state)
        return outs, trace
