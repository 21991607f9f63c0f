"""One rank of tests/eval/test_validation.py's two-rank test (run as a script with RANK / WORLD_SIZE / MASTER_* set).

Runs run_validation with synced_gpus=True (generation a collective, as under ZeRO-3) on 5 problems over 2
ranks with batch size 2: unpadded, rank 0 would make 2 generate calls and rank 1 one, leaving rank 0 in a
collective with no peer. Prints the metrics as one JSON line.
"""

import json
import sys

import torch
import torch.distributed as dist
from test_validation import CFG, PROBLEMS

from mmreason.config import ModelConfig, RewardConfig
from mmreason.distributed import shutdown_distributed
from mmreason.eval.validation import run_validation
from mmreason.models import load_policy


def main() -> None:
    dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model, processor = load_policy(ModelConfig(path=sys.argv[1]))
    metrics = run_validation(model, processor, PROBLEMS, CFG, RewardConfig(), template="r1_boxed", system_prompt=None,
                             rank=rank, world_size=world_size, synced_gpus=True)
    print(json.dumps(metrics), flush=True)
    shutdown_distributed()


if __name__ == "__main__":
    main()
