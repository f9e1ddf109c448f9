"""profile(): operation counts, memory and energy against hand counts on small graphs."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from talon import ir
from talon.backend import ENERGY_PRESETS, BackendError, get_backend, get_energy_preset
from talon.backend.cpu.kernels.geometry import conv_fan_out

from .graphs import chain, hybrid_graph, leaky, mlp_graph

CPU = get_backend("cpu")
UNIT = dict(energy_per_mac_pj=2.0, energy_per_spike_pj=1.0, energy_per_sram_read_pj=32.0)  # SRAM: 1 pJ per bit


def small_snn():
    w1 = np.array([[0.9, 0.8, 0.7, 0.6], [0.5, 0.5, 0.5, 0.5], [-0.5, 0.1, 0.2, 0.3]], np.float32)
    w2 = np.array([[1.0, -1.0, 0.5], [0.25, 0.25, 0.25]], np.float32)
    return chain([4], ("fc1", ir.Affine(w1, np.zeros(3))), ("lif", leaky(3)), ("fc2", ir.Affine(w2, np.zeros(2))))


def test_spike_driven_and_dense_counts_by_hand():
    rng = np.random.default_rng(0)
    spikes_in = (rng.random((5, 2, 4)) < 0.5).astype(np.float32)
    prof = CPU.profile(small_snn(), {"input": spikes_in}, **UNIT)
    fc1, lif, fc2 = prof.layers["fc1"], prof.layers["lif"], prof.layers["fc2"]
    runs = 5 * 2
    n_in = int(spikes_in.sum())
    n_spk = prof.simulation.spike_counts["lif"]
    assert n_spk > 0
    assert fc1.event_driven and fc1.input_events == n_in and fc1.synaptic_ops == 3 * n_in and fc1.macs == 0
    assert fc2.event_driven and fc2.synaptic_ops == 2 * n_spk and fc2.macs == 0
    assert lif.macs == 2 * 3 * runs and lif.spikes == n_spk
    assert prof.mac_ops == lif.macs and prof.synaptic_ops == 3 * n_in + 2 * n_spk
    assert prof.dense_equivalent_macs == (12 + 6) * runs
    # SRAM (fp32): one 32-bit weight per synaptic op, one bias per output per step, v read + written
    assert fc1.sram_read_bits == 32 * (3 * n_in + 3 * runs)
    assert lif.sram_read_bits == lif.sram_write_bits == 32 * 3 * runs
    # energy: MAC 2 pJ, synaptic op 1 pJ, 1 pJ per SRAM bit
    assert fc1.energy_uj == pytest.approx(1e-6 * (3 * n_in + 32 * (3 * n_in + 3 * runs)))
    assert lif.energy_uj == pytest.approx(1e-6 * (2 * 2 * 3 * runs + 2 * 32 * 3 * runs))
    assert prof.energy_estimate_uj == pytest.approx(prof.mac_energy_uj + prof.spike_energy_uj + prof.sram_energy_uj)
    assert prof.energy_estimate_uj == pytest.approx(sum(prof.per_layer_energy_uj.values()))
    assert prof.mac_energy_uj == pytest.approx(prof.mac_ops * 2.0e-6)
    assert prof.spike_energy_uj == pytest.approx(prof.synaptic_ops * 1.0e-6)


def test_dense_inputs_cost_every_mac():
    graded = np.full((5, 2, 4), 0.5, np.float32)  # not spikes: fc1 is dense
    prof = CPU.profile(small_snn(), {"input": graded}, **UNIT)
    assert not prof.layers["fc1"].event_driven and prof.layers["fc1"].macs == 12 * 10
    assert prof.layers["fc1"].synaptic_ops == 0
    assert prof.layers["fc2"].event_driven  # still fed by the LIF's spikes


def test_memory_by_hand():
    prof = CPU.profile(small_snn(), n_steps=3)
    assert prof.weight_memory_bytes == (12 + 3 + 6 + 2) * 4
    assert prof.parameter_memory_bytes == 5 * 3 * 4  # LIF tau, r, v_leak, v_threshold, v_reset
    assert prof.state_memory_bytes == 3 * 4
    # live values along the schedule: input+fc1 (7 floats) is the widest point
    assert prof.activation_memory_bytes == 7 * 4
    assert prof.peak_memory_bytes == 92 + 60 + 12 + 28
    batch = CPU.profile(small_snn(), np.zeros((2, 3, 4), np.float32))
    assert batch.peak_memory_bytes == 92 + 60 + 3 * (12 + 28)


def test_weight_memory_of_the_tutorial_mlp_matches_the_documented_count():
    graph = mlp_graph(0)
    assert CPU.profile(graph, n_steps=1).weight_memory_bytes == 407_080  # (100,352 + 128 + 1,280 + 10) * 4
    assert CPU.profile(graph, n_steps=1, precision="fp16").weight_memory_bytes == 203_540
    # int8: 8-bit weights, biases at the 32-bit accumulator width
    assert CPU.profile(graph, n_steps=1, precision="int8").weight_memory_bytes == 101_632 + 138 * 4


@given(
    c=st.integers(1, 3), groups=st.integers(1, 2), o=st.integers(1, 3), k=st.integers(1, 4), s=st.integers(1, 3),
    p=st.integers(0, 2), d=st.integers(1, 2), h=st.integers(1, 8), w=st.integers(1, 8),
)  # fmt: skip
def test_conv_fan_out_counts_every_tap(c, groups, o, k, s, p, d, h, w):
    torch = pytest.importorskip("torch")
    assume(h + 2 * p >= d * (k - 1) + 1 and w + 2 * p >= d * (k - 1) + 1)
    c_in, c_out = c * groups, o * groups
    fan = conv_fan_out((c_in, h, w), (c_out, c, k, k), (s, s), (p, p), (d, d), groups)
    ones = torch.ones(c_out, c, k, k, dtype=torch.float64)
    eye = torch.eye(c_in * h * w, dtype=torch.float64).reshape(-1, c_in, h, w)  # one input element each
    brute = torch.nn.functional.conv2d(eye, ones, None, s, p, d, groups).sum(dim=(1, 2, 3))
    np.testing.assert_array_equal(fan.reshape(-1), brute.numpy().astype(np.int64))


def test_spike_driven_convolution_counts():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    conv = ir.Conv2d(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), stride=2, padding=1)
    x = (rng.random((3, 2, 2, 7, 7)) < 0.3).astype(np.float32)
    prof = CPU.profile(chain([2, 7, 7], ("conv", conv)), {"input": x})
    layer = prof.layers["conv"]
    ones = torch.ones(4, 2, 3, 3, dtype=torch.float64)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x.reshape(6, 2, 7, 7)).double(), ones, None, 2, 1).sum()
    assert layer.event_driven and layer.synaptic_ops == int(expected)
    assert prof.dense_equivalent_macs == 4 * 4 * 4 * 2 * 9 * 6  # C_out Ho Wo C_in kH kW per step and sample


def test_neuron_utilization_and_spike_energy_follow_measured_activity():
    graph = chain([4], ("lif", ir.LIF(tau=np.full(4, 2.0), r=2.0)))
    x = np.zeros((6, 1, 4), np.float32)
    x[:, :, 0] = 1.0
    x[:, :, 2] = 0.75
    prof = CPU.profile(graph, {"input": x})
    assert prof.neuron_utilization == {"lif": 0.5}
    quiet = CPU.profile(graph, {"input": np.zeros_like(x)})
    assert quiet.neuron_utilization == {"lif": 0.0} and quiet.spike_count == 0


def test_presets_and_custom_energies():
    for preset in ENERGY_PRESETS.values():
        assert preset.source and preset.description and preset.mac_pj > 0 and preset.sram_read_pj > 0
    cmos = get_energy_preset("45nm_cmos")
    assert (cmos["mac_pj"], cmos["spike_pj"], cmos["sram_read_pj"]) == (4.6, 0.9, 5.0)
    assert get_energy_preset("zcu102").mac_pj == get_energy_preset("zynq_us_plus").mac_pj
    with pytest.raises(BackendError, match="unknown energy preset 'nope'"):
        CPU.profile(small_snn(), n_steps=2, energy_preset="nope")
    with pytest.raises(BackendError, match="finite"):
        CPU.profile(small_snn(), n_steps=2, energy_per_mac_pj=-1)
    default = CPU.profile(small_snn(), n_steps=4)
    assert default.energy_preset == "neuromorphic_int8"
    custom = CPU.profile(small_snn(), n_steps=4, energy_preset="45nm_cmos", energy_per_mac_pj=1.0)
    assert custom.energy_preset == "45nm_cmos+custom" and custom.energy_per_op_pj["mac_pj"] == 1.0
    assert custom.energy_per_op_pj["spike_pj"] == 0.9


def test_profile_of_the_hybrid_network():
    prof = CPU.profile(hybrid_graph(0), n_steps=10, energy_preset="45nm_cmos")
    assert prof.total_latency_us > 0 and prof.n_steps == 10 and prof.spike_count > 0
    assert prof.layers["conv1"].event_driven  # the default stimulus is spikes
    assert not prof.layers["fc1"].event_driven  # pooled ReLU features are graded
    assert prof.layers["fc1"].macs == 3136 * 64 * 10
    assert prof.layers["fc2"].synaptic_ops == 10 * prof.simulation.spike_counts["lif"]
    text = prof.summary()
    for fragment in ("45nm_cmos", "fc1", "estimates", f"{prof.mac_ops:,} MACs"):
        assert fragment in text


def test_a_bias_free_linear_reads_no_bias():
    """Same weights and spikes: Affine reads its bias once per output per step, Linear has none."""
    w = np.ones((3, 4), np.float32)
    x = np.ones((1, 1, 4), np.float32)  # one step of all-ones spikes
    reads = {}
    for name, layer in (("affine", ir.Affine(w, np.zeros(3, np.float32))), ("linear", ir.Linear(w))):
        graph = ir.Graph(
            {"input": ir.Input(np.array([4])), "w": layer, "output": ir.Output(np.array([3]))},
            [("input", "w"), ("w", "output")],
        )
        prof = get_backend("cpu").profile(graph, inputs=x, n_steps=1)
        reads[name] = prof.layers["w"].sram_read_bits
    assert reads["affine"] - reads["linear"] == 3 * 32  # three fp32 biases


def test_dense_equivalent_counts_the_ghost_blocks_and_detection_head():
    """They are convolution layers: counted densely in mac_ops, so in the dense equivalent too."""
    rng = np.random.default_rng(0)

    def f(*shape):
        return (rng.normal(size=shape) * 0.5).astype(np.float32)

    ghost = ir.SGhostConv(f(4, 6, 3, 3), f(4, 1, 3, 3), f(4), f(4), primary_stride=2)  # [6, 8, 8] -> [8, 4, 4]
    head = ir.SDDetect(f(5, 8, 3, 3), f(5, 5, 3, 3), f(8, 5, 1, 1), f(4, 8, 3, 3), f(4, 4, 3, 3), f(3, 4, 1, 1),
                       num_classes=3, reg_max=2, cv2_b2=f(8), cv3_b2=f(3))  # fmt: skip
    graph = chain([6, 8, 8], ("ghost", ghost), ("if1", ir.IF(r=1.0, v_threshold=0.5)), ("head", head))
    steps, batch = 3, 2
    prof = get_backend("cpu").profile(graph, np.full((steps, batch, 6, 8, 8), 0.7, np.float32))
    # by hand: ghost primary 4*16*6*9 + cheap depthwise 4*16*9;
    # head 5*16*8*9 + 5*16*5*9 + 8*16*5 (boxes) + 4*16*8*9 + 4*16*4*9 + 3*16*4 (classes)
    by_hand = (3456 + 576) + (5760 + 3600 + 640 + 4608 + 2304 + 192)
    assert prof.layers["ghost"].macs + prof.layers["head"].macs == by_hand * steps * batch
    assert prof.dense_equivalent_macs == by_hand * steps * batch
