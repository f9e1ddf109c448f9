"""The code blocks of seeds 000, 001 and 002 (§1–6), run unchanged, print what the seeds show.

Each block is the seed's text. Only the snnTorch-fork imports are redirected: upstream snnTorch
has no ``snntorch.export_talonir`` / ``import_talonir`` modules, so those two import lines read
``from talon.bridge.snntorch import ...`` (where talon's wrappers live). Every block also runs
with ``talon`` spelled ``t1c``.
"""

import contextlib
import io
import os
import re

import numpy as np
import pytest
import torch

from ..seed_texts import SEED_002_HYBRID

SPELLINGS = ["talon", "t1c"]


def run_block(code: str, spelling: str, namespace: dict) -> str:
    if spelling == "t1c":
        code = code.replace("from talon import", "from t1c import").replace("from talon.", "from t1c.")
    else:
        code = code.replace("from t1c import", "from talon import").replace("from t1c.", "from talon.")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<seed block>", "exec"), namespace)
    return out.getvalue()


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines()]


SNN_CLASS = """
import torch
import torch.nn as nn
import snntorch as snn


class SNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.lif1 = snn.Leaky(beta=0.9)
        self.fc2 = nn.Linear(128, 10)
        self.lif2 = snn.Leaky(beta=0.9)

    def forward(self, x, mem1=None, mem2=None):
        if mem1 is None:
            mem1 = self.lif1.init_leaky()
        if mem2 is None:
            mem2 = self.lif2.init_leaky()

        cur1 = self.fc1(x)
        spk1, mem1 = self.lif1(cur1, mem1)
        cur2 = self.fc2(spk1)
        spk2, mem2 = self.lif2(cur2, mem2)

        return spk2, mem1, mem2
"""


# ---- seed 000: export guide -----------------------------------------------------------------------


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_seed000_export_guide(spelling, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    ns: dict = {}
    run_block(
        """
import torch
import torch.nn as nn
from t1c import bridge

model = nn.Sequential(
nn.Linear(784, 128),
nn.ReLU(),
nn.Linear(128, 10)
)

# Sample input with batch dimension
sample = torch.randn(1, 784)

# Export
graph = bridge.to_ir(model, sample)
""",
        spelling,
        ns,
    )
    g = ns["graph"]
    assert [type(n).__name__ for n in g.nodes.values()] == ["Input", "Affine", "ReLU", "Affine", "Output"]

    run_block(SNN_CLASS + "\nmodel = SNN()\nsample = torch.randn(1, 784)\ngraph = bridge.to_ir(model, sample)\n",
              spelling, ns)  # fmt: skip
    g = ns["graph"]
    assert list(g.nodes) == ["input", "fc1", "lif1", "fc2", "lif2", "output"]
    assert g.edges == [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]

    run_block("from talon.bridge.snntorch import export_to_ir\n\ngraph = export_to_ir(model, sample)\n", spelling, ns)
    assert list(ns["graph"].nodes) == list(g.nodes)

    run_block(
        """
graph = bridge.to_ir(
model,
sample,
spiking=True, # Use SpikingAffine instead of Affine
spike_mode='binary', # 'binary', 'graded', 'rate'
weight_bits=8, # Weight quantization
accumulator_bits=16 # MAC accumulator precision
)
""",
        spelling,
        ns,
    )
    fc1 = ns["graph"].nodes["fc1"]
    assert type(fc1).__name__ == "SpikingAffine" and (fc1.spike_mode, fc1.weight_bits, fc1.accumulator_bits) == (
        "binary", 8, 16)  # fmt: skip

    run_block(
        """
from t1c import ir, bridge
import numpy as np

def my_linear_converter(module: nn.Linear) -> ir.Node:
    \"\"\"Custom converter that always uses SpikingAffine.\"\"\"
    return ir.SpikingAffine(
    weight=module.weight.detach().numpy(),
    bias=module.bias.detach().numpy() if module.bias is not None
    else np.zeros(module.out_features, np.float32),
    spike_mode='graded',
    weight_bits=4,
    accumulator_bits=8
    )

custom_map = {
nn.Linear: my_linear_converter
}

graph = bridge.to_ir(model, sample, custom_map=custom_map)
""",
        spelling,
        ns,
    )
    assert ns["graph"].nodes["fc2"].spike_mode == "graded" and ns["graph"].nodes["fc2"].weight_bits == 4

    run_block(
        """
from t1c.bridge import T1CExporter

exporter = T1CExporter(
spiking=True,
spike_mode='binary',
weight_bits=8,
accumulator_bits=16
)

graph = exporter.export(model, sample, custom_map=None)
print(f"Input shapes: {exporter._input_shapes}")
print(f"Output shapes: {exporter._output_shapes}")
""",
        spelling,
        ns,
    )
    exporter = ns["exporter"]
    assert exporter._input_shapes["fc1"] == (784,) and exporter._output_shapes["lif2"] == (10,)
    assert type(ns["graph"].nodes["fc1"]).__name__ == "SpikingAffine"


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_seed000_graph_executor_round_trip(spelling, tmp_path, monkeypatch):
    """The seed's round-trip block, on a residual block written beforehand (the seed assumes one)."""
    from talon import ir

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    block = ir.Graph(
        {
            "input": ir.Input(np.array([784])),
            "fc": ir.Affine((rng.standard_normal((784, 784)) * 0.01).astype(np.float32), np.zeros(784, np.float32)),
            "relu": ir.ReLU(),
            "skip": ir.Skip("residual"),
            "head": ir.Affine((rng.standard_normal((10, 784)) * 0.05).astype(np.float32), np.zeros(10, np.float32)),
            "output": ir.Output(np.array([10])),
        },
        [("input", "fc"), ("fc", "relu"), ("relu", "skip"), ("input", "skip"), ("skip", "head"), ("head", "output")],
    )
    ir.write("resnet_block.t1c", block)
    x, y = torch.randn(8, 784), torch.randint(0, 10, (8,))
    ns = {"dataloader": [(x, y)], "criterion": torch.nn.CrossEntropyLoss(), "torch": torch, "state": None}
    out = run_block(
        """
from t1c import ir, bridge

# 1. Load graph with residual connections
graph = ir.read("resnet_block.t1c")
print(f"Original: {len(graph.nodes)} nodes, {len(graph.edges)} edges")

# 2. Import to PyTorch for training
executor = bridge.ir_to_torch(graph, return_state=True)

# 3. Train/fine-tune the model
optimizer = torch.optim.Adam(executor.parameters(), lr=1e-4)
for epoch in range(10):
    for x, y in dataloader:
        output, state = executor(x, state)
        loss = criterion(output, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

# 4. Export back to T1C-IR - topology preserved!
sample = torch.randn(1, 784)
trained_graph = bridge.to_ir(executor, sample)

# Verify preservation
assert set(graph.edges) == set(trained_graph.edges)
assert graph.nodes['skip'].skip_type == trained_graph.nodes['skip'].skip_type
print("Topology preserved!")
""",
        spelling,
        ns,
    )
    assert lines(out) == ["Original: 6 nodes, 6 edges", "Topology preserved!"]
    trained = ns["trained_graph"]
    assert not np.array_equal(trained.nodes["fc"].weight, block.nodes["fc"].weight)  # training changed weights
    assert trained.edges == block.edges and trained.nodes["skip"].skip_type == "residual"


# ---- seed 001: bridge tutorial ---------------------------------------------------------------------

SEED001_S1 = """
import torch
import torch.nn as nn
from talon import bridge, ir
class SimpleSNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(128, 10)
    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))
model = SimpleSNN()
sample = torch.randn(1, 784)
graph = bridge.to_ir(model, sample)
print(f"Exported TALON IR graph:")
print(f" Nodes: {len(graph.nodes)}")
print(f" Edges: {len(graph.edges)}")
for name, node in graph.nodes.items():
    print(f" {name}: {type(node).__name__}")
"""
SEED001_S2 = """
executor = bridge.ir_to_torch(graph)
with torch.no_grad():
    orig = model(sample)
    exec_out = executor(sample)
diff = (orig - exec_out).abs().max().item()
print(f"Max difference: {diff:.2e}")
print(f"Equivalent: {diff < 1e-5}")
"""
SEED001_S3 = """
graph_spiking = bridge.to_ir(
    model, sample,
    spiking=True,
    weight_bits=8,
    accumulator_bits=16,
)
for name, node in graph_spiking.nodes.items():
    print(f" {name}: {type(node).__name__}")
"""
SEED001_S4 = """
import numpy as np
nodes = {
    "input": ir.Input(np.array([128])),
    "fc": ir.Affine(
        weight=np.random.randn(64, 128).astype(np.float32) * 0.05,
        bias=np.zeros(64, dtype=np.float32),
    ),
    "lif": ir.LIF(
        tau=np.ones(64, dtype=np.float32) * 5.0,
        r=np.ones(64, dtype=np.float32),
        v_leak=np.zeros(64, dtype=np.float32),
        v_threshold=np.ones(64, dtype=np.float32) * 0.5,
    ),
    "output": ir.Output(np.array([64])),
}
edges = [("input", "fc"), ("fc", "lif"), ("lif", "output")]
lif_graph = ir.Graph(nodes=nodes, edges=edges)
executor = bridge.ir_to_torch(lif_graph, return_state=True)
x = torch.randn(1, 128) * 0.3
state = {}
for t in range(5):
    out, state = executor(x, state)
    spike_count = (out > 0).sum().item()
    print(f" t={t}: spikes={spike_count}/64, state keys={list(state.keys())}")
"""
SEED001_S5 = """
modules = {
    "fc1": nn.Linear(64, 32),
    "lif1": bridge.LIFModule(
        tau=np.ones(32, dtype=np.float32) * 10.0,
        r=np.ones(32, dtype=np.float32),
        v_leak=np.zeros(32, dtype=np.float32),
        v_threshold=np.ones(32, dtype=np.float32),
    ),
    "fc_fb": nn.Linear(32, 64),
}
edges = [
    ("input", "fc1"),
    ("fc1", "lif1"),
    ("lif1", "output"),
    ("lif1", "fc_fb"),
    ("fc_fb", "fc1"), # feedback connection
]
exec_cyclic = bridge.CyclicGraphExecutor(
    modules=modules,
    edges=edges,
    timesteps=3,
    output_nodes=["lif1"],
    return_state=True,
)
x = torch.randn(1, 64) * 0.1
outputs, state = exec_cyclic(x, {})
print(f"Timestep outputs: {len(outputs)} tensors")
for t, out in enumerate(outputs):
    print(f" t={t}: shape={out.shape}, spike count={(out > 0).sum().item()}")
print(f"State keys: {list(state.keys())}")
"""
SEED001_S6 = """
ir.write("models/snn_bridge_demo.t1c", graph)
loaded = ir.read("models/snn_bridge_demo.t1c")
exec_loaded = bridge.ir_to_torch(loaded)
with torch.no_grad():
    out_loaded = exec_loaded(sample)
diff = (exec_out - out_loaded).abs().max().item()
print(f"Serialization round-trip: max diff = {diff:.2e}")
"""
SEED001_SPLIT = """
import numpy as np, torch
from talon import ir, bridge
nodes = {
    "input": ir.Input(np.array([32])),
    "split": ir.ChannelSplit(split_sections=(16, 16)),
    "branch0": ir.Affine(weight=np.eye(16, dtype=np.float32), bias=np.zeros(16, dtype=np.float32)),
    "branch1": ir.Affine(weight=np.eye(16, dtype=np.float32), bias=np.zeros(16, dtype=np.float32)),
    "concat": ir.Concat(dim=1),
    "output": ir.Output(np.array([32])),
}
edges = [
    ("input", "split"),
    ("split", "branch0"),
    ("split", "branch1"),
    ("branch0", "concat"),
    ("branch1", "concat"),
    ("concat", "output"),
]
graph = ir.Graph(nodes=nodes, edges=edges)
executor = bridge.ir_to_torch(graph)
x = torch.randn(1, 32)
with torch.no_grad():
    y = executor(x)
print(y.shape) # torch.Size([1, 32])
"""


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_seed001_bridge_tutorial(spelling, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    np.random.seed(0)
    ns: dict = {}
    assert lines(run_block(SEED001_S1, spelling, ns)) == [
        "Exported TALON IR graph:", "Nodes: 5", "Edges: 4",
        "input: Input", "fc1: Affine", "relu: ReLU", "fc2: Affine", "output: Output",
    ]  # fmt: skip
    assert lines(run_block(SEED001_S2, spelling, ns)) == ["Max difference: 0.00e+00", "Equivalent: True"]
    assert lines(run_block(SEED001_S3, spelling, ns)) == [
        "input: Input", "fc1: SpikingAffine", "relu: ReLU", "fc2: SpikingAffine", "output: Output",
    ]  # fmt: skip
    out = lines(run_block(SEED001_S4, spelling, ns))
    assert len(out) == 5
    for t, line in enumerate(out):
        assert re.fullmatch(rf"t={t}: spikes=\d+/64, state keys=\['lif'\]", line), line
    out = lines(run_block(SEED001_S5, spelling, ns))
    assert out[0] == "Timestep outputs: 3 tensors" and out[-1] == "State keys: ['lif1']"
    for t, line in enumerate(out[1:4]):
        assert re.fullmatch(rf"t={t}: shape=torch.Size\(\[1, 32\]\), spike count=\d+", line), line
    assert lines(run_block(SEED001_S6, spelling, ns)) == ["Serialization round-trip: max diff = 0.00e+00"]
    assert os.path.exists("models/snn_bridge_demo.t1c")
    assert lines(run_block(SEED001_SPLIT, spelling, ns)) == ["torch.Size([1, 32])"]
    assert torch.equal(ns["y"], ns["x"])  # identity branches: the split/concat routing is exact


# ---- seed 002: snnTorch integration, sections 1–6 -------------------------------------------------


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_seed002_snntorch_integration(spelling, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    ns: dict = {}
    s1 = (
        SNN_CLASS.replace("class SNN(", "class SimpleSNN(")
        + """
model = SimpleSNN()
print(f"Model parameters: {sum(p.numel() for p in model.parameters()):,}")
"""
    )
    # The seed prints 102,026 with the TALON snnTorch fork; upstream snnTorch 1.0.0 registers no
    # parameters in Leaky, so the count is the two Linear layers: 784*128+128 + 128*10+10.
    assert lines(run_block(s1, spelling, ns)) == ["Model parameters: 101,770"]
    s2 = """
from talon.bridge.snntorch import export_to_ir
from talon import ir
sample = torch.randn(1, 784)
graph = export_to_ir(model, sample)
print(f"TALON IR graph:")
print(f" Nodes: {len(graph.nodes)}")
print(f" Edges: {len(graph.edges)}")
print()
for name, node in graph.nodes.items():
    print(f" {name:8s} → {type(node).__name__}")
"""
    assert lines(run_block(s2, spelling, ns)) == [
        "TALON IR graph:", "Nodes: 6", "Edges: 5", "",
        "input    → Input", "fc1      → Affine", "lif1     → LIF", "fc2      → Affine", "lif2     → LIF",
        "output   → Output",
    ]  # fmt: skip
    s3 = """
import tempfile
import os
path = os.path.join(tempfile.mkdtemp(), "snn_model.t1c")
ir.write(path, graph)
file_size = os.path.getsize(path)
print(f"Saved: {file_size:,} bytes")
loaded = ir.read(path)
print(f"Loaded: {len(loaded.nodes)} nodes, {len(loaded.edges)} edges")
"""
    out = lines(run_block(s3, spelling, ns))
    size = int(re.fullmatch(r"Saved: ([\d,]+) bytes", out[0]).group(1).replace(",", ""))
    assert size <= 420_864  # the seed's file size: ours is no larger
    assert out[1] == "Loaded: 6 nodes, 5 edges"
    s4 = """
from talon.bridge.snntorch import import_from_ir
executor = import_from_ir(path, return_state=True)
x = torch.randn(1, 784)
state = None
print("Multi-timestep inference:")
for t in range(10):
    out, state = executor(x, state)
    spike_count = (out > 0).sum().item()
    print(f" t={t:2d}: output={out.shape}, spikes={spike_count}/10")
"""
    out = lines(run_block(s4, spelling, ns))
    assert out[0] == "Multi-timestep inference:" and len(out) == 11
    for t, line in enumerate(out[1:]):
        assert re.fullmatch(rf"t=\s?{t}: output=torch.Size\(\[1, 10\]\), spikes=\d+/10", line), line
    s5 = """
original = export_to_ir(model, sample)
ir.write(path, original)
reimported = ir.read(path)
print("Round-trip verification:")
print(f" Nodes match: {list(original.nodes.keys()) == list(reimported.nodes.keys())}")
print(f" Edges match: {len(original.edges) == len(reimported.edges)}")
for name in original.nodes:
    orig_node = original.nodes[name]
    re_node = reimported.nodes[name]
    types_match = type(orig_node).__name__ == type(re_node).__name__
    print(f" {name}: type={'✓' if types_match else '✗'}")
"""
    assert lines(run_block(s5, spelling, ns)) == [
        "Round-trip verification:", "Nodes match: True", "Edges match: True",
        *(f"{n}: type=✓" for n in ["input", "fc1", "lif1", "fc2", "lif2", "output"]),
    ]  # fmt: skip
    s6 = (
        SEED_002_HYBRID
        + """print(f"Hybrid ANN-SNN graph: {len(hybrid_graph.nodes)} nodes")
print()
for name, node in hybrid_graph.nodes.items():
    print(f" {name:10s} → {type(node).__name__}")
"""
    )
    assert lines(run_block(s6, spelling, ns)) == [
        "Hybrid ANN-SNN graph: 9 nodes", "",
        *(f"{n:10s} → {t}" for n, t in [("input", "Input"), ("conv1", "Conv2d"), ("relu", "ReLU"),
                                        ("pool", "MaxPool2d"), ("flatten", "Flatten"), ("fc1", "Affine"),
                                        ("lif", "LIF"), ("fc2", "Affine"), ("output", "Output")]),
    ]  # fmt: skip
