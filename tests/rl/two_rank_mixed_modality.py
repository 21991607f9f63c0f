"""Worker for test_mixed_modality_ranks.py: one RL update in which rank 0 holds an image prompt and rank 1 a text-only
(or multi-image) prompt, for every combination of a frozen / trainable vision tower and merger.

Run under a gloo process group (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT in the environment). Prints one JSON line:
{freeze combination: largest weight difference between the ranks after the update}.
"""

import json
import sys

import torch
import torch.distributed as dist
from rl_builders import dots_problem

from mmreason.config import Config, ModelConfig
from mmreason.distributed import shutdown_distributed
from mmreason.engine import build_engine, full_weights, ranks_weight_difference
from mmreason.models import load_policy
from mmreason.problem import Problem
from mmreason.rl.loop import update_policy
from mmreason.rl.rollout import generate_rollouts

COMBINATIONS = [(True, False), (False, False), (True, True), (False, True)]


def text_problem() -> Problem:
    return Problem(pid="text", question="What is 2 + 3?", answer="5", answer_type="integer")


def two_image_problem() -> Problem:
    first, second = dots_problem("a", 1).images[0], dots_problem("b", 2).images[0]
    return Problem(pid="two", question="<image> and <image>: how many dots in all?", answer="3", answer_type="integer",
                   images=[first, second])


def main() -> None:
    checkpoint, stage, other = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    results = {}
    for freeze_vision, freeze_merger in COMBINATIONS:
        torch.manual_seed(0)
        model, processor = load_policy(ModelConfig(path=checkpoint, freeze_vision=freeze_vision, freeze_merger=freeze_merger))
        cfg = Config()
        cfg.train.zero_stage, cfg.train.micro_batch_size, cfg.train.max_steps = stage, 2, 1
        cfg.rollout.group_size, cfg.rollout.max_new_tokens, cfg.rollout.repetition_count = 2, 6, 0
        cfg.optim.lr = 1e-2
        engine = build_engine(model, cfg.optim, cfg.train, micro_batch_size=2, grad_accum=1, world_size=world_size)
        problem = dots_problem("img", 2) if rank == 0 else (text_problem() if other == "text" else two_image_problem())
        with full_weights(engine) as policy:  # as the RL loop samples: ZeRO-3 weights gathered once
            rollout = generate_rollouts(policy, processor, [problem], cfg.rollout, template="r1_boxed")
        update_policy(engine, rollout, None, None, torch.tensor([1.0, -1.0]), cfg, world_size=world_size, grad_accum=1)
        results[f"vision={'frozen' if freeze_vision else 'trained'},merger={'frozen' if freeze_merger else 'trained'}"] = \
            ranks_weight_difference(engine.module)
        engine.destroy()
    if rank == 0:
        print(json.dumps(results), flush=True)
    shutdown_distributed()


if __name__ == "__main__":
    main()
