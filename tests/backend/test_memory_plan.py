"""The peak activation memory of the CPU backend's plan: the sweep against the definition, position by position."""

from __future__ import annotations

import math

import pytest

from talon.backend import CompileConfig
from talon.backend.cpu.lowering.program import lower
from talon.backend.cpu.run.engine import Engine, calibrate
from talon.backend.cpu.run.memory import MemoryPlan, _bytes, _peak_activations, value_bits
from talon.backend.stimulus import prepare_source
from talon.examples import blocks_graph, hybrid_graph
from tests.sdk import graphs


def _by_definition(program, kernels, config) -> int:
    """At each schedule position k, the bytes of every value produced at or before k and read at or
    after k, plus the values read through a delayed edge (not graph outputs), which live from the
    start of the step; the maximum over k."""
    order = [i for component in program.components for i in component.ops]
    position = {op: k for k, op in enumerate(order)}
    end = len(order)
    last = {v.id: position[v.producer] for v in program.values}
    for op in program.ops:
        for ref in op.inputs:
            last[ref.value] = end if ref.delayed else max(last[ref.value], position[op.index])
    for vid in program.outputs.values():
        last[vid] = end
    sizes = {
        vid: _bytes(math.prod(program.values[vid].shape), value_bits(kernels[op.index], port, config))
        for op in program.ops
        for port, vid in enumerate(op.outputs)
    }
    peak = 0
    for k in range(end):
        live = 0
        for vid, size in sizes.items():
            start = position[program.values[vid].producer]
            if start <= k <= last[vid] or (last[vid] == end and start > k and vid not in program.outputs.values()):
                live += size
        peak = max(peak, live)
    return peak


@pytest.mark.parametrize("precision", ["fp32", "int8"])
@pytest.mark.parametrize(
    "graph",
    [blocks_graph(60), graphs.recurrent(0), graphs.nested(0), graphs.residual(0), hybrid_graph(0)],
    ids=["blocks", "recurrent", "nested", "residual", "hybrid"],
)
def test_peak_activations_match_the_definition(graph, precision):
    program = lower(graph)
    config = CompileConfig.coerce(None, precision)
    calibration = None
    if config.is_fixed_point:
        source, _, _, _ = prepare_source(graph, None, 5)
        calibration, _ = calibrate(program, source)
    kernels = Engine(program, config, calibration, graph=graph).kernels
    peak = _peak_activations(program, kernels, config, MemoryPlan())
    assert peak == _by_definition(program, kernels, config) > 0
