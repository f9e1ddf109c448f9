"""NaN / infinite parameters: engines and quantisers refuse them naming node and field; readers
(to_ir, read_nir, JaxGraph, ir_to_torch) warn so the graph can still be inspected and linted (talon.ir.finite)."""

import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from talon import ir, sdk
from talon.backend import BackendError, get_backend
from talon.backend.cpu.formats.fixed_point import quantize_symmetric
from talon.cli import main

from ..sdk import graphs

INPUTS = np.full((6, 1, 8), 5.0, np.float32)


def nan_chain() -> ir.Graph:
    g = graphs.chain()
    g.nodes["fc1"].weight[0, 0] = np.nan
    return g


def run(*args):
    return CliRunner(env={"COLUMNS": "200"}).invoke(main, [str(a) for a in args])


def assert_one_error_line(result, *words):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_cpu_backend_refuses_nan_weights(precision):
    cpu = get_backend("cpu")
    result = cpu.validate(nan_chain(), {"precision": precision})
    assert not result.is_valid and result.errors == ["node 'fc1': weight has NaN or infinite values"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # before the fix int8 cast NaN with a numpy RuntimeWarning
        with pytest.raises(ir.NonFiniteParameterError, match=r"the CPU backend refuses node 'fc1': weight"):
            cpu.simulate(nan_chain(), inputs=INPUTS, precision=precision)
        with pytest.raises(ir.NonFiniteParameterError, match="node 'fc1': weight"):
            cpu.compile(nan_chain(), precision=precision)
    assert cpu.simulate(graphs.chain(), inputs=INPUTS).outputs_valid  # the same graph without the NaN runs


def test_fixed_point_quantiser_refuses_non_finite_values():
    with pytest.raises(ir.NonFiniteParameterError, match="fixed-point quantiser refuses node 'conv': weight"):
        quantize_symmetric(np.array([[1.0, np.inf]]), 8, axis=0, where=("conv", "weight"))
    q, _ = quantize_symmetric(np.array([[1.0, -0.5]]), 8, axis=0)
    assert q.tolist() == [[127, -64]]  # -0.5 / (1/127) = -63.5 rounds half to even


def test_fixed_point_datapath_refuses_a_nan_bias_of_a_lowered_program():
    from talon.backend.config import CompileConfig
    from talon.backend.cpu.lowering.program import lower
    from talon.backend.cpu.run.engine import Engine, calibrate

    g = graphs.chain()
    g.nodes["fc2"].bias[1] = np.nan  # not a weight: only the program-wide check sees it
    program = lower(g)
    calibration, _ = calibrate(program, {"input": INPUTS})
    with pytest.raises(ir.NonFiniteParameterError, match="fixed-point datapath refuses node 'fc2': bias"):
        Engine(program, CompileConfig.coerce(None, "int8"), calibration)


def _overflowing(kind: str) -> ir.Graph:
    """Finite parameters whose fp32 run overflows: an LI with tau = 0.1 step (beta = -9: |v| grows ~9x a
    step), or two Affines of 1e20 (their product passes float32's range) before a third."""
    from talon.examples import chain

    if kind == "state":
        return chain((3,), ("li", ir.LI(tau=np.full(3, 0.1), r=np.ones(3), v_leak=np.zeros(3))))
    w, b = np.full((3, 3), 1e20, np.float32), np.zeros(3, np.float32)
    eye = np.eye(3, dtype=np.float32)
    return chain((3,), ("fc1", ir.Affine(w, b)), ("fc2", ir.Affine(w, b)), ("fc3", ir.Affine(eye, b)))


@pytest.mark.parametrize(
    "kind, message",
    [
        ("state", r"node 'li': its membrane v reached (inf|nan)"),
        ("input", r"node 'fc3': its summed input's .* reached inf"),
    ],
)
def test_fixed_point_scales_refuse_a_calibration_range_that_overflowed(kind, message):
    """A non-finite calibrated range has no scale: NaN used to pass ``amax > 0`` as "no range" (scale 1)
    and inf gave scale inf, so the int8 run computed NaN; now the node is named."""
    from talon.backend.cpu.formats.fixed_point import check_range

    x = np.random.default_rng(0).random((60, 2, 3)).astype(np.float32) + 0.5
    with (
        pytest.raises(BackendError, match=message + r" in the fp32 calibration run, so it has no fixed-point scale"),
        np.errstate(all="ignore"),
    ):
        get_backend("cpu").simulate(_overflowing(kind), x, precision="int8")
    with pytest.raises(BackendError, match=r"node 'n': its input reached nan"):
        check_range(float("nan"), "n", "its input")
    assert check_range(0.0, "n", "its input") == 0.0


def test_fpga_validation_refuses_nan_weights():
    result = get_backend("fpga").validate(nan_chain(), {"precision": "int8"})
    assert not result.is_valid and "node 'fc1': weight has NaN or infinite values" in result.errors


def test_quantize_weights_refuses_nan():
    with pytest.raises(ir.NonFiniteParameterError, match="quantize_weights refuses node 'fc1': weight"):
        sdk.quantize_weights(nan_chain(), bits=8)


def test_cli_simulate_and_convert_refuse_lint_still_reports(tmp_path):
    path = tmp_path / "nan.t1c"
    ir.write(path, nan_chain())  # writing and reading a damaged graph still works
    assert_one_error_line(run("simulate", path, "--steps", "5", "--json"), "node 'fc1'", "weight")
    assert_one_error_line(run("simulate", path, "--steps", "5", "--precision", "int8"), "node 'fc1'", "weight")
    out = tmp_path / "q.t1c"
    assert_one_error_line(run("convert", path, "-o", out, "--quantize", "8"), "node 'fc1'", "weight")
    assert not out.exists()
    lint = run("lint", path)
    assert lint.exit_code == 1 and "[PARAM_NOT_FINITE] (fc1) Node 'fc1' has NaN or infinite values in weight" in (
        lint.stdout
    )


def test_read_nir_warns_naming_the_node_and_still_reads(tmp_path):
    import h5py

    from talon.interop.nir import read_nir, write_nir

    path = tmp_path / "nan.nir"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lossy: talon's default '>=' written as NIR's '>'
        write_nir(path, graphs.chain(), lossy=True)
    with h5py.File(path, "r+") as f:  # damage one weight the way a diverged training run would
        weight = f["node/nodes/fc1/weight"]
        data = weight[()]
        data[0, 0] = np.nan
        weight[...] = data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = read_nir(path)
    found = [str(w.message) for w in caught if "NaN" in str(w.message)]
    assert len(found) == 1 and "nan.nir: node 'fc1': weight has NaN or infinite values" in found[0], found
    assert np.isnan(graph.nodes["fc1"].weight[0, 0])
    assert [i.code for i in sdk.lint_graph(graph).issues if i.node == "fc1"] == ["PARAM_NOT_FINITE"]


def test_to_ir_warns_naming_the_node():
    torch = pytest.importorskip("torch")
    from talon import bridge

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
    with torch.no_grad():
        model[0].bias[2] = float("inf")
    with pytest.warns(UserWarning, match=r"to_ir\(Sequential\): node '0': bias has NaN or infinite values"):
        graph = bridge.to_ir(model, torch.ones(1, 3))
    assert np.isinf(graph.nodes["0"].bias[2])


def test_jax_import_warns_naming_the_node():
    pytest.importorskip("jax")
    from talon.interop.jax import JaxGraph

    with pytest.warns(UserWarning, match=r"JaxGraph: node 'fc1': weight has NaN or infinite values"):
        JaxGraph(nan_chain())


def test_torch_import_warns_naming_the_node():
    pytest.importorskip("torch")
    from talon import bridge

    with pytest.warns(UserWarning, match=r"ir_to_torch: node 'fc1': weight has NaN or infinite values"):
        executor = bridge.ir_to_torch(nan_chain())
    assert executor is not None  # readable: the caller may fix or retrain the weights
