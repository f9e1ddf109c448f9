"""PyTorch modules of the ghost and detection primitives, their converters and importers.

Each module is trainable (plain ``nn.Conv2d`` layers), computes exactly its IR node
(``docs/semantics.md`` §4.1) and converts both ways: ``module.to_node()`` / ``Module.from_node``.
The spiking neurons of a SU-YOLO-style detector are :class:`~talon.bridge.IFModule` layers between
these blocks (surrogate gradient in training); the decode modules (DFL, Dist2BBox, NMS) are for
inference. Registering happens on import of ``talon.bridge``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talon import ir
from talon.ir.ghost import GHOST_BRANCHES

from .convert import ConvertContext, array, register_converter
from .from_ir import _BUILDERS as _IMPORTERS
from .to_ir import _TENSOR_FIELDS


def _apply(conv: nn.Conv2d, x: torch.Tensor, exact: bool) -> torch.Tensor:
    """``conv(x)``; with ``exact`` accumulated in float64 and rounded once to ``x``'s dtype.

    Every float32 product is exact in float64; float64 sums taken in another order (the CPU
    backend's ``exact_accumulation``) differ by a few float64 ulps, so both round to the same
    float32 unless a value lies within those ulps of a float32 rounding boundary (about
    ``K * 2**-29`` for ``K`` terms). Imported modules run exact, so the executor and the CPU backend
    agree on real trained weights too; modules built for training run in float32.
    """
    if not exact:
        return conv(x)
    w, b = conv.weight.double(), conv.bias.double() if conv.bias is not None else None
    return F.conv2d(x.double(), w, b, conv.stride, conv.padding, conv.dilation, conv.groups).to(x.dtype)


def _same_conv(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups)


def _load(conv: nn.Conv2d, weight: np.ndarray, bias: np.ndarray) -> None:
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.asarray(weight, np.float32)))
        conv.bias.copy_(torch.from_numpy(np.asarray(bias, np.float32)))


class GhostConv(nn.Module):
    """``y = cat(p, depthwise(p))`` with ``p = primary(x)`` (``ir.SGhostConv``)."""

    def __init__(self, c_in: int, primary_channels: int, kernel_size: int = 1, stride: int = 1,
                 cheap_kernel_size: int = 3, padding: int | None = None):  # fmt: skip
        super().__init__()
        pad = kernel_size // 2 if padding is None else padding
        self.primary = nn.Conv2d(c_in, primary_channels, kernel_size, stride, pad)
        self.cheap = _same_conv(primary_channels, primary_channels, cheap_kernel_size, groups=primary_channels)
        self.exact = False  # float64 accumulation (set on import: see _apply)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = _apply(self.primary, x, self.exact)
        return torch.cat([p, _apply(self.cheap, p, self.exact)], dim=1)

    def parts(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}primary_weight": array(self.primary.weight),
            f"{prefix}primary_bias": array(self.primary.bias),
            f"{prefix}cheap_weight": array(self.cheap.weight),
            f"{prefix}cheap_bias": array(self.cheap.bias),
        }

    @classmethod
    def from_parts(cls, node: ir.Node, prefix: str, stride: int = 1, padding=None) -> GhostConv:
        pw, cw = getattr(node, f"{prefix}primary_weight"), getattr(node, f"{prefix}cheap_weight")
        mod = cls(pw.shape[1], pw.shape[0], pw.shape[2], 1, cw.shape[2])
        mod.primary.stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
        if padding is not None:
            mod.primary.padding = tuple(padding)
        _load(mod.primary, pw, getattr(node, f"{prefix}primary_bias"))
        _load(mod.cheap, cw, getattr(node, f"{prefix}cheap_bias"))
        mod.exact = True
        return mod

    def to_node(self) -> ir.SGhostConv:
        return ir.SGhostConv(**self.parts(""), primary_stride=self.primary.stride,
                             primary_padding=self.primary.padding)  # fmt: skip

    @classmethod
    def from_node(cls, node: ir.SGhostConv) -> GhostConv:
        return cls.from_parts(node, "", node.primary_stride, node.primary_padding)


class SGhostEncoderLite(nn.Module):
    """Stem: ``ghost(conv1(x))``, ``conv1`` strided (``ir.SGhostEncoderLite``)."""

    def __init__(self, c_in: int = 3, conv_channels: int = 16, primary_channels: int = 8, kernel_size: int = 3,
                 primary_kernel_size: int = 1, stride: int = 2):  # fmt: skip
        super().__init__()
        self.conv1 = _same_conv(c_in, conv_channels, kernel_size, stride)
        self.ghost = GhostConv(conv_channels, primary_channels, primary_kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ghost(_apply(self.conv1, x, self.ghost.exact))

    def to_node(self) -> ir.SGhostEncoderLite:
        return ir.SGhostEncoderLite(conv1_weight=array(self.conv1.weight), conv1_bias=array(self.conv1.bias),
                                    **self.ghost.parts("ghost_"), stride=self.conv1.stride[0])  # fmt: skip

    @classmethod
    def from_node(cls, node: ir.SGhostEncoderLite) -> SGhostEncoderLite:
        w = node.conv1_weight
        mod = cls(w.shape[1], w.shape[0], node.ghost_primary_weight.shape[0], w.shape[2],
                  node.ghost_primary_weight.shape[2], node.stride)  # fmt: skip
        _load(mod.conv1, w, node.conv1_bias)
        mod.ghost = GhostConv.from_parts(node, "ghost_")
        return mod


class GhostBasicBlock1(nn.Module):
    """``cat(Z1, cv2(Z2) + cvres(x))`` with ``[Z1, Z2] = cv0(x)`` (``ir.GhostBasicBlock1``).

    ``GhostBasicBlock1(c1, c2)`` builds SU-YOLO's channels: ``cp0 = c2 / 2``, ``cp2 = c2 / 4``.
    """

    def __init__(self, c1: int, c2: int, stride: int = 2, kernel_size: int = 3, residual_kernel_size: int = 1):
        super().__init__()
        if c2 % 4:
            raise ValueError(f"GhostBasicBlock1: c2={c2} must be a multiple of 4 (cp0 = c2/2, cp2 = c2/4)")
        self.stride = stride
        self.cv0 = GhostConv(c1, c2 // 2, kernel_size, stride)
        self.cv2 = GhostConv(c2 // 2, c2 // 4, 1)
        self.cvres = GhostConv(c1, c2 // 4, residual_kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z1, z2 = self.cv0(x).chunk(2, dim=1)
        return torch.cat([z1, self.cv2(z2) + self.cvres(x)], dim=1)

    def to_node(self) -> ir.GhostBasicBlock1:
        return ir.GhostBasicBlock1(**self.cv0.parts("cv0_"), **self.cv2.parts("cv2_"), **self.cvres.parts("cvres_"),
                                   stride=self.stride)  # fmt: skip

    @classmethod
    def from_node(cls, node: ir.GhostBasicBlock1) -> GhostBasicBlock1:
        mod = cls.__new__(cls)
        nn.Module.__init__(mod)
        mod.stride = node.stride
        mod.cv0 = GhostConv.from_parts(node, "cv0_", node.stride)
        mod.cv2 = GhostConv.from_parts(node, "cv2_")
        mod.cvres = GhostConv.from_parts(node, "cvres_", node.stride)
        return mod


class GhostBasicBlock2(nn.Module):
    """``cat(Z1, cv2(Z2))`` with ``[Z1, Z2] = cv0(x)`` (``ir.GhostBasicBlock2``), stride 1."""

    def __init__(self, c1: int, c2: int, kernel_size: int = 3):
        super().__init__()
        if c2 % 4:
            raise ValueError(f"GhostBasicBlock2: c2={c2} must be a multiple of 4 (cp0 = c2/2, cp2 = c2/4)")
        self.cv0 = GhostConv(c1, c2 // 2, kernel_size)
        self.cv2 = GhostConv(c2 // 2, c2 // 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z1, z2 = self.cv0(x).chunk(2, dim=1)
        return torch.cat([z1, self.cv2(z2)], dim=1)

    def to_node(self) -> ir.GhostBasicBlock2:
        return ir.GhostBasicBlock2(**self.cv0.parts("cv0_"), **self.cv2.parts("cv2_"))

    @classmethod
    def from_node(cls, node: ir.GhostBasicBlock2) -> GhostBasicBlock2:
        mod = cls.__new__(cls)
        nn.Module.__init__(mod)
        mod.cv0 = GhostConv.from_parts(node, "cv0_")
        mod.cv2 = GhostConv.from_parts(node, "cv2_")
        return mod


class SDDetect(nn.Module):
    """Per-scale head: ``cat(box_branch(x), class_branch(x))`` (``ir.SDDetect``), 3x3, 3x3, 1x1 convs."""

    def __init__(self, c_in: int, num_classes: int, reg_max: int = 16, stride: int = 8, hidden: int = 64):
        super().__init__()
        self.num_classes, self.reg_max, self.stride = num_classes, reg_max, stride
        self.cv2 = nn.Sequential(_same_conv(c_in, hidden, 3), _same_conv(hidden, hidden, 3),
                                 _same_conv(hidden, 4 * reg_max, 1))  # fmt: skip
        self.cv3 = nn.Sequential(_same_conv(c_in, hidden, 3), _same_conv(hidden, hidden, 3),
                                 _same_conv(hidden, num_classes, 1))  # fmt: skip
        self.exact = False  # float64 accumulation (set on import: see _apply)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for branch in (self.cv2, self.cv3):
            y = x
            for conv in branch:
                y = _apply(conv, y, self.exact)
            outs.append(y)
        return torch.cat(outs, dim=1)

    def to_node(self) -> ir.SDDetect:
        params = {}
        for branch in ("cv2", "cv3"):
            for i, conv in enumerate(getattr(self, branch)):
                params[f"{branch}_w{i}"], params[f"{branch}_b{i}"] = array(conv.weight), array(conv.bias)
        return ir.SDDetect(num_classes=self.num_classes, reg_max=self.reg_max, stride=self.stride, **params)

    @classmethod
    def from_node(cls, node: ir.SDDetect) -> SDDetect:
        mod = cls.__new__(cls)
        nn.Module.__init__(mod)
        mod.num_classes, mod.reg_max, mod.stride = node.num_classes, node.reg_max, node.stride
        for branch in ("cv2", "cv3"):
            convs = []
            for i in range(3):
                w = getattr(node, f"{branch}_w{i}")
                conv = _same_conv(w.shape[1], w.shape[0], w.shape[2])
                _load(conv, w, getattr(node, f"{branch}_b{i}"))
                convs.append(conv)
            setattr(mod, branch, nn.Sequential(*convs))
        mod.exact = True
        return mod


class DFLDecode(nn.Module):
    """Softmax-expectation over ``reg_max`` bins per side, sigmoid class scores (``ir.DFLDecode``).

    Computed in float64 and rounded once to the input dtype, like the CPU backend.
    """

    def __init__(self, reg_max: int = 16):
        super().__init__()
        self.reg_max = reg_max

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        r = self.reg_max
        logits = x[:, : 4 * r].double().reshape(n, 4, r, h, w)
        p = torch.softmax(logits, dim=2)
        bins = torch.arange(r, dtype=torch.float64, device=x.device).reshape(1, 1, r, 1, 1)
        dist = (p * bins).sum(dim=2)
        scores = torch.sigmoid(x[:, 4 * r :].double())
        return torch.cat([dist, scores], dim=1).to(x.dtype)

    def to_node(self) -> ir.DFLDecode:
        return ir.DFLDecode(reg_max=self.reg_max)

    @classmethod
    def from_node(cls, node: ir.DFLDecode) -> DFLDecode:
        return cls(node.reg_max)


class Dist2BBox(nn.Module):
    """Anchor-centred distances to ``[H W, 4 + nc]`` rows of ``(cx, cy, w, h, scores)`` in pixels."""

    def __init__(self, stride: float = 8.0):
        super().__init__()
        self.stride = float(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        ay, ax = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5,
                                indexing="ij")  # fmt: skip
        ax, ay = ax.to(x.dtype), ay.to(x.dtype)
        left, top, right, bottom = x[:, 0], x[:, 1], x[:, 2], x[:, 3]
        x1, y1, x2, y2 = ax - left, ay - top, ax + right, ay + bottom
        box = torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=1) * self.stride
        return torch.cat([box, x[:, 4:]], dim=1).reshape(n, c, h * w).transpose(1, 2)

    def to_node(self) -> ir.Dist2BBox:
        return ir.Dist2BBox(stride=self.stride)

    @classmethod
    def from_node(cls, node: ir.Dist2BBox) -> Dist2BBox:
        return cls(node.stride)


def _first_argmax(scores: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
    """Index of the first column reaching the row maximum (torch's argmax does not promise the first)."""
    hit = scores == best[:, None]
    cols = torch.arange(scores.shape[1]).expand_as(scores)
    return torch.where(hit, cols, scores.shape[1]).min(dim=1).values.clamp(max=max(scores.shape[1] - 1, 0))


_NUMPY_DTYPES = (torch.float16, torch.float32, torch.float64)


def nms_rows(rows: torch.Tensor, score_threshold: float, iou_threshold: float, max_detections: int) -> torch.Tensor:
    """Greedy class-aware NMS of one ``[N, 4 + nc]`` tensor (``ir.NMS``), in the tensor's dtype.

    float16 / float32 / float64 rows run the CPU backend's scan (``talon._nms``: the same arithmetic
    in the same dtype, compiled when numba is available); other dtypes (bfloat16) the torch loop below.
    """
    if rows.dtype in _NUMPY_DTYPES:
        from talon._nms import nms_rows as numpy_nms_rows

        out = numpy_nms_rows(rows.numpy(), score_threshold, iou_threshold, max_detections)
        return torch.from_numpy(out)
    n = rows.shape[0]
    k = max_detections or n
    out = torch.zeros((k, 6), dtype=rows.dtype)
    out[:, 5] = -1
    score = rows[:, 4:].max(dim=1).values
    cls = _first_argmax(rows[:, 4:], score)
    thr = torch.tensor(score_threshold, dtype=rows.dtype)
    cand = torch.nonzero(score > thr).flatten()
    order = cand[torch.sort(-score[cand], stable=True).indices]
    r, c = rows[order], cls[order]
    half_w, half_h = r[:, 2] / 2, r[:, 3] / 2
    x1, x2, y1, y2 = r[:, 0] - half_w, r[:, 0] + half_w, r[:, 1] - half_h, r[:, 1] + half_h
    area = (x2 - x1) * (y2 - y1)
    iou_thr = torch.tensor(iou_threshold, dtype=rows.dtype)
    removed = torch.zeros(len(order), dtype=torch.bool)
    kept_pos: list[int] = []
    for i in range(len(order)):  # greedy: each kept box removes the later ones it suppresses
        if removed[i]:
            continue
        kept_pos.append(i)
        if len(kept_pos) == k:
            break
        iw = torch.clamp(torch.minimum(x2[i + 1 :], x2[i]) - torch.maximum(x1[i + 1 :], x1[i]), min=0)
        ih = torch.clamp(torch.minimum(y2[i + 1 :], y2[i]) - torch.maximum(y1[i + 1 :], y1[i]), min=0)
        inter = iw * ih
        union = area[i + 1 :] + area[i] - inter
        valid = (inter > 0) & (area[i + 1 :] > 0) & (area[i] > 0) & (union > 0) & (c[i + 1 :] == c[i])
        removed[i + 1 :] |= valid & (inter / union > iou_thr)
    kept = order[kept_pos].tolist()
    if kept:
        idx = torch.tensor(kept)
        out[: len(kept), :4] = rows[idx, :4]
        out[: len(kept), 4] = score[idx]
        out[: len(kept), 5] = cls[idx].to(rows.dtype)
    return out


class NMS(nn.Module):
    """Class-aware greedy NMS (``ir.NMS``): ``[B, N, 4 + nc] -> [B, K, 6]`` (no gradient)."""

    def __init__(self, score_threshold: float = 0.25, iou_threshold: float = 0.45, max_detections: int = 300):
        super().__init__()
        node = ir.NMS(score_threshold, iou_threshold, max_detections)  # validates
        self.score_threshold, self.iou_threshold = node.score_threshold, node.iou_threshold
        self.max_detections = node.max_detections

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            args = (self.score_threshold, self.iou_threshold, self.max_detections)
            k = self.max_detections or x.shape[1]
            if x.dtype in _NUMPY_DTYPES and len(x):  # one conversion for the whole batch
                from talon._nms import nms_rows as numpy_nms_rows

                batch = x.detach().cpu().numpy()
                return torch.from_numpy(np.stack([numpy_nms_rows(r, *args) for r in batch])).to(x.device)
            rows = [nms_rows(r.detach().cpu(), *args) for r in x]
            return torch.stack(rows).to(x.device) if rows else x.new_zeros((0, k, 6))

    def to_node(self) -> ir.NMS:
        return ir.NMS(self.score_threshold, self.iou_threshold, self.max_detections)

    @classmethod
    def from_node(cls, node: ir.NMS) -> NMS:
        return cls(node.score_threshold, node.iou_threshold, node.max_detections)


MODULES: dict[type[ir.Node], type[nn.Module]] = {
    ir.SGhostConv: GhostConv,
    ir.SGhostEncoderLite: SGhostEncoderLite,
    ir.GhostBasicBlock1: GhostBasicBlock1,
    ir.GhostBasicBlock2: GhostBasicBlock2,
    ir.SDDetect: SDDetect,
    ir.DFLDecode: DFLDecode,
    ir.Dist2BBox: Dist2BBox,
    ir.NMS: NMS,
}


def _convert(module: nn.Module, ctx: ConvertContext) -> ir.Node:
    return module.to_node()


register_converter(*MODULES.values())(_convert)


def _importer(module_type: type[nn.Module]):
    def build(node: ir.Node, dtype: torch.dtype) -> nn.Module:
        if dtype != torch.float32:  # built in float32, accumulated exactly in float64 (see _apply)
            raise ir.ConversionError(
                f"a {type(node).__name__} node runs in float32 only; import the graph with "
                f"ir_to_torch(graph, dtype=torch.float32), not {dtype}"
            )
        return module_type.from_node(node)

    return build


for _node_type, _module_type in MODULES.items():
    _IMPORTERS[_node_type] = _importer(_module_type)


def _ghost_fields(prefix: str, attr: str) -> dict[str, str]:
    return {
        f"{prefix}primary_weight": f"{attr}primary.weight", f"{prefix}primary_bias": f"{attr}primary.bias",
        f"{prefix}cheap_weight": f"{attr}cheap.weight", f"{prefix}cheap_bias": f"{attr}cheap.bias",
    }  # fmt: skip


# an executor re-exports its current (fine-tuned) weights through these field → tensor maps
_ATTR_OF_PREFIX = {"": "", "ghost_": "ghost.", "cv0_": "cv0.", "cv2_": "cv2.", "cvres_": "cvres."}
for _node_type, _prefixes in GHOST_BRANCHES.items():
    _fields: dict[str, str] = {}
    for _prefix in _prefixes:
        _fields.update(_ghost_fields(_prefix, _ATTR_OF_PREFIX[_prefix]))
    if _node_type is ir.SGhostEncoderLite:
        _fields.update({"conv1_weight": "conv1.weight", "conv1_bias": "conv1.bias"})
    _TENSOR_FIELDS[(_node_type,)] = _fields
_TENSOR_FIELDS[(ir.SDDetect,)] = {
    f"{b}_{kind}{i}": f"{b}.{i}.{'weight' if kind == 'w' else 'bias'}"
    for b in ("cv2", "cv3")
    for i in range(3)
    for kind in ("w", "b")
}
