"""Two-rank RL through `deepspeed mmreason/train.py ... rollout.engine=vllm` on the tiny checkpoint.

Carries the `vllm` marker (deselected by the base `pytest -q`; CI runs `pytest -q -m vllm tests/engines` in the
engine's virtualenv). Each rank starts its own engine (pinned to its own core), syncs it after every update and
logs rollout/logprob_diff.
"""

import math
import subprocess

import pytest
from engine_helpers import deepspeed_launcher

from mmreason.metrics import read_metrics

pytestmark = pytest.mark.vllm


def test_two_rank_rl_with_the_vllm_engine(small_corpus, tiny_checkpoint, tmp_path, repo_root):
    out = tmp_path / "rl_vllm"
    cmd = [*deepspeed_launcher(2), "mmreason/train.py", "--config", "configs/quickstart/rl_vision.yaml",
           f"model.path={tiny_checkpoint}", "model.dtype=float32", f"data.train={small_corpus / 'train'}",
           f"data.eval={small_corpus / 'heldout'}", f"train.output_dir={out}", "rollout.engine=vllm",
           "algo.dynamic_sampling=false", "rollout.prompts_per_step=4", "rollout.group_size=4",
           "rollout.max_new_tokens=16", "train.micro_batch_size=4", "train.max_steps=3", "train.save_every=0",
           "eval.num_problems=4", "eval.max_new_tokens=8", "eval.batch_size=4"]
    result = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3]
    for record in metrics:
        for key in ("rollout/logprob_diff", "time/weight_sync", "tokens_per_s", "loss"):
            assert math.isfinite(record[key]), (key, record[key])
        # Synced every step: the sampler's log-probs are the trainer's up to the masked vision tokens (< 0.05).
        assert record["rollout/logprob_diff"] < 0.05, record["rollout/logprob_diff"]
    assert metrics[-1]["ranks/weight_max_diff"] == 0.0
    assert (out / "hf" / "latest" / "config.json").is_file()
