"""The CPU backend (numpy only): reference simulator, fixed-point simulator, profiler.

The code follows the pipeline, one folder per stage: ``lowering/`` → ``formats/`` → ``kernels/`` →
``run/``, driven by :mod:`.backend` (docs/backend.md, "Where the code is"). ``program_cache`` (its
``clear()``, ``MAX_ENTRIES``, ``stats``) and ``run_memory`` (the memory plan of a run) are the two
modules the user guide reaches into; they are reachable from here as well.
"""

from .backend import CPUBackend
from .run import program_cache, run_memory

__all__ = ["CPUBackend", "program_cache", "run_memory"]
