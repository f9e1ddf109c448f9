"""The engines under test. Each ``engine_<name>.py`` module in this folder defines

``run(graph: ir.Graph, x: np.ndarray[T, B, *shape]) -> {"outputs": {...}, "states": {...}}``

with the same contract as :func:`tests.conformance.reference.run` (states after each step, keyed
by node path, ``"v"`` for the membrane and ``"i"`` for a synaptic current), and the module-level
``REQUIRES`` tuple of importable modules the engine needs.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path


def engine_names() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name[len("engine_") :] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("engine_"))


def load(name: str):
    return importlib.import_module(f"tests.conformance.engine_{name}")
