"""The long-CoT warmup SFT recipe: setup -> train -> cleanup.

Each example is a Problem whose `solution` is the full assistant reply
(`<think>...</think>` then `\\boxed{...}`), as `data_prep/build_warmup.py`
writes it. The loss is next-token cross entropy on the reply tokens only,
averaged over every reply token of the optimizer step on all ranks, so it does
not depend on how the step is cut into micro-batches or ranks.

Data order is a pure function of (seed, rank, step): each rank streams its own
share of the shards, and a resumed run skips the samples the finished steps
consumed, so no step is lost or repeated.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmreason.config import Config, save_config, validate_for_world
from mmreason.data.batching import SFTBatch, collate_sft, encode_sft
from mmreason.data.shards import SkipCounter, stream_problems
from mmreason.distributed import all_gather_merged, all_reduce_sum, device
from mmreason.engine import seed_everything, step_with_grad_norm
from mmreason.logprobs import forward_logits, shifted_cross_entropy_sum
from mmreason.models import load_policy
from mmreason.problem import Problem
from mmreason.recipe import StepTail, Validator, start_engine

log = logging.getLogger(__name__)


@dataclass
class SFTState:
    """What a checkpoint must hold besides DeepSpeed's own state to resume exactly."""

    samples_consumed: int = 0  # per rank, from this rank's stream
    dropped_too_long: int = 0


class ExampleStream:
    """This rank's endless stream of encoded SFT examples, resumable by sample count."""

    def __init__(self, cfg: Config, processor: Any, rank: int, world_size: int, state: SFTState):
        self.cfg, self.processor, self.state = cfg, processor, state
        self.skipped = SkipCounter()
        # `skip` fast-forwards past the samples finished steps used, without decoding them.
        # data.split: under the shard split a rank reads only its shards of each pass (mmreason/data/shards.py).
        self.stream = stream_problems(cfg.data.train, shuffle_buffer=cfg.data.shuffle_buffer, rank=rank,
                                      world_size=world_size, resampled=True, seed=cfg.train.seed,
                                      skipped=self.skipped, skip=state.samples_consumed, split=cfg.data.split)

    def encode(self, problem: Problem) -> SFTBatch:
        if not problem.solution:
            raise ValueError(f"problem {problem.pid!r}: warmup SFT needs a `solution` (the reply to learn)")
        return encode_sft(self.processor, [problem], [problem.solution], self.cfg.data.prompt_template,
                          system_prompt=self.cfg.data.system_prompt, min_pixels=self.cfg.model.min_pixels,
                          max_pixels=self.cfg.model.max_pixels)

    def take(self, n: int) -> list[SFTBatch]:
        examples = []
        while len(examples) < n:
            before = self.skipped.count
            problem = next(self.stream)
            # Corrupt samples the stream skipped count as consumed too (`skip` counts raw samples).
            self.state.samples_consumed += 1 + self.skipped.count - before
            example = self.encode(problem)
            if example.input_ids.shape[1] > self.cfg.data.max_length:
                self.state.dropped_too_long += 1
                continue
            examples.append(example)
        return examples


def micro_batches(examples: list[SFTBatch], micro_batch_size: int, group_by_length: bool, pad_id: int) -> list[SFTBatch]:
    """Cut a step's examples into micro-batches; sorting by length first keeps padding low."""
    if group_by_length:
        examples = sorted(examples, key=lambda e: e.input_ids.shape[1])
    return [collate_sft(examples[i : i + micro_batch_size], pad_id) for i in range(0, len(examples), micro_batch_size)]


def run(cfg: Config, rank: int, world_size: int) -> dict[str, float]:
    # ---- setup ----
    validate_for_world(cfg, world_size)
    run_dir = Path(cfg.train.output_dir)
    if rank == 0:
        save_config(cfg, run_dir)
    seed_everything(cfg.train.seed)
    model, processor = load_policy(cfg.model, device=device())
    per_rank = cfg.train.batch_size // world_size
    grad_accum = per_rank // cfg.train.micro_batch_size
    engine, start_step, recipe_state = start_engine(model, cfg, world_size, grad_accum)
    state = SFTState(**recipe_state) if recipe_state is not None else SFTState()
    examples = ExampleStream(cfg, processor, rank, world_size, state)
    pad_id = processor.tokenizer.pad_token_id
    tail = StepTail(cfg, engine, processor, rank, start_step, desc="sft",
                    validate=Validator(cfg, engine, processor, rank, world_size))

    # ---- train ----
    metrics: dict[str, float] = {}
    for step in range(start_step + 1, cfg.train.max_steps + 1):
        started = time.perf_counter()
        batches = micro_batches(examples.take(per_rank), cfg.train.micro_batch_size, cfg.train.group_by_length, pad_id)
        global_tokens = all_reduce_sum(sum(int((b.labels != -100).sum()) for b in batches))
        loss_sum, grad_norm = 0.0, float("nan")
        for batch in batches:
            batch = SFTBatch(*(t.to(engine.device) if t is not None else None for t in batch))
            logits = forward_logits(engine, batch.input_ids, batch.attention_mask, batch.pixel_values, batch.image_grid_thw)
            token_loss_sum = shifted_cross_entropy_sum(logits, batch.labels)
            # DeepSpeed divides by grad_accum and averages ranks; undo both so the step's gradient
            # is the mean over all reply tokens of all ranks.
            engine.backward(token_loss_sum / global_tokens * world_size * grad_accum)
            norm = step_with_grad_norm(engine)
            grad_norm = norm if norm is not None else grad_norm
            loss_sum += token_loss_sum.item()
        elapsed = time.perf_counter() - started
        tokens = all_reduce_sum(sum(int(b.attention_mask.sum()) for b in batches))
        slots = all_reduce_sum(sum(b.attention_mask.numel() for b in batches))
        metrics = {
            "loss": all_reduce_sum(loss_sum) / global_tokens,
            "lr": engine.get_lr()[0],
            "grad_norm": grad_norm,
            "tokens_per_s": tokens / elapsed,
            "padding_fraction": 1 - tokens / slots,
            "reply_tokens": global_tokens,
            "dropped_too_long": all_reduce_sum(state.dropped_too_long),
            "corrupt_samples_skipped": all_reduce_sum(examples.skipped.count),
            # The union of the truncated shards the ranks have read (each counted once): under the sample split
            # every rank reads every shard, under the shard split each reads its own, so neither a sum nor a max.
            "samples_lost_to_truncation": SkipCounter(truncated=all_gather_merged(examples.skipped.truncated)).lost,
            "time/step": elapsed,
        }
        # validation, weight check, metrics, progress, checkpoint (with the stream position) and HF export
        tail(step, metrics, vars(state), postfix={"loss": f"{metrics['loss']:.3f}", "lr": f"{metrics['lr']:.2e}"})

    # ---- cleanup ----
    tail.close()
    return metrics
