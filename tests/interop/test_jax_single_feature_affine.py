"""An Affine with one input feature: XLA rewrites its one-term dot into ``x*w`` and contracts
``x*w + b`` into one fused multiply-add. That is the semantics' result, not a deviation: Affine
sums its products and bias exactly and rounds once (docs/semantics.md §4, docs/backend.md), and
for one term the correctly rounded ``x*w + b`` is the fma. Every schedule, ``step`` and the
caller's own ``jit`` (parameters as constants or traced) give the CPU backend's and the PyTorch
executor's bits, on values where rounding the product first would differ.
"""

import numpy as np
import pytest

from talon import ir
from talon.backend import get_backend

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
import jax.numpy as jnp  # noqa: E402

from talon import bridge  # noqa: E402
from talon.interop.jax import JaxGraph  # noqa: E402


def test_single_feature_affine_is_the_correctly_rounded_sum_in_every_engine():
    rng = np.random.default_rng(0)
    n = 64
    weight = rng.normal(size=(n, 1)).astype(np.float32)
    bias = rng.normal(size=n).astype(np.float32)
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([1])),
            "fc": ir.Affine(weight=weight, bias=bias),
            "output": ir.Output(np.array([n])),
        },
        [("input", "fc"), ("fc", "output")],
    )
    x = rng.normal(size=(5, 7, 1)).astype(np.float32)
    two_roundings = x * weight[:, 0] + bias  # numpy: the product rounded, then the sum
    once = (x.astype(np.float64) * weight[:, 0] + bias).astype(np.float32)
    assert (two_roundings != once).mean() > 0.1, "the values must tell a fused sum from two roundings"

    backend = get_backend("cpu").simulate(graph, {"input": x}, step_by_step=True).outputs["output"]
    with torch.no_grad():
        executor = bridge.ir_to_torch(graph).run_sequence(torch.from_numpy(x))[0].numpy()
    np.testing.assert_array_equal(backend, once)
    np.testing.assert_array_equal(executor, backend)

    engine = JaxGraph(graph)
    params, xj = engine.params, jnp.asarray(x)
    outputs = {
        "run": engine.run(params, xj)[0],
        "fused": engine.run(params, xj, mode="fused")[0],
        "layerwise": engine.run(params, xj, mode="layerwise")[0],
        "jit, constant params": jax.jit(lambda xs: engine.run(params, xs)[0])(xj),
        "jit, traced params": jax.jit(lambda p, xs: engine.run(p, xs)[0])(params, xj),
        "step under jit, constant params": jnp.stack(
            [jax.jit(lambda xt: engine.step(params, engine.init_state(7), xt)[0])(xj[t]) for t in range(5)]
        ),
    }
    for name, y in outputs.items():
        assert np.array_equal(np.asarray(y), backend), f"{name}: differs from the CPU backend"
