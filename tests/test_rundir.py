"""A run directory records its run's identity; a launch with another config fails before any work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mmreason.config import load_config
from mmreason.rundir import RunDirError, check_run_dir, record_run, remove_partial_checkpoints

BASE = {"stage": "rl", "model": {"path": "/ckpt"}, "data": {"train": "/shards"}}


def cfg_for(tmp_path: Path, *overrides: str):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE))
    return load_config(path, [f"train.output_dir={tmp_path / 'run'}", *overrides])


def finished_run(tmp_path: Path, *overrides: str):
    """A run directory as a finished run leaves it: run.json, a checkpoint named by `latest`, metrics."""
    cfg = cfg_for(tmp_path, *overrides)
    run = Path(cfg.train.output_dir)
    record_run(cfg)
    (run / "checkpoints" / "step-8").mkdir(parents=True)
    (run / "checkpoints" / "latest").write_text("step-8")
    (run / "metrics.jsonl").write_text('{"step": 8}\n')
    return cfg


def test_same_config_resumes_and_mutable_keys_may_change(tmp_path):
    finished_run(tmp_path, "optim.lr=1e-5")
    assert check_run_dir(cfg_for(tmp_path, "optim.lr=1e-5")) == "resume"
    assert check_run_dir(cfg_for(tmp_path, "optim.lr=1e-5", "train.max_steps=50", "train.save_every=5",
                                 "train.keep_checkpoints=4", "train.tensorboard=true")) == "resume"


def test_other_config_fails_naming_the_differing_keys(tmp_path):
    finished_run(tmp_path, "algo.name=grpo", "optim.lr=1e-5")
    with pytest.raises(RunDirError) as err:
        check_run_dir(cfg_for(tmp_path, "algo.name=dapo", "optim.lr=3e-5"))
    message = str(err.value)
    assert "optim.lr: 1e-05 -> 3e-05" in message and "algo.name: 'grpo' -> 'dapo'" in message
    assert "train.resume=force" in message
    assert check_run_dir(cfg_for(tmp_path, "algo.name=dapo", "optim.lr=3e-5", "train.resume=force")) == "resume"


def test_never_refuses_a_directory_with_checkpoints(tmp_path):
    finished_run(tmp_path)
    with pytest.raises(RunDirError, match="train.resume=never.*step-8"):
        check_run_dir(cfg_for(tmp_path, "train.resume=never"))
    assert check_run_dir(cfg_for(tmp_path / "other", "train.resume=never")) == "fresh"


def test_legacy_directory_is_judged_by_its_config_yaml(tmp_path):
    from mmreason.config import save_config

    old = cfg_for(tmp_path, "optim.lr=1e-5")
    save_config(old, old.train.output_dir)
    (Path(old.train.output_dir) / "checkpoints").mkdir()
    (Path(old.train.output_dir) / "checkpoints" / "latest").write_text("step-2")
    with pytest.raises(RunDirError, match="optim.lr"):
        check_run_dir(cfg_for(tmp_path, "optim.lr=2e-5"))


def test_partial_checkpoints_newer_than_latest_are_removed(tmp_path):
    run = tmp_path / "run"
    for tag in ("step-4", "step-6", "step-8"):
        (run / "checkpoints" / tag).mkdir(parents=True)
    (run / "checkpoints" / "latest").write_text("step-6")
    removed = remove_partial_checkpoints(run)
    assert [p.name for p in removed] == ["step-8"]
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*")) == ["step-4", "step-6"]


def test_reused_directory_with_another_lr_fails_before_any_work(tmp_path, repo_root):
    cfg = finished_run(tmp_path, "optim.lr=1e-5")
    run = Path(cfg.train.output_dir)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    result = subprocess.run(
        [sys.executable, "mmreason/train.py", "--config", str(tmp_path / "c.yaml"), f"train.output_dir={run}",
         "optim.lr=3e-5"],
        cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "optim.lr: 1e-05 -> 3e-05" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr  # a clean refusal before the model (/ckpt: none) is loaded
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # nothing rewritten
