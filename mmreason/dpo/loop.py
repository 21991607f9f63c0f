"""The DPO recipe (Kimi k1.5's long2short preference step): setup -> train -> cleanup.

Each record of data.train is a preference pair on one problem: `solution` is the chosen reply and
meta["rejected"] the rejected one (data_prep/build_long2short.py writes them: the shortest correct reply against
wrong ones and correct ones over 1.5x longer). One step, top to bottom (P pairs on this rank, 2P rows):

    pairs  = the step's train.batch_size pairs over all ranks (an epoch-seeded permutation: a pure function of step)
    for micro-batch of train.micro_batch_size pairs:           rows [c0, r0, c1, r1, ...]
        logp = summed reply-token log-probs under the policy   [2m] -> chosen [m], rejected [m]
        ref  = the same under the reference: a frozen copy of the start checkpoint, or precomputed once  [m], [m]
        loss = dpo_loss(...) (-log sigmoid(beta * margin)), summed / pairs of the step   (+ sft_weight * chosen NLL)
        backward; step

The loss is on reply tokens only (the prompt and its image tokens carry no label) and averages over every pair
of the step on all ranks, so it does not depend on micro-batching or the number of ranks. The engine setup and
the end-of-step tail (validation, metrics, checkpoint with exact resume, HF export) are mmreason/recipe.py's.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from typing import Any, Sequence

import torch
import torch.distributed as dist

from mmreason.config import Config, save_config, validate_for_world
from mmreason.data.batching import SFTBatch, collate_sft, encode_sft
from mmreason.distributed import all_reduce_sum, device
from mmreason.dpo.loss import PairLogprobs, dpo_loss
from mmreason.engine import seed_everything, step_with_grad_norm
from mmreason.logprobs import forward_logits, token_logprobs
from mmreason.models import load_policy
from mmreason.problem import Problem
from mmreason.recipe import StepTail, Validator, start_engine

log = logging.getLogger(__name__)

REJECTED = "rejected"
"""The meta key holding a pair's rejected reply (its `solution` is the chosen one)."""


# ---- data ---------------------------------------------------------------------


def encode_pair(processor: Any, pair: Problem, cfg: Config) -> SFTBatch:
    """Two rows, chosen then rejected, each prompt + reply with labels on the reply only."""
    rejected = pair.meta.get(REJECTED)
    if not pair.solution or not rejected:
        raise ValueError(f"pair {pair.pid!r}: a DPO record needs `solution` (chosen) and meta[{REJECTED!r}]")
    return encode_sft(processor, [pair, pair], [pair.solution, rejected], cfg.data.prompt_template,
                      system_prompt=cfg.data.system_prompt, min_pixels=cfg.model.min_pixels,
                      max_pixels=cfg.model.max_pixels)


def load_pairs(processor: Any, cfg: Config) -> tuple[list[Problem], int]:
    """Every pair of data.train in memory (order must be random access for exact resume), and how many were
    dropped for exceeding data.max_length."""
    from mmreason.data.shards import SkipCounter, stream_problems

    skipped = SkipCounter()
    pairs, too_long = [], 0
    for pair in stream_problems(cfg.data.train, rank=0, world_size=1, skipped=skipped):
        if encode_pair(processor, pair, cfg).input_ids.shape[1] > cfg.data.max_length:
            too_long += 1
            continue
        pairs.append(pair)
    if skipped.count or skipped.truncated:
        log.warning("data.train %r: %d corrupt samples skipped, %d lost in truncated shards", cfg.data.train,
                    skipped.count, skipped.lost)
    if not pairs:
        raise ValueError(f"data.train {cfg.data.train!r}: no preference pairs within data.max_length found")
    return pairs, too_long


def step_pairs(num_pairs: int, step: int, batch_size: int, seed: int) -> list[int]:
    """Global pair indices of `step` (1-based): consecutive slices of per-epoch seeded permutations."""
    start = (step - 1) * batch_size
    order: dict[int, list[int]] = {}
    out = []
    for position in range(start, start + batch_size):
        epoch = position // num_pairs
        if epoch not in order:
            order[epoch] = random.Random(f"mmreason-dpo:{seed}:{epoch}").sample(range(num_pairs), num_pairs)
        out.append(order[epoch][position % num_pairs])
    return out


# ---- log-probs ----------------------------------------------------------------


def reply_logprobs(model: Any, batch: SFTBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed log-prob of each row's reply [rows], reply tokens per row [rows]) for a right-padded SFT batch."""
    logits = forward_logits(model, batch.input_ids, batch.attention_mask, batch.pixel_values, batch.image_grid_thw)
    labels = batch.labels[:, 1:]  # [rows, T-1]: position t predicts token t + 1
    mask = labels != -100
    logp = token_logprobs(logits[:, :-1], labels.clamp(min=0)) * mask  # [rows, T-1]
    return logp.sum(dim=1), mask.sum(dim=1)


def to_device(batch: SFTBatch, dev: Any) -> SFTBatch:
    return SFTBatch(*(t.to(dev) if t is not None else None for t in batch))


@torch.no_grad()
def precompute_reference(model: Any, processor: Any, pairs: Sequence[Problem], cfg: Config, rank: int,
                         world_size: int) -> torch.Tensor:
    """[num_pairs, 2] (chosen, rejected) summed reply log-probs under `model` (the start checkpoint); each rank
    scores its share, then all ranks hold the whole table."""
    dev = next(model.parameters()).device
    pad_id = processor.tokenizer.pad_token_id
    mine = list(range(rank, len(pairs), world_size))
    local: dict[int, tuple[float, float]] = {}
    for start in range(0, len(mine), cfg.train.micro_batch_size):
        chunk = mine[start : start + cfg.train.micro_batch_size]
        batch = to_device(collate_sft([encode_pair(processor, pairs[i], cfg) for i in chunk], pad_id), dev)
        logp, _ = reply_logprobs(model, batch)
        for j, i in enumerate(chunk):
            local[i] = (float(logp[2 * j]), float(logp[2 * j + 1]))
    if dist.is_initialized() and world_size > 1:
        gathered: list[Any] = [None] * world_size
        dist.all_gather_object(gathered, local)
        local = {i: v for part in gathered for i, v in part.items()}
    return torch.tensor([local[i] for i in range(len(pairs))], dtype=torch.float32)


# ---- the recipe ---------------------------------------------------------------


def run(cfg: Config, rank: int, world_size: int) -> dict[str, float]:
    # ---- setup ----
    validate_for_world(cfg, world_size)
    if rank == 0:
        save_config(cfg, cfg.train.output_dir)
    seed_everything(cfg.train.seed)
    model, processor = load_policy(cfg.model, device=device())
    pairs, too_long = load_pairs(processor, cfg)
    log.info("dpo: %d pairs (%d over data.max_length dropped), reference %s", len(pairs), too_long, cfg.dpo.reference)
    # The reference is the start checkpoint, taken before the engine wraps the model and before a resume loads
    # later weights into it: a frozen copy, or its log-probs of every pair.
    ref_model = ref_table = None
    if cfg.dpo.reference == "frozen":
        ref_model = copy.deepcopy(model).eval().requires_grad_(False)
    else:
        ref_table = precompute_reference(model, processor, pairs, cfg, rank, world_size)
    per_rank = cfg.train.batch_size // world_size
    engine, start_step, _ = start_engine(model, cfg, world_size, grad_accum=per_rank // cfg.train.micro_batch_size)
    tail = StepTail(cfg, engine, processor, rank, start_step, desc="dpo",
                    validate=Validator(cfg, engine, processor, rank, world_size))
    pad_id = processor.tokenizer.pad_token_id
    grad_accum = per_rank // cfg.train.micro_batch_size

    # ---- train ----
    metrics: dict[str, float] = {}
    for step in range(start_step + 1, cfg.train.max_steps + 1):
        started = time.perf_counter()
        mine = step_pairs(len(pairs), step, cfg.train.batch_size, cfg.train.seed)[rank::world_size]
        encoded = [encode_pair(processor, pairs[i], cfg) for i in mine]
        chosen_tokens = all_reduce_sum(sum(int((e.labels[0] != -100).sum()) for e in encoded))
        sums = dict.fromkeys(("loss", "dpo_loss", "margin", "correct", "chosen_reward", "rejected_reward",
                              "chosen_length", "rejected_length", "chosen_logp", "rejected_logp"), 0.0)
        grad_norm = float("nan")
        for start in range(0, len(mine), cfg.train.micro_batch_size):
            index = mine[start : start + cfg.train.micro_batch_size]
            batch = to_device(collate_sft(encoded[start : start + len(index)], pad_id), engine.device)
            logp, lengths = reply_logprobs(engine, batch)  # [2m], rows alternate chosen / rejected
            if ref_model is not None:
                with torch.no_grad():
                    ref, _ = reply_logprobs(ref_model, batch)
                ref_chosen, ref_rejected = ref[0::2], ref[1::2]
            else:
                ref_chosen, ref_rejected = (ref_table[index, k].to(logp.device) for k in (0, 1))
            terms = dpo_loss(PairLogprobs(logp[0::2], logp[1::2], ref_chosen, ref_rejected), cfg.dpo.beta,
                             cfg.dpo.loss_type)
            pair_loss = terms.losses.sum() / cfg.train.batch_size  # this micro-batch's share of the step's mean
            loss = pair_loss + cfg.dpo.sft_weight * -logp[0::2].sum() / max(chosen_tokens, 1.0)
            # DeepSpeed divides by grad_accum and averages ranks; undo both (as the SFT recipe does).
            engine.backward(loss * world_size * grad_accum)
            norm = step_with_grad_norm(engine)
            grad_norm = norm if norm is not None else grad_norm
            margin = terms.chosen_rewards - terms.rejected_rewards
            for key, value in (("loss", loss), ("dpo_loss", pair_loss), ("margin", margin.sum()),
                               ("correct", (margin > 0).sum()), ("chosen_reward", terms.chosen_rewards.sum()),
                               ("rejected_reward", terms.rejected_rewards.sum()),
                               ("chosen_length", lengths[0::2].sum()), ("rejected_length", lengths[1::2].sum()),
                               ("chosen_logp", logp[0::2].detach().sum()), ("rejected_logp", logp[1::2].detach().sum())):
                sums[key] += float(value)
        total = {key: all_reduce_sum(value) for key, value in sums.items()}
        n = cfg.train.batch_size
        metrics = {
            "loss": total["loss"],
            "dpo/loss": total["dpo_loss"],
            "dpo/reward_margin": total["margin"] / n,
            "dpo/accuracy": total["correct"] / n,
            "dpo/chosen_reward": total["chosen_reward"] / n,
            "dpo/rejected_reward": total["rejected_reward"] / n,
            "dpo/chosen_length": total["chosen_length"] / n,
            "dpo/rejected_length": total["rejected_length"] / n,
            "dpo/chosen_logp": total["chosen_logp"] / n,
            "dpo/rejected_logp": total["rejected_logp"] / n,
            "dpo/pairs_too_long": too_long,
            "lr": engine.get_lr()[0],
            "grad_norm": grad_norm,
            "time/step": time.perf_counter() - started,
        }
        tail(step, metrics, {}, postfix={"loss": f"{metrics['dpo/loss']:.3f}",
                                         "margin": f"{metrics['dpo/reward_margin']:.3f}"})

    # ---- cleanup ----
    tail.close()
    return metrics
