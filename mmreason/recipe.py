"""What the training recipes share (dpo, and the pattern sft and rl follow): the engine with its resume point, and
the end-of-step tail.

    engine, start_step, recipe_state = start_engine(model, cfg, world_size, grad_accum)
    validate = Validator(cfg, engine, processor, rank, world_size)   # data.eval on the engine eval.engine names
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

import contextlib
import dataclasses
import logging
from pathlib import Path
from typing import Any

from mmreason.config import Config
from mmreason.engine import (
    build_engine, export_hf, full_weights, load_checkpoint, ranks_weight_difference, save_checkpoint,
)
from mmreason.eval.validation import load_validation_set, run_validation
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


def sampling_weights(engine: Any, sampler: Any) -> Any:
    """Context giving the policy module to sample from: for the hf engine (or None) its weights whole (gathered once
    under ZeRO-3, `full_weights`, so ranks need not generate in lockstep); an engine with its own copy of the
    weights needs nothing gathered."""
    if sampler is None or sampler.name == "hf":
        return full_weights(engine)
    return contextlib.nullcontext(engine.module)


class Validator:
    """Validation during training (data.eval, eval.*) on the engine `eval.engine` names (by default the rollout
    engine in RL, hf in SFT and DPO).

    hf generates with the live policy. vllm reuses the RL rollout engine when the recipe has one (it already holds
    the weights of the last update); in SFT and DPO, whose steps do not generate, a vLLM engine of its own is
    built from `rollout.vllm_*`, kept asleep between validations and given the current weights before each.
    """

    def __init__(self, cfg: Config, engine: Any, processor: Any, rank: int, world_size: int, *,
                 rollout_engine: Any = None):
        self.cfg, self.engine, self.processor, self.rank, self.world_size = cfg, engine, processor, rank, world_size
        self.problems = load_validation_set(cfg.data.eval, cfg.eval.num_problems) if cfg.data.eval else []
        self.sampler, self.owns_sampler = None, False
        name = cfg.eval.engine or (rollout_engine.name if rollout_engine is not None else "hf")
        if self.problems and name != "hf":
            if rollout_engine is not None and rollout_engine.name == name:
                self.sampler = rollout_engine
            else:
                from mmreason.engines import build_engine as build_generation_engine

                settings = dataclasses.replace(cfg.rollout, engine=name)  # its rollout.vllm_* settings
                self.sampler = build_generation_engine(settings, model_path=cfg.model.path, processor=processor,
                                                       model=engine.module, seed=cfg.train.seed + rank)
                self.owns_sampler = True
                self.sampler.sleep()
            log.info("validation: %d problems on the %s engine%s", len(self.problems), self.sampler.name,
                     " (its own, asleep between validations)" if self.owns_sampler else " (the rollout engine)")

    def __bool__(self) -> bool:
        return bool(self.problems)

    def __call__(self) -> dict[str, float]:
        if self.owns_sampler:
            self.sampler.wake()
            self.sampler.sync_weights(self.engine.module)
        try:
            with sampling_weights(self.engine, self.sampler) as policy:
                return run_validation(policy, self.processor, self.problems, self.cfg.eval, self.cfg.reward,
                                      template=self.cfg.data.prompt_template, system_prompt=self.cfg.data.system_prompt,
                                      rank=self.rank, world_size=self.world_size, engine=self.sampler)
        finally:
            if self.owns_sampler:
                self.sampler.sleep()

    def close(self) -> None:
        if self.owns_sampler:
            self.sampler.close()


class StepTail:
    """The end of every training step: validation, weight check, metrics, progress, checkpoint and export."""

    def __init__(self, cfg: Config, engine: Any, processor: Any, rank: int, start_step: int, *, desc: str,
                 validate: Validator | None = None):
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
        if self.validate and ((train.eval_every and step % train.eval_every == 0) or last):
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
        if self.validate is not None:
            self.validate.close()
