"""talon.bridge.state_args.parameter_names: the names of ``forward``'s parameters, read from the code
object for plain methods, equal to ``inspect.signature`` for every form of ``forward``."""

import functools
import inspect

import norse.torch as norse
import pytest
import snntorch as snn
from torch import nn

from talon.bridge.state_args import parameter_names


class _Positional(nn.Module):
    def forward(self, x, /, y, *args, z=1, w, **kw):
        return x


class _State(nn.Module):
    def forward(self, x, mem=None):
        return x


class _OnlyArgs(nn.Module):
    def forward(*args):  # self arrives in args: inspect keeps *args
        return args


class _KeywordOnly(nn.Module):
    def forward(self, *, x=None):
        return x


class _Wrapped(nn.Module):
    @functools.wraps(_State.forward)
    def forward(self, *a, **k):  # inspect follows __wrapped__: (x, mem)
        return a


class _Signature(nn.Module):
    def forward(self, *a):
        return a

    forward.__signature__ = inspect.Signature([inspect.Parameter("spikes", inspect.Parameter.POSITIONAL_ONLY)])


class _Broken(nn.Module):
    def forward():  # no self: inspect cannot bind it
        return None


def _instance_forward():
    module = _State()
    module.forward = lambda data, state=None: data
    return module


def _partial_forward():
    module = _State()
    module.forward = functools.partial(_State.forward, module)
    return module


MODULES = {
    "positional-only, *args, keyword-only, **kwargs": _Positional,
    "a state argument": _State,
    "only *args": _OnlyArgs,
    "keyword-only": _KeywordOnly,
    "functools.wraps": _Wrapped,
    "__signature__": _Signature,
    "no parameters": _Broken,
    "instance attribute": _instance_forward,
    "functools.partial": _partial_forward,
    "nn.Linear": lambda: nn.Linear(2, 2),
    "nn.LSTM": lambda: nn.LSTM(2, 2),
    "nn.MultiheadAttention": lambda: nn.MultiheadAttention(4, 2),
    "snn.Leaky": lambda: snn.Leaky(beta=0.9),
    "snn.Synaptic": lambda: snn.Synaptic(alpha=0.5, beta=0.9),
    "snn.RLeaky": lambda: snn.RLeaky(beta=0.9, linear_features=3),
    "norse.LIFCell": norse.LIFCell,
    "norse.LIFBoxCell": norse.LIFBoxCell,
}


@pytest.mark.parametrize("make", MODULES.values(), ids=MODULES.keys())
def test_parameter_names_equal_inspect_signature(make):
    module = make()
    try:
        expected = list(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):
        expected = []
    assert parameter_names(module) == expected
