"""talon._compiled: numba kernels when available, None when disabled (numpy twins are used then)."""

import subprocess
import sys

import numpy as np

from talon._compiled import compiled

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


def test_the_environment_switch_disables_numba_without_importing_it():
    code = (
        "import sys; from talon._compiled import compiled, numba_available; "
        "assert not numba_available() and compiled(len) is None; assert 'numba' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=child_env({"TALON_DISABLE_NUMBA": "1", "PATH": ""}))


def test_importing_talon_does_not_import_numba():
    code = "import sys, talon, talon.io, talon.backend; assert 'numba' not in sys.modules, 'numba imported eagerly'"
    subprocess.run([sys.executable, "-c", code], check=True, env=child_env({"PATH": ""}))
