"""Operating a run: a signal to the `deepspeed` launcher ends every rank, and the last checkpoint survives."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import torch

from test_train_sft import deepspeed_launcher, sft_command, wait_for_checkpoint


def processes_mentioning(text: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains `text`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state not in ("Z", "X"):
            found.append(int(proc.name))
    return found


def test_sigterm_to_the_launcher_ends_every_rank_and_keeps_the_last_checkpoint(corpus, tiny_checkpoint, tmp_path,
                                                                             repo_root):
    out = tmp_path / "signalled"
    cmd = sft_command(corpus, tiny_checkpoint, out, "train.max_steps=200", "train.save_every=2",
                      launcher=deepspeed_launcher())
    launcher = subprocess.Popen(cmd, cwd=repo_root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_checkpoint(out, "step-2", launcher)
        assert len(processes_mentioning(str(out))) >= 3  # launcher, launch.py and the two ranks
        launcher.send_signal(signal.SIGTERM)  # what `kill PID`, `timeout` or a scheduler does
        launcher.wait(timeout=10)
        deadline = time.time() + 10
        while processes_mentioning(str(out)) and time.time() < deadline:
            time.sleep(0.2)
        assert processes_mentioning(str(out)) == [], "ranks outlived their launcher by 10 s"
    finally:
        for pid in processes_mentioning(str(out)):
            os.kill(pid, signal.SIGKILL)

    latest = out / "checkpoints" / (out / "checkpoints" / "latest").read_text().strip()
    assert latest.is_dir() and int(latest.name.split("-")[1]) >= 2
    for rank in (0, 1):  # the RNG state loads without unpickling code
        assert "torch" in torch.load(latest / f"rng_rank{rank}.pt", weights_only=True)
    states = torch.load(latest / "mp_rank_00_model_states.pt", weights_only=False)
    assert states["step"] == int(latest.name.split("-")[1]) and states["module"]
