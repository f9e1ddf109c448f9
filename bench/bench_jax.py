"""JAX engine: a Spyx model's talon graph run by ``JaxGraph.run`` against ``spyx.nn.run`` on the model.

Both sides are ``jax.jit``-compiled functions of (parameters, input) — Spyx's model split with
``nnx.split`` and merged inside the jitted function, talon's ``JaxGraph.run`` with its parameter
dict — timed on the same time-major input in one process (median of repeated calls after a
warm-up). Compilation (the first call) is timed separately. talon runs in both schedules:
``layerwise`` (stateless layers on all T*B samples at once, each neuron or cycle a lax.scan) and
``stepwise`` (one lax.scan over the whole step, like spyx.nn.run).
"""

from __future__ import annotations

import time

import numpy as np

from bench.common import Row, median_time, print_rows


def _models():
    import jax.numpy as jnp
    import spyx.nn as snn
    from flax import nnx

    rngs = nnx.Rngs(0)
    rng = np.random.default_rng(0)

    def init(scale):
        return lambda key, shape, dtype=jnp.float32: jnp.asarray(rng.normal(0, scale, shape), dtype)

    def linear(n_in, n_out):
        return nnx.Linear(n_in, n_out, kernel_init=init(1.5 / np.sqrt(n_in)), bias_init=init(0.1), rngs=rngs)

    mlp = snn.Sequential(
        linear(128, 256), snn.LIF((256,), beta=0.9, rngs=rngs),
        linear(256, 256), snn.LIF((256,), beta=0.9, rngs=rngs),
        linear(256, 20), snn.LI((20,), beta=0.9, rngs=rngs),
    )  # fmt: skip
    conv = nnx.Conv(2, 8, (3, 3), kernel_init=init(0.4), bias_init=init(0.1), rngs=rngs)
    scnn = snn.Sequential(
        conv, snn.LIF((16, 16, 8), beta=0.9, rngs=rngs), snn.SumPool((2, 2), (2, 2), "VALID"),
        snn.Flatten(), linear(512, 10), snn.LIF((10,), beta=0.9, rngs=rngs),
    )  # fmt: skip
    rsnn = snn.Sequential(
        linear(64, 128), snn.RLIF((128,), beta=0.9, rngs=rngs), linear(128, 10), snn.LI((10,), beta=0.9, rngs=rngs)
    )
    return [
        ("MLP 128-256-256-20 (LIF, LIF, LI), T=100, B=32", mlp, (128,), (100, 32)),
        ("SCNN conv 2->8 16x16, sum-pool, dense (LIF), T=50, B=16", scnn, (16, 16, 2), (50, 16)),
        ("recurrent 64-128 RLIF-10 LI, T=100, B=32", rsnn, (64,), (100, 32)),
    ]


def _first_call(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> list[Row]:
    import jax
    import jax.numpy as jnp
    import spyx.nn as snn
    from flax import nnx

    from talon.interop import spyx as tspyx
    from talon.interop.jax import JaxGraph

    rows: list[Row] = []
    for label, model, shape, (t, b) in _models():
        x = (np.random.default_rng(1).uniform(size=(t, b, *shape)) < 0.3).astype(np.float32)
        graphdef, state = nnx.split(model)
        spyx_run = jax.jit(lambda st, xs, graphdef=graphdef: snn.run(nnx.merge(graphdef, st), xs)[0])
        x_spyx = jnp.asarray(x)

        engine = JaxGraph(tspyx.to_ir(model, shape))
        params, x_talon = engine.params, jnp.asarray(tspyx.channels_first(x))

        def spyx_call(st=state, xs=x_spyx, f=spyx_run):
            return f(st, xs).block_until_ready()

        def talon_call(mode, e=engine, p=params, xs=x_talon):
            return lambda: e.run(p, xs, mode=mode)[0].block_until_ready()

        compile_spyx = _first_call(spyx_call)
        compile_talon = _first_call(talon_call("layerwise"))
        compile_talon_step = _first_call(talon_call("stepwise"))
        spyx_s = median_time(spyx_call, repeats=7)
        for mode in ("layerwise", "stepwise"):
            ours = median_time(talon_call(mode), repeats=7)
            rows.append(Row("jax", f"{label}: run ({mode})", ours, "spyx.nn.run (jit)", spyx_s))
        rows.append(Row("jax", f"{label}: first call (compile, layerwise)", compile_talon, "spyx.nn.run", compile_spyx))
        rows.append(
            Row("jax", f"{label}: first call (compile, stepwise)", compile_talon_step, "spyx.nn.run", compile_spyx)
        )
    print_rows("JAX engine vs spyx.nn.run", rows)
    return rows


if __name__ == "__main__":
    main()
