"""How an HF export was prompted in training, recorded beside it, and read back as defaults.

Every export (`hf/latest/`, `hf/step-N/`) gets `mmreason_generation.json`:

    {"stage": "rl", "step": 200, "template": "r1_boxed", "system_prompt": null,
     "min_pixels": null, "max_pixels": 50176, "max_new_tokens": 1024, "temperature": 1.0}

plus a copy of the template itself (`mmreason_prompt.jinja`), so a checkpoint trained with a template file
that is not on the evaluating machine still evaluates with it. Evaluation (`mmreason-eval run`), curation's
model steps and rejection sampling take these as their defaults and print what they used; an explicit
flag or config key always wins.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Optional

GENERATION_FILE = "mmreason_generation.json"
TEMPLATE_COPY = "mmreason_prompt.jinja"


def training_generation(cfg: Any) -> dict[str, Any]:
    """What a training config (sft or rl) prompted with: template, system prompt, pixel limits, response length."""
    rl = cfg.stage == "rl"
    return {
        "stage": cfg.stage,
        "template": cfg.data.prompt_template,
        "system_prompt": cfg.data.system_prompt,
        "min_pixels": cfg.model.min_pixels,
        "max_pixels": cfg.model.max_pixels,
        # RL: the rollouts' length; SFT: what its validation generated with
        "max_new_tokens": cfg.rollout.max_new_tokens if rl else cfg.eval.max_new_tokens,
        "temperature": cfg.rollout.temperature if rl else cfg.eval.temperature,
    }


def write_generation(export_dir: Path, cfg: Any, step: int) -> Path:
    """Write mmreason_generation.json (and the template's text) into an export directory."""
    from mmreason.data.prompts import TemplateError, template_path

    export_dir = Path(export_dir)
    record = {**training_generation(cfg), "step": step}
    try:
        shutil.copyfile(template_path(cfg.data.prompt_template), export_dir / TEMPLATE_COPY)
    except (TemplateError, OSError):
        pass
    path = export_dir / GENERATION_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(path)
    return path


def read_generation(model_path: Optional[str]) -> dict[str, Any]:
    """The record of a checkpoint directory ({} for a hub id or an export without one). A template name that
    does not resolve on this machine is replaced by the export's own copy of it."""
    if not model_path:
        return {}
    path = Path(model_path) / GENERATION_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict):
        return {}
    template = record.get("template")
    if template:
        from mmreason.data.prompts import TemplateError, template_path

        try:
            template_path(template)
        except TemplateError:
            copy = Path(model_path) / TEMPLATE_COPY
            record["template"] = str(copy) if copy.is_file() else None
    return record


def keep_step_export(run_dir: Path, step: int, keep_every: int) -> Optional[Path]:
    """Copy hf/latest to hf/step-N when keep_every divides step (0 = never); returns the copy."""
    if not keep_every or step % keep_every:
        return None
    latest = Path(run_dir) / "hf" / "latest"
    target = Path(run_dir) / "hf" / f"step-{step}"
    staging = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(latest, staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def after_export(run_dir: Path, cfg: Any, step: int, rank: int) -> None:
    """Rank 0, right after export_hf: record how the export was prompted; keep hf/step-N per train.keep_hf_every."""
    if rank != 0:
        return
    write_generation(Path(run_dir) / "hf" / "latest", cfg, step)
    keep_step_export(run_dir, step, cfg.train.keep_hf_every)


def explicit_keys(path: Optional[str], overrides: list[str]) -> set[str]:
    """Dotted keys a config file or the command line sets (so a checkpoint's record does not override them)."""
    from omegaconf import OmegaConf

    from mmreason.resources import resolve_config_path
    from mmreason.rundir import flatten

    keys = {item.split("=", 1)[0].lstrip("+") for item in overrides if "=" in item}
    if path is not None:
        try:
            keys |= set(flatten(OmegaConf.to_container(OmegaConf.load(resolve_config_path(path)))))
        except Exception:  # the config loader has already reported a bad file
            pass
    return keys


def apply_checkpoint_defaults(cfg: Any, model_path: Optional[str], mapping: dict[str, str], explicit: set[str],
                              prog: str) -> dict[str, Any]:
    """Set each config key of `mapping` ({dotted key: record field}) that neither the config file nor the command
    line sets from the checkpoint's mmreason_generation.json; print what was taken. Returns {key: value} set."""
    import sys

    record = read_generation(model_path)
    taken: dict[str, Any] = {}
    for key, name in mapping.items():
        if key in explicit or record.get(name) is None:
            continue
        *sections, leaf = key.split(".")
        owner = cfg
        for section in sections:
            owner = getattr(owner, section)
        setattr(owner, leaf, record[name])
        taken[key] = record[name]
    if taken:
        print(f"{prog}: from {model_path}/{GENERATION_FILE}: " + ", ".join(f"{k}={v!r}" for k, v in taken.items()),
              file=sys.stderr)
    return taken
