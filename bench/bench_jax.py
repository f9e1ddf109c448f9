"""JAX engine: a Spyx model's talon graph run by ``JaxGraph.run`` against ``spyx.nn.run`` on the model.

Both sides are ``jax.jit``-compiled functions of (parameters, input) — Spyx's model split with
``nnx.split`` and merged inside the jitted function, talon's ``JaxGraph.run`` with its parameter
dict (weights relaid out on the host and cached, as every call of ``run`` does) — timed on the
same time-major input in one process, ``block_until_ready`` on the output, median of repeated
calls after a warm-up. The first call (tracing, lowering, XLA compilation and the run) is timed
separately, on freshly built functions each time for both sides (for talon a fresh
``JaxGraph(graph)``, whose construction is included), median of five. The calls are interleaved
(``bench.common.median_times``).

The goal rows measure ``run``'s default schedule (``stepwise``: one ``lax.scan`` over the whole
step, like ``spyx.nn.run``); the ``fused`` and ``layerwise`` schedules a user can choose are
reported as "option" rows.
"""

from __future__ import annotations

import numpy as np

from bench.common import Row, median_times, print_rows

MODES = ("stepwise", "fused", "layerwise")  # the default first
FIRST_CALL_REPEATS = 5  # the first-call times move by +-20 % from call to call on a shared machine


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
        x_spyx = jnp.asarray(x)
        graph = tspyx.to_ir(model, shape)
        x_talon = jnp.asarray(tspyx.channels_first(x))

        def spyx_fn(graphdef=graphdef):  # a fresh jitted function: its first call compiles
            return jax.jit(lambda st, xs: snn.run(nnx.merge(graphdef, st), xs)[0])

        def spyx_call(f, st=state, xs=x_spyx):
            return lambda: f(st, xs).block_until_ready()

        def talon_call(e, mode, xs=x_talon):
            return lambda: e.run(e.params, xs, mode=mode)[0].block_until_ready()

        # first calls (trace + compile) of fresh functions, interleaved, median of FIRST_CALL_REPEATS
        compile_times = median_times(
            {
                "spyx": lambda: spyx_call(spyx_fn())(),
                **{m: (lambda g=graph, m=m: talon_call(JaxGraph(g), m)()) for m in MODES},
            },
            repeats=FIRST_CALL_REPEATS,
            warmup=0,
        )
        engine = JaxGraph(graph)
        run_times = median_times(
            {
                "spyx": spyx_call(spyx_fn()),
                **{m: talon_call(engine, m) for m in MODES},
            },
            repeats=25,
        )
        for mode in MODES:
            kind = "" if mode == "stepwise" else "option, "
            rows.append(Row("jax", f"{label}: run ({kind}{mode})", run_times[mode], "spyx.nn.run (jit)",
                            run_times["spyx"]))  # fmt: skip
            rows.append(Row("jax", f"{label}: first call (compile, {kind}{mode})", compile_times[mode], "spyx.nn.run",
                            compile_times["spyx"]))  # fmt: skip
    print_rows("JAX engine vs spyx.nn.run", rows)
    return rows


if __name__ == "__main__":
    main()
