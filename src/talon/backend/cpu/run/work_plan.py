"""The compiled-kernel work of a CPU backend run, known before it starts (``talon._compiled.planned_work``).

The work-size dispatch (:class:`talon._compiled.WorkThreshold`, docs/backend.md §9.2) decides per
kernel call; left alone, a long run finds out it is worth starting numba only once the twins have
done part of it — an ``int8`` run's whole fp32 calibration, for instance, whose neuron loops come
first and are each below one start-up. But a run's neuron loops are known from its shapes: an
acyclic neuron layer runs its loop once over ``T`` steps, a neuron in a cycle once per step. So
``simulate`` adds up their :meth:`~talon._compiled.WorkThreshold.share` here and declares the sum
before the first call; a run worth a start-up then starts numba at once, a short one keeps the
twins. The results are the same either way (every compiled kernel has a numpy twin).

Only the neuron loops are declared. The event-driven product's work depends on the spike density
and the input quantization's kernel on the calibrated scale (both known only during the run), so
they are still counted call by call.
"""

from __future__ import annotations

import math

from ...config import FLOAT_PRECISIONS, CompileConfig
from ..kernels import fixed_neuron_loop, float_neuron_loop
from ..kernels.build import NEURON_NODES
from ..kernels.float_neurons import loop_compatible
from ..lowering.program import Program


def run_share(program: Program, precision: str, steps: int, batch: int) -> float:
    """The work of the compiled neuron loops of one run of ``program`` at ``precision`` (``steps``
    steps of a batch of ``batch``), in numba start-ups (the sum of each call's ``share``).

    fp32: each acyclic neuron layer the float32 loop implements (a cyclic one steps in numpy, with
    no compiled kernel); fp16 has no compiled loop; fixed point: each neuron layer the integer
    loop implements, once over the sequence when acyclic, once per step in a cycle (the same
    sum plus each step's fixed cost, ``STEP_WORK``)."""
    fixed_point = precision not in FLOAT_PRECISIONS
    if precision == "fp16":
        return 0.0
    total = 0.0
    for component in program.components:
        for index in component.ops:
            node = program.ops[index].node
            if not isinstance(node, NEURON_NODES):
                continue
            elements = batch * math.prod(node.input_shape)
            if not fixed_point:
                if not component.cyclic and float_neuron_loop.node_supported(node):
                    total += float_neuron_loop.FLOAT_LOOP_WORK.share(float_neuron_loop.run_work(steps, elements))
            elif loop_compatible(node):
                rule = fixed_neuron_loop.FIXED_LOOP_WORK
                if component.cyclic:
                    total += steps * rule.share(fixed_neuron_loop.run_work(1, elements))
                else:
                    total += rule.share(fixed_neuron_loop.run_work(steps, elements))
    return total


def simulate_share(program: Program, config: CompileConfig, steps: int, batch: int) -> float:
    """:func:`run_share` of a ``simulate`` call: its run at ``config``'s precision plus, at a reduced
    precision, the fp32 run before it (calibration and reference)."""
    share = run_share(program, config.precision, steps, batch)
    if config.precision != "fp32":
        share += run_share(program, "fp32", steps, batch)
    return share
