"""The JAX engine: run, batch and train any talon graph in JAX (talon's ``jax`` extra).

>>> from talon.interop import jax as tj
>>> model = tj.JaxGraph(graph)                    # lowered once; step and run are jit-compiled
>>> y, state = model.run(model.params, x)         # x: [T, B, *shape], time-major
>>> y_t, state = model.step(model.params, model.init_state(B), x_t)
>>> trained = model.to_graph(params)              # trained parameters back into a talon graph

See :mod:`talon.interop.jax.executor` for the contract and ``docs/jax.md`` for a tutorial.
"""

from ._deps import require as _require

_require("jax")

from . import detection as _detection  # noqa: E402,F401  (registers the ghost and detection layers)
from .executor import JaxGraph  # noqa: E402
from .spike import SURROGATES, make_spike  # noqa: E402

__all__ = ["SURROGATES", "JaxGraph", "make_spike"]
