"""talon._compiled: numba kernels when available, None when disabled (numpy twins are used then)."""

import subprocess
import sys

import numpy as np

from talon._compiled import compiled, helper

from .markers import needs_numba
from .subprocesses import child_env


def _running_sum(values):
    total = 0
    for value in values:
        total += value
    return total


@needs_numba
def test_a_kernel_compiles_once_and_matches_python():
    kernel = compiled(_running_sum)
    assert kernel is compiled(_running_sum)
    values = np.arange(1_000, dtype=np.int64)
    assert kernel(values) == _running_sum(values) == 499_500


@helper
def _doubled(value):
    return 2 * value


def _sum_doubled(values):
    total = 0
    for value in values:
        total += _doubled(value)
    return total


@needs_numba
def test_a_helper_is_compiled_into_the_kernel_that_calls_it():
    """A ``helper`` stays a plain function (the twins call it) and numba inlines it into a kernel."""
    assert _doubled(3) == 6
    values = np.arange(10, dtype=np.int64)
    assert compiled(_sum_doubled)(values) == _sum_doubled(values) == 90


def test_the_environment_switch_disables_numba_without_importing_it():
    code = (
        "import sys; from talon._compiled import compiled, numba_available; "
        "assert not numba_available() and compiled(len) is None; assert 'numba' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=child_env({"TALON_DISABLE_NUMBA": "1", "PATH": ""}))


def test_importing_talon_does_not_import_numba():
    code = (
        "import sys, talon, talon.io, talon.backend, talon.bridge.sequence_kernels; "
        "assert 'numba' not in sys.modules, 'numba imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=child_env({"PATH": ""}))
