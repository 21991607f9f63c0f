"""One rank of tests/rl/test_dynamic_sampling_ranks.py (run as a script with RANK / WORLD_SIZE / MASTER_* set).

Runs collect_rollout on the real tiny model under a gloo process group, with generation synced across
ranks (synced_gpus, as under ZeRO-3), and prints what the rank collected as one JSON line.

Which groups count as informative is set per rank (argv[3], e.g. "1,0,0,1" means rounds 1 and 4 give
informative groups, rounds 2 and 3 none): a random model's groups are all wrong on every rank, so only
this seam makes the ranks need different numbers of rounds, the case where a rank that stopped early
would leave its peers waiting inside a collective generate.
"""

import json
import sys

import torch
import torch.distributed as dist
from rl_builders import dots_problem

import mmreason.rl.loop as loop
from mmreason.config import Config, ModelConfig
from mmreason.distributed import shutdown_distributed
from mmreason.models import load_policy
from mmreason.rl.sampler import PromptSampler, sample_item


def main() -> None:
    checkpoint, prompts_per_step, informative_by_round = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
    dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    calls = iter(informative_by_round)

    def scripted_informative(accuracy: torch.Tensor) -> torch.Tensor:
        return torch.full((accuracy.shape[0],), next(calls) == "1")

    loop.informative_groups = scripted_informative
    cfg = Config()
    cfg.rollout.prompts_per_step, cfg.rollout.group_size, cfg.rollout.max_new_tokens = prompts_per_step, 2, 8
    cfg.algo.dynamic_sampling, cfg.algo.max_sampling_rounds = True, len(informative_by_round) - 1
    cfg.data.prompt_template = "r1_boxed"
    torch.manual_seed(rank)
    model, processor = load_policy(ModelConfig(path=checkpoint))
    prompts = [dots_problem(f"p{i}", 1 + i % 4) for i in range(prompts_per_step * len(informative_by_round))]
    sampler = PromptSampler([sample_item(p.pid, p.meta, cfg.sampler) for p in prompts], cfg.sampler, seed=0)
    rollout, _rewards, stats, indices = loop.collect_rollout(model, processor, prompts, sampler, cfg, step=0, rank=rank,
                                                   world_size=world_size, synced_gpus=True)
    print(json.dumps({"rank": rank, "rows": rollout.num_rows, "indices": indices,
                      "generated_groups": stats["sampling/generated_groups"],
                      "informative_fraction": stats["sampling/informative_fraction"]}), flush=True)
    shutdown_distributed()


if __name__ == "__main__":
    main()
