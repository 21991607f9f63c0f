"""A run directory knows which run it belongs to.

`train.output_dir/run.json` records the identity of the run that owns the directory: every resolved config
key except the few that may change when a run is continued (`MUTABLE_ON_RESUME`), and their hash. A new
launch compares its own config with that record before any work, as `train.resume` says:

- ``auto`` (default): continue when the identities match; when they differ and the directory holds the
  other run's results (checkpoints, metrics), fail with the differing keys named;
- ``never``: fail when the directory holds checkpoints (a fresh run needs a fresh directory);
- ``force``: continue from the newest checkpoint whatever the config says (the differing keys are logged,
  and the record is replaced by the new config's).

Directories written before run.json existed are judged by their `config.yaml`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

log = logging.getLogger(__name__)

RUN_RECORD = "run.json"
RESUME_MODES = ("auto", "never", "force")
MUTABLE_ON_RESUME = (
    "train.max_steps",       # extend (or shorten) a run
    "train.save_every",
    "train.eval_every",
    "train.keep_checkpoints",
    "train.log_every",
    "train.log_samples_every",
    "train.keep_hf_every",
    "train.tensorboard",
    "train.wandb_project",
    "train.output_dir",      # the directory itself: a moved run directory is still the same run
    "train.resume",          # the choice being made now
)
"""Keys that may differ between the run recorded in a directory and a launch that continues it. Everything
else (model, data, algorithm, optimizer, seed, batch sizes, ...) decides what the checkpoints contain."""


class RunDirError(RuntimeError):
    """The run directory belongs to another run, or holds checkpoints that `train.resume=never` forbids."""


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1} (lists stay values)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def run_identity(cfg: Any) -> dict[str, Any]:
    """The resolved config's keys that must not change on resume, flattened (`a.b` -> value)."""
    container = OmegaConf.to_container(OmegaConf.structured(cfg)) if not isinstance(cfg, dict) else cfg
    return {k: v for k, v in sorted(flatten(container).items()) if k not in MUTABLE_ON_RESUME}


def identity_hash(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def recorded_identity(run_dir: Path) -> dict[str, Any] | None:
    """The identity recorded in run_dir (run.json, else a legacy config.yaml), or None."""
    record = run_dir / RUN_RECORD
    if record.is_file():
        return json.loads(record.read_text())["identity"]
    legacy = run_dir / "config.yaml"
    if legacy.is_file():
        loaded = OmegaConf.to_container(OmegaConf.load(legacy))
        return {k: v for k, v in flatten(loaded).items() if k not in MUTABLE_ON_RESUME}
    return None


def identity_differences(recorded: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """key -> (recorded value, new value) for every key whose value differs ("<absent>" when missing)."""
    absent = "<absent>"
    keys = sorted(set(recorded) | set(current))
    return {k: (recorded.get(k, absent), current.get(k, absent)) for k in keys
            if recorded.get(k, absent) != current.get(k, absent)}


def latest_tag(run_dir: Path) -> str | None:
    latest = run_dir / "checkpoints" / "latest"
    return latest.read_text().strip() if latest.is_file() else None


def holds_results(run_dir: Path) -> bool:
    """Whether the directory holds what a run produced (checkpoints, metrics or an export)."""
    return (latest_tag(run_dir) is not None or (run_dir / "metrics.jsonl").is_file()
            or (run_dir / "hf" / "latest").exists())


def check_run_dir(cfg: Any) -> str:
    """Decide, before any work, whether this launch may use cfg.train.output_dir; returns "fresh" or "resume".

    Raises RunDirError naming the differing keys (auto) or the checkpoints found (never).
    """
    run_dir = Path(cfg.train.output_dir)
    mode = cfg.train.resume
    tag = latest_tag(run_dir)
    if mode == "never":
        if tag is not None:
            raise RunDirError(
                f"train.resume=never, but {run_dir} already holds checkpoints (latest: {tag}). Choose a new "
                f"train.output_dir (or delete this one) to start fresh, or train.resume=auto to continue it.")
        return "fresh"
    recorded = recorded_identity(run_dir) if run_dir.is_dir() else None
    if recorded is None:
        return "resume" if tag is not None else "fresh"
    diffs = identity_differences(recorded, run_identity(cfg))
    if diffs and mode == "force":
        log.warning("train.resume=force: continuing %s although these keys differ from its run: %s",
                    run_dir, _describe(diffs))
    elif diffs and holds_results(run_dir):
        raise RunDirError(
            f"{run_dir} belongs to another run: these keys differ from the config recorded there: "
            f"{_describe(diffs)}. Keys that may change on resume: {list(MUTABLE_ON_RESUME)}. Use a new "
            f"train.output_dir to start fresh, or train.resume=force to continue this run with the new config.")
    return "resume" if tag is not None else "fresh"


def _describe(diffs: dict[str, tuple[Any, Any]], limit: int = 12) -> str:
    parts = [f"{k}: {old!r} -> {new!r}" for k, (old, new) in list(diffs.items())[:limit]]
    more = f" (and {len(diffs) - limit} more)" if len(diffs) > limit else ""
    return "; ".join(parts) + more


def record_run(cfg: Any) -> Path:
    """Write run.json (identity + hash) atomically; rank 0 calls it once the launch is accepted."""
    run_dir = Path(cfg.train.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    identity = run_identity(cfg)
    record = {"config_hash": identity_hash(identity), "mutable_on_resume": list(MUTABLE_ON_RESUME),
              "identity": identity}
    tmp = run_dir / f".{RUN_RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=str) + "\n")
    os.replace(tmp, run_dir / RUN_RECORD)
    return run_dir / RUN_RECORD


def remove_partial_checkpoints(run_dir: Path) -> list[Path]:
    """Delete checkpoints/step-N directories that `latest` does not reach (newer than it, or all when there
    is no `latest`): what a run stopped or killed mid-save, or a full disk, left behind."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    tag = latest_tag(Path(run_dir))
    current = int(tag.split("-")[1]) if tag and tag.startswith("step-") and tag[5:].isdigit() else -1
    removed = []
    for path in root.glob("step-*"):
        suffix = path.name[5:]
        if path.is_dir() and suffix.isdigit() and int(suffix) > current:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        log.warning("removed partial checkpoints %s (newer than the last complete one, %s)",
                    [p.name for p in removed], tag)
    return removed


__all__ = ["RESUME_MODES", "MUTABLE_ON_RESUME", "RunDirError", "check_run_dir", "record_run", "run_identity",
           "remove_partial_checkpoints"]
