"""Stage 1 of the CPU backend: a validated graph lowered to a :class:`~.program.Program`.

Subgraphs inlined, edges resolved to values, delayed edges marked, operations grouped into
components in execution order (:mod:`.program`). The FPGA backend lowers with the same code.
"""
