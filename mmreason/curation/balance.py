"""Step 8: sample a prompt set with a target mix of domains and difficulties.

Every problem falls in one cell (domain, difficulty bucket). The domain is
meta["domain"] (set by tagging). The bucket comes from meta["pass_rate"]
when the difficulty step ran (easy >= easy_min_pass_rate, hard <=
hard_max_pass_rate, medium in between), else from meta["difficulty"] when it
names a bucket ("easy"/"medium"/"hard", or a level 1/2/3), else "unknown".

Targets are set in two levels, because coverage of domains comes first:
1. domain quotas: `total` shared among the domains in proportion to their
   weights (`domain_weights`, else `default_domain_weight`), counting only
   problems in buckets of positive weight;
2. inside each domain, its quota shared among the difficulty buckets in
   proportion to `difficulty_weights`.
With plenty of data in every cell this is the same as a cell share
proportional to domain_weight x difficulty_weight.

Shortfall: at either level, a group (domain, or bucket inside a domain) that
holds fewer problems than its target gives all it has, and what it is short
is handed to the groups that still have spare problems, in proportion to
their weights, repeated until the target is met or the groups with positive
weight are used up (`allocate`, water filling). So a domain without hard
problems fills its quota with its medium and easy ones, and a small domain's
missing problems go to the other domains. The result has exactly `total`
problems whenever that many have positive weight. Groups with weight 0 are
never sampled. Rounding ties go to groups in an order shuffled by `seed`, not
alphabetically, so small totals do not always favour the same domains.
Within a cell the problems are drawn without replacement by a RNG seeded with
(seed, domain, bucket), so the choice in one cell does not change when
another cell's contents change.
"""

from __future__ import annotations

import math
import random
from typing import Any, Mapping, Sequence, TypeVar

from mmreason.curation.config import BalanceConfig
from mmreason.curation.removal import Removal, StepResult
from mmreason.problem import Problem

STEP = "balance"

Cell = tuple[str, str]
"""(domain, difficulty bucket)."""

_LEVEL_BUCKETS = {1: "easy", 2: "medium", 3: "hard"}


def pass_rate_bucket(rate: float, cfg: BalanceConfig) -> str:
    if rate >= cfg.easy_min_pass_rate:
        return "easy"
    if rate <= cfg.hard_max_pass_rate:
        return "hard"
    return "medium"


def meta_difficulty_bucket(value: Any) -> str:
    """A bucket from a dataset's own difficulty label: a bucket name or a level 1/2/3; else unknown."""
    if isinstance(value, str) and value.strip().lower() in ("easy", "medium", "hard"):
        return value.strip().lower()
    if isinstance(value, int) and not isinstance(value, bool):
        return _LEVEL_BUCKETS.get(value, "unknown")
    return "unknown"


def difficulty_bucket(problem: Problem, cfg: BalanceConfig) -> str:
    """easy / medium / hard / unknown (see the module docstring for the order of evidence)."""
    rate = problem.meta.get("pass_rate")
    if isinstance(rate, (int, float)) and not isinstance(rate, bool):
        return pass_rate_bucket(float(rate), cfg)
    return meta_difficulty_bucket(problem.meta.get("difficulty"))


def domain_of(problem: Problem) -> str:
    return str(problem.meta.get("domain") or "untagged")


def domain_weight(domain: str, cfg: BalanceConfig) -> float:
    return cfg.domain_weights.get(domain, cfg.default_domain_weight)


def bucket_weight(bucket: str, cfg: BalanceConfig) -> float:
    return cfg.difficulty_weights.get(bucket, 0.0)


K = TypeVar("K")


def allocate(
    weights: Mapping[K, float], available: Mapping[K, int], total: int, tie_order: Sequence[K] | None = None
) -> dict[K, int]:
    """How many problems to take from each group: proportional to weight, capped by what is available.

    Water filling: share the remaining total among the open groups by weight; a
    group whose share is at least what it has left takes everything and closes,
    and the loop shares the rest again among the others. When no group is
    capped, the shares are rounded by largest remainder, so the counts sum to
    exactly the remaining total; equal remainders go first to the group first
    in `tie_order` (default: sorted order).
    """
    order = list(tie_order) if tie_order is not None else sorted(weights)
    taken = {group: 0 for group in order}
    open_groups = [g for g in order if weights[g] > 0 and available.get(g, 0) > 0]
    remaining = min(total, sum(available.get(g, 0) for g in open_groups))
    while remaining > 0 and open_groups:
        weight_sum = sum(weights[g] for g in open_groups)
        shares = {g: remaining * weights[g] / weight_sum for g in open_groups}
        capped = [g for g in open_groups if shares[g] >= available[g] - taken[g]]
        if capped:
            for group in capped:
                remaining -= available[group] - taken[group]
                taken[group] = available[group]
            open_groups = [g for g in open_groups if g not in capped]
            continue
        floors = {g: math.floor(shares[g]) for g in open_groups}
        leftover = remaining - sum(floors.values())
        by_remainder = sorted(open_groups, key=lambda g: (-(shares[g] - floors[g]), open_groups.index(g)))
        for group in open_groups:
            taken[group] += floors[group]
        for group in by_remainder[:leftover]:
            taken[group] += 1
        remaining = 0
    return taken


def cell_quotas(cells: Mapping[Cell, int], cfg: BalanceConfig, total: int) -> dict[Cell, int]:
    """Problems to take per (domain, bucket): domain quotas first, then buckets inside each domain."""
    tie_rng = random.Random(f"mmreason-balance-ties:{cfg.seed}")
    usable: dict[str, int] = {}
    for (domain, bucket), count in cells.items():
        usable[domain] = usable.get(domain, 0) + (count if bucket_weight(bucket, cfg) > 0 else 0)
    domains = sorted(usable)
    tie_rng.shuffle(domains)
    domain_quota = allocate({d: domain_weight(d, cfg) for d in domains}, usable, total, domains)
    quotas: dict[Cell, int] = {}
    for domain in sorted(usable):
        buckets = sorted(bucket for d, bucket in cells if d == domain)
        tie_rng.shuffle(buckets)
        inside = allocate({b: bucket_weight(b, cfg) for b in buckets}, {b: cells[(domain, b)] for b in buckets},
                          domain_quota[domain], buckets)
        quotas.update({(domain, bucket): count for bucket, count in inside.items()})
    return quotas


def cell_rng(seed: int, cell: Cell) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`: stable across processes, unlike hash().
    return random.Random(f"mmreason-balance:{seed}:{cell[0]}:{cell[1]}")


def balance(problems: Sequence[Problem], cfg: BalanceConfig, total: int | None = None, step: str = STEP) -> StepResult:
    """Sample `total` (default cfg.total) problems matching the target mix; the rest are removed naming their cell.

    `step` names the removals (the pipeline's presample step reuses this with total=cfg.presample).
    """
    total = cfg.total if total is None else total
    cells: dict[Cell, list[int]] = {}
    for index, problem in enumerate(problems):
        cells.setdefault((domain_of(problem), difficulty_bucket(problem, cfg)), []).append(index)
    quota = cell_quotas({cell: len(members) for cell, members in cells.items()}, cfg, total)
    chosen: set[int] = set()
    for cell, members in cells.items():
        chosen.update(cell_rng(cfg.seed, cell).sample(members, quota[cell]))
    kept = [p for i, p in enumerate(problems) if i in chosen]
    removed = []
    for index, problem in enumerate(problems):
        if index in chosen:
            continue
        cell = (domain_of(problem), difficulty_bucket(problem, cfg))
        if domain_weight(cell[0], cfg) == 0 or bucket_weight(cell[1], cfg) == 0:
            kind, reason = "zero_weight", f"cell {cell[0]}/{cell[1]} has weight 0 in the target mix"
        else:
            kept_of = f"kept {quota[cell]} of {len(cells[cell])}"
            kind, reason = "over_target", f"cell {cell[0]}/{cell[1]} over its target ({kept_of})"
        removed.append(Removal(problem.pid, step, kind, reason))
    return StepResult(kept, removed)
