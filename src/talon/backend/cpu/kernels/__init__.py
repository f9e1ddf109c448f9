"""Stage 3 of the CPU backend: one kernel per lowered operation (:mod:`.kernel` is the interface).

Floating point (``float_*``, ``detection_ops``) and fixed point (``fixed_*``), each with its
stateless primitives, its neurons and their compiled time loop; the event-driven synaptic products
of both (:mod:`.events`); the shared numerics (:mod:`.geometry`, :mod:`.params`); and the builder
that turns a program into its list of kernels at a precision (:mod:`.build`).
"""
