"""Two-rank RL through `deepspeed mmreason/train.py ... rollout.engine=vllm` on the tiny checkpoint.

Carries the `vllm` marker (deselected by the base `pytest -q`; CI runs `pytest -q -m vllm tests/engines` in the
engine's virtualenv). Each rank starts its own engine (pinned to its own core), syncs it after every update and
logs rollout/logprob_diff.
"""

import math
import subprocess
import sys

import pytest
from engine_helpers import deepspeed_launcher

from mmreason.metrics import read_metrics

pytestmark = pytest.mark.vllm


@pytest.mark.parametrize("own_process", [False, True], ids=["engine-in-rank-process", "engine-own-process"])
def test_two_rank_rl_with_the_vllm_engine(small_corpus, tiny_checkpoint, tmp_path, repo_root, own_process):
    out = tmp_path / "rl_vllm"
    cmd = [*deepspeed_launcher(2), "mmreason/train.py", "--config", "configs/quickstart/rl_vision.yaml",
           f"model.path={tiny_checkpoint}", "model.dtype=float32", f"data.train={small_corpus / 'train'}",
           f"data.eval={small_corpus / 'heldout'}", f"train.output_dir={out}", "rollout.engine=vllm",
           "algo.dynamic_sampling=false", "rollout.prompts_per_step=4", "rollout.group_size=4",
           "rollout.max_new_tokens=16", "train.micro_batch_size=4", "train.max_steps=3", "train.save_every=0",
           "eval.num_problems=4", "eval.max_new_tokens=8", "eval.batch_size=4", f"rollout.vllm_own_process={own_process}"]
    result = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    # by default each rank's engine runs in the rank's process, in the trainer's process group (external-launcher
    # mode, weights synced in memory); asked for, in a process of its own (weights synced through disk)
    in_trainer_world = "'distributed_executor_backend': 'external_launcher'" in result.stderr
    assert in_trainer_world != own_process, result.stderr[-4000:]
    # eval.engine unset: validation follows rollout.engine and reuses the rollout engine
    assert "validation: 4 problems on the vllm engine (the rollout engine)" in result.stderr, result.stderr[-4000:]
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3]
    for record in metrics:
        for key in ("rollout/logprob_diff", "time/weight_sync", "tokens_per_s", "loss"):
            assert math.isfinite(record[key]), (key, record[key])
        # Synced every step: the sampler's log-probs are the trainer's up to the masked vision tokens (< 0.05).
        assert record["rollout/logprob_diff"] < 0.05, record["rollout/logprob_diff"]
        assert record["rollout/logprob_diff"] <= record["rollout/logprob_diff_max"] < 1.0, record
    assert metrics[-1]["ranks/weight_max_diff"] == 0.0
    assert (out / "hf" / "latest" / "config.json").is_file()


def test_validation_on_its_own_vllm_engine_matches_hf(small_corpus, tiny_checkpoint, tmp_path, repo_root):
    """eval.engine=vllm where the recipe does not sample with vllm (here RL with the hf engine; SFT and DPO take the
    same path, recipe.Validator): validation builds its own engine, syncs it the trained weights and scores greedy
    replies as hf does on the same weights."""
    evals = {}
    for engine in ("hf", "vllm"):
        out = tmp_path / f"eval_{engine}"
        cmd = [sys.executable, "mmreason/train.py", "--config", "configs/quickstart/rl_vision.yaml",
               f"model.path={tiny_checkpoint}", "model.dtype=float32", f"data.train={small_corpus / 'train'}",
               f"data.eval={small_corpus / 'heldout'}", f"train.output_dir={out}", "rollout.engine=hf",
               f"eval.engine={engine}", "eval.temperature=0", "algo.dynamic_sampling=false", "rollout.prompts_per_step=2",
               "rollout.group_size=4", "rollout.max_new_tokens=16", "train.micro_batch_size=4", "train.max_steps=1",
               "train.save_every=0", "eval.num_problems=8", "eval.max_new_tokens=12", "eval.batch_size=8",
               "optim.lr=1e-2"]  # a large step, so an engine left with the start checkpoint's weights would differ
        result = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-4000:]
        own_engine = "on the vllm engine (its own, asleep between validations)" in result.stderr
        assert own_engine == (engine == "vllm"), result.stderr[-4000:]
        evals[engine] = {k: v for k, v in read_metrics(out / "metrics.jsonl")[-1].items() if k.startswith("eval/")}
    assert set(evals["vllm"]) == {"eval/accuracy", "eval/format", "eval/response_length"}
    for key, value in evals["hf"].items():
        assert abs(evals["vllm"][key] - value) <= (0.5 if key == "eval/response_length" else 0.125), (key, evals)
