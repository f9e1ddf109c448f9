"""The conformance suite: every engine reproduces the golden traces of docs/semantics.md.

The reference (``reference.py``) is itself pinned by hand-worked traces below; each engine module
``engine_<name>.py`` is then run on every case and compared with the reference: spikes and
outputs bit for bit, membranes bit for bit on exact cases and within 1e-5 otherwise.
"""

import numpy as np
import pytest

from talon import ir

from . import reference
from .cases import CASE_IDS, CASES, chain
from .engines import engine_names, load


def _trace(graph, xs):
    x = np.asarray(xs, np.float32).reshape(len(xs), 1, -1)
    out = reference.run(graph, x)
    return out["outputs"]["output"][:, 0, 0].tolist(), out["states"]


def test_reference_lif_talon_defaults():
    graph = chain([1], ("lif", ir.LIF(tau=[2.0], r=[2.0])))
    spikes, states = _trace(graph, [0.5, 0.5, 0.5, 1.0, 0.25])
    assert spikes == [0, 0, 0, 1, 0]
    assert states["lif"]["v"][:, 0, 0].tolist() == [0.5, 0.75, 0.875, 0.0, 0.25]


def test_reference_snntorch_delayed_subtract_and_spyx_pre_spike():
    snn = dict(reset_mode="subtract", reset_timing="delayed", comparison=">")
    spikes, states = _trace(chain([1], ("lif", ir.LIF(tau=[2.0], r=[2.0], **snn))), [0.5, 0.5, 0.5, 1.0, 0.25])
    assert spikes == [0, 0, 0, 1, 0]
    assert states["lif"]["v"][:, 0, 0].tolist() == [0.5, 0.75, 0.875, 1.4375, -0.03125]
    spyx, states_spyx = _trace(
        chain([1], ("lif", ir.LIF(tau=[2.0], r=[2.0], spike_timing="pre", **snn))), [0.5, 0.5, 0.5, 1.0, 0.25]
    )
    assert spyx == [0, 0, 0, 0, 1]  # Spyx emits the spike of the state before the update
    assert np.array_equal(states_spyx["lif"]["v"], states["lif"]["v"])


@pytest.mark.parametrize(("comparison", "expected"), [(">=", [1, 1, 1]), (">", [0, 1, 0])])
def test_reference_threshold_equality(comparison, expected):
    graph = chain([1], ("if", ir.IF(v_threshold=[1.0], comparison=comparison)))
    spikes, _ = _trace(graph, [1.0, 1.0, 1.0])
    assert spikes == expected


def test_reference_recurrent_edge_carries_the_previous_step():
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([1])),
            "lif": ir.IF(v_threshold=[1.0]),
            "w": ir.Linear(np.array([[0.5]])),
            "output": ir.Output(np.array([1])),
        },
        [("input", "lif"), ("lif", "w"), ("w", "lif"), ("lif", "output")],
    )
    spikes, states = _trace(graph, [1.0, 0.0, 0.0])
    assert spikes == [1, 0, 0]
    assert states["lif"]["v"][:, 0, 0].tolist() == [0.0, 0.5, 0.5]


def test_reference_delayed_pre_decay_reset_is_decayed():
    # Spyx CuBaLIF: V = V - s theta before V = beta V + I
    lif = ir.LIF(tau=[2.0], r=[2.0], reset_mode="subtract", reset_timing="delayed_pre_decay", comparison=">")
    _, states = _trace(chain([1], ("lif", lif)), [1.5, 0.0])
    assert states["lif"]["v"][:, 0, 0].tolist() == [1.5, 0.25]  # 0.5 * (1.5 - 1) + 0


@pytest.mark.parametrize(
    "case", [c for c in CASES if not c.name.startswith(("li", "cubali", "integrator"))], ids=lambda c: c.name
)
def test_cases_make_neurons_fire(case):
    out = reference.run(case.build(), case.inputs())["outputs"]
    values = np.concatenate([v.reshape(-1) for v in out.values()])
    assert np.any(values != 0) and np.any(values == 0), "the input must be strong enough to fire, not saturate"


ENGINES = engine_names()


@pytest.mark.parametrize("engine", ENGINES or [pytest.param(None, marks=pytest.mark.xfail(reason="no engine yet"))])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_engine_matches_reference(engine, case):
    assert engine is not None
    module = load(engine)
    for requirement in module.REQUIRES:
        pytest.importorskip(requirement)
    graph = case.build()
    x = case.inputs()
    expected = reference.run(graph, x)
    got = module.run(graph, x)
    assert sorted(got["outputs"]) == sorted(expected["outputs"])
    for name, want in expected["outputs"].items():
        have = np.asarray(got["outputs"][name])
        assert have.shape == want.shape, name
        if case.exact:
            np.testing.assert_array_equal(have, want, err_msg=f"output {name}")
        else:
            np.testing.assert_allclose(have, want, atol=1e-5, rtol=1e-5, err_msg=f"output {name}")
    for path, state in expected["states"].items():
        assert path in got["states"], f"engine {engine} does not report the state of {path}"
        for key, want in state.items():
            have = np.asarray(got["states"][path][key])
            if case.exact:
                np.testing.assert_array_equal(have, want, err_msg=f"{path}.{key}")
            else:
                np.testing.assert_allclose(have, want, atol=1e-5, rtol=1e-5, err_msg=f"{path}.{key}")
