"""References to compare a graph's outputs with: the framework the model came from, or talon's PyTorch executor.

A reference is a picklable callable ``reference(x) -> outputs``, ``x`` the encoded shard
``[T, B, *input_shape]`` float32 and ``outputs`` ``[T, B, *output_shape]``; the evaluation counts the
output elements equal to the graph's (``output_agreement``). A precision name (``"fp32"``) as the
reference instead compares every spiking node on the CPU backend (``spike_agreement``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from talon import ir


@dataclass
class ModuleReference:
    """A stateful PyTorch / snnTorch / Norse module run step by step: ``module(x[t])`` for t = 0..T-1.

    Hidden state is reset before every shard (snnTorch ``utils.reset`` for ``init_hidden`` neurons, or
    the module's own ``reset()``); a module that returns a tuple contributes its first element (the spikes).
    """

    module: Any

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        self.module.eval()
        if hasattr(self.module, "reset"):
            self.module.reset()
        else:
            try:
                from snntorch import utils

                utils.reset(self.module)
            except ImportError:
                pass
        outputs = []
        with torch.no_grad():
            for t in range(x.shape[0]):
                y = self.module(torch.from_numpy(np.ascontiguousarray(x[t])))
                outputs.append(y[0] if isinstance(y, tuple) else y)
        return torch.stack(outputs).numpy()


@dataclass
class TorchExecutorReference:
    """talon's own PyTorch executor of the graph (``bridge.ir_to_torch``), over the whole sequence."""

    graph: ir.Graph
    _executor: Any = field(default=None, repr=False, compare=False)

    def __getstate__(self):
        return {"graph": self.graph, "_executor": None}

    def executor(self):
        """The executor (built at the first use, in the process that uses it)."""
        if self._executor is None:
            from talon import bridge

            self._executor = bridge.ir_to_torch(self.graph)
        return self._executor

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            outputs, _ = self.executor().run_sequence(torch.from_numpy(np.ascontiguousarray(x)))
        return (outputs[0] if isinstance(outputs, (tuple, list)) else outputs).numpy()

    def planned_share(self, steps: int, batch: int) -> float:
        """The compiled-loop work of one call on ``[steps, batch, ...]`` float32 input, in numba
        start-ups (``talon.bridge.sequence_plan``; the call runs without a gradient)."""
        import torch

        from talon.bridge.sequence_plan import executor_share

        return executor_share(self.executor(), steps, batch, torch.float32, torch.device("cpu"))
