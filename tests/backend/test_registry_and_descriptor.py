"""Backend registry, capabilities, validate, compile and the JSON hardware descriptor."""

import json
import subprocess
import sys

import numpy as np
import pytest

from talon import ir
from talon.backend import (
    BackendBase,
    BackendError,
    CompileConfig,
    CPUBackend,
    HardwareDescriptor,
    get_backend,
    list_backends,
    query_backends,
    register_backend,
    run_graph,
)
from talon.backend.registry import BackendRegistry
from tests.subprocesses import child_env

from .graphs import hybrid_graph, mlp_graph


def test_importing_the_backend_does_not_import_torch_or_jax():
    code = (
        "import sys, talon.backend\n"
        "from talon.backend import get_backend\n"
        "get_backend('cpu')\n"
        "print(sorted(m for m in ('torch', 'jax', 'jaxlib', 'flax', 'nir', 'snntorch', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=child_env()
    ).stdout.strip()
    assert out == "[]"


def test_registry():
    assert list_backends() == ["cpu", "fpga"]
    cpu = get_backend("cpu")
    assert isinstance(cpu, CPUBackend) and cpu is get_backend("cpu") and cpu.name == "cpu"
    with pytest.raises(BackendError, match="unknown backend 'gpu'; available: cpu, fpga"):
        get_backend("gpu")
    assert query_backends(precision="int4", cyclic=True) == ["cpu", "fpga"]
    assert query_backends(precision="fp16") == ["cpu"]
    assert query_backends(primitive="Nonexistent") == []

    registry = BackendRegistry()

    class Echo(CPUBackend):
        name = ""

    registry.register("echo", Echo)
    assert registry.get("echo").name == "echo" and registry.names() == ["echo"]
    with pytest.raises(BackendError, match="already registered"):
        registry.register("echo", Echo)
    registry.register("echo", Echo(), overwrite=True)
    with pytest.raises(BackendError, match="BackendBase"):
        registry.register("bad", object)
    with pytest.raises(BackendError, match="already registered"):
        register_backend("cpu", CPUBackend)
    assert issubclass(CPUBackend, BackendBase)


def test_capabilities():
    caps = get_backend("cpu").get_capabilities()
    assert caps.supported_precisions == ["fp32", "fp16", "int16", "int8", "int4"]
    assert caps.supports_cyclic and caps.max_graph_size == 1_000_000
    assert set(caps.supported_primitives) == set(ir.list_primitives())
    assert "Sigmoid" not in caps.fixed_point_primitives and "LIF" in caps.fixed_point_primitives


def test_descriptor_schema_and_round_trip(tmp_path):
    cpu = get_backend("cpu")
    descriptor = cpu.compile(hybrid_graph(0))
    data = descriptor.to_dict()
    assert data["format"] == "talon-hardware-descriptor" and data["version"] == 1 and data["backend"] == "cpu"
    assert data["graph"]["inputs"] == {"input": [1, 28, 28]} and data["graph"]["outputs"] == {"output": [10]}
    scheduled = [op["node"] for c in data["schedule"] for op in c["ops"]]
    assert scheduled == ["input", "conv1", "relu", "pool", "flatten", "fc1", "lif", "fc2", "output"]
    assert all(c["mode"] == "sequence" for c in data["schedule"])
    assert data["schedule"][1]["ops"][0]["precision"] == {"dtype": "float32", "accumulation": "float64"}
    kinds = {b["kind"] for b in data["buffers"]}
    assert kinds == {"weight", "parameter", "state", "activation"}
    weights = sum(b["bytes"] for b in data["buffers"] if b["kind"] == "weight")
    assert weights == data["memory"]["weight_bytes"] == (144 + 16 + 3136 * 64 + 64 + 640 + 10) * 4
    profile = cpu.profile(hybrid_graph(0), n_steps=2)
    assert data["memory"]["peak_bytes"] == profile.peak_memory_bytes
    path = tmp_path / "out" / "model_config.json"
    text = descriptor.to_json(path)
    assert json.loads(path.read_text()) == json.loads(text) == data
    assert [p.name for p in path.parent.iterdir()] == ["model_config.json"]  # no temporary file left
    back = HardwareDescriptor.from_json(path)
    assert back.to_dict() == data and back.precision == "fp32"
    assert HardwareDescriptor.from_json(text).schedule == descriptor.schedule


def test_descriptor_errors(tmp_path):
    with pytest.raises(BackendError, match="not a talon hardware descriptor"):
        HardwareDescriptor.from_json('{"format": "other"}')
    with pytest.raises(BackendError, match="not valid JSON"):
        HardwareDescriptor.from_json("{oops")
    with pytest.raises(BackendError, match="cannot read"):
        HardwareDescriptor.from_json(tmp_path / "missing.json")
    with pytest.raises(BackendError, match="newer"):
        HardwareDescriptor({"format": "talon-hardware-descriptor", "version": 99})


def test_fixed_point_descriptor_records_the_integer_formats():
    graph = mlp_graph(0, sizes=(20, 8, 3))
    descriptor = get_backend("cpu").compile(graph, {"precision": "int8"})
    ops = {op["node"]: op for c in descriptor.schedule for op in c["ops"]}
    fc1 = ops["fc1"]["precision"]
    assert fc1["weight_bits"] == 8 and fc1["accumulator_bits"] == 32 and fc1["weight_scaling"] == "per_channel"
    assert len(fc1["out_formats"][0]["scale"]) == 8  # one scale per output channel
    lif = ops["lif1"]["precision"]
    assert lif["state_bits"] == 24 and lif["coefficient_bits"] == 16 and lif["threshold_int"] > 0
    json.loads(descriptor.to_json())
    assert descriptor.memory["weight_bytes"] == 20 * 8 + 8 * 4 + 8 * 3 + 3 * 4


def test_validate_reports_problems_without_raising():
    cpu = get_backend("cpu")
    graph = ir.Graph(
        {"input": ir.Input(np.array([3])), "sig": ir.Sigmoid(), "output": ir.Output(np.array([3]))},
        [("input", "sig"), ("sig", "output")],
    )
    assert cpu.validate(graph).is_valid
    result = cpu.validate(graph, CompileConfig("int4"))
    assert not result and result.unsupported_nodes[0].startswith("sig (Sigmoid)")
    no_io = ir.Graph({"a": ir.ReLU(input_type=[2])}, [])
    result = cpu.validate(no_io)
    assert not result.is_valid and "no Input node" in result.errors[0]
    with pytest.raises(BackendError, match=r"expected a talon\.ir\.Graph"):
        cpu.validate({"nodes": []})


def test_run_graph():
    graph = mlp_graph(1, sizes=(10, 6, 2))
    run = run_graph(graph, n_steps=5, precision="int16")
    assert run.descriptor.precision == "int16" and run.simulation.timesteps_run == 5
    assert run.simulation.quantization is not None
