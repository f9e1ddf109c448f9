"""PyTorch modules of the ghost and detection primitives: export as leaves and traced, import, round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talon import ir
from talon.bridge import detection as det
from talon.bridge import ir_to_torch, to_ir
from talon.examples.spiking_detector import SpikingGhostDetector


def _modules():
    torch.manual_seed(0)
    return [
        (det.GhostConv(3, 4, kernel_size=3, stride=2), (3, 8, 8)),
        (det.SGhostEncoderLite(3, 8, 4), (3, 8, 8)),
        (det.GhostBasicBlock1(8, 16), (8, 8, 8)),
        (det.GhostBasicBlock2(8, 16), (8, 4, 4)),
        (det.SDDetect(8, num_classes=2, reg_max=4, hidden=8), (8, 4, 4)),
        (det.DFLDecode(4), (18, 4, 4)),
        (det.Dist2BBox(8), (6, 4, 4)),
        (det.NMS(0.2, 0.5, 7), (16, 6)),
    ]


@pytest.mark.parametrize("index", range(8))
def test_each_module_exports_as_a_leaf_and_imports_back_exactly(index):
    module, shape = _modules()[index]
    x = torch.rand(2, *shape)
    graph = to_ir(torch.nn.Sequential(module), x)  # a child module is a leaf of the trace
    (name,) = [n for n, node in graph.nodes.items() if not isinstance(node, (ir.Input, ir.Output))]
    node = graph.nodes[name]
    assert isinstance(node, tuple(det.MODULES))
    executor = ir_to_torch(graph)
    with torch.no_grad():
        training = module(x)  # float32 convolutions
        for sub in module.modules():  # imported modules accumulate in float64, as the CPU backend does
            if hasattr(sub, "exact"):
                sub.exact = True
        assert torch.equal(executor(x), module(x))
        torch.testing.assert_close(executor(x), training, rtol=1e-5, atol=1e-5)
    again = to_ir(executor, x)
    assert ir.graph_differences(graph, again) == []
    for key, value in node.arrays().items():
        assert np.array_equal(again.nodes[name].arrays()[key], value), key


def test_traced_detector_round_trips_and_engines_agree():
    torch.manual_seed(1)
    model = SpikingGhostDetector(steps=2).eval()
    with torch.no_grad():  # make the neurons fire on these inputs
        for block in (model.encoder, model.block1, model.block2, model.block3):
            for conv in block.modules():
                if isinstance(conv, torch.nn.Conv2d):
                    conv.weight.mul_(3.0)
    images = torch.rand(3, 3, 48, 48)
    graph = to_ir(model, images[:1])
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    assert kinds[1:4] == ["SGhostEncoderLite", "IF", "GhostBasicBlock1"]
    assert kinds[-5:] == ["Integrator", "DFLDecode", "Dist2BBox", "NMS", "Output"]
    executor = ir_to_torch(graph, return_state=True)
    assert ir.graph_differences(graph, to_ir(executor, images[:1])) == []
    state = None
    with torch.no_grad():
        for _ in range(2):
            out, state = executor(images, state)
    from talon.backend import get_backend

    frames = np.ascontiguousarray(np.broadcast_to(images.numpy(), (2, *images.shape)))
    result = get_backend("cpu").simulate(graph, {"input": frames})
    np.testing.assert_array_equal(out.numpy(), result.outputs["output"][-1])
    assert all(result.spike_counts[name] > 0 for name in ("if0", "if1", "if2", "if3")), result.spike_counts


def test_the_detector_trains_through_the_surrogate_spikes():
    from talon.examples.shapes import make_scenes
    from talon.examples.spiking_detector import batch_images, detection_loss

    torch.manual_seed(0)
    model = SpikingGhostDetector(steps=2)
    scenes = make_scenes(4, seed=3, size=48, min_radius=4, max_radius=9.6)
    loss = detection_loss(model.forward_sequence(batch_images(scenes)), scenes, model.reg_max, model.stride)
    loss.backward()
    grad = model.encoder.conv1.weight.grad  # reached only through four IF layers' surrogate gradients
    assert grad is not None and torch.count_nonzero(grad) > 0


def test_fine_tuned_weights_are_re_exported():
    module = torch.nn.Sequential(det.GhostBasicBlock1(4, 8))
    x = torch.rand(1, 4, 8, 8)
    executor = ir_to_torch(to_ir(module, x))
    (name,) = [n for n, node in executor.graph.nodes.items() if isinstance(node, ir.GhostBasicBlock1)]
    sub = executor.module_of(name)
    with torch.no_grad():
        sub.cvres.cheap.weight.add_(1.0)
    node = to_ir(executor, x).nodes[name]
    assert np.array_equal(node.cvres_cheap_weight, sub.cvres.cheap.weight.detach().numpy())


def test_nir_export_refuses_each_detection_node_by_name():
    pytest.importorskip("nir")
    from talon.interop.nir import to_nir

    for module, shape in _modules():
        graph = to_ir(torch.nn.Sequential(module), torch.rand(1, *shape))
        name = next(n for n, node in graph.nodes.items() if isinstance(node, tuple(det.MODULES)))
        with pytest.raises(ir.ConversionError, match=rf"node '{name}' \({type(graph.nodes[name]).__name__}\).*NIR"):
            to_nir(graph)
