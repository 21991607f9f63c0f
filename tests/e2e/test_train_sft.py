"""Warmup SFT end to end through the real command lines: synth -> build_warmup -> train.py (1 and 2 ranks)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from pathlib import Path

from mmreason.ports import free_port
from mmreason.metrics import read_metrics
from shard_surgery import cut_after_sample, sample_count



def deepspeed_launcher(num_ranks: int = 2) -> tuple[str, ...]:
    """The launcher installed next to this interpreter (the virtualenv's), as a user would call it,
    on a free port so that concurrent launches on one machine do not collide on the default 29500."""
    return (str(Path(sys.executable).with_name("deepspeed")), "--num_gpus", str(num_ranks),
            "--master_port", str(free_port()))

SFT_ARGS = [
    "train.batch_size=16", "train.micro_batch_size=4", "eval.num_problems=8", "eval.max_new_tokens=24",
    "eval.batch_size=8", "data.shuffle_buffer=50", "optim.warmup_steps=2",
]


def sft_command(corpus, tiny_checkpoint, out, *extra, launcher=(sys.executable,)):
    return [*launcher, "mmreason/train.py", "--config", "configs/quickstart/sft_warmup.yaml",
            f"model.path={tiny_checkpoint}", f"data.train={corpus / 'warmup'}", f"data.eval={corpus / 'heldout'}",
            f"train.output_dir={out}", *SFT_ARGS, *extra]


def test_two_ranks_loss_falls_and_weights_agree(corpus, tiny_checkpoint, tmp_path, repo_root):
    out = tmp_path / "run"
    launcher = deepspeed_launcher()
    cmd = sft_command(corpus, tiny_checkpoint, out, "train.max_steps=20", "train.save_every=0", launcher=launcher)
    subprocess.run(cmd, cwd=repo_root, check=True, capture_output=True)
    # DeepSpeed's CPU shared-memory all-reduce buffers (69 MB of RAM each) are not left behind in /dev/shm.
    port = launcher[launcher.index("--master_port") + 1]
    assert not list(Path("/dev/shm").glob(f"deepspeed_allreduce_buffer_*_{port}_*"))
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == list(range(1, 21))
    losses = [m["loss"] for m in metrics]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses
    for key in ("lr", "grad_norm", "tokens_per_s", "padding_fraction"):
        assert all(key in m for m in metrics)
    assert metrics[-1]["ranks/weight_max_diff"] == 0.0  # both ranks hold identical weights
    assert 0 <= metrics[-1]["eval/format"] <= 1 and "eval/accuracy" in metrics[-1]
    assert (out / "config.yaml").is_file() and (out / "checkpoints" / "latest").is_file()

    # The HF export loads in a fresh process and generates.
    script = (
        "import sys; from transformers import AutoModelForImageTextToText, AutoProcessor\n"
        "m = AutoModelForImageTextToText.from_pretrained(sys.argv[1]); p = AutoProcessor.from_pretrained(sys.argv[1])\n"
        "ids = p.tokenizer('<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n', return_tensors='pt')\n"
        "out = m.generate(**ids, max_new_tokens=4, do_sample=False)\n"
        "print(out.shape[1] > ids['input_ids'].shape[1])\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(out / "hf" / "latest")], check=True,
                            capture_output=True, text=True)
    assert result.stdout.strip().endswith("True")


def wait_for_checkpoint(run_dir, tag, process, timeout=600):
    latest = run_dir / "checkpoints" / "latest"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if latest.is_file() and latest.read_text().strip() == tag:
            return
        if process.poll() is not None:
            raise AssertionError(f"run ended (rc={process.returncode}) before checkpoint {tag}")
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint {tag} within {timeout} s")


def kill_after_step_2_and_resume(make_cmd, run_dir, repo_root) -> None:
    """Run `make_cmd()`, kill it (SIGKILL to it and every process it started) once checkpoint step-2 is written,
    then run `make_cmd()` again, which must continue from step 2 rather than start over."""
    process = subprocess.Popen(make_cmd(), cwd=repo_root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    wait_for_checkpoint(run_dir, "step-2", process)
    os.killpg(process.pid, signal.SIGKILL)  # a deepspeed launcher and its ranks too
    process.wait()
    assert read_metrics(run_dir / "metrics.jsonl")[-1]["step"] < 6, "the run finished before it could be killed"
    again = subprocess.run(make_cmd(), cwd=repo_root, check=True, capture_output=True, text=True)
    assert "resumed from step 2" in again.stdout + again.stderr


def assert_same_six_steps(straight, resumed_dir) -> None:
    expected = read_metrics(straight / "metrics.jsonl")
    resumed = read_metrics(resumed_dir / "metrics.jsonl")
    assert [m["step"] for m in resumed] == [m["step"] for m in expected] == list(range(1, 7))
    for a, b in zip(expected, resumed):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-6), (a["step"], a["loss"], b["loss"])
        assert a["lr"] == pytest.approx(b["lr"])
        assert a["reply_tokens"] == b["reply_tokens"]


def test_killed_run_resumes_with_same_steps_and_losses(corpus, tiny_checkpoint, tmp_path, repo_root):
    steps = ["train.max_steps=6", "train.save_every=2"]
    straight = tmp_path / "straight"
    subprocess.run(sft_command(corpus, tiny_checkpoint, straight, *steps), cwd=repo_root, check=True, capture_output=True)
    interrupted = tmp_path / "interrupted"
    kill_after_step_2_and_resume(lambda: sft_command(corpus, tiny_checkpoint, interrupted, *steps), interrupted,
                                 repo_root)
    assert_same_six_steps(straight, interrupted)


def warmup_in_shards(corpus, out, repo_root):
    """The warmup set of corpus/train in shards of 40 samples (at least 4, so two ranks can split them)."""
    subprocess.run([sys.executable, "data_prep/build_warmup.py", "--config", "configs/quickstart/warmup.yaml",
                    f"input={corpus / 'train'}", f"output={out}", "shard_size=40"], cwd=repo_root, check=True,
                   capture_output=True)
    assert len(list(out.glob("*.tar"))) >= 4
    return out


def test_two_ranks_under_the_shard_split_resume_exactly(corpus, tiny_checkpoint, tmp_path, repo_root):
    """Two ranks each reading whole shards of their own (data.split=shard), killed after the step-2 checkpoint and
    resumed: the same steps and losses as the uninterrupted run (each rank's shard position is in the checkpoint)."""
    warmup = warmup_in_shards(corpus, tmp_path / "warmup_in_6_shards", repo_root)
    steps = ["train.max_steps=6", "train.save_every=2", "data.split=shard", f"data.train={warmup}"]

    def two_ranks(out):  # a fresh master port per launch
        return sft_command(corpus, tiny_checkpoint, out, *steps, launcher=deepspeed_launcher())

    straight = tmp_path / "straight"
    done = subprocess.run(two_ranks(straight), cwd=repo_root, check=True, capture_output=True, text=True)
    assert "by the shard split" in done.stdout + done.stderr
    interrupted = tmp_path / "interrupted"
    kill_after_step_2_and_resume(lambda: two_ranks(interrupted), interrupted, repo_root)
    assert_same_six_steps(straight, interrupted)


def test_two_ranks_count_each_truncated_shard_once(corpus, tiny_checkpoint, tmp_path, repo_root):
    """Every shard cut short (10 samples lost each) and read by two ranks under the shard split, for more than a
    pass: samples_lost_to_truncation is the union over ranks, each shard once (neither one rank's share nor a
    count that grows when a shard is read again)."""
    warmup = warmup_in_shards(corpus, tmp_path / "warmup_cut", repo_root)
    shards = sorted(warmup.glob("*.tar"))
    kept = 0
    for shard in shards:
        count = sample_count(shard)
        cut_after_sample(shard, count - 10)
        kept += count - 10
    steps = -(-kept // 16) + 2  # a pass of the kept samples at 16 per step, and into the next
    out = tmp_path / "run"
    cmd = sft_command(corpus, tiny_checkpoint, out, f"train.max_steps={steps}", "train.save_every=0", "data.split=shard",
                      f"data.train={warmup}", "data.eval=null", launcher=deepspeed_launcher())
    subprocess.run(cmd, cwd=repo_root, check=True, capture_output=True)
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == list(range(1, steps + 1))
    assert metrics[-1]["samples_lost_to_truncation"] == 10 * len(shards)


def test_malformed_config_fails_before_work(tmp_path, repo_root, tiny_checkpoint):
    result = subprocess.run(
        [sys.executable, "mmreason/train.py", "--config", "configs/quickstart/sft_warmup.yaml",
         f"model.path={tiny_checkpoint}", f"train.output_dir={tmp_path / 'run'}", "optim.lrr=1"],
        cwd=repo_root, capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "optim.lrr" in result.stderr and "valid keys" in result.stderr
    assert not (tmp_path / "run").exists()
