"""Norse cells exported to TALON IR and run by the executor: same spikes, membranes to float32 rounding.

Norse integrates ``v + dt·τ⁻¹·((v_leak - v) + x)``: LIFBoxCell and LIBoxCell export with
``integration='euler'``, which is that order, and match bit for bit; LIFCell's current jump is a
CubaLIF, equal to float32 rounding (documented in talon.bridge.norse).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from norse.torch import IAFCell, LIBoxCell, LIFBoxCell, LIFCell
from norse.torch.functional.iaf import IAFParameters
from norse.torch.functional.leaky_integrator_box import LIBoxParameters
from norse.torch.functional.lif import LIFParameters
from norse.torch.functional.lif_box import LIFBoxParameters
from norse.torch.functional.reset import reset_subtract
from torch import nn

from talon import bridge, ir
from talon.ir import ConversionError

T, B = 200, 4


class Net(nn.Module):
    def __init__(self, cell: nn.Module):
        super().__init__()
        self.fc = nn.Linear(12, 16)
        self.cell = cell

    def forward(self, x, state=None):
        z, state = self.cell(self.fc(x), state)
        return z, state


CELLS = {
    "LIFBoxCell": lambda: LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(200.0), v_th=torch.tensor(0.3))),
    "LIFBoxCell-subtract": lambda: LIFBoxCell(
        LIFBoxParameters(tau_mem_inv=torch.tensor(100.0), v_th=torch.tensor(0.2), reset_method=reset_subtract)
    ),
    "LIFCell": lambda: LIFCell(
        LIFParameters(tau_syn_inv=torch.tensor(300.0), tau_mem_inv=torch.tensor(150.0), v_th=torch.tensor(0.2))
    ),
    "IAFCell": lambda: IAFCell(IAFParameters(v_th=torch.tensor(2.0))),
    # Norse starts the membrane at v_reset: exported as the IF's v_init
    "IAFCell-v_reset": lambda: IAFCell(IAFParameters(v_th=torch.tensor(1.5), v_reset=torch.tensor(-0.5))),
    "LIBoxCell": lambda: LIBoxCell(LIBoxParameters(tau_mem_inv=torch.tensor(250.0))),
}


def _membrane(state):
    return state.v


@pytest.mark.parametrize("name", sorted(CELLS))
def test_norse_cell_parity(name, tmp_path):
    torch.manual_seed(5)
    net = Net(CELLS[name]())
    xs = torch.rand(T, B, 12) * 2
    graph = bridge.to_ir(net, xs[0])
    assert type(graph.nodes["cell"]).__name__ == {"LIFBoxCell": "LIF", "LIFCell": "CubaLIF", "IAFCell": "IF",
                                                  "LIBoxCell": "LI"}[name.split("-")[0]]  # fmt: skip
    ir.write(tmp_path / "n.t1c", graph)
    executor = bridge.ir_to_torch(tmp_path / "n.t1c", return_state=True)
    state, ours_state = None, None
    spikes, worst = 0.0, 0.0
    with torch.no_grad():
        for t in range(T):
            want, state = net(xs[t], state)
            got, ours_state = executor(xs[t], ours_state)
            ours_v = ours_state["cell"][0] if isinstance(ours_state["cell"], tuple) else ours_state["cell"]
            worst = max(worst, float(((ours_v - _membrane(state)).abs() / _membrane(state).abs().clamp(min=1)).max()))
            if name != "LIBoxCell":
                assert torch.equal(got, want.to_dense() if want.is_sparse else want), f"spikes differ at t={t}"
                spikes += float(want.float().mean())
            else:
                assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)
    assert worst <= (1e-5 if name == "LIFCell" else 0.0)  # the box cells are bit-exact
    if name != "LIBoxCell":
        assert 0.02 < spikes / T < 0.98  # the input makes the cells fire


def test_norse_non_zero_leak_is_refused_with_its_reason():
    net = Net(LIFBoxCell(LIFBoxParameters(v_leak=torch.tensor(0.1))))
    with pytest.raises(ConversionError, match=r"LIFBoxCell with v_leak != 0 .* adds \(input \+ v_leak\) - v"):
        bridge.to_ir(net, torch.rand(1, 12))
    net = Net(LIBoxCell(LIBoxParameters(v_leak=torch.tensor(0.1))))
    with pytest.raises(ConversionError, match=r"LIBoxCell with v_leak != 0 .* a TALON IR LI starts at 0"):
        bridge.to_ir(net, torch.rand(1, 12))


def test_norse_iaf_starting_at_v_reset_exports_v_init():
    net = Net(IAFCell(IAFParameters(v_reset=torch.tensor(-0.5))))
    node = bridge.to_ir(net, torch.rand(1, 12)).nodes["cell"]
    assert np.all(node.v_init == -0.5) and np.all(node.v_reset == -0.5)


@pytest.mark.parametrize("name", ["LIFBoxCell", "LIBoxCell"])
def test_box_cells_are_bit_exact_for_any_time_constant(name):
    """Norse computes ``dt·τ⁻¹`` as one float32 product (``fl32(fl32(dt)·τ⁻¹)``); a tau exported as
    ``1/(dt·τ⁻¹)`` in float64 gave another float32 ``k`` for about half of all τ⁻¹ (123.4, random
    per-neuron values), so membranes drifted by an ulp. The round values of the parity test above hid it."""
    torch.manual_seed(3)
    inv = torch.tensor([123.4, 57.3, 911.1, 0.37]) if name == "LIBoxCell" else torch.rand(16) * 900 + 10
    cell = (
        LIBoxCell(LIBoxParameters(tau_mem_inv=inv[:1].squeeze()))
        if name == "LIBoxCell"
        else LIFBoxCell(LIFBoxParameters(tau_mem_inv=inv, v_th=torch.tensor(0.3)))
    )
    net = Net(cell)
    xs = torch.rand(40, B, 12) * 2
    executor = bridge.ir_to_torch(bridge.to_ir(net, xs[0]), return_state=True)
    state, ours = None, None
    with torch.no_grad():
        for t in range(40):
            want, state = net(xs[t], state)
            got, ours = executor(xs[t], ours)
            assert torch.equal(ours["cell"], state.v), f"membranes differ at t={t}"
            assert torch.equal(got, want), f"outputs differ at t={t}"
