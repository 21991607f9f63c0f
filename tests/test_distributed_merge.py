"""all_gather_merged over two real gloo ranks: the union of what each rank saw (SFT's samples_lost_to_truncation)."""

import json
import os
import subprocess
import sys

from mmreason.distributed import all_gather_merged
from mmreason.ports import free_port

RANK_SCRIPT = """
import json, os, sys
import torch.distributed as dist
from mmreason.data.shards import SkipCounter
from mmreason.distributed import all_gather_merged
dist.init_process_group("gloo")
rank = dist.get_rank()
# Each rank read its own shards (the shard split) and one both read (the sample split): each truncated shard's loss
# must count once.
seen = {0: {"a.tar": 3, "both.tar": 5, "unknown.tar": None}, 1: {"b.tar": 7, "both.tar": 5}}[rank]
merged = all_gather_merged(seen)
print(json.dumps({"merged": merged, "lost": SkipCounter(truncated=merged).lost}), flush=True)
dist.destroy_process_group()
"""


def test_merged_over_two_gloo_ranks(tmp_path):
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2"}
    procs = [subprocess.Popen([sys.executable, "-c", RANK_SCRIPT], env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    outs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr[-2000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    expected = {"a.tar": 3, "b.tar": 7, "both.tar": 5, "unknown.tar": None}
    for out in outs:
        assert out["merged"] == expected
        assert out["lost"] == 15  # 3 + 7 + 5: the shard both ranks read once, the unknown loss not guessed


def test_merged_without_a_process_group_is_a_copy():
    mine = {"a.tar": 2}
    merged = all_gather_merged(mine)
    assert merged == mine and merged is not mine
