"""TALON IR: neuromorphic primitives, the graph, validation, shape inference and ``.t1c`` files.

Imports numpy and h5py only (never torch or jax).
"""

from .. import __version__
from .activations import ELU, GELU, PReLU, ReLU, Sigmoid, Softmax, Tanh
from .compare import graph_differences
from .conv import Conv1d, Conv2d, SConv, SDConv, SepConv2d
from .detection import NMS, DFLDecode, Dist2BBox, SDDetect
from .errors import (
    ConversionError,
    GraphValidationError,
    MissingDependencyError,
    ShapeError,
    T1CFormatError,
    TalonError,
    UnsupportedModuleError,
)
from .finite import (
    NonFiniteParameterError,
    check_finite,
    check_finite_param,
    non_finite_fields,
    non_finite_problems,
    warn_non_finite,
)
from .ghost import GhostBasicBlock1, GhostBasicBlock2, SGhostConv, SGhostEncoderLite
from .graph import Graph, Input, Output
from .linear import Affine, Linear, Scale, SpikingAffine
from .neurons import IF, LI, LIF, CubaLI, CubaLIF, Delay, Integrator, Threshold
from .node import Node, list_primitives, register_node, str_to_node
from .normalization import BatchNorm1d, BatchNorm2d, Dropout, LayerNorm
from .pooling import AvgPool2d, MaxPool2d, SumPool2d
from .reshape import Flatten, Upsample
from .routing import ChannelSplit, Concat, HybridRegion, Skip
from .serialization import FORMAT_VERSION, read, read_version, write
from .surrogate import DEFAULT_SURROGATE, SURROGATE_KINDS, canonical_surrogate, format_surrogate, surrogate_parts
from .types import (
    Comparison,
    Edges,
    Integration,
    NeuronMode,
    Nodes,
    ResetGradient,
    ResetMode,
    ResetTiming,
    Shape,
    SkipType,
    SpikeCount,
    SpikeMode,
    SpikeTiming,
    SynapseOrder,
    UpsampleMode,
)

__all__ = [
    "DEFAULT_SURROGATE",
    "ELU",
    "FORMAT_VERSION",
    "GELU",
    "IF",
    "LI",
    "LIF",
    "NMS",
    "SURROGATE_KINDS",
    "Affine",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "ChannelSplit",
    "Comparison",
    "Concat",
    "Conv1d",
    "Conv2d",
    "ConversionError",
    "CubaLI",
    "CubaLIF",
    "DFLDecode",
    "Delay",
    "Dist2BBox",
    "Dropout",
    "Edges",
    "Flatten",
    "GhostBasicBlock1",
    "GhostBasicBlock2",
    "Graph",
    "GraphValidationError",
    "HybridRegion",
    "Input",
    "Integration",
    "Integrator",
    "LayerNorm",
    "Linear",
    "MaxPool2d",
    "MissingDependencyError",
    "NeuronMode",
    "Node",
    "Nodes",
    "NonFiniteParameterError",
    "Output",
    "PReLU",
    "ReLU",
    "ResetGradient",
    "ResetMode",
    "ResetTiming",
    "SConv",
    "SDConv",
    "SDDetect",
    "SGhostConv",
    "SGhostEncoderLite",
    "Scale",
    "SepConv2d",
    "Shape",
    "ShapeError",
    "Sigmoid",
    "Skip",
    "SkipType",
    "Softmax",
    "SpikeCount",
    "SpikeMode",
    "SpikeTiming",
    "SpikingAffine",
    "SumPool2d",
    "SynapseOrder",
    "T1CFormatError",
    "TalonError",
    "Tanh",
    "Threshold",
    "UnsupportedModuleError",
    "Upsample",
    "UpsampleMode",
    "__version__",
    "canonical_surrogate",
    "check_finite",
    "check_finite_param",
    "format_surrogate",
    "graph_differences",
    "list_primitives",
    "non_finite_fields",
    "non_finite_problems",
    "read",
    "read_version",
    "register_node",
    "str_to_node",
    "surrogate_parts",
    "warn_non_finite",
    "write",
]  # fmt: skip
