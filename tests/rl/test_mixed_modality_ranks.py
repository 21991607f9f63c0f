"""One RL update whose ranks hold different modalities: rank 0 an image prompt, rank 1 a text-only or a two-image
prompt, under ZeRO-2 and ZeRO-3, for every combination of a frozen or trained vision tower and merger (real tiny
model, two gloo ranks).

A rank whose micro-batch has no image never runs the vision tower unless told to: under ZeRO-2 its gradient
buckets then miss the merger's (or tower's) gradients and the all-reduce fails on mismatched sizes; under ZeRO-3
the other rank waits forever for it to gather the vision parameters. Both ranks must finish with equal weights.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmreason.ports import free_port

HERE = Path(__file__).parent


def run_workers(worker, args, repo_root, timeout=300):
    """Run tests/rl/`worker` on two gloo ranks; rank 0's last stdout line, parsed as JSON."""
    port = str(free_port())
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": port, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE)}
        procs.append(subprocess.Popen([sys.executable, str(HERE / worker), *args], cwd=repo_root,
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outputs = [proc.communicate(timeout=timeout) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    for rank, (proc, (_out, err)) in enumerate(zip(procs, outputs)):
        assert proc.returncode == 0, f"rank {rank}: " + err[-3000:]
    return json.loads(outputs[0][0].strip().splitlines()[-1])


@pytest.mark.parametrize("stage, other", [(2, "text"), (3, "text"), (2, "two_images")])
def test_ranks_with_different_modalities_update_alike(tiny_checkpoint, repo_root, stage, other):
    differences = run_workers("two_rank_mixed_modality.py", [str(tiny_checkpoint), str(stage), other], repo_root)
    assert len(differences) == 4
    for combination, difference in differences.items():
        assert difference == 0.0, (combination, difference)
