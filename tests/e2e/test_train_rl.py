"""RL end to end through `deepspeed mmreason/train.py` on the tiny checkpoint: every algorithm, resume."""

import json
import math
import signal
import subprocess
import sys

import pytest

from mmreason.metrics import read_metrics
from test_train_sft import deepspeed_launcher, wait_for_checkpoint

REQUIRED_METRICS = [
    "step", "reward/mean", "reward/accuracy", "reward/format", "reward/length", "reward/verify_timeouts", "response_length/mean", "loss", "kl",
    "clip_fraction", "entropy", "grad_norm", "time/generate", "time/reward", "time/update", "tokens_per_s",
]
# The quickstart's dynamic sampling is off unless the algorithm asks for it: a random model's groups score
# alike, and resampling them would only slow the test down.
SMALL = ["algo.dynamic_sampling=false", "rollout.prompts_per_step=4", "rollout.group_size=4",
         "rollout.max_new_tokens=16", "train.micro_batch_size=4", "eval.num_problems=4", "eval.max_new_tokens=8", "eval.batch_size=4"]
ALGORITHMS = {
    # A reward term of the user's own, by path, and R1's language-consistency term, each logged as its own metric.
    # Also the run's console and samples (issue 29): a line every 2 steps, samples every 3, hf/step-3 and -6 kept.
    "grpo": ["algo.beta=0.04", "reward.function=examples/reward_function/unit_mentioned.py:unit_mentioned",
             "reward.function_weight=0.1", "reward.language_consistency_weight=0.05", "train.log_every=2",
             "train.log_samples_every=3", "train.keep_hf_every=3"],
    # ZeRO-3 here: generation is then a collective across ranks (synced_gpus), and dynamic sampling's
    # extra rounds must stay in step on every rank.
    "dapo": ["algo.clip_eps_high=0.28", "algo.dynamic_sampling=true", "algo.max_sampling_rounds=1", "reward.overlong_buffer=4",
             "train.zero_stage=3"],
    # Two passes per batch: the second one's ratios are against the rollout policy's own forward pass.
    "dr_grpo": ["algo.ppo_epochs=2"],
    "k15": ["reward.length_penalty_weight=0.2", "algo.reference_refresh_every=2", "algo.reset_optimizer_each_iteration=true"],
}


def rl_command(corpus, checkpoint, out, *extra, launcher=(sys.executable,)):
    return [*launcher, "mmreason/train.py", "--config", "configs/quickstart/rl_vision.yaml", f"model.path={checkpoint}",
            f"data.train={corpus / 'train'}", f"data.eval={corpus / 'heldout'}", f"train.output_dir={out}", *SMALL, *extra]


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_each_algorithm_on_two_ranks(algo, corpus, tiny_checkpoint, tmp_path, repo_root):
    out = tmp_path / algo
    cmd = rl_command(corpus, tiny_checkpoint, out, f"algo.name={algo}", "train.max_steps=6", "train.save_every=3",
                     *ALGORITHMS[algo], launcher=deepspeed_launcher())
    result = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == list(range(1, 7))
    for record in metrics:
        for key in REQUIRED_METRICS:
            assert key in record, key
            assert math.isfinite(record[key]), (key, record[key])
    assert metrics[-1]["ranks/weight_max_diff"] == 0.0
    assert "eval/accuracy" in metrics[-1]
    if algo == "grpo":
        for record in metrics:
            assert 0.0 <= record["reward/unit_mentioned"] <= 1.0
            assert 0.0 <= record["reward/language"] <= 1.0
        console = [line for line in result.stderr.splitlines() if "| reward/mean " in line]
        assert [line.split("step ")[1].split("/")[0] for line in console] == ["2", "4", "6"], console
        assert "\r" not in result.stderr  # no progress bar off a terminal
        samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
        assert sorted({s["step"] for s in samples}) == [3, 6]
        for sample in samples:
            assert {"pid", "prompt", "response", "answer", "extracted", "reward", "terms", "reason"} <= set(sample)
            assert "unit_mentioned" in sample["terms"] and "<image>" not in sample["response"]
        for kept in ("step-3", "step-6", "latest"):
            generation = json.loads((out / "hf" / kept / "mmreason_generation.json").read_text())
            assert generation["template"] == "r1_boxed" and generation["max_new_tokens"] == 16
            assert (out / "hf" / kept / "config.json").is_file()
    assert (out / "hf" / "latest" / "config.json").is_file()


def test_k15_with_the_rollout_policy_as_reference(corpus, tiny_checkpoint, tmp_path, repo_root):
    # reference_refresh_every 1: no snapshot, the reference is the policy that sampled, taken from the
    # training forward itself (no log-prob pass of its own), so the log-prob phase has nothing to do.
    out = tmp_path / "k15_every_step"
    cmd = rl_command(corpus, tiny_checkpoint, out, "algo.name=k15", "algo.reference_refresh_every=1",
                     "reward.length_penalty_weight=0.2", "train.max_steps=2")
    result = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    for record in metrics:
        assert math.isfinite(record["loss"]) and math.isfinite(record["grad_norm"])
        assert record["time/logprobs"] < 0.01, record["time/logprobs"]
    # Step 1's responses differ in length, so the length reward gives a gradient (step 2's, all cut at the
    # same length, may not).
    assert metrics[0]["grad_norm"] > 0


def test_killed_run_resumes_same_steps_and_sampler_state(corpus, tiny_checkpoint, tmp_path, repo_root):
    args = ["algo.name=grpo", "sampler.strategy=prioritized", "train.max_steps=4", "train.save_every=2",
            "train.eval_every=0", "data.eval=null"]
    straight = tmp_path / "straight"
    subprocess.run(rl_command(corpus, tiny_checkpoint, straight, *args), cwd=repo_root, check=True, capture_output=True)

    interrupted = tmp_path / "interrupted"
    cmd = rl_command(corpus, tiny_checkpoint, interrupted, *args)
    process = subprocess.Popen(cmd, cwd=repo_root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_checkpoint(interrupted, "step-2", process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    subprocess.run(cmd, cwd=repo_root, check=True, capture_output=True)

    expected = read_metrics(straight / "metrics.jsonl")
    resumed = read_metrics(interrupted / "metrics.jsonl")
    assert [m["step"] for m in resumed] == [m["step"] for m in expected] == [1, 2, 3, 4]
    for a, b in zip(expected, resumed):
        # Same prompts (sampler state restored) and same samples (RNG restored): same rewards and losses.
        for key in ("reward/mean", "reward/accuracy", "response_length/mean", "loss", "sampler/mean_success"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (a["step"], key, a[key], b[key])


def test_partial_rollouts_finish_across_steps_and_resume_exactly(corpus, tiny_checkpoint, tmp_path, repo_root):
    # Segments of 4 tokens against responses of up to 16: a trajectory needs up to 4 rounds, so groups wait in the
    # buffer and finish in later steps. Killed after the step-2 checkpoint, the resumed run continues the same
    # unfinished trajectories and reproduces the uninterrupted run's metrics.
    args = ["algo.name=grpo", "rollout.partial_enabled=true", "rollout.partial_segment_tokens=4",
            "rollout.partial_max_segments=8", "rollout.partial_buffer_share=0.5", "train.max_steps=4",
            "train.save_every=2", "train.eval_every=0", "data.eval=null"]
    straight = tmp_path / "straight"
    result = subprocess.run(rl_command(corpus, tiny_checkpoint, straight, *args, launcher=deepspeed_launcher()),
                            cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = read_metrics(straight / "metrics.jsonl")
    assert [m["step"] for m in expected] == [1, 2, 3, 4]
    assert sum(m["partial/finished_from_buffer"] for m in expected) > 0
    assert max(m["partial/buffer_groups"] for m in expected) > 0  # groups still in flight between steps
    assert all(m["partial/tokens_generated"] > 0 for m in expected)

    interrupted = tmp_path / "interrupted"
    cmd = rl_command(corpus, tiny_checkpoint, interrupted, *args, launcher=deepspeed_launcher())
    process = subprocess.Popen(cmd, cwd=repo_root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_checkpoint(interrupted, "step-2", process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    subprocess.run(cmd, cwd=repo_root, check=True, capture_output=True)
    resumed = read_metrics(interrupted / "metrics.jsonl")
    assert [m["step"] for m in resumed] == [1, 2, 3, 4]
    for a, b in zip(expected, resumed):
        for key in ("reward/mean", "response_length/mean", "loss", "partial/buffer_groups", "partial/tokens_generated",
                    "partial/finished_from_buffer"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (a["step"], key, a[key], b[key])
