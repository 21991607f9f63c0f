"""What the training recipes share (dpo, and the pattern sft and rl follow): the engine with its resume point, and
the end-of-step tail.

    engine, start_step, recipe_state = start_engine(model, cfg, world_size, grad_accum)
    tail = StepTail(cfg, engine, processor, rank, start_step, desc="dpo", validate=validate)
    for step in range(start_step + 1, cfg.train.max_steps + 1):
        metrics = ...the recipe's own step...
        tail(step, metrics, recipe_state, postfix={"loss": metrics["loss"]})
    tail.close()

The tail runs, in order: validation (every train.eval_every steps and at the last), the cross-rank weight check at
the last step, metrics.jsonl (and tensorboard / wandb), the progress bar, then the DeepSpeed checkpoint with the
recipe's state (every train.save_every steps and at the last) and the HF export with its metadata. A resumed run
starts after the checkpoint's step with its recipe state and RNG restored, so it repeats the straight run exactly.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from mmreason.config import Config
from mmreason.engine import build_engine, export_hf, load_checkpoint, ranks_weight_difference, save_checkpoint
from mmreason.export_meta import after_export
from mmreason.metrics import MetricsLogger, progress_bar

log = logging.getLogger(__name__)


def start_engine(model: Any, cfg: Config, world_size: int, grad_accum: int) -> tuple[Any, int, dict[str, Any] | None]:
    """(DeepSpeed engine over `model`, the step to continue after, the recipe state saved with it) — (engine, 0,
    None) when output_dir holds no checkpoint."""
    engine = build_engine(model, cfg.optim, cfg.train, micro_batch_size=cfg.train.micro_batch_size,
                          grad_accum=grad_accum, world_size=world_size)
    resumed = load_checkpoint(engine, Path(cfg.train.output_dir)) if cfg.train.resume else None
    if resumed is None:
        return engine, 0, None
    log.info("resumed from step %d", resumed[0])
    return engine, resumed[0], resumed[1]


class StepTail:
    """The end of every training step: validation, weight check, metrics, progress, checkpoint and export."""

    def __init__(self, cfg: Config, engine: Any, processor: Any, rank: int, start_step: int, *, desc: str,
                 validate: Callable[[], dict[str, float]] | None = None):
        self.cfg, self.engine, self.processor, self.rank = cfg, engine, processor, rank
        self.run_dir = Path(cfg.train.output_dir)
        self.validate = validate
        self.logger = MetricsLogger(self.run_dir, cfg.train, rank=rank, config=cfg, resume_step=start_step)
        self.bar = progress_bar(total=cfg.train.max_steps, initial=start_step, desc=desc, disable=rank != 0,
                                lines=False)  # off a terminal, the logger's line every train.log_every steps

    def __call__(self, step: int, metrics: dict[str, float], recipe_state: dict[str, Any],
                 postfix: dict[str, str] | None = None) -> dict[str, float]:
        train = self.cfg.train
        last = step == train.max_steps
        if self.validate is not None and ((train.eval_every and step % train.eval_every == 0) or last):
            metrics.update(self.validate())
        if last:  # a collective: every rank must hold the same weights
            metrics["ranks/weight_max_diff"] = ranks_weight_difference(self.engine.module)
        self.logger.log(step, metrics)
        self.bar.update(1)
        if postfix:
            self.bar.set_postfix(**postfix)
        if last or (train.save_every and step % train.save_every == 0):
            save_checkpoint(self.engine, self.run_dir, step, recipe_state, train.keep_checkpoints)
            export_hf(self.engine, self.processor, self.run_dir, step)
            after_export(self.run_dir, self.cfg, step, self.rank)  # mmreason_generation.json, hf/step-N
        return metrics

    def close(self) -> None:
        self.bar.close()
        self.logger.close()
