"""The validation hook the SFT and RL recipes call every N steps on held-out problems.

Greedy answers on a fixed held-out set, scored by the same rewards as RL:
accuracy, format rate and mean response length, summed over ranks. Answers
come from the generation interface (`mmreason.generation.generate_samples`),
so validation runs on whatever engine generation runs on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import torch

from mmreason.config import EvalConfig, RewardConfig
from mmreason.distributed import all_reduce_sum
from mmreason.generation import Engine, SampledText, generate_samples
from mmreason.problem import Problem
from mmreason.rewards import score

log = logging.getLogger(__name__)


def load_validation_set(urls: str, num_problems: int) -> list[Problem]:
    """The first `num_problems` held-out problems, identical on every rank (sharding happens at scoring)."""
    from mmreason.data.shards import stream_problems

    problems: list[Problem] = []
    for problem in stream_problems(urls, rank=0, world_size=1):
        problems.append(problem)
        if len(problems) >= num_problems:
            break
    return problems


def rank_share(problems: Sequence[Problem], rank: int, world_size: int, *, equal: bool = False) -> list[Problem]:
    """Problems rank, rank + W, rank + 2W, ...; with `equal`, padded (with problems[0]) to ceil(N / W) on every rank,
    so that collective generation (synced_gpus) makes the same number of calls on every rank."""
    mine = list(problems[rank::world_size])
    if equal and problems:
        mine += [problems[0]] * (-(-len(problems) // world_size) - len(mine))
    return mine


def _generate_synced(model: Any, processor: Any, problems: Sequence[Problem], cfg: EvalConfig, *, template: str,
                     system_prompt: str | None, engine: Engine | None) -> list[list[SampledText]]:
    """`generate_samples` with synced_gpus=True, which it does not take yet: ZeRO-3 on several ranks shards the
    weights, so every generate call is a collective. Remove once generate_samples(synced_gpus=...) exists."""
    from mmreason.generation import decode_responses, encode, eos_token_ids, generate

    eos = eos_token_ids(model, processor)
    results: list[list[SampledText]] = []
    for start in range(0, len(problems), cfg.batch_size):
        chunk = problems[start : start + cfg.batch_size]
        prompts = encode(processor, chunk, template, system_prompt=system_prompt,
                         with_images=engine is not None and engine.needs_images)
        settings = dict(num_samples=1, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, synced_gpus=True)
        out = (generate(model, processor, prompts.batch, **settings) if engine is None
               else engine.generate(model, processor, prompts, **settings))
        texts = decode_responses(processor, out.response_ids, out.response_mask, eos)
        results += [[SampledText(text, int(n))] for text, n in zip(texts, out.response_mask.sum(1).tolist())]
    return results


@torch.no_grad()
def run_validation(model: Any, processor: Any, problems: Sequence[Problem], cfg: EvalConfig, reward: RewardConfig, *,
                   template: str, system_prompt: str | None, rank: int, world_size: int,
                   synced_gpus: bool = False, engine: Engine | None = None) -> dict[str, float]:
    """eval/accuracy, eval/format, eval/response_length over `problems` (each rank scores its share).

    engine: the generation engine (mmreason.generation.Engine, holding `model`'s current weights);
    None is transformers' `generate` on `model`.

    synced_gpus: generation is a collective across ranks (ZeRO-3 with several ranks); every rank then
    generates for the same number of problems (padded shares; the padding is not scored).
    """
    mine = rank_share(problems, rank, world_size)
    started = time.perf_counter()
    if rank == 0:
        log.info("validation: %d problems on %d rank(s)", len(problems), world_size)
    if synced_gpus:
        samples = _generate_synced(model, processor, rank_share(problems, rank, world_size, equal=True), cfg,
                                   template=template, system_prompt=system_prompt, engine=engine)
    else:
        samples = generate_samples(model, processor, mine, template=template, num_samples=1,
                                   temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens,
                                   batch_size=cfg.batch_size, system_prompt=system_prompt, engine=engine,
                                   progress=rank == 0)
    totals = {"accuracy": 0.0, "format": 0.0, "length": 0.0}
    for problem, (sample, *_) in zip(mine, samples):  # zip stops before the padding
        scores = score(sample.text, problem, reward)
        totals["accuracy"] += scores.accuracy
        totals["format"] += scores.format
        totals["length"] += sample.num_tokens
    count = all_reduce_sum(len(mine))
    results = {f"eval/{'response_length' if k == 'length' else k}": all_reduce_sum(v) / max(count, 1)
               for k, v in totals.items()}
    if rank == 0:
        log.info("validation: done in %.0f s: accuracy %.4f, format %.4f, response length %.0f",
                 time.perf_counter() - started, results["eval/accuracy"], results["eval/format"],
                 results["eval/response_length"])
    return results
