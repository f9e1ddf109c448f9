"""The C simulation of the generated HLS project computes the CPU backend's integers exactly:
every node's output and every membrane and synaptic current at every step, the spikes and the
graph outputs, at int8 and int16, on
inputs that make every spiking layer fire (docs/fpga.md §4)."""

import numpy as np
import pytest

from talon.backend import get_backend
from talon.backend.fpga import examples

CASES = {
    "mlp_784_128_10": (examples.mlp_snn, examples.mlp_inputs),
    "conv_pool": (examples.conv_snn, examples.conv_inputs),
    "residual": (examples.residual_snn, examples.residual_inputs),
    "recurrent": (examples.recurrent_snn, examples.recurrent_inputs),
}


@pytest.mark.parametrize("precision", ["int8", "int16"])
@pytest.mark.parametrize("case", list(CASES))
def test_csim_matches_the_cpu_backend_bit_for_bit(case, precision):
    build, stimulus = CASES[case]
    graph, x = build(0), stimulus(n_steps=50)
    fpga = get_backend("fpga").simulate(graph, x, precision=precision, step_by_step=True)
    cpu = get_backend("cpu").simulate(graph, x, precision=precision, step_by_step=True)

    assert fpga.timesteps_run == cpu.timesteps_run == 50 and fpga.batch_size == 2
    assert fpga.precision == precision and fpga.outputs_valid
    assert fpga.spike_counts == cpu.spike_counts
    assert all(count > 0 for count in cpu.spike_counts.values()), cpu.spike_counts  # every layer fires
    for name, y in cpu.outputs.items():
        np.testing.assert_array_equal(fpga.outputs[name], y, err_msg=name)
        assert fpga.outputs[name].dtype == np.float32
    compared = 0
    for path, states in fpga.node_states.items():
        for key, ints in states.items():
            if key.endswith("_int"):
                np.testing.assert_array_equal(ints, cpu.node_states[path][key], err_msg=f"{path} {key}")
                compared += 1
    neurons = [p for p, st in cpu.node_states.items() if "v_int" in st]
    assert neurons and all("v_int" in fpga.node_states[p] for p in neurons)  # membranes compared too
    assert compared >= len(graph.nodes) - len(graph.output_nodes) + len(neurons)
