"""Worker for test_token_budget_ranks.py: one RL update of the same rollout with fixed-size micro-batches and with
micro-batches cut by a token budget, under ZeRO-2 and ZeRO-3 on two gloo ranks (rank 0 holds image prompts, rank 1
text prompts, so lengths differ). Prints (rank 0) per stage: the loss and gradient norm of both, the plans, and how far
the on-policy log-probs each update hands back (rollout_policy_logprobs) are from a forward pass of their own."""

import json
import sys

import torch
import torch.distributed as dist
from rl_builders import dots_problem
from two_rank_mixed_modality import text_problem

from mmreason.config import Config, ModelConfig
from mmreason.distributed import all_reduce_max, shutdown_distributed
from mmreason.engine import build_engine, full_weights, weights_fingerprint
from mmreason.models import load_policy
from mmreason.rl.loop import plan_micro_batches, rollout_logprobs, update_policy
from mmreason.rl.rollout import generate_rollouts


def fresh_engine(checkpoint, cfg):
    torch.manual_seed(0)
    model, processor = load_policy(ModelConfig(path=checkpoint, freeze_vision=False))
    return build_engine(model, cfg.optim, cfg.train, micro_batch_size=cfg.train.micro_batch_size, grad_accum=4,
                        world_size=2), processor


def main() -> None:
    checkpoint = sys.argv[1]
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    results = {}
    for stage in (2, 3):
        cfg = Config()
        cfg.train.zero_stage, cfg.train.micro_batch_size, cfg.train.max_steps = stage, 2, 1
        cfg.rollout.group_size, cfg.rollout.max_new_tokens, cfg.rollout.repetition_count = 4, 10, 0
        engine, processor = fresh_engine(checkpoint, cfg)
        problems = [dots_problem("a", 1), dots_problem("b", 3)] if rank == 0 else [text_problem(), text_problem()]
        torch.manual_seed(rank)
        with full_weights(engine) as policy:
            rollout = generate_rollouts(policy, processor, problems, cfg.rollout, template="r1_boxed")
        advantages = torch.linspace(-1.0, 1.0, rollout.num_rows)
        # The rollout policy's log-probs from a pass of their own (both engines start from the same weights).
        separate = rollout_logprobs(engine.module, rollout, cfg.train.micro_batch_size, cfg.rollout.temperature)
        response = rollout.response_mask.bool()
        outcome = {}
        for name, budget in (("rows", 0), ("tokens", 90)):
            cfg.train.micro_batch_tokens = budget
            if name == "tokens":
                engine.destroy()
                engine, _ = fresh_engine(checkpoint, cfg)
            plan = plan_micro_batches(rollout, cfg.train.micro_batch_size, budget)
            on_policy = torch.full(rollout.response_mask.shape, float("nan"))
            stats = update_policy(engine, rollout, None, None, advantages, cfg, world_size=2, grad_accum=4,
                                  rollout_policy_logprobs=on_policy)
            gap = torch.nan_to_num((on_policy - separate).abs()[response], nan=float("inf"))  # inf: a row left unfilled
            outcome[name] = {"loss": stats["loss"], "grad_norm": stats["grad_norm"], "plan": [len(r) for r in plan],
                             "fingerprint": weights_fingerprint(engine.module).tolist(),
                             "on_policy_logprob_gap": all_reduce_max(gap.max()), "response_tokens": int(response.sum())}
        engine.destroy()
        results[f"zero{stage}"] = outcome
    if rank == 0:
        print(json.dumps(results), flush=True)
    shutdown_distributed()


if __name__ == "__main__":
    main()
