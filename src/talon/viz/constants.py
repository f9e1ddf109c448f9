"""Colours and shapes of the graph views.

``NODE_COLORS`` keeps every colour the TALON visualisation documents (Input #c8e6c9, Affine
#bbdefb, LIF #b2ebf2, ...). The types it leaves out get a colour of their family, chosen here:

* IF, CubaLIF, LI, CubaLI, Integrator, Threshold (neurons) — shades of the LIF cyan;
* SConv, SDConv (spiking / depthwise convolutions) — deeper oranges beside Conv2d's #ffe0b2;
* Linear, Scale (weight layers without bias) — the Affine blue family;
* SumPool2d — the pooling brown; Delay — grey-violet; a nested Graph — light grey-blue.

Any other (custom) type falls back to ``DEFAULT_COLOR``.
"""

from __future__ import annotations

NODE_COLORS: dict[str, str] = {
    # documented
    "Input": "#c8e6c9",
    "Output": "#ffcdd2",
    "Affine": "#bbdefb",
    "SpikingAffine": "#e1bee7",
    "Conv1d": "#ffe0b2",
    "Conv2d": "#ffe0b2",
    "Flatten": "#e0e0e0",
    "LIF": "#b2ebf2",
    "MaxPool2d": "#d7ccc8",
    "AvgPool2d": "#d7ccc8",
    "Upsample": "#d7ccc8",
    "SepConv2d": "#f8bbd9",
    "Skip": "#fff9c4",
    "ReLU": "#b2dfdb",
    "Sigmoid": "#b2dfdb",
    "Tanh": "#b2dfdb",
    "Softmax": "#b2dfdb",
    "GELU": "#b2dfdb",
    "ELU": "#b2dfdb",
    "PReLU": "#b2dfdb",
    "BatchNorm1d": "#c5cae9",
    "BatchNorm2d": "#c5cae9",
    "LayerNorm": "#c5cae9",
    "Dropout": "#f5f5f5",
    "HybridRegion": "#ffecb3",
    "ChannelSplit": "#CDDC39",
    "Concat": "#8BC34A",
    "SGhostConv": "#66BB6A",
    "SGhostEncoderLite": "#43A047",
    "GhostBasicBlock1": "#2E7D32",
    "GhostBasicBlock2": "#388E3C",
    "SDDetect": "#e53935",
    "DFLDecode": "#c62828",
    "Dist2BBox": "#ef5350",
    "NMS": "#d32f2f",
    # chosen by talon (not in the TALON docs)
    "IF": "#80deea",
    "CubaLIF": "#4dd0e1",
    "LI": "#b3e5fc",
    "CubaLI": "#81d4fa",
    "Integrator": "#e0f7fa",
    "Threshold": "#26c6da",
    "SConv": "#ffcc80",
    "SDConv": "#ffb74d",
    "Linear": "#90caf9",
    "Scale": "#e3f2fd",
    "SumPool2d": "#bcaaa4",
    "Delay": "#d1c4e9",
    "Graph": "#cfd8dc",
}
DEFAULT_COLOR = "#eeeeee"

# Node outline shapes drawn by the page; collapsed groups take their pattern's shape.
NODE_SHAPES: dict[str, str] = {"Input": "pill", "Output": "pill", "Graph": "rect"}
DEFAULT_SHAPE = "rect"
GROUP_SHAPES: dict[str, str] = {
    "RepConv": "hexagon",
    "SPP": "octagon",
    "SPPF": "octagon",
    "SkipConnection": "diamond",
    "Subgraph": "rect",
}
# A short glyph per family, shown before the type name.
NODE_ICONS: dict[str, str] = {
    "Input": "▶",
    "Output": "■",
    "Affine": "⊗",
    "SpikingAffine": "⊗",
    "Linear": "⊗",
    "LIF": "⚡",
    "IF": "⚡",
    "CubaLIF": "⚡",
    "Skip": "⊕",
    "Concat": "‖",
    "ChannelSplit": "⋔",
}

# One colour per core in the partition view (cycled for more cores).
CORE_COLORS: tuple[str, ...] = (
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
)  # fmt: skip


def node_color(type_name: str) -> str:
    return NODE_COLORS.get(type_name, DEFAULT_COLOR)


def core_color(core: int) -> str:
    return CORE_COLORS[int(core) % len(CORE_COLORS)]
