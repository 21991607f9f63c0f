"""Metric sinks: metrics.jsonl always (rank 0), tensorboard and wandb when asked; the console line; samples.

Rank 0 writes every step to metrics.jsonl and, every `train.log_every` steps, one plain console line with the
main metrics (no carriage returns, so cluster logs read line by line):

    step 20/200 | loss 0.0213 | reward/mean 0.412 | reward/accuracy 0.375 | response_length/mean 412 | ... | 3.1 s/step

`log_samples` writes a few generated responses (prompt, response, reward terms, extracted answer) to
samples.jsonl in the run directory, and as text to TensorBoard / W&B when those are on. `progress_bar` is
tqdm on a terminal and a line every ~10% otherwise.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from mmreason.config import TrainConfig

log = logging.getLogger("mmreason.progress")

CONSOLE_METRICS = (
    "loss", "reward/mean", "reward/accuracy", "reward/format", "response_length/mean", "response/truncated_fraction",
    "kl", "entropy", "grad_norm", "lr", "eval/accuracy", "tokens_per_s",
)
"""The metrics of the console line, in order, when the step has them (metrics.jsonl keeps all of them)."""

class MetricsLogger:
    """One JSON object per step, with a `step` key, in run_dir/metrics.jsonl."""

    def __init__(self, run_dir: Path, train: TrainConfig, *, rank: int, config: Any = None, resume_step: int = 0):
        self.enabled = rank == 0
        self.path = Path(run_dir) / "metrics.jsonl"
        self.samples_path = Path(run_dir) / "samples.jsonl"
        self.log_every = train.log_every
        self.max_steps = train.max_steps
        self._last_line = (resume_step, time.perf_counter())
        self.tb = None
        self.wandb = None
        if not self.enabled:
            return
        truncate_after(self.path, resume_step)
        truncate_after(self.samples_path, resume_step)
        if train.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))
        if train.wandb_project:
            import wandb

            self.wandb = wandb.init(project=train.wandb_project, dir=str(run_dir), config=_plain(config), resume="allow")

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        record = {"step": step, **{k: _json_number(v) for k, v in values.items()}}
        with self.path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.tb.add_scalar(key, value, step)
        if self.wandb is not None:
            self.wandb.log(values, step=step)
        if step % self.log_every == 0 or step == self.max_steps:
            last_step, last_time = self._last_line
            now = time.perf_counter()
            log.info(console_line(step, self.max_steps, values, (now - last_time) / max(step - last_step, 1)))
            self._last_line = (step, now)

    def log_samples(self, step: int, samples: list[dict[str, Any]]) -> None:
        """Append `samples` (one JSON object each, given a `step` key) to samples.jsonl; text to TB / W&B."""
        if not self.enabled or not samples:
            return
        records = [{"step": step, **sample} for sample in samples]
        with self.samples_path.open("a") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False, default=_json_number) + "\n")
        if self.tb is not None:
            text = "\n\n".join(f"**{r.get('pid')}** reward {r.get('reward')} extracted `{r.get('extracted')}` "
                               f"(answer `{r.get('answer')}`)\n\n    " + str(r.get("response", "")).replace("\n", "\n    ")
                               for r in records)
            self.tb.add_text("samples", text, step)
        if self.wandb is not None:
            import wandb

            columns = sorted({key for record in records for key in record})
            table = wandb.Table(columns=columns, data=[[json.dumps(r.get(c), default=str) if isinstance(r.get(c), dict)
                                                        else r.get(c) for c in columns] for r in records])
            self.wandb.log({"samples": table}, step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


def truncate_after(path: Path, step: int) -> None:
    """Drop lines logged after `step` (a resumed run redoes them; without this they would appear twice)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept))


def console_line(step: int, max_steps: int, values: dict[str, Any], seconds_per_step: float) -> str:
    """`step 20/200 | loss 0.0213 | reward/mean 0.412 | ... | 3.1 s/step`: the main metrics, plain text."""
    parts = [f"step {step}/{max_steps}"]
    for key in CONSOLE_METRICS:
        value = values.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            parts.append(f"{key} {_short(value)}")
    parts.append(f"{seconds_per_step:.2f} s/step")
    return " | ".join(parts)


def _short(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3g}"
    return f"{value:.4g}"


def rl_samples(rollout: Any, rewards: Any, group_size: int, template: str, system_prompt: str | None = None,
               count: int = 4) -> list[dict[str, Any]]:
    """A few of this step's responses: the first response to each of the first `count` prompts, with its
    prompt, ground truth, extracted answer, reward, reward terms and verification reason."""
    from mmreason.data.prompts import render_prompt

    samples = []
    problems = rollout.row_problems()
    for row in range(0, min(len(rollout.texts), count * group_size), group_size):
        problem = problems[row]
        try:
            prompt = render_prompt(problem, template)
        except Exception:  # a template problem must not stop training: the question is enough
            prompt = problem.question
        samples.append({
            "pid": problem.pid,
            "question": problem.question,
            "system_prompt": system_prompt,
            "prompt": prompt,
            "answer": problem.answer,
            "response": rollout.texts[row],
            "extracted": rewards.extracted[row],
            "reward": float(rewards.overall[row]),
            "terms": {name: float(value[row]) for name, value in rewards.terms.items()},
            "reason": rewards.reasons[row],
            "response_tokens": int(rollout.response_lengths()[row]),
        })
    return samples


class ProgressBar:
    """tqdm's `update` / `set_postfix` / `close` as plain log lines every ~10% (for logs that are not a terminal)."""

    def __init__(self, total: int, desc: str, initial: int = 0, disable: bool = False):
        self.total, self.desc, self.n, self.disable = total, desc, initial, disable
        self.started = time.perf_counter()
        self.every = max(1, total // 10)
        self.postfix = ""

    def update(self, n: int = 1) -> None:
        before, self.n = self.n, self.n + n
        if not self.disable and (self.n // self.every > before // self.every or self.n == self.total):
            elapsed = time.perf_counter() - self.started
            log.info("%s: %d/%d (%.0f s)%s", self.desc, self.n, self.total, elapsed, self.postfix)

    def set_postfix(self, **values: Any) -> None:
        self.postfix = " " + " ".join(f"{k}={v}" for k, v in values.items()) if values else ""

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, initial: int = 0, disable: bool = False, lines: bool = True,
                 **tqdm_kwargs: Any) -> Any:
    """tqdm when stderr is a terminal, else a ProgressBar writing a plain line every ~10% (`lines=False`: nothing,
    for the training loops, whose console line every train.log_every steps says more)."""
    if not disable and sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, initial=initial, **tqdm_kwargs)
    return ProgressBar(total, desc, initial=initial, disable=disable or not lines)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _json_number(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    return value


def _plain(config: Any) -> Any:
    if config is None:
        return None
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(config))


class StageTimer:
    """Wall time per named stage of a step (time/generate, time/update, ...)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.times[f"time/{name}"] = self.times.get(f"time/{name}", 0.0) + time.perf_counter() - start
