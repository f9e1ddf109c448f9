"""talon: an open neuromorphic toolchain built around TALON IR.

Subpackages are imported on first use (``from talon import ir, bridge``), so ``import talon``
costs nothing and optional dependencies (torch, jax, nir) load only when their layer is used.
"""

__version__ = "0.1.0"
