"""Refusals of two common snnTorch model shapes say what to export instead: a forward that loops
over timesteps (the tutorials' training model) and a model that returns only a membrane."""

from __future__ import annotations

import pytest
import snntorch as snn
import torch
from torch import nn

from talon import bridge
from talon.ir import ConversionError


class TimeLoop(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.lif = nn.Linear(10, 4), snn.Leaky(beta=0.9)

    def forward(self, x):
        mem, out = self.lif.init_leaky(), []
        for _ in range(5):
            spk, mem = self.lif(self.fc(x), mem)
            out.append(spk)
        return torch.stack(out)


class MembraneReadout(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.lif = nn.Linear(10, 4), snn.Leaky(beta=0.9, init_hidden=True, output=True)

    def forward(self, x):
        _, mem = self.lif(self.fc(x))
        return mem


def test_a_time_loop_in_forward_is_refused_pointing_at_the_one_step_model():
    with pytest.raises(ConversionError, match=r"called more than once .* export the one-step model instead"):
        bridge.to_ir(TimeLoop(), torch.randn(2, 10))


def test_a_membrane_readout_is_refused_naming_the_neuron_whose_state_it_is():
    with pytest.raises(ConversionError, match=r"returns only neuron state \(the membrane of 'lif'\)"):
        bridge.to_ir(MembraneReadout(), torch.randn(2, 10))
