"""The node base class, the registry of node types and parameter helpers.

A node is a dataclass whose parameters are numpy arrays or plain values. Every node carries
``input_type`` / ``output_type``: ``{port: shape}`` dicts whose shapes exclude the batch (and
time) dimension. Single-port nodes use the ports ``"input"`` and ``"output"``; a node merging
several inputs (Concat) has ``input_0, input_1, ...``; a node with several outputs
(ChannelSplit) has ``output_0, output_1, ...``, output *i* leaving along its *i*-th outgoing edge.

Types come from, in order: the ``input_type`` given to the constructor; the parameters alone
(an Affine's weight fixes its input); shape inference in the enclosing :class:`~talon.ir.Graph`.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from .errors import ShapeError
from .types import Shape, Types

_REGISTRY: dict[str, type[Node]] = {}
# Registered node types that are graph structure rather than primitives.
_NOT_PRIMITIVES = {"Input", "Output", "Graph"}
_TYPE_FIELDS = ("input_type", "output_type", "metadata")
_MAX_DIM = (1 << 63) - 1
_PARAM_NAMES: dict[type, tuple[str, ...]] = {}


def register_node(cls: type[Node]) -> type[Node]:
    """Class decorator: make ``cls`` known by its class name to ``str_to_node`` and ``ir.read``."""
    if not (isinstance(cls, type) and issubclass(cls, Node)):
        raise TypeError(f"register_node expects a Node subclass, got {cls!r}")
    previous = _REGISTRY.get(cls.__name__)
    if previous is not None and previous is not cls:
        warnings.warn(
            f"node type {cls.__name__!r} re-registered: {previous.__module__}.{previous.__qualname__} "
            f"is replaced by {cls.__module__}.{cls.__qualname__}",
            stacklevel=2,
        )
    _REGISTRY[cls.__name__] = cls
    return cls


def str_to_node(name: str) -> type[Node]:
    """Return the registered node class called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(
            f"unknown node type {name!r}; registered types are: {known}. "
            "Custom types must be decorated with @register_node before use."
        ) from None


def list_primitives() -> list[str]:
    """Names of the registered primitives, sorted (graph structure such as Input is excluded)."""
    return sorted(n for n in _REGISTRY if n not in _NOT_PRIMITIVES)


# --------------------------------------------------------------------------------------------
# parameter helpers


def as_array(value: Any, name: str, where: str, *, ndim: int | None = None) -> np.ndarray:
    """Return ``value`` as a real numeric ndarray (no copy when it already is one)."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{where}: {name} cannot be converted to an array ({exc})") from None
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{where}: {name} must be a real numeric array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{where}: {name} must have {ndim} dimensions, got shape {arr.shape}")
    return arr


def as_optional_array(value: Any, name: str, where: str, *, ndim: int | None = None):
    return None if value is None else as_array(value, name, where, ndim=ndim)


def as_int(value: Any, name: str, where: str, *, minimum: int | None = None) -> int:
    """Return ``value`` as a Python int (numpy integers accepted), checking a lower bound."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        arr = np.asarray(value)
        if arr.shape != () or arr.dtype.kind not in "iu":
            raise ValueError(f"{where}: {name} must be an integer, got {value!r}")
        value = arr.item()
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value}")
    return value


def as_tuple(value: Any, n: int, name: str, where: str, *, minimum: int = 0) -> tuple[int, ...]:
    """Return an int or a length-``n`` sequence as an n-tuple of ints (``3 -> (3, 3)``)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        items = [value] * n
    else:
        items = list(np.asarray(value).reshape(-1)) if not isinstance(value, str) else None
        if items is None or len(items) not in (1, n):
            raise ValueError(f"{where}: {name} must be an int or {n} ints, got {value!r}")
        items = items * n if len(items) == 1 else items
    return tuple(as_int(v, name, where, minimum=minimum) for v in items)


def as_shape(value: Any, where: str) -> Shape:
    """Return a shape-like value (array, list, tuple, int) as a tuple of non-negative ints."""
    if type(value) in (list, tuple) and all(type(d) is int for d in value):  # the common case, without numpy
        if all(0 <= d <= _MAX_DIM for d in value):
            return tuple(value)
    elif type(value) is np.ndarray and value.ndim == 1 and value.dtype == np.int64:
        dims = tuple(value.tolist())
        if all(d >= 0 for d in dims):
            return dims
    arr = np.asarray(value)
    if arr.ndim > 1 or (arr.size and arr.dtype.kind not in "iu" and not _integral(arr)):
        raise ValueError(f"{where}: a shape must be a 1-d sequence of integers, got {value!r}")
    try:
        dims = tuple(int(d) for d in arr.reshape(-1))
    except (OverflowError, ValueError):
        raise ValueError(f"{where}: a shape must be a 1-d sequence of integers, got {value!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"{where}: a shape cannot have negative sizes, got {dims}")
    if any(d > _MAX_DIM for d in dims):
        raise ValueError(f"{where}: shape {list(dims)} has a dimension of 2**63 or more")
    return dims


def _integral(arr: np.ndarray) -> bool:
    return arr.dtype.kind == "f" and bool(np.all(np.isfinite(arr))) and bool(np.all(arr == np.round(arr)))


def shape_array(shape: Sequence[int]) -> np.ndarray:
    dims = tuple(shape)
    if any(d > _MAX_DIM for d in dims):  # e.g. a Flatten of [2**40, 2**40]
        raise ShapeError(f"shape {list(dims)} has a dimension of 2**63 or more")
    return np.asarray(dims, dtype=np.int64)


def normalize_types(value: Any, default_port: str, where: str) -> Types | None:
    """Normalize an ``input_type`` / ``output_type`` argument to ``{port: int64 shape array}``."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        if not value:
            return None
        return {str(k): shape_array(as_shape(v, where)) for k, v in value.items()}
    return {default_port: shape_array(as_shape(value, where))}


_INT64 = np.dtype(np.int64)


def types_to_shapes(types: Types | None) -> list[Shape]:
    if not types:
        return []
    # ``dtype is _INT64``: the usual shape array, by identity (an int64 dtype that is another object
    # takes the general branch, which gives the same tuple)
    return [
        tuple(v.tolist()) if type(v) is np.ndarray and v.dtype is _INT64 else tuple(int(d) for d in v)
        for v in types.values()
    ]


# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    """Base class of every IR node (a dataclass; ``eq=False``: nodes compare by identity).

    Subclasses declare their parameters as dataclass fields and override the shape protocol:

    * ``_check_params()`` validates and normalizes the parameters;
    * ``_param_input_shape()`` returns the input shape the parameters fix on their own, or None;
    * ``_input_ports(shapes)`` maps the shapes arriving on the incoming edges (edge order) to
      input ports; the default sums them, so all must be equal;
    * ``_output_ports(input_ports)`` computes the output ports; the default calls
      ``_output_shape(shape)`` (identity unless overridden) on the single ``"input"`` port.
    """

    input_type: Types | None = field(default=None, kw_only=True, repr=False)
    output_type: Types | None = field(default=None, kw_only=True, repr=False)
    metadata: dict[str, Any] = field(default_factory=dict, kw_only=True, repr=False)

    is_multi_output: ClassVar[bool] = False
    #: How a reader may check many nodes of this exact class at once (``talon.ir.t1c_tables``); only
    #: read from the class's own ``__dict__``, so a subclass never inherits it. ``None``: every node
    #: is built through the constructor. ``"shapes"``: the constructor's checks and the attributes it
    #: sets depend on the non-array parameters and on the arrays' dtypes and shapes, never on array
    #: values. ``"elementwise"``: as ``"shapes"``, except for checks on array values that only raise
    #: and judge each element on its own (with the same element of the other array parameters, all
    #: of one size): nodes are then checked together as one node whose arrays are the concatenation
    #: of theirs.
    _batch_check: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A subclass that redeclares `input_type: dict = None` (as the TALON docs' custom-node
        # example does) would otherwise put a defaulted positional field before its own
        # parameters; keep these three keyword-only whatever the subclass writes.
        super().__init_subclass__(**kwargs)
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = Node._compact_repr  # dataclass() keeps a __repr__ defined on the class
        annotations = inspect.get_annotations(cls)
        for name in _TYPE_FIELDS:
            if name in annotations:
                default = cls.__dict__.get(name, None)
                if isinstance(default, Field):
                    default.kw_only = True
                elif name == "metadata":
                    setattr(cls, name, field(default_factory=dict, kw_only=True, repr=False))
                else:
                    setattr(cls, name, field(default=default, kw_only=True, repr=False))

    def __post_init__(self) -> None:
        if self.metadata is None:
            self.metadata = {}
        elif not isinstance(self.metadata, dict):
            raise ValueError(f"{self._where()}: metadata must be a dict, got {type(self.metadata).__name__}")
        self._check_params()
        given_in = normalize_types(self.input_type, "input", self._where())
        given_out = normalize_types(self.output_type, "output", self._where())
        self.input_type, self.output_type = None, None
        self._types_explicit = given_in is not None
        if given_in is not None:
            self.infer_types(types_to_shapes(given_in))
        else:
            fixed = self._param_input_shape()
            if fixed is not None:
                self.infer_types([fixed])
        if given_out is not None:
            if self.output_type is None:
                self.output_type = given_out
            elif not _types_equal(self.output_type, given_out):
                raise ShapeError(
                    f"{self._where()}: output_type {_fmt_types(given_out)} contradicts the "
                    f"output {_fmt_types(self.output_type)} computed from the parameters"
                )
        self._declared_types = (self.input_type, self.output_type) if self._types_explicit else None

    # ---- shape protocol ---------------------------------------------------------------------

    def _check_params(self) -> None:
        """Validate and normalize parameters (subclasses)."""

    def arity_error(self, n_in: int, n_out: int) -> str | None:
        """Why ``n_in`` incoming and ``n_out`` outgoing edges are wrong for this node, or None."""
        return None

    def _param_input_shape(self) -> Shape | None:
        return None

    def _input_ports(self, shapes: list[Shape]) -> dict[str, Shape]:
        if not shapes:
            raise ShapeError(f"{self._where()}: no input shape")
        first = shapes[0]
        if any(s != first for s in shapes[1:]):
            raise ShapeError(
                f"{self._where()}: incoming shapes {shapes} differ; several edges into one node "
                "are summed, so their shapes must be equal"
            )
        return {"input": first}

    def _output_ports(self, inputs: dict[str, Shape]) -> dict[str, Shape]:
        return {"output": self._output_shape(inputs["input"])}

    def _output_shape(self, shape: Shape) -> Shape:
        return shape

    def infer_types(self, shapes: list[Shape]) -> None:
        """Set ``input_type`` / ``output_type`` from the shapes arriving on the incoming edges.

        Raises :class:`ShapeError` when the shapes do not fit the parameters.
        """
        inputs = self._input_ports([tuple(s) for s in shapes])
        outputs = self._output_ports(inputs)
        self.input_type = {k: shape_array(v) for k, v in inputs.items()}
        self.output_type = {k: shape_array(v) for k, v in outputs.items()}

    # ---- conveniences -----------------------------------------------------------------------

    @property
    def input_shape(self) -> Shape | None:
        """The single input shape, or None when unknown (multi-input nodes: the first port)."""
        shapes = types_to_shapes(self.input_type)
        return shapes[0] if shapes else None

    @property
    def output_shape(self) -> Shape | None:
        shapes = types_to_shapes(self.output_type)
        return shapes[0] if shapes else None

    def output_shapes(self) -> list[Shape]:
        return types_to_shapes(self.output_type)

    def params(self) -> dict[str, Any]:
        """The node's parameters (every dataclass field except the types and metadata)."""
        names = _PARAM_NAMES.get(type(self))
        if names is None:  # a class's dataclass fields never change once it is defined
            names = _PARAM_NAMES[type(self)] = tuple(f.name for f in fields(self) if f.name not in _TYPE_FIELDS)
        return {name: getattr(self, name) for name in names}

    def stored_params(self) -> dict[str, Any]:
        """``params()`` without the optional fields left at None (``_optional_params``) or at their
        default (``_omitted_defaults``): a file or a fingerprint of a graph that does not use a newer
        optional field stays what it was."""
        skip = getattr(self, "_optional_params", ())
        defaults = getattr(self, "_omitted_defaults", {})
        return {
            k: v
            for k, v in self.params().items()
            if not (v is None and k in skip) and not (k in defaults and v == defaults[k])
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """The parameters that are numpy arrays."""
        return {k: v for k, v in self.params().items() if isinstance(v, np.ndarray)}

    @classmethod
    def param_fields(cls) -> list[Field]:
        return [f for f in fields(cls) if f.name not in _TYPE_FIELDS]

    @classmethod
    def required_params(cls) -> list[str]:
        return [f.name for f in cls.param_fields() if f.init and f.default is MISSING and f.default_factory is MISSING]

    def _where(self) -> str:
        return type(self).__name__

    def _compact_repr(self) -> str:
        parts = []
        for key, value in self.stored_params().items():
            if isinstance(value, np.ndarray):
                text = (
                    repr(value.item()) if value.size == 1 and value.ndim == 0 else f"{value.dtype}{list(value.shape)}"
                )
            else:
                text = repr(value.value if hasattr(value, "value") and not isinstance(value, (int, float)) else value)
            parts.append(f"{key}={text}")
        return f"{type(self).__name__}({', '.join(parts)})"


def _types_equal(a: Types | None, b: Types | None) -> bool:
    if a is None or b is None:
        return a is b
    return list(a) == list(b) and all(np.asarray(a[k]).tolist() == np.asarray(b[k]).tolist() for k in a)


def _fmt_types(types: Types | None) -> str:
    if not types:
        return "{}"
    return "{" + ", ".join(f"{k!r}: {list(map(int, v))}" for k, v in types.items()) + "}"
