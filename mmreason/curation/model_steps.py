"""Machinery shared by the model steps (hackable, blind, difficulty): sample, judge, cache, split over ranks.

Every model step asks the same thing of a model: for each problem, sample n answers
and say which are right. This module does that

- in batches of `problems_per_batch` problems per `generate_fn` call,
- on several ranks (`deepspeed data_prep/curate.py ...`): rank r takes the
  problems i with i % world_size == r, writes its own cache file, waits at a
  barrier, then the caches are merged (every rank reads all of them, so every
  rank continues with the same kept list; rank 0 alone writes the outputs),
- with a cache `<cache_dir>/<step>.rank<r>.jsonl`, one line per finished
  problem (pid, a fingerprint of the sampling settings, the responses and
  which were right), flushed after every batch. A restarted run reads every
  rank's cache file of the step and only generates for problems without a
  line carrying the same fingerprint, so a killed run loses at most one batch
  per rank, and changing the model or the sampling settings recomputes.

The problems come in as image-free records; `SamplingSetup.load` gives a
batch's problems back with their images (the pipeline reads them from the
input shards), so only one batch's pixels are in memory at a time.

The model is hidden behind `GenerateFn(problems, num_samples, temperature) ->
list[list[str]]` so the steps can be tested with a deterministic rule; the
pipeline builds the real one from `load_policy` + `generate_texts`.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from mmreason.config import RewardConfig
from mmreason.curation.removal import Removal, StepResult
from mmreason.problem import Problem
from mmreason.rewards import score
from mmreason.jsonl import open_for_append

log = logging.getLogger(__name__)

GenerateFn = Callable[[Sequence[Problem], int, float], list[list[str]]]
"""(problems, num_samples, temperature) -> num_samples response texts per problem, in order."""

JudgeFn = Callable[[str, Problem], bool]
"""(response, problem) -> whether the response's final answer is right."""

# Accuracy only, read from the boxed answer: both step prompts ask for \boxed{}.
_JUDGE_REWARD = RewardConfig(accuracy_weight=1.0, format_weight=0.0, answer_sources=["boxed"])


def judge_response(response: str, problem: Problem) -> bool:
    """True when the response's boxed answer verifies against the ground truth (rewards.score accuracy 1)."""
    return score(response, problem, _JUDGE_REWARD).accuracy == 1


@dataclass
class RankContext:
    """Which share of the work this process does, and how it waits for the others."""

    rank: int = 0
    world_size: int = 1
    barrier: Callable[[], None] = field(default=lambda: None)
    local_rank: int = 0
    close: Callable[[], None] = field(default=lambda: None)
    """Leave the process group if this context joined it."""

    def owns(self, index: int) -> bool:
        return index % self.world_size == self.rank

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def rank_context_from_environment(timeout_minutes: int) -> RankContext:
    """One process unless launched by deepspeed/torchrun (WORLD_SIZE > 1): then join the process group.

    The timeout is long because ranks meet at a barrier after each model step,
    and the slowest rank may finish its share hours after the fastest.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return RankContext()
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    def close() -> None:  # nothing to tear down unless this function starts the process group
        pass

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=timeout_minutes))
        close = dist.destroy_process_group
    return RankContext(
        rank=dist.get_rank(), world_size=dist.get_world_size(), barrier=dist.barrier, local_rank=local_rank, close=close
    )


@dataclass
class SamplingSetup:
    """Where and how the model steps run (shared by all of them)."""

    cache_dir: Path
    """output/cache: one `<step>.rank<r>.jsonl` per step and rank."""
    problems_per_batch: int = 64
    """Problems per generate_fn call; the cache is flushed after each."""
    ranks: RankContext = field(default_factory=RankContext)
    model_fingerprint: str = ""
    """Identifies the model and decoding settings; cached lines made with another one are not reused."""
    judge: JudgeFn = judge_response
    load: Callable[[Sequence[Problem]], Iterable[Problem]] = field(default=lambda records: records)
    """Records -> the same problems with their images, in order (the pipeline re-reads them from the shards)."""


def fingerprint(*parts: Any) -> str:
    """Short stable digest of the settings that decide what a cached sample means."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def cache_path(cache_dir: Path, step: str, rank: int) -> Path:
    return cache_dir / f"{step}.rank{rank}.jsonl"


def read_cache(cache_dir: Path, step: str, key: str) -> dict[str, list[bool]]:
    """pid -> per-sample correctness from every rank's cache file of `step` with fingerprint `key`.

    Lines from other fingerprints (another model or settings) are skipped, and
    so is a torn last line left by a killed run.
    """
    results: dict[str, list[bool]] = {}
    stale = torn = 0
    for path in sorted(cache_dir.glob(f"{step}.rank*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    pid, correct, line_key = record["pid"], record["correct"], record["fingerprint"]
                except (ValueError, KeyError, TypeError):
                    torn += 1
                    log.warning("%s line %d: unreadable cache line ignored (interrupted write?)", path, number)
                    continue
                if line_key != key:
                    stale += 1
                    continue
                results[pid] = [bool(c) for c in correct]
    if stale:
        log.info("%s cache: %d lines from other settings ignored", step, stale)
    return results


def _batches(items: Iterable[Problem], size: int) -> Iterator[list[Problem]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def sample_and_judge(
    problems: Sequence[Problem],
    *,
    step: str,
    generate_fn: GenerateFn,
    num_samples: int,
    temperature: float,
    setup: SamplingSetup,
    settings_key: str,
) -> dict[str, list[bool]]:
    """pid -> correctness of each of `num_samples` sampled responses, for every problem.

    This rank generates for its share of the problems not yet cached, appending
    one line per problem to its cache after each batch; then all ranks meet at
    the barrier and read the merged caches.
    """
    cache_dir = setup.cache_dir
    cache_dir.mkdir(parents=True, exist_ok=True)
    ranks = setup.ranks
    done = read_cache(cache_dir, step, settings_key)
    todo = [p for i, p in enumerate(problems) if ranks.owns(i) and p.pid not in done]
    mine = sum(1 for i in range(len(problems)) if ranks.owns(i))
    log.info("%s rank %d: %d of its %d problems cached, %d to sample",
             step, ranks.rank, mine - len(todo), mine, len(todo))
    if todo:
        with open_for_append(cache_path(cache_dir, step, ranks.rank)) as cache:
            for batch in _batches(setup.load(todo), setup.problems_per_batch):
                responses = generate_fn(batch, num_samples, temperature)
                check_responses(responses, batch, num_samples, step)
                for problem, texts in zip(batch, responses):
                    correct = [setup.judge(text, problem) for text in texts]
                    record = {"pid": problem.pid, "fingerprint": settings_key, "correct": correct, "responses": texts}
                    cache.write(json.dumps(record, ensure_ascii=False) + "\n")
                cache.flush()
                os.fsync(cache.fileno())
    ranks.barrier()
    merged = read_cache(cache_dir, step, settings_key)
    missing = [p.pid for p in problems if p.pid not in merged]
    if missing:
        raise RuntimeError(
            f"{step}: after all {ranks.world_size} rank(s) finished, {len(missing)} problems have no cached "
            f"result (first: {missing[:5]}); a rank failed or the cache dir {str(cache_dir)!r} is not shared"
        )
    return {p.pid: merged[p.pid] for p in problems}


def drop_answered(
    problems: Sequence[Problem], correct: dict[str, list[bool]], step: str, kind: str, how: str, num_tries: int
) -> StepResult:
    """Keep the problems no try answered right; the others are removed as `kind` ("answered right {how} ...")."""
    kept: list[Problem] = []
    removed: list[Removal] = []
    for problem in problems:
        hits = sum(correct[problem.pid])
        if hits:
            removed.append(Removal(problem.pid, step, kind, f"answered right {how} in {hits} of {num_tries} tries"))
        else:
            kept.append(problem)
    return StepResult(kept, removed)


def check_responses(responses: Any, batch: Sequence[Problem], num_samples: int, step: str) -> None:
    """Raise ValueError unless `responses` holds `num_samples` strings for each problem of `batch`."""
    if not isinstance(responses, list) or len(responses) != len(batch):
        got = len(responses) if isinstance(responses, list) else type(responses).__name__
        raise ValueError(f"{step}: generate_fn returned {got} response lists for {len(batch)} problems")
    for problem, texts in zip(batch, responses):
        if len(texts) != num_samples or not all(isinstance(t, str) for t in texts):
            raise ValueError(
                f"{step}: generate_fn returned {len(texts)} responses for problem {problem.pid!r}, "
                f"expected {num_samples} strings"
            )
