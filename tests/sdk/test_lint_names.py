"""Node names: the linter accepts the names to_ir gives (module paths), and the PyTorch executor's
attribute names follow talon.ir.names — linter, exporter and executor agree."""

import json

import pytest
from click.testing import CliRunner

from talon import ir, sdk
from talon.cli import main
from talon.ir.names import attribute_base, is_module_path

from .test_lint import chain_with


@pytest.mark.parametrize("name", ["fc1", "0", "12", "block.0", "encoder.layers.3.fc", "_x", "print"])
def test_module_paths_lint_clean(name):
    assert is_module_path(name)
    assert [i.code for i in sdk.lint_graph(chain_with(ir.ReLU(), name=name)).issues] == []


@pytest.mark.parametrize(
    ("name", "attribute"),
    [("conv-1", "conv_1"), ("1st layer", "n_1st_layer"), ("a..b", "a__b"), (".a", "_a"), ("a.", "a_"), ("٣", "n_٣")],
)
def test_other_names_are_invalid_and_the_hint_is_the_executors_attribute(name, attribute):
    assert not is_module_path(name)
    (issue,) = sdk.lint_graph(chain_with(ir.ReLU(), name=name)).issues
    assert issue.code == "INVALID_NAME" and f"e.g. '{attribute}'" in issue.suggestion
    assert attribute_base(name) == attribute


def test_exported_nested_sequential_lints_clean_and_executor_uses_the_same_rule(tmp_path):
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    from talon import bridge

    nn = torch.nn
    model = nn.Sequential(
        nn.Linear(4, 6),
        snn.Leaky(beta=0.9, init_hidden=True),
        nn.Sequential(nn.Linear(6, 3), nn.ReLU()),
        nn.Linear(3, 2),
    )
    graph = bridge.to_ir(model, torch.randn(1, 4))
    assert list(graph.nodes) == ["input", "0", "1", "2.0", "2.1", "3", "output"]
    path = tmp_path / "seq.t1c"
    ir.write(path, graph)
    result = CliRunner().invoke(main, ["lint", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["issues"] == []
    executor = bridge.ir_to_torch(graph)
    names = [name for name, _ in executor.named_children()]
    assert names == ["input", "n_0", "n_1", "n_2_0", "n_2_1", "n_3", "output"]
    assert names == [attribute_base(name) for name in graph.nodes]
