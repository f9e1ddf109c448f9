"""Stage 4 of the CPU backend: running the kernels over the steps, and what a run reports.

The :class:`~.engine.Engine` (program + kernels + :mod:`.executor`); observers and probes; the
buffers of a compiled program (:mod:`.memory`) and the memory a run holds (:mod:`.run_memory`);
the fp32 reference of a reduced precision; the program cache; the compiled-kernel work plan; the
profiler's operation counts and energy.
"""
