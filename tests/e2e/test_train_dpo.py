"""DPO end to end through `deepspeed mmreason/train.py` (stage dpo) on the tiny checkpoint: learning, resume."""

import math
import signal
import subprocess
import sys

import pytest

from mmreason.data.shards import stream_problems, write_shards
from mmreason.metrics import read_metrics
from test_train_sft import deepspeed_launcher, wait_for_checkpoint

SMALL = ["train.batch_size=8", "train.micro_batch_size=2", "optim.warmup_steps=0", "optim.schedule=constant",
         "data.eval=null", "data.max_length=256", "dpo.sft_weight=0"]  # plain DPO: the loss is the DPO loss alone


@pytest.fixture(scope="module")
def pairs(corpus, tmp_path_factory):
    """24 pairs from the warmup replies: chosen = the verified reply, rejected = the same reply restating its check
    three more times and boxing a wrong answer (longer and wrong, as k1.5's negatives are)."""
    out = tmp_path_factory.mktemp("pairs")
    records = []
    for problem in list(stream_problems(str(corpus / "warmup"), rank=0, world_size=1))[:24]:
        body, _, _ = problem.solution.rpartition("\\boxed{")
        rejected = body.replace("</think>", "Check: once more.\n" * 3 + "</think>") + "\\boxed{999}"
        records.append(problem.copy(meta=dict(problem.meta, rejected=rejected)))
    write_shards(records, out, shard_size=12)
    return out


def dpo_command(pairs, checkpoint, out, *extra, launcher=(sys.executable,)):
    return [*launcher, "mmreason/train.py", "--config", "configs/quickstart/dpo.yaml", f"model.path={checkpoint}",
            f"data.train={pairs}", f"train.output_dir={out}", *SMALL, *extra]


def test_two_ranks_loss_falls_and_margin_grows(pairs, tiny_checkpoint, tmp_path, repo_root):
    out = tmp_path / "dpo"
    cmd = dpo_command(pairs, tiny_checkpoint, out, "train.max_steps=8", "train.save_every=0", "optim.lr=1e-3",
                      launcher=deepspeed_launcher())
    result = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == list(range(1, 9))
    for record in metrics:
        for key in ("dpo/loss", "dpo/reward_margin", "dpo/accuracy", "dpo/chosen_length", "dpo/rejected_length",
                    "grad_norm", "lr"):
            assert math.isfinite(record[key]), (key, record)
    # Step 1: the policy is its frozen reference, so every margin is 0 and the loss is log 2.
    assert metrics[0]["dpo/loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert metrics[0]["dpo/reward_margin"] == pytest.approx(0.0, abs=1e-5)
    assert metrics[0]["dpo/rejected_length"] > metrics[0]["dpo/chosen_length"]
    assert metrics[-1]["dpo/loss"] < 0.8 * math.log(2), [m["dpo/loss"] for m in metrics]
    assert metrics[-1]["dpo/reward_margin"] > 0.1, [m["dpo/reward_margin"] for m in metrics]
    assert metrics[-1]["ranks/weight_max_diff"] == 0.0
    assert (out / "hf" / "latest" / "config.json").is_file()


def test_killed_run_resumes_exactly(pairs, tiny_checkpoint, tmp_path, repo_root):
    # precomputed reference here (the frozen one runs above): computed from the start checkpoint again on resume
    args = ["train.max_steps=4", "train.save_every=2", "dpo.reference=precomputed", "optim.lr=1e-3"]
    straight = tmp_path / "straight"
    subprocess.run(dpo_command(pairs, tiny_checkpoint, straight, *args), cwd=repo_root, check=True, capture_output=True)

    interrupted = tmp_path / "interrupted"
    cmd = dpo_command(pairs, tiny_checkpoint, interrupted, *args)
    process = subprocess.Popen(cmd, cwd=repo_root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_checkpoint(interrupted, "step-2", process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    subprocess.run(cmd, cwd=repo_root, check=True, capture_output=True)

    expected = read_metrics(straight / "metrics.jsonl")
    resumed = read_metrics(interrupted / "metrics.jsonl")
    assert [m["step"] for m in resumed] == [m["step"] for m in expected] == [1, 2, 3, 4]
    for a, b in zip(expected, resumed):
        for key in ("dpo/loss", "dpo/reward_margin", "dpo/chosen_logp", "dpo/rejected_logp", "grad_norm"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (a["step"], key, a[key], b[key])
