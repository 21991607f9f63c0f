"""The validation hook on the real tiny model: it scores what the generation interface returns."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from mmreason.config import EvalConfig, ModelConfig, RewardConfig
from mmreason.ports import free_port
from mmreason.eval.validation import rank_share, run_validation
from mmreason.generation import generate_samples
from mmreason.models import load_policy
from mmreason.problem import Problem
from mmreason.rewards import score

WORKER = Path(__file__).with_name("two_rank_validation.py")


def dots_problem(pid: str, n: int) -> Problem:
    image = Image.new("RGB", (112, 112), "white")
    for i in range(n):
        ImageDraw.Draw(image).ellipse((10 + 25 * i, 40, 28 + 25 * i, 58), fill="black")
    return Problem(pid=pid, question="How many dots?", answer=str(n), answer_type="integer", images=[image])


PROBLEMS = [dots_problem(f"p{i}", 1 + i % 3) for i in range(5)]
CFG = EvalConfig(num_problems=5, batch_size=2, max_new_tokens=6, temperature=0.0)


@pytest.fixture(scope="module")
def policy(tiny_checkpoint):
    torch.manual_seed(0)
    return load_policy(ModelConfig(path=str(tiny_checkpoint)))


def test_rank_share_pads_to_equal_lengths_only_when_asked():
    assert [p.pid for p in rank_share(PROBLEMS, 1, 2)] == ["p1", "p3"]
    assert [p.pid for p in rank_share(PROBLEMS, 1, 2, equal=True)] == ["p1", "p3", "p0"]  # ceil(5 / 2) = 3
    assert [p.pid for p in rank_share(PROBLEMS, 0, 2, equal=True)] == ["p0", "p2", "p4"]
    assert [p.pid for p in rank_share(PROBLEMS[:1], 1, 2, equal=True)] == ["p0"]  # a rank with none still generates


def test_metrics_are_the_rewards_of_the_generated_samples(policy):
    model, processor = policy
    samples = generate_samples(model, processor, PROBLEMS, template="r1_boxed", max_new_tokens=CFG.max_new_tokens,
                               batch_size=CFG.batch_size)
    reward = RewardConfig()
    scores = [score(s.text, p, reward) for (s,), p in zip(samples, PROBLEMS)]
    expected = {
        "eval/accuracy": sum(s.accuracy for s in scores) / 5,
        "eval/format": sum(s.format for s in scores) / 5,
        "eval/response_length": sum(s.num_tokens for (s,) in samples) / 5,
    }
    got = run_validation(model, processor, PROBLEMS, CFG, reward, template="r1_boxed", system_prompt=None,
                         rank=0, world_size=1)
    assert got == pytest.approx(expected)
    assert 0 < got["eval/response_length"] <= CFG.max_new_tokens


def test_two_ranks_synced_match_one_process(policy, tiny_checkpoint, repo_root):
    """synced_gpus on two ranks with uneven shares (3 and 2 problems, batch size 2) finishes, and the metrics
    summed over ranks equal one process's (the padding problem rank 1 generates for is not scored)."""
    model, processor = policy
    alone = run_validation(model, processor, PROBLEMS, CFG, RewardConfig(), template="r1_boxed", system_prompt=None,
                           rank=0, world_size=1)
    port = str(free_port())
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
               "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
        procs.append(subprocess.Popen([sys.executable, str(WORKER), str(tiny_checkpoint)], cwd=repo_root, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outputs = []
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-3000:]
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            proc.kill()
    assert outputs[0] == outputs[1]
    assert outputs[0] == pytest.approx(alone)
