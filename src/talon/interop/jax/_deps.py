"""Lazy imports of the optional JAX stack, with an error that names the pip extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from ...ir.errors import MissingDependencyError, install_hint


def require(module: str) -> ModuleType:
    """Import ``module`` (``"jax"``, ``"flax.nnx"``, ``"spyx.nn"`` …) or raise MissingDependencyError."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise MissingDependencyError(
            f"{top} is needed for this part of talon.interop but could not be imported ({exc}); " + install_hint("jax")
        ) from exc
