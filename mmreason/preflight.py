"""Pre-flight: check what a run needs before anything expensive happens.

Every entry point calls its check here after reading its config and before loading a model, reading the data
or starting the distributed group:

    check_train(cfg, world_size)     mmreason/train.py (sft and rl)
    check_curate(cfg)                data_prep/curate.py
    check_warmup(cfg)                data_prep/build_warmup.py
    check_eval(model, data, template, engine) mmreason/eval/cli.py run

What is checked: every path the config names (model directory, data shards, prompt templates, DeepSpeed JSON,
the reward plug-in), the optional packages the config asks for (wandb, tensorboard, vllm) and sizes that
depend on the data (RL's prompts_per_step against the prompt set, counted from the shards' `shards.json`
manifest or their tar headers) or on the ranks (batch sizes). A failure is a `PreflightError` whose message
names the key, with a hint where one exists; `fail_once` prints it from rank 0 only and exits every rank
with the same code, so an 8-rank launch prints one line, not 8 tracebacks.

Nothing here imports torch or transformers, so a failing check costs well under a second (the shard helpers
of mmreason.data.shards are imported only when data is checked).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn, Optional

EXIT_CODE = 2
"""Exit code of a run stopped by a pre-flight (or config) error, on every rank."""
RAW_DATA_SUFFIXES = (".jsonl", ".json", ".parquet")
CONVERT_HINT = "convert it to shards first: python data_prep/convert.py --format jsonl --input {path} --out SHARD_DIR " \
               "(or mmreason-convert; see docs/data.md)"


class PreflightError(ValueError):
    """Something a run needs is missing or too small; the message names the config key."""

    def __init__(self, key: str, what: str, hint: Optional[str] = None):
        self.key, self.what, self.hint = key, what, hint
        label = "flag" if key.startswith("-") else "config key"
        super().__init__(f"{label} {key!r}: {what}" + (f"; {hint}" if hint else ""))


def launcher_rank() -> int:
    """This process's rank as the launcher set it (RANK), before any process group exists; 0 without one."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def launcher_world_size() -> int:
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def fail_once(err: BaseException, prog: str = "error", code: int = EXIT_CODE) -> NoReturn:
    """Rank 0 prints `prog: error: ...` (one line) to stderr; every rank exits with `code`."""
    if launcher_rank() == 0:
        label = f"{prog}: error" if prog != "error" else "error"
        print(f"{label}: {err}", file=sys.stderr, flush=True)
    raise SystemExit(code)


# ---------------------------------------------------------------- single checks


def check_model_path(key: str, path: str) -> None:
    """A local checkpoint directory with config.json; a hub id (`org/name`, not on disk) passes unchecked."""
    if not path:
        raise PreflightError(key, "is empty; expected a checkpoint directory or a hub id")
    local = Path(path).expanduser()
    looks_local = local.exists() or path.startswith(("/", ".", "~")) or path.count("/") != 1
    if not looks_local:
        return
    if not local.is_dir():
        raise PreflightError(key, f"no such checkpoint directory {path!r}")
    if not (local / "config.json").is_file():
        raise PreflightError(key, f"{path!r} is not a Hugging Face checkpoint (no config.json)",
                             "point it at a directory written by save_pretrained, e.g. a run's hf/latest")


def _raw_data_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in RAW_DATA_SUFFIXES and p.name != "shards.json")


def check_shards(key: str, spec: str) -> list[str]:
    """The shard paths of `spec` (a directory, brace pattern or comma list); raw jsonl/parquet get a hint."""
    if not spec or not str(spec).strip():
        raise PreflightError(key, "is empty; expected a shard directory, a brace pattern or tar paths")
    path = Path(spec)
    if path.is_file() and path.suffix in RAW_DATA_SUFFIXES:
        raise PreflightError(key, f"{spec!r} is a {path.suffix} file, not webdataset shards", CONVERT_HINT.format(path=spec))
    if path.is_dir() and not any(path.glob("*.tar")):
        raw = _raw_data_files(path)
        if raw:
            raise PreflightError(key, f"directory {spec!r} holds {raw[0].suffix} files ({raw[0].name}, ...), not "
                                 "webdataset shards (*.tar)", CONVERT_HINT.format(path=spec))
        raise PreflightError(key, f"directory {spec!r} holds no shards (*.tar)")
    from mmreason.data.shards import resolve_urls

    try:
        return resolve_urls(spec)
    except (FileNotFoundError, ValueError) as err:
        raise PreflightError(key, str(err)) from None


def count_problems(urls: list[str]) -> Optional[int]:
    """Samples in the shards: from each directory's shards.json when it lists them all, else from the tar
    headers (no image is decoded); None for remote shards."""
    from mmreason.data.shards import ShardError, count_samples, read_manifest

    if any("://" in url or url.startswith("pipe:") for url in urls):
        return None
    manifests: dict[Path, dict[str, int]] = {}
    total, uncounted = 0, []
    for url in urls:
        parent = Path(url).parent
        counts = manifests.setdefault(parent, read_manifest(parent))
        if Path(url).name in counts:
            total += counts[Path(url).name]
        else:
            uncounted.append(url)
    try:
        return total + (count_samples(uncounted) if uncounted else 0)
    except ShardError:
        return None  # the reader names a broken shard itself


def check_template(key: str, name: str) -> None:
    from mmreason.data.prompts import TemplateError, template_path

    try:
        template_path(name)
    except TemplateError as err:
        raise PreflightError(key, str(err)) from None


def check_json_file(key: str, path: str) -> None:
    from mmreason.resources import resolve_config_path

    resolved = resolve_config_path(path)
    if not Path(resolved).is_file():
        raise PreflightError(key, f"file {path!r} does not exist", "the shipped ones are configs/deepspeed/zero2.json and zero3.json")
    try:
        json.loads(Path(resolved).read_text())
    except ValueError as err:
        raise PreflightError(key, f"{path!r} is not valid JSON ({err})") from None


PACKAGE_HINTS = {
    "wandb": "pip install wandb (or pip install 'mmreason[wandb]'), or unset train.wandb_project",
    "tensorboard": "pip install tensorboard, or set train.tensorboard=false",
    "vllm": "GPU: pip install 'mmreason[vllm]'; CPU: bash scripts/install_vllm.sh (see docs/engines.md); or use the hf engine",
}


def check_package(key: str, module: str, why: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise PreflightError(key, f"{why}, but the {module!r} package is not installed", PACKAGE_HINTS.get(module))


def check_output_dir(key: str, path: str) -> None:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise PreflightError(key, f"{path!r} exists and is not a directory")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not os.access(existing, os.W_OK):
        raise PreflightError(key, f"cannot write {path!r} ({str(existing)!r} is not writable)")


def check_reward_function(key: str, spec: Optional[str]) -> None:
    if not spec:
        return
    from mmreason.rewards.custom import RewardFunctionError, load_reward_function

    try:
        load_reward_function(spec)
    except RewardFunctionError as err:
        raise PreflightError(key, str(err)) from None


# ---------------------------------------------------------------- per entry point


def check_train(cfg: Any, world_size: int = 1) -> None:
    """mmreason/train.py: everything an sft or rl run reads, before distributed init and model loading."""
    from mmreason.config import ConfigError, validate_for_world

    check_model_path("model.path", cfg.model.path)
    check_template("data.prompt_template", cfg.data.prompt_template)
    urls = check_shards("data.train", cfg.data.train)
    if cfg.data.eval:
        check_shards("data.eval", cfg.data.eval)
    if cfg.train.deepspeed_config:
        check_json_file("train.deepspeed_config", cfg.train.deepspeed_config)
    check_reward_function("reward.function", cfg.reward.function)
    check_output_dir("train.output_dir", cfg.train.output_dir)
    if cfg.train.wandb_project:
        check_package("train.wandb_project", "wandb", f"logging to W&B project {cfg.train.wandb_project!r} is asked for")
    if cfg.train.tensorboard:
        check_package("train.tensorboard", "tensorboard", "tensorboard logging is on")
    if cfg.stage == "rl" and cfg.rollout.engine == "vllm":
        check_package("rollout.engine", "vllm", "rollout.engine is vllm")
    if cfg.data.eval and cfg.eval.engine == "vllm":  # None follows rollout.engine (checked above) or is hf
        check_package("eval.engine", "vllm", "eval.engine is vllm")
    try:
        validate_for_world(cfg, world_size)
    except ConfigError as err:
        key = str(err).split("'")[1] if str(err).count("'") >= 2 else "train.batch_size"
        raise PreflightError(key, str(err).split(": ", 1)[-1]) from None
    if cfg.stage == "rl":
        count = count_problems(urls)
        if count is not None and count < cfg.rollout.prompts_per_step:
            raise PreflightError("rollout.prompts_per_step",
                                 f"{cfg.rollout.prompts_per_step} prompts per step, but data.train holds {count} problems",
                                 f"lower it to at most {count} (a multiple of the {world_size} rank(s))")


def check_curate(cfg: Any) -> None:
    """data_prep/curate.py: input shards, evaluation sets, and the model and templates of enabled model steps."""
    check_shards("input", cfg.input)
    check_output_dir("output", cfg.output)
    for i, eval_set in enumerate(cfg.eval_sets):
        if not Path(eval_set).exists() and "{" not in eval_set and "," not in eval_set:
            raise PreflightError(f"eval_sets[{i}]", f"{eval_set!r} does not exist")
    steps = [name for name in ("hackable", "blind", "difficulty") if getattr(cfg, name).enabled]
    if steps and cfg.model.path:
        check_model_path("model.path", cfg.model.path)
    for name in steps:
        check_template(f"{name}.template", getattr(cfg, name).template)
    if steps and cfg.generation.engine == "vllm":
        check_package("generation.engine", "vllm", "generation.engine is vllm")


def check_warmup(cfg: Any) -> None:
    """data_prep/build_warmup.py: input shards, output directory, and the teacher of the rejection source."""
    check_shards("input", cfg.input)
    check_output_dir("output", cfg.output)
    if "rejection" in cfg.sources:
        check_model_path("rejection.model.path", cfg.rejection.model.path)
        check_template("rejection.prompt_template", cfg.rejection.prompt_template)
        if cfg.rejection.engine == "vllm":
            check_package("rejection.engine", "vllm", "rejection.engine is vllm")


def check_eval(model: str, data: str, template: Optional[str], engine: str = "hf") -> None:
    """`mmreason.eval.cli run`: the checkpoint, the data file, the template and the engine (flags named as keys)."""
    check_model_path("--model", model)
    if "/" in data and not Path(data).exists() and data.count("/") == 1 and not data.startswith((".", "/")):
        pass  # a hub dataset id: the loader fetches it
    elif not Path(data).exists() and "{" not in data and "," not in data:
        raise PreflightError("--data", f"{data!r} does not exist")
    if template:
        check_template("--template", template)
    if engine == "vllm":
        check_package("--engine", "vllm", "--engine is vllm")
