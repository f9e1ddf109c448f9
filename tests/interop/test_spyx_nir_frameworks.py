"""A Spyx model through talon to NIR, loaded by Norse and snnTorch, behaves like the Spyx model.

NIR can state Spyx's stateless layers (Linear, Conv, SumPool, Flatten) and its LI/PSU_LIF
membranes, but neither importer reads NIR's LI or Threshold (Norse 1.1.0, snnTorch 1.0.0), and
NIR cannot state Spyx's spiking dynamics (subtractive reset with the input, spike of the state
before the update): talon's exact ``to_nir`` refuses those (below), so the cross-framework path
that both importers can represent is the stateless one — which is where the channels-last /
channels-first and flatten-order conversions are tested against third-party code. The same
model exported by ``spyx.nir.to_nir`` and loaded by the same importer gives different numbers.
"""

import contextlib
import io
import warnings

import numpy as np
import pytest

from talon import ir

jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx")
snn = pytest.importorskip("spyx.nn")
snir = pytest.importorskip("spyx.nir")
torch = pytest.importorskip("torch")
norse_torch = pytest.importorskip("norse.torch")
import_from_nir = pytest.importorskip("snntorch.import_nir").import_from_nir
import jax.numpy as jnp  # noqa: E402

from talon.interop import spyx as tspyx  # noqa: E402
from talon.interop.nir import to_nir  # noqa: E402

R = nnx.Rngs(5)


def _init(scale, seed):
    rng = np.random.default_rng(seed)
    return lambda key, shape, dtype=jnp.float32: jnp.asarray(rng.normal(0, scale, shape), dtype)


def conv_dense(pool: bool):
    layers = [nnx.Conv(2, 4, (3, 3), kernel_init=_init(0.4, 1), bias_init=_init(0.1, 2), rngs=R)]
    if pool:
        layers.append(snn.SumPool((2, 2), (2, 2), "VALID"))
    n = 4 * (3 * 3 if pool else 6 * 6)
    layers += [snn.Flatten(), nnx.Linear(n, 10, kernel_init=_init(0.3, 3), bias_init=_init(0.1, 4), rngs=R)]
    return snn.Sequential(*layers)


def quiet(fn, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def per_sample(module, x_chw: np.ndarray) -> np.ndarray:
    """Both importers map NIR's Flatten(start_dim=0) to torch's Flatten(0, -1), which also flattens
    the batch (neuron-semantics.md §7, pitfall 12): run them one sample at a time."""
    outs = []
    with torch.no_grad():
        for t in range(x_chw.shape[0]):
            for b in range(x_chw.shape[1]):
                out = module(torch.from_numpy(x_chw[t, b : b + 1]))
                while isinstance(out, tuple):
                    out = out[0]
                outs.append(out.numpy().reshape(-1))
    return np.stack(outs).reshape(x_chw.shape[0], x_chw.shape[1], -1)


IMPORTERS = {
    "norse": (True, lambda g: quiet(norse_torch.from_nir, g, dt=1e-4, ignore_warnings=True)),  # SumPool -> LPPool(1)
    "snntorch": (False, lambda g: quiet(import_from_nir, g)),  # no SumPool2d import
}


@pytest.mark.parametrize("importer", IMPORTERS)
def test_spyx_conv_flatten_dense_through_talon_nir(importer):
    pool, load = IMPORTERS[importer]
    model = conv_dense(pool)
    x = np.random.default_rng(0).normal(0.2, 1.0, (2, 3, 6, 6, 2)).astype(np.float32)
    want = np.asarray(snn.run(model, jnp.asarray(x))[0])

    ours = load(to_nir(tspyx.to_ir(model, (6, 6, 2))))
    np.testing.assert_allclose(per_sample(ours, tspyx.channels_first(x)), want, rtol=1e-5, atol=1e-5)

    theirs = load(quiet(snir.to_nir, model, {"input": (2, 6, 6)}, {"output": (10,)}, dt=1.0))  # NIR (C, H, W)
    assert not np.allclose(per_sample(theirs, tspyx.channels_first(x)), want, atol=1e-2)  # the flatten order


def test_spyx_neurons_are_refused_by_exact_nir_export():
    model = snn.Sequential(nnx.Linear(4, 3, rngs=R), snn.LIF((3,), beta=0.8, rngs=R))
    graph = tspyx.to_ir(model, (4,))
    with pytest.raises(ir.ConversionError, match="layer_1"):
        to_nir(graph)  # NIR has no subtractive reset with the input, nor the spike of the previous state
