"""talon.bridge: PyTorch ⇄ TALON IR.

Export (``to_ir``), import (``ir_to_torch`` → :class:`GraphExecutor`), the modules of IR nodes
(``LIFModule`` …), executors, and the snnTorch / Norse adapters.
"""

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without torch only
    from talon.ir.errors import MissingDependencyError, install_hint

    raise MissingDependencyError("talon.bridge needs PyTorch; " + install_hint("torch")) from exc

from . import detection  # noqa: F401  (registers the ghost and detection modules)
from .executor import CyclicGraphExecutor, ExecutorState, GraphExecutor
from .from_ir import from_ir, ir_to_torch, load, node_to_module, nodes_to_modules
from .graph_utils import (
    get_disconnected_nodes,
    get_input_nodes,
    get_output_nodes,
    get_topological_order,
    has_cycles,
    validate_graph,
)
from .modules import (
    ChannelSplitModule,
    ConcatModule,
    CubaLIFModule,
    CubaLIModule,
    DelayModule,
    IFModule,
    IntegratorModule,
    LIFModule,
    LIModule,
    NeuronModule,
    ScaleModule,
    SepConv2dModule,
    SkipModule,
    SumPool2dModule,
    ThresholdModule,
)
from .spike import spike
from .to_ir import T1CExporter, TALONExporter, to_ir, torch_to_ir

__all__ = [
    "ChannelSplitModule",
    "ConcatModule",
    "CubaLIFModule",
    "CubaLIModule",
    "CyclicGraphExecutor",
    "DelayModule",
    "ExecutorState",
    "GraphExecutor",
    "IFModule",
    "IntegratorModule",
    "LIFModule",
    "LIModule",
    "NeuronModule",
    "ScaleModule",
    "SepConv2dModule",
    "SkipModule",
    "SumPool2dModule",
    "T1CExporter",
    "TALONExporter",
    "ThresholdModule",
    "from_ir",
    "get_disconnected_nodes",
    "get_input_nodes",
    "get_output_nodes",
    "get_topological_order",
    "has_cycles",
    "ir_to_torch",
    "load",
    "node_to_module",
    "nodes_to_modules",
    "spike",
    "to_ir",
    "torch_to_ir",
    "validate_graph",
]  # fmt: skip
