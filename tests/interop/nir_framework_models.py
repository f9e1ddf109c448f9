"""The SpikingJelly, Sinabs and Rockpool models the NIR gradient tests share, each exported by its
own framework's NIR exporter, imported back by its own importer and run there.

``test_nir_reset_gradient_frameworks.py`` (reset convention, with talon's surrogate put into the
framework) and ``test_nir_surrogate_frameworks.py`` (the framework's own surrogate) change the
imported module between ``*_model`` and ``*_run``. The inputs make the neurons fire and reset
(several spikes per step for Sinabs and Rockpool).
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nir = pytest.importorskip("nir")

T = 30


def quiet(fn, *args, **kwargs):
    """Call a framework function that prints and warns (snnTorch, nirtorch, Sinabs, Rockpool)."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _loss_gradients(out, weights, module, names, transpose=False) -> dict:
    """The weight gradients of ``Σ weights · out`` (``transpose``: Rockpool's weights are [in, out])."""
    (out * weights).sum().backward()
    parameters = dict(module.named_parameters())
    grads = {name: parameters[f"{name}.weight"].grad.numpy() for name in names}
    return {name: g.T for name, g in grads.items()} if transpose else grads


# ---- SpikingJelly 2.0.0 -------------------------------------------------------------------------------


def spikingjelly_model():
    """``(x, weights, exported NIR graph, SpikingJelly's import of it)``: Linear → CUBALIF → Linear →
    IF → Linear → LIF, 3 × 6 inputs."""
    pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir, import_from_nir

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        layer.Linear(6, 12), neuron.CUBALIFNode(c_decay=0.5, v_decay=0.75, v_threshold=0.5),
        layer.Linear(12, 8), neuron.IFNode(v_threshold=1.0),
        layer.Linear(8, 4), neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=0.8),
    )  # fmt: skip
    with torch.no_grad():
        net[2].weight.mul_(3.0)
        net[4].weight.mul_(5.0)
    x = np.random.default_rng(1).normal(1.0, 2.5, (T, 3, 6)).astype(np.float32)
    weights = torch.linspace(0.5, 2.0, 4)
    exported = quiet(export_to_nir, net, torch.from_numpy(x[0]), dt=1e-4)
    return x, weights, exported, quiet(import_from_nir, exported, dt=1e-4)


def spikingjelly_run(module, x, weights):
    """``(outputs [T, B, 4], weight gradients of Σ weights·outputs)`` of the imported module."""
    from spikingjelly.activation_based import functional

    functional.reset_net(module)
    outs, state = [], None
    for t in range(T):
        y = module(torch.from_numpy(x[t]), state) if state is not None else module(torch.from_numpy(x[t]))
        if isinstance(y, tuple):
            y, state = y
        outs.append(y)
    out = torch.stack(outs)
    return out, _loss_gradients(out, weights, module, ("_0", "_2", "_4"))


# ---- Sinabs 3.1.3 ---------------------------------------------------------------------------------------

SINABS_BATCH = 2


SINABS_PER_NEURON = (np.linspace(0.6, 1.5, 10), np.array([0.5, 0.8, 1.2, 0.9]))  # IAF's, LIF's


def sinabs_model(per_neuron: bool = False):
    """``(x, weights, exported NIR graph, Sinabs' import of it)``: Linear → IAF (θ 1) → Linear → LIF
    (θ 0.8); with ``per_neuron`` the thresholds of :data:`SINABS_PER_NEURON`."""
    sl = pytest.importorskip("sinabs.layers")
    sinabs_nir = pytest.importorskip("sinabs.nir")

    torch.manual_seed(0)
    iaf, lif = (torch.tensor(t, dtype=torch.float32) for t in SINABS_PER_NEURON)
    first = {"spike_threshold": iaf} if per_neuron else {}
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 10), sl.IAFSqueeze(batch_size=SINABS_BATCH, min_v_mem=-1.0, **first),
        torch.nn.Linear(10, 4),
        sl.LIFSqueeze(tau_mem=torch.tensor([3.0, 7.5, 20.0, 1.7]), batch_size=SINABS_BATCH, norm_input=False,
                      spike_threshold=lif if per_neuron else torch.full((4,), 0.8)),
    )  # fmt: skip
    with torch.no_grad():
        for child in net.modules():
            if isinstance(child, torch.nn.Linear):
                child.weight.mul_(3.0)  # several spikes per step
    x = (np.random.default_rng(1).random((T, SINABS_BATCH, 6)) * 2.0 - 0.4).astype(np.float32)
    weights = torch.linspace(0.5, 2.0, 4)
    exported = sinabs_nir.to_nir(net, torch.zeros(SINABS_BATCH, 6))
    return x, weights, exported, quiet(sinabs_nir.from_nir, exported, batch_size=SINABS_BATCH)


def sinabs_run(module, x, weights):
    y = quiet(module, torch.from_numpy(x).transpose(0, 1).reshape(SINABS_BATCH * T, 6))
    out = (y[0] if isinstance(y, tuple) else y).reshape(SINABS_BATCH, T, 4).transpose(0, 1)
    assert (out > 1).any(), "Sinabs never fires several spikes per step"
    return out, _loss_gradients(out, weights, module, ("0", "2"))


# ---- Rockpool 3.1.0 -------------------------------------------------------------------------------------


def rockpool_model(directory, second_threshold=None, first_threshold=1.0):
    """``(x, weights, path of the written NIR file, Rockpool's import of it)``: Linear → LIF
    (``first_threshold``) → Linear → LIF (``second_threshold``, Rockpool's default 1.0 when None); a
    threshold is a number or one per neuron (6 and 3)."""
    pytest.importorskip("rockpool")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import from_nir as rockpool_from_nir
    from rockpool.nn.modules.torch.nir import to_nir as rockpool_to_nir

    torch.manual_seed(1)

    def threshold(value):
        return value if np.isscalar(value) else torch.tensor(value, dtype=torch.float32)

    second = {} if second_threshold is None else {"threshold": threshold(second_threshold)}
    layers = [LinearTorch((4, 6)), LIFTorch(6, tau_mem=0.02, tau_syn=0.01, threshold=threshold(first_threshold)),
              LinearTorch((6, 3)), LIFTorch(3, tau_mem=0.01, tau_syn=0.004, **second)]  # fmt: skip
    with torch.no_grad():
        for layer in layers[::2]:
            layer.weight.mul_(3.0)
    x = (np.random.default_rng(1).random((T, 2, 4)) * 2 - 0.3).astype(np.float32)
    weights = torch.linspace(0.5, 2.0, 3)
    path = directory / "rockpool.nir"
    nir.write(path, rockpool_to_nir(Sequential(*layers)))
    module = quiet(rockpool_from_nir, nir.read(path, type_check=False))  # its own batch-axis Input needs this
    return x, weights, path, module


def rockpool_run(module, x, weights):
    y = quiet(module, torch.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2))))
    out = (y[0] if isinstance(y, tuple) else y).transpose(0, 1)
    assert (out > 1).any(), "Rockpool never fires several spikes per step"
    return out, _loss_gradients(out, weights, module, ("0_LinearTorch", "2_LinearTorch"), transpose=True)
