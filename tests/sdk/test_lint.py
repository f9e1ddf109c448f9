"""lint_graph: every catalogue code fires on a graph made for it, healthy graphs lint clean."""

import json
import re
from dataclasses import dataclass

import numpy as np
import pytest

from talon import ir, sdk
from talon.sdk.lint import CATALOGUE, Severity

from ..paths import PROJECT
from . import graphs

f32 = np.float32


def inp(*shape):
    return ir.Input(np.array(shape))


def out(*shape):
    return ir.Output(np.array(shape))


def _decode_mismatch():
    f32 = np.float32
    head = ir.SDDetect(num_classes=1, reg_max=1, stride=8, cv2_w0=np.ones((2, 2, 1, 1), f32),
                       cv2_w1=np.ones((2, 2, 1, 1), f32), cv2_w2=np.ones((4, 2, 1, 1), f32),
                       cv3_w0=np.ones((2, 2, 1, 1), f32), cv3_w1=np.ones((2, 2, 1, 1), f32),
                       cv3_w2=np.ones((1, 2, 1, 1), f32))  # fmt: skip
    return ir.Graph(
        {"input": inp(2, 3, 3), "head": head, "boxes": ir.Dist2BBox(stride=16), "output": out(9, 5)},
        [("input", "head"), ("head", "boxes"), ("boxes", "output")],
    )


def chain_with(node, shape=(4,), out_shape=None, name="node", **graph_kwargs):
    """input -> <node> -> output."""
    return ir.Graph(
        {"input": inp(*shape), name: node, "output": out(*(out_shape or shape))},
        [("input", name), (name, "output")],
        **graph_kwargs,
    )


@dataclass(eq=False)
class Pair(ir.Node):
    """A custom (unregistered) node that insists on two inputs."""

    def arity_error(self, n_in, n_out):
        return None if n_in == 2 else f"needs 2 inputs, has {n_in}"


def _spiking_affine_with_bad_bits():
    node = ir.SpikingAffine(np.ones((4, 4), f32))
    node.weight_bits = 40  # nodes are mutable; lint re-checks what construction checked
    return chain_with(node)


def _quant_record_out_of_range():
    node = ir.Affine(np.ones((4, 4), f32))
    node.metadata["quantization"] = {"bits": 1}
    return chain_with(node)


def _subgraph_with_two_inputs():
    inner = ir.Graph({"a": inp(4), "b": inp(4), "o": out(4)}, [("a", "o"), ("b", "o")])
    return chain_with(inner, name="sub", validate=False)


def _path_collision():
    inner = ir.Graph(
        {"input": inp(4), "neuron": ir.ReLU(), "output": out(4)}, [("input", "neuron"), ("neuron", "output")]
    )
    return ir.Graph(
        {"input": inp(4), "rec": inner, "rec.neuron": ir.Sigmoid(), "output": out(4)},
        [("input", "rec"), ("rec", "rec.neuron"), ("rec.neuron", "output")],
    )


# code -> (graph factory, lint keyword arguments, expected node, every code expected)
TRIGGERS = {
    "EMPTY_GRAPH": (lambda: ir.Graph({}, []), {}, None, {"EMPTY_GRAPH"}),
    "DANGLING_EDGE": (
        lambda: ir.Graph({"input": inp(2), "output": out(2)}, [("input", "output"), ("input", "ghost")],
                         validate=False),
        {}, None, {"DANGLING_EDGE"},
    ),
    "SELF_LOOP": (
        lambda: ir.Graph({"input": inp(2), "relu": ir.ReLU(), "output": out(2)},
                         [("input", "relu"), ("relu", "relu"), ("relu", "output")]),
        {}, "relu", {"SELF_LOOP"},
    ),
    "NO_INPUT": (
        lambda: ir.Graph({"fc": ir.Affine(np.ones((2, 2), f32)), "output": out(2)}, [("fc", "output")]),
        {}, None, {"NO_INPUT"},
    ),
    "NO_OUTPUT": (lambda: ir.Graph({"input": inp(2), "relu": ir.ReLU()}, [("input", "relu")]), {}, None, {"NO_OUTPUT"}),
    "UNREACHABLE": (
        lambda: ir.Graph({"input": inp(2), "lonely": ir.ReLU(), "output": out(2)}, [("input", "output")]),
        {}, "lonely", {"UNREACHABLE"},
    ),
    "DEAD_END": (
        lambda: ir.Graph({"input": inp(2), "relu": ir.ReLU(), "extra": ir.Sigmoid(), "output": out(2)},
                         [("input", "relu"), ("relu", "output"), ("input", "extra")]),
        {}, "extra", {"DEAD_END"},
    ),
    "OUTPUT_FAN_IN": (
        lambda: ir.Graph({"input": inp(2), "a": ir.ReLU(), "b": ir.Sigmoid(), "output": out(2)},
                         [("input", "a"), ("input", "b"), ("a", "output"), ("b", "output")]),
        {}, "output", {"OUTPUT_FAN_IN"},
    ),
    "BOUNDARY_EDGE": (
        lambda: ir.Graph({"input": inp(2), "relu": ir.ReLU(), "output": out(2)},
                         [("input", "relu"), ("relu", "output"), ("relu", "input")], validate=False),
        {}, "input", {"BOUNDARY_EDGE"},
    ),
    "SKIP_ARITY": (
        lambda: ir.Graph({"input": inp(2), "a": ir.ReLU(), "skip": ir.Skip(skip_type="passthrough"), "output": out(2)},
                         [("input", "a"), ("input", "skip"), ("a", "skip"), ("skip", "output")], validate=False),
        {}, "skip", {"SKIP_ARITY"},
    ),
    "SKIP_SINGLE_INPUT": (lambda: chain_with(ir.Skip(skip_type="residual")), {}, "node", {"SKIP_SINGLE_INPUT"}),
    "CONCAT_ARITY": (
        lambda: ir.Graph({"input": inp(2, 3), "a": ir.ReLU(), "cat": ir.Concat(num_inputs=3), "output": out(4, 3)},
                         [("input", "a"), ("input", "cat"), ("a", "cat"), ("cat", "output")], validate=False),
        {}, "cat", {"CONCAT_ARITY"},
    ),
    "CONCAT_SINGLE_INPUT": (lambda: chain_with(ir.Concat()), {}, "node", {"CONCAT_SINGLE_INPUT"}),
    "SPLIT_ARITY": (
        lambda: chain_with(ir.ChannelSplit(split_sections=(2, 2)), validate=False), {}, "node", {"SPLIT_ARITY"},
    ),
    "SUBGRAPH_PORTS": (_subgraph_with_two_inputs, {}, "sub", {"SUBGRAPH_PORTS", "OUTPUT_FAN_IN"}),
    "BAD_ARITY": (lambda: chain_with(Pair(), validate=False), {}, "node", {"BAD_ARITY"}),
    "SHAPE_MISMATCH": (
        lambda: chain_with(ir.Affine(np.ones((2, 4), f32)), shape=(3,), out_shape=(2,), name="fc", validate=False),
        {}, "fc", {"SHAPE_MISMATCH"},
    ),
    "PARAM_NOT_FINITE": (
        lambda: chain_with(ir.Affine(np.array([[1, np.nan], [0, 1]], f32)), shape=(2,)),
        {}, "node", {"PARAM_NOT_FINITE"},
    ),
    "THRESHOLD_NONPOSITIVE": (
        lambda: chain_with(ir.LIF(tau=np.full(4, 5.0), v_threshold=0.0)), {}, "node", {"THRESHOLD_NONPOSITIVE"},
    ),
    "TAU_BELOW_ONE_STEP": (lambda: chain_with(ir.LIF(tau=np.full(4, 0.5))), {}, "node", {"TAU_BELOW_ONE_STEP"}),
    "BETA_ZERO": (lambda: chain_with(ir.LIF(tau=np.full(4, 1.0))), {}, "node", {"BETA_ZERO"}),
    "LIF_HIGH_TAU": (lambda: chain_with(ir.LIF(tau=np.full(4, 5000.0))), {}, "node", {"LIF_HIGH_TAU"}),
    "NO_LEAK": (lambda: chain_with(ir.LIF(tau=np.full(4, np.inf))), {}, "node", {"NO_LEAK"}),
    "V_RESET_ABOVE_THRESHOLD": (
        lambda: chain_with(ir.LIF(tau=np.full(4, 5.0), v_reset=2.0)), {}, "node", {"V_RESET_ABOVE_THRESHOLD"},
    ),
    "ZERO_INPUT_GAIN": (lambda: chain_with(ir.LIF(tau=np.full(4, 5.0), r=0.0)), {}, "node", {"ZERO_INPUT_GAIN"}),
    "QUANT_HINT_RANGE": (_spiking_affine_with_bad_bits, {}, "node", {"QUANT_HINT_RANGE"}),
    "ACCUMULATOR_NARROW": (
        lambda: chain_with(ir.SpikingAffine(np.ones((4, 300), f32)), shape=(300,), out_shape=(4,)),
        {}, "node", {"ACCUMULATOR_NARROW"},
    ),
    "PYTHON_KEYWORD": (lambda: chain_with(ir.ReLU(), name="class"), {}, "class", {"PYTHON_KEYWORD"}),
    "INVALID_NAME": (lambda: chain_with(ir.ReLU(), name="conv-1"), {}, "conv-1", {"INVALID_NAME"}),
    "PATH_COLLISION": (_path_collision, {}, "rec.neuron", {"PATH_COLLISION"}),
    "LARGE_MODEL": (graphs.chain, {"large_model_params": 65}, None, {"LARGE_MODEL"}),
    "NMS_THRESHOLD_RANGE": (
        lambda: chain_with(ir.NMS(iou_threshold=1.5, max_detections=0), shape=(5, 6)), {}, "node",
        {"NMS_THRESHOLD_RANGE"},
    ),
    "DECODE_MISMATCH": (_decode_mismatch, {}, "boxes", {"DECODE_MISMATCH"}),
}  # fmt: skip


def test_every_catalogue_code_has_a_trigger():
    assert set(TRIGGERS) == set(CATALOGUE)


@pytest.mark.parametrize("code", sorted(TRIGGERS))
def test_code_fires_alone_with_its_severity_and_node(code):
    factory, kwargs, node, expected = TRIGGERS[code]
    result = sdk.lint_graph(factory(), **kwargs)
    assert set(result.codes) == expected, [i.message for i in result.issues]
    issue = next(i for i in result.issues if i.code == code)
    assert issue.severity is CATALOGUE[code].severity
    assert issue.node == node
    assert issue.message
    assert result.is_valid == (CATALOGUE[code].severity is not Severity.ERROR)


def test_second_quantization_check_records():
    assert sdk.lint_graph(_quant_record_out_of_range()).codes == ["QUANT_HINT_RANGE"]


@pytest.mark.parametrize("build", [graphs.chain, graphs.cnn, graphs.residual, graphs.recurrent, graphs.hybrid,
                                   graphs.nested])  # fmt: skip
def test_healthy_graphs_lint_clean(build):
    result = sdk.lint_graph(build())
    assert result.issues == [] and result.is_valid


def test_input_and_output_are_not_keywords():
    # The original flags the default names 'input'/'output' as keywords; they are builtins.
    result = sdk.lint_graph(chain_with(ir.ReLU(), name="lambda"))
    assert [(i.code, i.node) for i in result.issues] == [("PYTHON_KEYWORD", "lambda")]
    assert result.issues[0].suggestion.startswith("rename it (e.g. 'lambda_')")


def test_messages_and_suggestions_name_the_problem():
    tau = sdk.lint_graph(chain_with(ir.LIF(tau=np.full(4, 0.5)))).issues[0]
    assert "tau=0.5 < 1 timestep" in tau.message and "beta = 1 - 1/tau = -1" in tau.message
    name = sdk.lint_graph(chain_with(ir.ReLU(), name="1st layer")).issues[0]
    assert name.suggestion.startswith("rename it (e.g. 'n_1st_layer', the attribute the PyTorch executor gives it)")
    shape = sdk.lint_graph(TRIGGERS["SHAPE_MISMATCH"][0]()).issues[0]
    assert "node 'fc' (Affine)" in shape.message


def test_high_tau_threshold_is_inclusive_and_configurable():
    assert sdk.lint_graph(chain_with(ir.LIF(tau=np.full(4, 1000.0)))).issues == []
    assert sdk.lint_graph(chain_with(ir.LIF(tau=np.full(4, 85.2))), high_tau=80).codes == ["LIF_HIGH_TAU"]
    with pytest.raises(ValueError, match="high_tau"):
        sdk.lint_graph(graphs.chain(), high_tau=0.5)


def test_cuba_time_constants_are_checked_too():
    node = ir.CubaLIF(tau_syn=np.full(4, 1.0), tau_mem=np.full(4, 0.25))
    codes = sdk.lint_graph(chain_with(node)).codes
    assert codes == ["TAU_BELOW_ONE_STEP", "BETA_ZERO"]


def test_subgraph_issues_use_qualified_names():
    g = graphs.nested()
    g.nodes["rnn"].nodes["lif"].v_threshold = np.zeros(4)
    result = sdk.lint_graph(g)
    assert [(i.code, i.node) for i in result.issues] == [("THRESHOLD_NONPOSITIVE", "rnn.lif")]


def test_strict_promotes_warnings_but_not_infos():
    g = chain_with(ir.ReLU(), name="conv-1")
    assert sdk.lint_graph(g).is_valid
    strict = sdk.lint_graph(g, strict=True)
    assert not strict.is_valid and strict.errors[0].code == "INVALID_NAME" and strict.strict
    info_only = TRIGGERS["NO_LEAK"][0]()
    assert sdk.lint_graph(info_only, strict=True).is_valid


def test_result_views_and_to_dict():
    g = ir.Graph(
        {"input": inp(2), "relu": ir.ReLU(), "lonely": ir.Sigmoid(), "class": ir.Tanh(), "output": out(2)},
        [("input", "relu"), ("relu", "class"), ("class", "output")],
    )
    result = sdk.lint_graph(g)
    assert [i.code for i in result.warnings] == ["UNREACHABLE", "PYTHON_KEYWORD"]
    assert result.errors == [] and result.infos == []
    d = json.loads(json.dumps(result.to_dict()))
    assert d["is_valid"] is True and d["warnings"] == 2
    assert d["issues"][0] == {
        "severity": "warning",
        "code": "UNREACHABLE",
        "message": "Node 'lonely' is not reachable from any Input (its shapes cannot be inferred)",
        "node": "lonely",
        "suggestion": "connect it to the graph or remove it (sdk.prune_disconnected)",
    }


def test_lint_does_not_modify_an_unvalidated_graph():
    g = TRIGGERS["SHAPE_MISMATCH"][0]()
    before = g.nodes["output"].input_type
    sdk.lint_graph(g)
    assert g.nodes["output"].input_type is before


def test_lint_reads_paths(tmp_path):
    path = tmp_path / "m.t1c"
    ir.write(path, chain_with(ir.LIF(tau=np.full(4, 5.0), v_threshold=-1.0)))
    assert sdk.lint_graph(path).codes == ["THRESHOLD_NONPOSITIVE"]
    with pytest.raises(TypeError, match="strict"):
        sdk.lint_graph(path, strict="yes")


def test_docs_list_every_code_with_its_severity():
    text = (PROJECT / "docs" / "lint.md").read_text()
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| (error|warning|info) \|", text, flags=re.M))
    assert rows == {code: rule.severity.value for code, rule in CATALOGUE.items()}
