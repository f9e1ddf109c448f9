"""Arguments of traced torch functions are honoured or refused, never dropped: a sum scaled by
``alpha`` is refused, operands passed by keyword (``torch.add(a, other=b)``,
``torch.cat(tensors=...)``) are wired like positional ones."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from talon import bridge
from talon.ir import ConversionError


class TwoBranches(nn.Module):
    def __init__(self, combine):
        super().__init__()
        self.combine = combine
        self.a, self.b = nn.Linear(4, 3), nn.Linear(4, 3)

    def forward(self, x):
        return self.combine(self.a(x), self.b(x))


@pytest.mark.parametrize(
    "combine",
    [lambda a, b: torch.add(a, b, alpha=2), lambda a, b: a.add(b, alpha=0.5), lambda a, b: a.add_(b, alpha=0.5)],
    ids=["torch.add", "Tensor.add", "Tensor.add_"],
)
def test_a_sum_scaled_by_alpha_is_refused(combine):
    with pytest.raises(ConversionError, match=r"a sum scaled by alpha=.* has no TALON IR equivalent"):
        bridge.to_ir(TwoBranches(combine), torch.randn(2, 4))


@pytest.mark.parametrize(
    "combine",
    [
        lambda a, b: torch.add(a, other=b),
        lambda a, b: torch.add(input=a, other=b),
        lambda a, b: a.add(other=b),
        lambda a, b: torch.add(a, b, alpha=1),
        lambda a, b: torch.cat(tensors=[a, b], dim=1),
    ],
    ids=["other=", "input=,other=", "Tensor.add(other=)", "alpha=1", "cat(tensors=)"],
)
def test_operands_passed_by_keyword_are_wired(combine):
    torch.manual_seed(0)
    model = TwoBranches(combine)
    x = torch.randn(5, 4)
    graph = bridge.to_ir(model, x[:1])
    assert sum(dst not in ("a", "b") and src in ("a", "b") for src, dst in graph.edges) == 2
    with torch.no_grad():
        assert torch.equal(bridge.ir_to_torch(graph)(x), model(x))


class FunctionalDropout(nn.Module):
    def __init__(self, follow_mode: bool):
        super().__init__()
        self.follow_mode = follow_mode
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        if self.follow_mode:
            return nn.functional.dropout(self.fc(x), 0.5, training=self.training)
        return nn.functional.dropout(self.fc(x), 0.5)  # training=True: drops at inference too


def test_a_functional_dropout_that_drops_in_eval_mode_is_refused():
    with pytest.raises(ConversionError, match=r"F.dropout with training=True .* drops at inference too"):
        bridge.to_ir(FunctionalDropout(follow_mode=False).eval(), torch.randn(2, 4))


@pytest.mark.parametrize("train", [False, True])
def test_a_functional_dropout_following_the_mode_exports_as_dropout(train):
    model = FunctionalDropout(follow_mode=True).train(train)
    graph = bridge.to_ir(model, torch.randn(2, 4))
    assert [type(n).__name__ for n in graph.nodes.values()] == ["Input", "Affine", "Dropout", "Output"]


def test_a_functional_dtype_is_refused():
    model = TwoBranches(lambda a, b: nn.functional.softmax(a, dim=1, dtype=torch.float64).float() + b)
    with pytest.raises(ConversionError, match=r"dtype=torch.float64 has no TALON IR equivalent"):
        bridge.to_ir(model, torch.randn(2, 4))
