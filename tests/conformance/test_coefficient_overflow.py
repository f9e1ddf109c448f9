"""Every engine refuses a neuron whose coefficients overflow its dtype (one rule, ``talon.ir.coefficients``).

``tau = 1e-300`` is finite, but ``g = r/tau = 1e300`` is ``inf`` in float32, and the membrane then
becomes NaN and never spikes. The CPU backend refused it, while the PyTorch executor and JaxGraph ran
silently on NaN membranes (found by the random-graph differential tests).
"""

import numpy as np
import pytest

from talon import ir

from .cases import chain
from .engines import engine_names, load


@pytest.mark.parametrize("engine", engine_names())
@pytest.mark.parametrize("field", ["tau", "r"])
def test_coefficients_beyond_float32_are_refused_by_every_engine(engine, field):
    module = load(engine)
    for requirement in module.REQUIRES:
        pytest.importorskip(requirement)
    params = {"tau": np.array([2.0, 1e-300]), "r": 1.0} if field == "tau" else {"tau": 2.0, "r": np.array([1.0, 1e300])}
    graph = chain([2], ("lif", ir.LIF(**params)))
    with pytest.raises(ir.TalonError, match=r"node 'lif'.*coefficient"):
        module.run(graph, np.ones((3, 1, 2), np.float32))
