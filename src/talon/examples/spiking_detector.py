"""A small SU-YOLO-style spiking object detector for the synthetic scenes of :mod:`.shapes`.

Architecture (direct encoding: the same image enters the encoder at every one of ``steps``
timesteps; IF neurons between the ghost blocks; a real-valued head averaged over time; the
YOLOv8 decode)::

    image [3, 64, 64] → SGhostEncoderLite (stride 2) → IF → GhostBasicBlock1 (stride 2) → IF
      → GhostBasicBlock1 (stride 2) → IF → GhostBasicBlock2 → IF → SDDetect [4·reg_max + 3, 8, 8]
      → Integrator (r = 1/steps: the time average) → DFLDecode → Dist2BBox (stride 8) → NMS

``SpikingGhostDetector.forward`` is **one timestep** of the whole pipeline (what ``to_ir`` exports;
after ``steps`` calls from zero state the NMS output is the detection).
``forward_sequence`` runs the ``steps`` timesteps for training, each stateless block on all
timesteps at once, and returns the time-averaged head output. ``detection_loss`` is a compact
YOLOv8-style loss (centre-inside assignment, DFL + GIoU on the boxes, IoU-aware BCE on the
classes); ``coco_map50`` evaluates detections with pycocotools.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talon import ir
from talon.bridge import IFModule
from talon.bridge.detection import (
    NMS,
    DFLDecode,
    Dist2BBox,
    GhostBasicBlock1,
    GhostBasicBlock2,
    SDDetect,
    SGhostEncoderLite,
)
from talon.bridge.modules import IntegratorModule
from talon.ir.errors import install_hint

from .shapes import CLASSES, Scene


class SpikingGhostDetector(nn.Module):
    def __init__(self, steps: int = 2, reg_max: int = 8, width: int = 8, num_classes: int = len(CLASSES),
                 score_threshold: float = 0.25, iou_threshold: float = 0.5, max_detections: int = 20):  # fmt: skip
        super().__init__()
        self.steps, self.reg_max, self.num_classes, self.stride = steps, reg_max, num_classes, 8
        w = width
        self.encoder = SGhostEncoderLite(3, w, w // 2, kernel_size=3, primary_kernel_size=1, stride=2)
        self.if0 = IFModule(v_threshold=1.0)
        self.block1 = GhostBasicBlock1(w, 2 * w, stride=2)
        self.if1 = IFModule(v_threshold=1.0)
        self.block2 = GhostBasicBlock1(2 * w, 4 * w, stride=2)
        self.if2 = IFModule(v_threshold=1.0)
        self.block3 = GhostBasicBlock2(4 * w, 4 * w)
        self.if3 = IFModule(v_threshold=1.0)
        self.head = SDDetect(4 * w, num_classes, reg_max, stride=self.stride, hidden=2 * w)
        self.average = IntegratorModule(ir.Integrator(r=np.float32(1.0 / steps)))
        self.dfl = DFLDecode(reg_max)
        self.boxes = Dist2BBox(self.stride)
        self.nms = NMS(score_threshold, iou_threshold, max_detections)
        with torch.no_grad():
            # PyTorch's default initialisation leaves every IF layer silent on these images (and the
            # surrogate gradient alone learns slowly): He-normal x 1.5 gives 15-30 % firing rates
            for block, _ in self._spiking():
                for conv in block.modules():
                    if isinstance(conv, nn.Conv2d):
                        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                        conv.weight.mul_(1.5)
                        nn.init.zeros_(conv.bias)
            self.head.cv3[-1].bias.fill_(-4.0)  # a prior on rare objects (YOLOv8's class-bias initialisation)

    def _spiking(self):
        return [(self.encoder, self.if0), (self.block1, self.if1), (self.block2, self.if2), (self.block3, self.if3)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One timestep from zero state (the exported graph): detections ``[B, max_detections, 6]``."""
        for block, neuron in self._spiking():
            x, _ = neuron(block(x))
        avg, _ = self.average(self.head(x))
        return self.nms(self.boxes(self.dfl(avg)))

    def forward_sequence(self, image: torch.Tensor) -> torch.Tensor:
        """Time-averaged head output ``[B, 4 reg_max + nc, H, W]`` over ``steps`` timesteps."""
        t, b = self.steps, image.shape[0]
        x = image.unsqueeze(0).expand(t, *image.shape).reshape(t * b, *image.shape[1:])
        for block, neuron in self._spiking():
            current = block(x)
            current = current.reshape(t, b, *current.shape[1:])
            v, spikes = None, []
            for step in range(t):
                s, v = neuron(current[step], v)
                spikes.append(s)
            x = torch.stack(spikes).reshape(t * b, *current.shape[2:])
        head = self.head(x)
        return head.reshape(t, b, *head.shape[1:]).mean(dim=0)

    @torch.no_grad()
    def detect(self, images: torch.Tensor) -> torch.Tensor:
        """Detections of ``forward_sequence`` decoded like the graph: ``[B, max_detections, 6]``."""
        return self.nms(self.boxes(self.dfl(self.forward_sequence(images))))


# ---- loss ------------------------------------------------------------------------------------


def _giou(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU and GIoU of corner boxes ``[..., 4]``."""
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(min=0)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]).clamp(min=0) * (a[..., 3] - a[..., 1]).clamp(min=0)
    area_b = (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)
    union = area_a + area_b - inter + 1e-9
    iou = inter / union
    cw = torch.maximum(a[..., 2], b[..., 2]) - torch.minimum(a[..., 0], b[..., 0])
    ch = torch.maximum(a[..., 3], b[..., 3]) - torch.minimum(a[..., 1], b[..., 1])
    hull = cw * ch + 1e-9
    return iou, iou - (hull - union) / hull


def detection_loss(head: torch.Tensor, scenes: list[Scene], reg_max: int, stride: int) -> torch.Tensor:
    """YOLOv8-style loss of the time-averaged head output for a batch of scenes.

    Assignment: an anchor (cell centre) is positive for the smallest ground-truth box containing
    it (or, for a box containing no centre, the cell holding the box centre). Box: DFL cross
    entropy on the two bins around each target distance plus ``1 - GIoU``; classes: BCE with the
    predicted box's IoU as the positive target.
    """
    b, _, h, w = head.shape
    dist_logits = head[:, : 4 * reg_max].reshape(b, 4, reg_max, h, w).permute(0, 3, 4, 1, 2)  # B H W 4 R
    cls_logits = head[:, 4 * reg_max :].permute(0, 2, 3, 1)  # B H W C
    ay, ax = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    anchors = torch.stack([ax, ay], dim=-1) * stride  # H W 2 (pixels)
    bins = torch.arange(reg_max, dtype=head.dtype)
    pred_dist = (dist_logits.softmax(-1) * bins).sum(-1) * stride  # B H W 4 (pixels)
    pred_box = torch.cat([anchors - pred_dist[..., :2], anchors + pred_dist[..., 2:]], dim=-1)
    cls_target = torch.zeros_like(cls_logits)
    owners = []  # (image, cell row, cell col, gt box, label) of every positive anchor
    for i, scene in enumerate(scenes):
        if len(scene.boxes) == 0:
            continue
        gt = torch.from_numpy(scene.boxes)
        inside = ((anchors[..., None, 0] > gt[:, 0]) & (anchors[..., None, 0] < gt[:, 2]) &
                  (anchors[..., None, 1] > gt[:, 1]) & (anchors[..., None, 1] < gt[:, 3]))  # fmt: skip  # H W G
        for g in range(len(gt)):
            if not inside[..., g].any():
                cx, cy = (gt[g, 0] + gt[g, 2]) / 2, (gt[g, 1] + gt[g, 3]) / 2
                inside[min(int(cy // stride), h - 1), min(int(cx // stride), w - 1), g] = True
        area = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
        cost = torch.where(inside, area.expand(h, w, -1), torch.tensor(float("inf")))
        best_cost, owner = cost.min(dim=-1)
        rows, cols = torch.nonzero(torch.isfinite(best_cost), as_tuple=True)
        g_idx = owner[rows, cols]
        owners.append((torch.full_like(rows, i), rows, cols, gt[g_idx], torch.from_numpy(scene.labels)[g_idx]))
    if not owners:
        return F.binary_cross_entropy_with_logits(cls_logits, cls_target, reduction="sum")
    img, rows, cols, target, labels = (torch.cat(parts) for parts in zip(*owners, strict=True))
    n_pos = len(img)
    a = anchors[rows, cols]
    ltrb = (torch.cat([a - target[:, :2], target[:, 2:] - a], dim=-1) / stride).clamp(0, reg_max - 1 - 0.01)
    left = ltrb.floor().long()
    wr = ltrb - left
    logits = dist_logits[img, rows, cols].reshape(-1, reg_max)  # P*4 R
    log_p = logits.log_softmax(-1)
    dfl = -(log_p.gather(1, left.reshape(-1, 1)).squeeze(1) * (1 - wr).reshape(-1)
            + log_p.gather(1, (left + 1).reshape(-1, 1)).squeeze(1) * wr.reshape(-1))  # fmt: skip
    iou, giou = _giou(pred_box[img, rows, cols], target)
    cls_target[img, rows, cols, labels] = iou.detach().clamp(min=0.0)
    cls_loss = F.binary_cross_entropy_with_logits(cls_logits, cls_target, reduction="sum") / n_pos
    return 7.5 * (1 - giou).sum() / n_pos + 1.5 * dfl.sum() / (4 * n_pos) + cls_loss


# ---- evaluation ------------------------------------------------------------------------------


def coco_map50(detections: list[np.ndarray], scenes: list[Scene]) -> float:
    """mAP@0.5 (COCO's 101-point AP at IoU 0.5, averaged over classes) with pycocotools.

    ``detections[i]`` are the NMS rows ``[cx, cy, w, h, score, class]`` of scene ``i`` (rows with
    ``class = -1`` are padding).
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise ir.MissingDependencyError(f"coco_map50 needs pycocotools; {install_hint('detection')}") from None
    images, annotations, results = [], [], []
    for i, (rows, scene) in enumerate(zip(detections, scenes, strict=True)):
        size = scene.image.shape[-1]
        images.append({"id": i, "width": size, "height": size})
        for box, label in zip(scene.boxes, scene.labels, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(label),
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                "iscrowd": 0})  # fmt: skip
        for cx, cy, w, h, score, label in np.asarray(rows, np.float64):
            if label < 0:
                continue
            results.append({"image_id": i, "category_id": int(label), "bbox": [cx - w / 2, cy - h / 2, w, h],
                            "score": float(score)})  # fmt: skip
    if not results:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations,
                      "categories": [{"id": c, "name": n} for c, n in enumerate(CLASSES)]}  # fmt: skip
        gt.createIndex()
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[1])


def batch_images(scenes: list[Scene]) -> torch.Tensor:
    return torch.from_numpy(np.stack([s.image for s in scenes]))
