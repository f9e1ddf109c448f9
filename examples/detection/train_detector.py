"""Train a small SU-YOLO-style spiking detector on synthetic scenes, export it, run it everywhere.

    PYTHONPATH=src python examples/detection/train_detector.py [--minutes 9] [--out detector.t1c]

1. generates training and held-out scenes (``talon.examples.shapes``: squares, discs, triangles
   with exact boxes);
2. trains ``talon.examples.spiking_detector.SpikingGhostDetector`` (IF neurons with surrogate
   gradients, direct encoding over ``steps`` timesteps) for a wall-clock budget;
3. exports it to TALON IR (``.t1c``): ghost blocks, IF neurons, SDDetect, the time average,
   DFLDecode, Dist2BBox and NMS;
4. runs the ``.t1c`` in the PyTorch executor and on the CPU backend on the held-out scenes, checks
   that the detections are identical, and reports mAP@0.5 (pycocotools) of those detections;
5. profiles the CPU backend run for the energy per frame;
6. runs the CPU backend's fixed point (int16 and int8: ghost blocks, IF neurons, head and time
   average in integers, the decode in float32 on the dequantized average) on the same scenes and
   reports mAP@0.5 and the int8 energy per frame.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from talon import ir
from talon.backend import get_backend
from talon.bridge import ir_to_torch, to_ir
from talon.examples.shapes import make_scenes
from talon.examples.spiking_detector import SpikingGhostDetector, batch_images, coco_map50, detection_loss


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # progress lines appear as they happen, also in a pipe
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=9.0, help="training budget (wall clock)")
    parser.add_argument("--train-scenes", type=int, default=4000)
    parser.add_argument("--test-scenes", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=48, help="image size in pixels")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 wastes least on a busy machine)")
    parser.add_argument("--out", default="detector.t1c")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    shape = dict(size=args.size, min_radius=args.size / 12, max_radius=args.size / 5)
    train, test = make_scenes(args.train_scenes, seed=1, **shape), make_scenes(args.test_scenes, seed=2, **shape)
    model = SpikingGhostDetector()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params} parameters, {model.steps} timesteps, {len(train)} training scenes")
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    budget = args.minutes * 60
    start, cpu_start = time.perf_counter(), time.process_time()
    rng = np.random.default_rng(0)
    iteration, epoch_losses = 0, []
    while time.perf_counter() - start < budget:
        order = rng.permutation(len(train))
        for first in range(0, len(order) - args.batch + 1, args.batch):
            elapsed = time.perf_counter() - start
            if elapsed >= budget:
                break
            lr = args.lr * 0.5 * (1 + np.cos(np.pi * min(elapsed / budget, 1.0)))  # cosine over the budget
            for group in optimizer.param_groups:
                group["lr"] = lr
            scenes = [train[i] for i in order[first : first + args.batch]]
            loss = detection_loss(model.forward_sequence(batch_images(scenes)), scenes, model.reg_max, model.stride)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            epoch_losses.append(float(loss.detach()))
            iteration += 1
            if iteration % 100 == 0:
                print(f"iteration {iteration:5d}  {elapsed / 60:4.1f} min  loss {np.mean(epoch_losses[-100:]):.3f}")
    train_minutes = (time.perf_counter() - start) / 60
    cpu_minutes = (time.process_time() - cpu_start) / 60
    epochs = iteration * args.batch / len(train)
    print(f"trained {iteration} iterations ({epochs:.1f} epochs) in {train_minutes:.1f} min, CPU {cpu_minutes:.1f} min")

    model.eval()
    images = batch_images(test)
    graph = to_ir(model, images[:1])
    ir.write(args.out, graph)
    graph = ir.read(args.out)
    print(f"exported {args.out}: {' -> '.join(type(n).__name__ for n in graph.nodes.values())}")

    executor = ir_to_torch(graph, return_state=True)
    state = None
    with torch.no_grad():
        for _ in range(model.steps):
            torch_out, state = executor(images, state)
    torch_out = torch_out.numpy()
    frames = np.broadcast_to(images.numpy(), (model.steps, *images.shape))
    backend = get_backend("cpu")
    cpu_out = backend.simulate(graph, {"input": np.ascontiguousarray(frames)}).outputs["output"][-1]
    identical = np.array_equal(torch_out, cpu_out)
    print(f"PyTorch executor and CPU backend detections identical: {identical}")
    print(f"mAP@0.5 on {len(test)} held-out scenes (pycocotools): {coco_map50(list(cpu_out), test):.3f}")

    profile = backend.profile(graph, {"input": np.ascontiguousarray(frames[:, :16])})
    per_frame = profile.energy_estimate_uj / 16
    print(f"energy per frame ({model.steps} timesteps, CPU backend estimate): {per_frame:.2f} uJ")

    for precision in ("int16", "int8"):
        fixed = backend.simulate(graph, {"input": np.ascontiguousarray(frames)}, precision=precision)
        detections = fixed.outputs["output"][-1]
        print(f"{precision}: mAP@0.5 {coco_map50(list(detections), test):.3f}, spike agreement with fp32 "
              f"{fixed.quantization.spike_agreement:.2%}, float32 decode: {', '.join(fixed.float_nodes)}")  # fmt: skip
    profile = backend.profile(graph, {"input": np.ascontiguousarray(frames[:, :16])}, precision="int8")
    print(f"int8 energy per frame (CPU backend estimate): {profile.energy_estimate_uj / 16:.2f} uJ")
    if not identical:
        raise SystemExit("the executor and the CPU backend disagree")


if __name__ == "__main__":
    main()
