"""What the exporter accepts as a neuron's state arguments, and how often a stateful module may run.

A TALON IR neuron's state at ``t = 0`` is its ``v_init`` (0 when None; a CubaLIF current starts
at 0, a recurrent edge carries 0) and the node keeps **one** state, carried from step to step.
So, for a stateful module's call in ``forward`` (``spk, mem = self.lif(cur, mem)``):

* a state argument computed by the network (the previous call's membrane fed back, a tensor made
  from the input) is refused: the graph would start a fresh state from it at every step;
* a constant state argument (``init_leaky()``, a buffer) that is all zero is the IR's own start;
  a non-zero one is refused. snnTorch uses a passed ``mem`` (``syn``, ``spk``) only when its shape
  equals the input's, *batch included*, and starts from zero at any other batch size, so such a
  model's state at ``t = 0`` depends on the batch size — which a graph (shapes without batch)
  cannot state; ``v_init`` would be exact at one batch size and wrong at the others;
* a stateful module called twice in one ``forward`` (``self.lif(self.fc2(self.lif(...)))``) is
  refused: both calls update one shared state, and two IR nodes would keep two.
"""

from __future__ import annotations

import inspect
import types
from typing import Any

import torch
from torch import nn

from talon.ir.errors import ConversionError

_VARARGS, _VARKEYWORDS = inspect.CO_VARARGS, inspect.CO_VARKEYWORDS


def parameter_names(module: nn.Module) -> list[str]:
    """The names of ``module.forward``'s parameters, in order (``[]`` when they cannot be read):
    ``inspect.signature(module.forward).parameters``, read from the code object when ``forward`` is
    a plain method of ``module`` (what ``inspect`` would read too; it costs a hundred times more)."""
    forward = module.forward
    if type(forward) is types.MethodType and forward.__self__ is module:
        func = forward.__func__
        if (
            type(func) is types.FunctionType
            and func.__code__.co_argcount
            and not any(
                hasattr(func, attr) for attr in ("__wrapped__", "__signature__", "_partialmethod", "__partialmethod__")
            )
        ):
            code = func.__code__
            n_pos, n_kw = code.co_argcount, code.co_kwonlyargcount
            names = list(code.co_varnames[1:n_pos])  # without self, which the bound method fills
            rest = n_pos + n_kw
            if code.co_flags & _VARARGS:
                names.append(code.co_varnames[rest])
                rest += 1
            names += code.co_varnames[n_pos : n_pos + n_kw]
            if code.co_flags & _VARKEYWORDS:
                names.append(code.co_varnames[rest])
            return names
    try:
        return list(inspect.signature(forward).parameters)
    except (TypeError, ValueError):
        return []


def check_state_arguments(module: nn.Module, path: str, states: list[tuple[str, Any, bool]],
                          input_shape: tuple[int, ...] | None) -> None:  # fmt: skip
    """Refuse the state arguments a TALON IR neuron cannot start from (module docstring).

    ``states``: ``(parameter name, value, computed)`` per state argument, where ``value`` is the
    constant tensor (or None when unknown) and ``computed`` says the network computed it."""
    for name, value, computed in states:
        if computed:
            raise ConversionError(
                f"module {path!r}: its state argument {name!r} is computed by the network; TALON IR neurons "
                "carry their own state from step to step and start from v_init (0), so a state fed back in "
                "forward (or made from the input) is not exported: pass None / init_leaky() and let the graph "
                "carry the state"
            )
        if not isinstance(value, torch.Tensor) or not torch.count_nonzero(value.detach()):
            continue
        shape = tuple(value.shape)
        if type(module).__module__.startswith("snntorch"):
            raise ConversionError(
                f"module {path!r}: its initial {name!r} is a non-zero constant (shape {shape}). snnTorch uses a "
                f"passed {name!r} only when its shape equals the input's, batch included, and starts from zero at "
                "any other batch size, so the model's state at t = 0 depends on the batch size, which a TALON IR "
                "graph cannot state. Start from zero (init_leaky() or None); to start the exported neuron "
                f"elsewhere, give its IR node a v_init (dataclasses.replace(graph.nodes[{path!r}], v_init=...))"
            )
        raise ConversionError(
            f"module {path!r}: its state argument {name!r} is a non-zero constant (shape {shape}); the exporter "
            f"starts IR neurons from zero. Pass zeros or None, and give the exported node a v_init "
            f"(dataclasses.replace(graph.nodes[{path!r}], v_init=...)) to start it elsewhere"
        )


def stateful_call_refused(path: str) -> ConversionError:
    return ConversionError(
        f"module {path!r} is called more than once in forward: its state is shared between the calls, and "
        "TALON IR neurons have one state per node (two nodes would update two states); use one module per call. "
        "If forward loops over timesteps (snnTorch's training loop), export the one-step model instead: the "
        "graph is one timestep, and the engines run the time loop (run_sequence)"
    )


def no_output_error(state_outputs: list[str]) -> ConversionError:
    """``forward`` returned nothing the graph can output; a returned membrane is named as state."""
    if state_outputs:
        names = ", ".join(repr(n) for n in state_outputs)
        return ConversionError(
            f"the model returns only neuron state (the membrane of {names}), which a TALON IR graph cannot "
            "output: return the spikes or the current the neuron receives (a leaky integrator whose output is "
            "its membrane is an LI node, e.g. Norse's LIBoxCell)"
        )
    return ConversionError("the model returns no tensor computed from its input")
