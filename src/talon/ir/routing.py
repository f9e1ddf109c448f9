"""Routing nodes: Skip, Concat, ChannelSplit, HybridRegion.

``dim`` of Concat and ChannelSplit counts the batch axis like PyTorch (``dim=1`` is the channel
axis, the first axis of the IR shape); the TALON docs use this convention.
"""

from __future__ import annotations

from dataclasses import dataclass

from .activations import batch_dim_to_axis
from .errors import ShapeError
from .node import Node, as_int, register_node
from .types import NeuronMode, Shape, SkipType, coerce_enum


def _concat(node: Node, shapes: list[Shape], dim: int) -> Shape:
    if not shapes:
        raise ShapeError(f"{node._where()}: no input shape")
    rank = len(shapes[0])
    axis = batch_dim_to_axis(dim, rank, node._where())
    for s in shapes:
        if len(s) != rank or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0], strict=True)) if i != axis):
            raise ShapeError(f"{node._where()}: cannot concatenate shapes {[list(x) for x in shapes]} along dim={dim}")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return tuple(out)


@register_node
@dataclass(eq=False)
class Skip(Node):
    """Skip connection merge point.

    * ``residual``: element-wise sum of all inputs (ResNet);
    * ``concatenate``: concatenation along the channel axis in edge order (DenseNet, SPP);
    * ``passthrough``: identity of exactly one input.
    """

    skip_type: SkipType = SkipType.RESIDUAL

    def _check_params(self) -> None:
        self.skip_type = coerce_enum(SkipType, self.skip_type, "skip_type", self._where())

    def arity_error(self, n_in: int, n_out: int) -> str | None:
        if self.skip_type is SkipType.PASSTHROUGH and n_in != 1:
            return f"a passthrough Skip takes exactly 1 input, it has {n_in}"
        return None

    def _input_ports(self, shapes: list[Shape]) -> dict[str, Shape]:
        if self.skip_type is SkipType.CONCATENATE:
            _concat(self, shapes, 1)
            return {f"input_{i}": s for i, s in enumerate(shapes)}
        return super()._input_ports(shapes)

    def _output_ports(self, inputs: dict[str, Shape]) -> dict[str, Shape]:
        if self.skip_type is SkipType.CONCATENATE:
            return {"output": _concat(self, list(inputs.values()), 1)}
        return super()._output_ports(inputs)


@register_node
@dataclass(eq=False)
class Concat(Node):
    """Concatenate the inputs along ``dim`` in edge order; ``num_inputs`` (optional) is checked."""

    num_inputs: int | None = None
    dim: int = 1

    def _check_params(self) -> None:
        if self.num_inputs is not None:
            self.num_inputs = as_int(self.num_inputs, "num_inputs", self._where(), minimum=1)
        self.dim = as_int(self.dim, "dim", self._where())

    def arity_error(self, n_in: int, n_out: int) -> str | None:
        if self.num_inputs is not None and n_in != self.num_inputs:
            return f"Concat declares num_inputs={self.num_inputs} but has {n_in} incoming edges"
        return None

    def _input_ports(self, shapes: list[Shape]) -> dict[str, Shape]:
        _concat(self, shapes, self.dim)
        return {f"input_{i}": s for i, s in enumerate(shapes)}

    def _output_ports(self, inputs: dict[str, Shape]) -> dict[str, Shape]:
        return {"output": _concat(self, list(inputs.values()), self.dim)}


@register_node
@dataclass(eq=False)
class ChannelSplit(Node):
    """Split the input along ``dim`` into sections; section *i* leaves along the *i*-th outgoing edge.

    ``split_sections`` is kept as given (a tuple stays a tuple, a list a list).
    """

    split_sections: tuple[int, ...] | list[int]
    dim: int = 1

    is_multi_output = True

    def _check_params(self) -> None:
        where = self._where()
        if isinstance(self.split_sections, (str, bytes)) or not hasattr(self.split_sections, "__iter__"):
            raise ValueError(f"{where}: split_sections must be a sequence of ints, got {self.split_sections!r}")
        kind = list if isinstance(self.split_sections, list) else tuple
        self.split_sections = kind(as_int(s, "split_sections", where, minimum=1) for s in self.split_sections)
        if not self.split_sections:
            raise ValueError(f"{where}: split_sections must not be empty")
        self.dim = as_int(self.dim, "dim", where)

    def arity_error(self, n_in: int, n_out: int) -> str | None:
        if n_out != len(self.split_sections):
            return (
                f"ChannelSplit has {len(self.split_sections)} sections but {n_out} outgoing edges "
                "(section i leaves along outgoing edge i)"
            )
        return None

    def _output_ports(self, inputs: dict[str, Shape]) -> dict[str, Shape]:
        shape = inputs["input"]
        axis = batch_dim_to_axis(self.dim, len(shape), self._where())
        if sum(self.split_sections) != shape[axis]:
            raise ShapeError(
                f"{self._where()}: split_sections {list(self.split_sections)} sum to "
                f"{sum(self.split_sections)}, but the input has {shape[axis]} along dim={self.dim}"
            )
        outs = {}
        for i, n in enumerate(self.split_sections):
            s = list(shape)
            s[axis] = n
            outs[f"output_{i}"] = tuple(s)
        return outs


@register_node
@dataclass(eq=False)
class HybridRegion(Node):
    """Marker (identity) for the start of an ANN or SNN region: ``mode`` is 'ann' or 'snn'."""

    mode: NeuronMode = NeuronMode.SNN
    features: int | None = None
    name: str | None = None

    def _check_params(self) -> None:
        self.mode = coerce_enum(NeuronMode, self.mode, "mode", self._where())
        if self.features is not None:
            self.features = as_int(self.features, "features", self._where(), minimum=1)
        if self.name is not None and not isinstance(self.name, str):
            raise ValueError(f"{self._where()}: name must be a string")
