"""Shared pytest marks. In CI every optional dependency is installed and a skip fails the run
(tests/conftest.py), so these only skip on a machine without the extra."""

import pytest

from talon._compiled import numba_available

needs_numba = pytest.mark.skipif(not numba_available(), reason="the fast extra (numba) is not installed")
