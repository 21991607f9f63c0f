"""Time of one RL step's forwards (the old log-prob pass and the update's forward + backward) on the tiny model, with
the vision tower encoding every forward's images (model.image_feature_cache_mib=0) and with the image-feature cache
(mmreason/vision_cache.py): cold (this step encodes the images, once each) and warm (a later step that draws the
same prompts: no tower call at all).

    python scripts/bench_vision_cache.py [--image-size 448] [--prompts 2] [--group-size 8] [--epochs 2] [--repeats 3]

The tower is frozen and the merger trained (the real-scale setting); rows are cut into micro-batches of 4, the
response is --response-tokens long. Prints one line per case with the median seconds of --repeats runs.

Measured on this machine (2 CPU cores shared with other jobs, fp32; 2 prompts of one 448x448 image = 1,024
patches each, G = 8, 2 PPO epochs, 32-token responses; --repeats 5, load average about 5):

    encode every forward     5.13 s / step   (1.00x)
    cache, cold              2.24 s / step   (0.44x; the tower runs once per image, in encode_prompts)
    cache, warm              2.19 s / step   (0.43x; no tower call)

Under heavier load (average 7) the same run gave 20.2 / 13.3 / 18.7 s: the absolute times, and the cold/warm
order, follow the other jobs; what is left with the cache is the language model's forward and backward.
The tiny model's language model is 4 layers of width 128 against a 2-block tower, so the share of the tower, and
the saving, is specific to it; at Qwen2.5-VL scale the 32-block tower is re-run G x (1 + ppo_epochs) times per
image without the cache and once with it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build(checkpoint: str, image_size: int, prompts: int, group_size: int, response_tokens: int):
    import torch
    from PIL import Image, ImageDraw

    from mmreason.config import ModelConfig, RolloutConfig
    from mmreason.models import load_policy
    from mmreason.problem import Problem
    from mmreason.rl.rollout import generate_rollouts

    torch.manual_seed(0)
    model, processor = load_policy(ModelConfig(path=checkpoint, freeze_vision=True, freeze_merger=False,
                                               max_pixels=image_size * image_size))
    problems = []
    for i in range(prompts):
        image = Image.new("RGB", (image_size, image_size), "white")
        for j in range(i + 2):
            ImageDraw.Draw(image).ellipse((20 + 60 * j, 200, 60 + 60 * j, 240), fill="black")
        problems.append(Problem(pid=f"p{i}", question="How many dots?", answer=str(i + 2), answer_type="integer",
                                images=[image]))
    cfg = RolloutConfig(group_size=group_size, max_new_tokens=response_tokens, repetition_count=0,
                        generation_batch_size=group_size)
    rollout = generate_rollouts(model, processor, problems, cfg, template="r1_boxed")
    return model, rollout


def step_forwards(model, rollout, epochs: int, image_states) -> None:
    """The old log-prob pass, then `epochs` update passes (forward + backward, micro-batches of 4 rows)."""
    import torch

    from mmreason.rl.loop import response_logprobs, rollout_logprobs

    old = rollout_logprobs(model, rollout, 4, 1.0, image_states=image_states)
    model.zero_grad()
    for _ in range(epochs):
        for start in range(0, rollout.num_rows, 4):
            rows = torch.arange(start, min(start + 4, rollout.num_rows))
            logp, _ = response_logprobs(model, rollout, rows, 1.0, image_states=image_states)
            ((logp - old[rows]).exp() * rollout.response_mask[rows]).sum().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=448)
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--response-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoint", default=None, help="tiny checkpoint directory (built when not given)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint
        if checkpoint is None:
            checkpoint = str(Path(tmp) / "ckpt")
            subprocess.run([sys.executable, str(REPO / "scripts" / "make_tiny_model.py"), "--out", checkpoint],
                           check=True, capture_output=True)
        from mmreason import vision_cache

        model, rollout = build(checkpoint, args.image_size, args.prompts, args.group_size, args.response_tokens)
        patches = [int(g.prod()) for g in rollout.image_grid_thw if g is not None]
        print(f"{args.prompts} prompts x G={args.group_size}, image patches {patches}, {args.epochs} PPO epochs, "
              f"response {rollout.response_ids.shape[1]} tokens")
        times: dict[str, list[float]] = {"encode every forward": [], "cache, cold": [], "cache, warm": []}
        step_forwards(model, rollout, 1, None)  # warm-up
        for _ in range(args.repeats):
            start = time.perf_counter()
            step_forwards(model, rollout, args.epochs, None)
            times["encode every forward"].append(time.perf_counter() - start)
            cache = vision_cache.ImageFeatureCache(1024)
            for case in ("cache, cold", "cache, warm"):
                start = time.perf_counter()
                states = vision_cache.encode_prompts(cache, model, rollout.pixel_values, rollout.image_grid_thw)
                step_forwards(model, rollout, args.epochs, states)
                times[case].append(time.perf_counter() - start)
        base = statistics.median(times["encode every forward"])
        for case, values in times.items():
            median = statistics.median(values)
            print(f"{case:22s} {median:6.2f} s / step   ({median / base:.2f}x)")


if __name__ == "__main__":
    main()
