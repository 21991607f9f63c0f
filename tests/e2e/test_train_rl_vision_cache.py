"""The image-feature cache through `deepspeed mmreason/train.py` on two ranks under ZeRO-3, with the tower frozen and
the merger trained (the real-scale setting), k1.5 with a snapshot reference and two PPO epochs: the run finishes
with equal weights on both ranks, later steps hit the cache, and step 1 (same rollout either way) has the loss and
KL of the same run with the cache off."""

import math
import subprocess

import pytest

from mmreason.metrics import read_metrics
from test_train_rl import rl_command
from test_train_sft import deepspeed_launcher

SETTING = ["algo.name=k15", "algo.reference_refresh_every=2", "algo.ppo_epochs=2", "train.zero_stage=3",
           "model.freeze_vision=true", "model.freeze_merger=false", "train.max_steps=3", "train.save_every=0",
           "rollout.prompts_per_step=2", "train.micro_batch_size=2"]


def run(corpus, checkpoint, out, repo_root, cache_mib):
    cmd = rl_command(corpus, checkpoint, out, *SETTING, f"model.image_feature_cache_mib={cache_mib}",
                     launcher=deepspeed_launcher())
    result = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3]
    assert metrics[-1]["ranks/weight_max_diff"] == 0.0
    assert all(math.isfinite(m["loss"]) for m in metrics)
    return metrics


def test_rl_run_with_the_cache_matches_the_run_without(corpus, tiny_checkpoint, tmp_path, repo_root):
    cached = run(corpus, tiny_checkpoint, tmp_path / "cache", repo_root, 64)
    plain = run(corpus, tiny_checkpoint, tmp_path / "plain", repo_root, 0)
    assert cached[0]["vision_cache/misses"] > 0 and cached[0]["vision_cache/hits"] == 0
    assert 0 < cached[-1]["vision_cache/mib"] <= 64
    assert "time/encode_images" in cached[0] and "vision_cache/hits" not in plain[0]
    # step 1 samples the same rollout either way: the same rewards, and the update's entropy (a function of the
    # image features through every response token), loss and KL to float tolerance
    assert cached[0]["reward/mean"] == plain[0]["reward/mean"]
    assert cached[0]["entropy"] > 0
    for key in ("entropy", "loss", "kl"):
        assert cached[0][key] == pytest.approx(plain[0][key], rel=1e-4, abs=1e-6), key


def test_partial_rollouts_behaviour_pass_uses_the_cache(corpus, tiny_checkpoint, tmp_path, repo_root):
    """k1.5 partial rollouts: the behaviour pass of a step's new tokens takes the frozen tower's features from the
    cache too, so the update of the same step already hits it, and the update's log-probs (the importance ratio's
    numerator) equal the behaviour log-probs for tokens sampled by the same policy."""
    out = tmp_path / "partial"
    cmd = rl_command(corpus, tiny_checkpoint, out, "algo.name=grpo", "rollout.partial_enabled=true",
                     "rollout.partial_segment_tokens=4", "rollout.partial_max_segments=8",
                     "rollout.partial_train_old_segments=false", "model.freeze_vision=true", "train.max_steps=2",
                     "train.save_every=0", "train.eval_every=0", "data.eval=null", "model.image_feature_cache_mib=64",
                     launcher=deepspeed_launcher())
    result = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    first = metrics[0]
    # the behaviour pass missed and encoded, the update's encode of the trained groups then hit
    assert first["vision_cache/misses"] > 0 and first["vision_cache/hits"] > 0
    for m in metrics:  # only this step's tokens train, each sampled by the policy being updated: ratio 1
        assert m["ratio_mean"] == pytest.approx(1.0, abs=1e-4), (m["step"], m["ratio_mean"])
