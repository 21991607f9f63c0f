"""Under a distributed trainer each rank's vLLM engine runs in the rank's process in external-launcher mode, inside
the trainer's process group. The RL loop relies on that engine issuing no collective while it generates: ranks sample
different prompts, numbers of rounds and lengths. Two gloo ranks generate 1 vs 3 calls (4 vs 24 tokens per response,
text vs image prompts); a collective inside generation would leave them waiting on each other until the timeout."""

import json
import subprocess
from pathlib import Path

import pytest
from engine_helpers import deepspeed_launcher

pytestmark = pytest.mark.vllm

WORKER = Path(__file__).with_name("two_rank_uneven_generation.py")


def test_ranks_generate_unevenly_in_the_trainers_process_group(tiny_checkpoint, repo_root):
    result = subprocess.run([*deepspeed_launcher(2), str(WORKER), str(tiny_checkpoint)], cwd=repo_root,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
    assert report["placement"] == "trainer-world"
    assert report["ranks"] == [{"calls": 1, "tokens": 1 * 2 * 4}, {"calls": 3, "tokens": (2 + 3 + 1) * 2 * 24}]
