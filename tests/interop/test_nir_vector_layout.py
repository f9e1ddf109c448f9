"""A 1-D neuron parameter on a square multi-axis layer of a foreign NIR file is refused by name.

NIR gives neuron parameters the layer's shape. talon reads a ``(C,)`` parameter on a ``[C, H, W]``
layer as one value per channel; numpy/PyTorch broadcasting (nirtorch, snnTorch, Norse) applies it
along the last axis. When ``W == C`` both readings are possible and give different models, so the
import refuses instead of picking one; when only the channel reading fits, it is kept."""

import warnings

import nir
import numpy as np
import pytest

from talon import ir
from talon.interop.nir import from_nir


def conv_lif(channels: int, height: int, width: int) -> nir.NIRGraph:
    vector = np.linspace(0.5, 1.5, channels).astype(np.float32)
    nodes = {
        "input": nir.Input(input_type=np.array([2, height + 2, width + 2])),
        "conv": nir.Conv2d(
            input_shape=(height + 2, width + 2),
            weight=np.ones((channels, 2, 3, 3), np.float32),
            stride=1,
            padding=0,
            dilation=1,
            groups=1,
            bias=np.zeros(channels, np.float32),
        ),
        "lif": nir.LIF(
            tau=vector * 1e-3,
            r=np.ones(channels, np.float32),
            v_leak=np.zeros(channels, np.float32),
            v_threshold=vector,
        ),
        "output": nir.Output(output_type=np.array([channels, height, width])),
    }
    edges = [("input", "conv"), ("conv", "lif"), ("lif", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def read(graph: nir.NIRGraph) -> ir.Graph:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dt and producer warnings; not what is tested
        return from_nir(graph)


@pytest.mark.parametrize("shape", [(4, 4, 4), (4, 5, 4)])
def test_an_ambiguous_vector_parameter_is_refused_naming_node_field_and_fix(shape):
    with pytest.raises(ir.ConversionError) as info:
        read(conv_lif(*shape))
    message = str(info.value)
    assert "node 'lif' (LIF): tau has shape [4]" in message
    assert f"layer of shape {list(shape)}" in message
    assert "np.broadcast_to(p[:, None, None]" in message


def test_a_vector_parameter_that_only_fits_the_channels_is_read_per_channel():
    graph = read(conv_lif(4, 5, 5))
    lif = graph.nodes["lif"]
    assert lif.input_shape == (4, 5, 5)
    np.testing.assert_array_equal(lif.v_threshold, np.linspace(0.5, 1.5, 4).astype(np.float32))


def test_the_full_shape_reads_exactly_as_written():
    graph = conv_lif(4, 4, 4)
    per_column = np.broadcast_to(graph.nodes["lif"].v_threshold, (4, 4, 4)).copy()
    graph.nodes["lif"] = nir.LIF(
        tau=np.full((4, 4, 4), 2e-3, np.float32),
        r=np.ones((4, 4, 4), np.float32),
        v_leak=np.zeros((4, 4, 4), np.float32),
        v_threshold=per_column,
    )
    lif = read(graph).nodes["lif"]
    np.testing.assert_array_equal(lif.v_threshold, per_column)
