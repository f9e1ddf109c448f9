"""Stage 3 of the CPU backend: one kernel per lowered operation (:mod:`.kernel` is the interface).

Floating point (``float_*``, ``detection_ops``) and fixed point (``fixed_*``, ``events``), each
with its stateless primitives, its neurons and their compiled time loop; the builders that turn a
program into a list of kernels (:mod:`.build`).
"""
