"""DAPO dynamic sampling on two ranks whose groups turn informative in different rounds (real tiny model, gloo).

Every rank must run the same number of sampling rounds: generation is a collective under ZeRO-3, so a
rank that stopped once it had its groups would leave the other in generate with no peer (it then fails
when the finished rank leaves the process group, or hangs until the timeout here).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from mmreason.ports import free_port

WORKER = Path(__file__).with_name("two_rank_dynamic_sampling.py")


def run_two_ranks(checkpoint, prompts_per_step, rounds_by_rank, repo_root):
    port = str(free_port())
    procs = []
    for rank, rounds in enumerate(rounds_by_rank):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": port, "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, str(WORKER), str(checkpoint), str(prompts_per_step), rounds],
                                      cwd=repo_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            proc.kill()
    return results


def test_ranks_run_the_same_rounds_when_one_has_its_groups_early(tiny_checkpoint, repo_root):
    # Rank 0 has informative groups in round 1; rank 1 only in round 3 (of at most 4).
    rank0, rank1 = run_two_ranks(tiny_checkpoint, 4, ["1,1,1,1", "0,0,1,1"], repo_root)
    per_rank = 2
    for result in (rank0, rank1):
        assert result["rows"] == per_rank * 2  # group size 2
        assert result["informative_fraction"] == 1.0
        # Three rounds on both ranks: rank 0 keeps drawing (and discarding) while rank 1 still needs groups.
        assert result["generated_groups"] == 3 * per_rank
    # Each round every rank takes its share of one global draw, so the ranks never train on the same prompt;
    # rank 0 keeps its round-1 prompts, rank 1 its round-3 prompts.
    assert not set(rank0["indices"]) & set(rank1["indices"])


def test_ranks_fill_up_with_uninformative_groups_when_rounds_run_out(tiny_checkpoint, repo_root):
    # Rank 1 never sees an informative group: after the last round it trains on zero-advantage groups.
    rank0, rank1 = run_two_ranks(tiny_checkpoint, 4, ["1,1", "0,0"], repo_root)
    assert rank0["generated_groups"] == rank1["generated_groups"] == 4
    assert rank0["informative_fraction"] == 1.0 and rank1["informative_fraction"] == 0.0
    assert rank0["rows"] == rank1["rows"] == 4
