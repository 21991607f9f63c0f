"""Worker for test_vision_cache_ranks.py: two PPO epochs of an RL update in which rank 0 holds an image prompt and
rank 1 a text-only (or two-image) prompt, with a frozen tower, once encoding images in every forward and once from
the image-feature cache (mmreason/vision_cache.py), with the merger trained and frozen, and a frozen reference.

Run under a gloo process group (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT in the environment). Prints one JSON line
(rank 0): {merger setting: {"weights": largest difference of the updated weights between the two paths,
"ranks": largest weight difference between the ranks (cached path), "ref": largest reference log-prob difference,
"tower_calls": [per rank, tower calls of the first encode, of the second]}}.
"""

import json
import sys

import torch
import torch.distributed as dist
from rl_builders import dots_problem
from two_rank_mixed_modality import text_problem, two_image_problem

from mmreason import vision_cache
from mmreason.config import Config, ModelConfig
from mmreason.distributed import all_reduce_max, gathered, shutdown_distributed
from mmreason.engine import build_engine, full_weights
from mmreason.models import load_policy
from mmreason.rl.loop import rollout_logprobs, update_policy
from mmreason.rl.reference import ReferencePolicy
from mmreason.rl.rollout import generate_rollouts


def flat_weights(module: torch.nn.Module) -> torch.Tensor:
    params = list(module.parameters())
    with gathered(params):
        return torch.cat([p.detach().double().flatten().cpu() for p in params])


def run(checkpoint, stage, freeze_merger, problem, rollout, cached):
    """(updated weights, reference log-probs, tower calls per encode) after one update from the same start."""
    torch.manual_seed(0)
    model, processor = load_policy(ModelConfig(path=checkpoint, freeze_merger=freeze_merger))
    cfg = Config()
    cfg.train.zero_stage, cfg.train.micro_batch_size = stage, 2
    cfg.algo.ppo_epochs, cfg.algo.beta = 2, 0.1
    cfg.rollout.group_size, cfg.rollout.max_new_tokens, cfg.rollout.repetition_count = 2, 6, 0
    cfg.optim.lr = 1e-2
    reference = ReferencePolicy(cfg.algo, model)
    engine = build_engine(model, cfg.optim, cfg.train, micro_batch_size=2, grad_accum=1, world_size=2)
    if rollout is None:
        with full_weights(engine) as policy:  # as the RL loop samples: ZeRO-3 weights gathered once
            rollout = generate_rollouts(policy, processor, [problem], cfg.rollout, template="r1_boxed")
    calls = [0]
    vision_cache.vision_tower(engine.module).blocks[0].register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    states, encodes = None, []
    if cached:
        assert vision_cache.cacheable(engine.module)
        cache = vision_cache.ImageFeatureCache(16)
        states = vision_cache.encode_prompts(cache, engine.module, rollout.pixel_values, rollout.image_grid_thw)
        encodes.append(calls[0])
    old = rollout_logprobs(engine.module, rollout, 2, 1.0, image_states=states)
    ref = rollout_logprobs(reference.model, rollout, 2, 1.0, image_states=states)
    update_policy(engine, rollout, old, ref, torch.tensor([1.0, -1.0]), cfg, world_size=2, grad_accum=1,
                  image_states=states)
    if cached:  # a later step drawing the same prompt: no rank runs the tower
        states = vision_cache.encode_prompts(cache, engine.module, rollout.pixel_values, rollout.image_grid_thw)
        encodes.append(calls[0] - encodes[0])
        rollout_logprobs(engine.module, rollout, 2, 1.0, image_states=states)
        assert calls[0] == encodes[0], "a forward with cached features ran the tower"
    weights = flat_weights(engine.module)
    engine.destroy()
    return rollout, weights, ref, encodes


def main() -> None:
    checkpoint, stage, other = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    big = dots_problem("img", 2)
    big.images = [big.images[0].resize((224, 224))]
    problem = big if rank == 0 else (text_problem() if other == "text" else two_image_problem())
    results = {}
    for freeze_merger in (False, True):
        rollout, plain, ref_plain, _ = run(checkpoint, stage, freeze_merger, problem, None, cached=False)
        _, cached, ref_cached, encodes = run(checkpoint, stage, freeze_merger, problem, rollout, cached=True)
        weights = all_reduce_max((cached - plain).abs().max())
        gathered_weights = [torch.zeros_like(cached) for _ in range(2)]
        dist.all_gather(gathered_weights, cached)
        tower_calls = [None, None]
        dist.all_gather_object(tower_calls, encodes)
        results[f"merger={'frozen' if freeze_merger else 'trained'}"] = {
            "weights": weights, "moved": all_reduce_max((cached - flat_weights_start(checkpoint)).abs().max()),
            "ranks": float((gathered_weights[0] - gathered_weights[1]).abs().max()),
            "ref": all_reduce_max((ref_cached - ref_plain).abs().max()), "tower_calls": tower_calls}
    if rank == 0:
        print(json.dumps(results), flush=True)
    shutdown_distributed()


def flat_weights_start(checkpoint: str) -> torch.Tensor:
    model, _ = load_policy(ModelConfig(path=checkpoint))
    return torch.cat([p.detach().double().flatten() for p in model.parameters()])


if __name__ == "__main__":
    main()
