"""``GraphExecutor.run_sequence`` with the compiled neuron kernels switched off: the PyTorch
in-place loops (the kernels' twins, what runs without numba or with ``TALON_DISABLE_NUMBA=1``)."""

from unittest import mock

from talon import _compiled

from . import engine_torch_sequence

REQUIRES = ("torch",)


def run(graph, x):
    with mock.patch.object(_compiled, "numba_available", lambda: False):
        return engine_torch_sequence.run(graph, x)
