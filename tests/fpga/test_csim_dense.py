"""The dense kernel's native sums (talon::DenseExact, docs/fpga.md §3): every width codegen can
choose computes the CPU backend's integers. The example networks use ``int`` / ``short`` sums
without saturation; this graph reaches the other cases in one build, with sums that really pass
the narrower widths: a saturating accumulator (the ap_fixed AP_SAT result), a ``long long`` sum of
``int`` blocks, ``long long`` throughout, and an ``int`` sum of ``short`` blocks on spikes.
Also the input quantization of the testbench (``round_half_even``, the reciprocal of a power-of-two
scale) against ``clip(std::nearbyint(x / scale))``."""

import subprocess

import numpy as np
import pytest

from talon import ir
from talon.backend import CompileConfig, get_backend
from talon.backend.fpga import csim
from talon.backend.fpga.codegen import dense_sums
from talon.backend.fpga.lowering import plan_fixed
from talon.backend.fpga.project import firmware_sources, hls4ml_templates
from talon.backend.stimulus import prepare_inputs

N_IN = 96
N_SPIKES = 600
CONFIG = CompileConfig(precision="int16", activation_bits=12)


def _weights(rng, n_out, gain):
    """Magnitudes near the top of the range; row 0 all positive and row 1 all negative, so that
    on mostly positive inputs the actual sums (not only their bounds) pass 2^31."""
    signs = rng.choice([-1.0, 1.0], (n_out, N_IN))
    signs[0], signs[1] = 1.0, -1.0
    return (signs * rng.uniform(0.7, 1.0, (n_out, N_IN)) * gain).astype(np.float32)


def _graph() -> ir.Graph:
    rng = np.random.default_rng(7)
    layers = {  # name: (weight_bits, accumulator_bits, outputs, threshold)
        "saturating": (8, 10, 6, 1e-4),  # saturates at 511 steps of ~8e-7
        "int_blocks": (16, 48, 5, 0.5),
        "long_long": (24, 56, 4, 0.5),
    }
    nodes = {"x": ir.Input(np.array([N_IN]))}
    edges = []
    for name, (w_bits, acc_bits, n, threshold) in layers.items():
        nodes[name] = ir.SpikingAffine(
            _weights(rng, n, 0.2), (rng.uniform(-0.2, 0.2, n)).astype(np.float32),
            spike_mode="rate", weight_bits=w_bits, accumulator_bits=acc_bits,
        )  # fmt: skip
        nodes[f"lif_{name}"] = ir.LIF(tau=np.full(n, 2.0), r=1.0, v_leak=0.0, v_threshold=np.full(n, threshold))
        nodes[f"out_{name}"] = ir.Output(np.array([n]))
        edges += [("x", name), (name, f"lif_{name}"), (f"lif_{name}", f"out_{name}")]
    # spikes on 8-bit weights: short blocks of 258 rows; row 0 of 600 ones passes 2^15
    nodes["spikes"] = ir.Input(np.array([N_SPIKES]))
    nodes["short_blocks"] = ir.SpikingAffine(
        np.abs(_weights(rng, 6, 0.2)[:, :1]).repeat(N_SPIKES, axis=1) * np.where(np.arange(6) == 1, -1, 1)[:, None],
        np.zeros(6, np.float32), weight_bits=8, accumulator_bits=32,
    )  # fmt: skip
    nodes["lif_short_blocks"] = ir.LIF(tau=np.full(6, 2.0), r=1.0, v_leak=0.0, v_threshold=np.full(6, 0.5))
    nodes["out_short_blocks"] = ir.Output(np.array([6]))
    edges += [("spikes", "short_blocks"), ("short_blocks", "lif_short_blocks")]
    edges += [("lif_short_blocks", "out_short_blocks")]
    return ir.Graph(nodes, edges)


def _inputs():
    rng = np.random.default_rng(1)
    spikes = (rng.random((30, 2, N_SPIKES)) < 0.6).astype(np.float32)
    spikes[:5] = 1.0  # every input spikes in the first steps
    return {"x": rng.uniform(0.0, 1.0, (30, 2, N_IN)).astype(np.float32), "spikes": spikes}


def test_the_graph_reaches_every_sum_width():
    graph = _graph()
    arrays, *_ = prepare_inputs(graph, _inputs(), None)
    plan = plan_fixed(graph, CONFIG, arrays)
    chosen = {}
    for op in plan.program.ops:
        kernel = plan.kernels[op.index]
        if op.path in ("saturating", "int_blocks", "long_long", "short_blocks"):
            chosen[op.path] = (kernel.saturating_acc, dense_sums(kernel, kernel.weight_t.shape[0]))
    assert chosen["saturating"][0] is True
    assert chosen["int_blocks"] == (False, ("long long", "int", 32))  # three blocks of 32 rows
    assert chosen["long_long"] == (False, ("long long", "long long", N_IN))
    assert chosen["short_blocks"] == (False, ("int", "short", 258))  # 258 * 127 <= 2^15 - 1


def test_every_sum_width_is_exact():
    graph, x = _graph(), _inputs()
    fpga = get_backend("fpga").simulate(graph, x, config=CONFIG, step_by_step=True)
    cpu = get_backend("cpu").simulate(graph, x, config=CONFIG, step_by_step=True)
    assert fpga.spike_counts == cpu.spike_counts and all(n > 0 for n in cpu.spike_counts.values()), cpu.spike_counts
    for path, states in cpu.node_states.items():
        for key, ints in states.items():
            if key.endswith("_int"):
                np.testing.assert_array_equal(fpga.node_states[path][key], ints, err_msg=f"{path} {key}")
    assert np.abs(cpu.node_states["saturating"]["output_int"]).max() in (2**9 - 1, 2**9)  # it saturates
    assert np.abs(cpu.node_states["int_blocks"]["output_int"]).max() > 2**31  # the int blocks carry into long long
    assert np.abs(cpu.node_states["short_blocks"]["output_int"]).max() > 2**15  # the short blocks carry into int


ROUNDING_CHECK = r"""
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include "nnet_talon_io.h"
int main() {
    std::mt19937_64 g(1);
    long bad = 0;
    auto check = [&](double r) {
        const double a = talon::round_half_even(r), b = std::nearbyint(r);
        if (std::memcmp(&a, &b, sizeof a) != 0 && !(a != a && b != b) && bad++ < 5)
            std::printf("%.17g: %.17g, nearbyint %.17g\n", r, a, b);
    };
    for (int i = 0; i < 200000; i++) {
        uint64_t bits = g();
        double r;
        std::memcpy(&r, &bits, sizeof r);
        check(r);                                                       // any double
        check((double)((int64_t)(g() >> 12) - (1LL << 51)) + 0.5);      // ties below 2^52
        check(std::ldexp((double)(int64_t)(g() >> 11), -(int)(g() % 60)) * ((g() & 1) ? 1 : -1));
    }
    const double special[] = {0.0, -0.0, 0.5, -0.5, 1.5, 2.5, -2.5, 4503599627370495.5, -4503599627370495.5,
                              4503599627370496.0, 9007199254740991.0, 1e308, INFINITY, -INFINITY, NAN,
                              5e-324, 0.49999999999999994, -0.49999999999999994};
    for (double r : special)
        check(r);
    // quantize_input against clip(nearbyint(x / scale)), on power-of-two scales (the multiply
    // by the reciprocal) and others (the division)
    const int n = 4096;
    static double x[n];
    static long long q[n];
    const double scales[] = {1.0, 0.5, 0.125, std::ldexp(1.0, -20), 8.0, std::ldexp(1.0, 40), std::ldexp(1.0, 1023),
                             std::ldexp(1.0, -1022), std::ldexp(1.0, -1074), 0.1, 3.0, 1e-300};
    for (double scale : scales) {
        for (int i = 0; i < n; i += 2) {
            x[i] = std::ldexp((double)(int64_t)(g() >> 11) * ((g() & 1) ? 1 : -1), -(int)(g() % 120)) * scale;
            x[i + 1] = ((double)(int64_t)(g() % 2000000) - 1e6 + 0.5) * scale; // near a tie after the division
        }
        x[0] = 2.5 * scale, x[1] = -3.5 * scale, x[2] = 0.0, x[3] = 1e300;
        const long long top = 1LL << 40;
        talon::quantize_input<long long, n>(x, q, scale, top);
        for (int i = 0; i < n; i++) {
            const double r = std::nearbyint(x[i] / scale);
            const long long want = (long long)(r > (double)top ? (double)top : (r < -(double)top ? -(double)top : r));
            if (q[i] != want && bad++ < 5)
                std::printf("scale %g x %.17g: %lld, want %lld\n", scale, x[i], q[i], want);
        }
    }
    return bad != 0;
}
"""


def test_the_testbench_quantizes_inputs_as_nearbyint_of_the_division(tmp_path):
    try:
        cxx = csim.compiler()
        ap_types = hls4ml_templates() / "ap_types"
    except Exception as exc:  # pragma: no cover - the fpga extra and g++ are installed in CI
        pytest.skip(str(exc))
    for name, text in firmware_sources().items():
        (tmp_path / name).write_text(text)
    (tmp_path / "check.cpp").write_text(ROUNDING_CHECK)
    exe = tmp_path / "check"
    built = subprocess.run(
        [cxx, *csim.CXXFLAGS, f"-I{tmp_path}", f"-I{ap_types}", str(tmp_path / "check.cpp"), "-o", str(exe)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    done = subprocess.run([str(exe)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout
