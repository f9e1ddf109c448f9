"""talon's benchmarks (``python -m bench``; see ``bench/__main__.py``).

The rows that time talon in-process measure the compiled kernels in their steady state, as in a
long-running process where numba is already started: the work-size dispatch
(``talon._compiled``, docs/backend.md §9.2) would otherwise run the numpy twins until a process's
twin work adds up to one numba start-up, so the timings would depend on what ran before. Importing
``bench`` therefore sets ``TALON_FORCE_NUMBA=1``, unless the caller set ``TALON_DISABLE_NUMBA`` or
``TALON_FORCE_NUMBA`` itself or numba is not installed. ``bench_cli`` times the dispatch itself,
in new processes with their own environment.
"""

import importlib.util
import os

if "TALON_DISABLE_NUMBA" not in os.environ and importlib.util.find_spec("numba") is not None:
    os.environ.setdefault("TALON_FORCE_NUMBA", "1")
