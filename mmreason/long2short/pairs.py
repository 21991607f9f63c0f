"""k1.5's long2short data from n sampled replies per problem (pure functions, no model).

Shortest rejection sampling keeps the shortest correct reply as SFT data. DPO pairs take that reply as the
positive; the negatives are the wrong replies and the correct replies more than `length_ratio` (1.5 in the
paper) times longer than it. "Correct" is what the warmup builder accepts (rejection.Trace.accepted: the answer
verifies and the format is right), so a reply with a right answer but a broken format is a negative too.
Lengths are in generated tokens; ties go to the earlier sample, so the choice is deterministic.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from mmreason.problem import Problem
from mmreason.warmup.rejection import Trace

PAPER_LENGTH_RATIO = 1.5


class PairIndices(NamedTuple):
    chosen: int
    rejected: int


def shortest_correct(traces: Sequence[Trace]) -> int | None:
    """Index of the shortest accepted trace, None when none is accepted."""
    accepted = [i for i, trace in enumerate(traces) if trace.accepted]
    return min(accepted, key=lambda i: (traces[i].num_tokens, i)) if accepted else None


def negatives(traces: Sequence[Trace], length_ratio: float = PAPER_LENGTH_RATIO) -> list[int]:
    """Indices of the DPO negatives: every rejected trace, and accepted ones longer than length_ratio x the
    shortest accepted one (strictly longer: exactly 1.5x is not a negative). Empty when nothing is accepted."""
    best = shortest_correct(traces)
    if best is None:
        return []
    limit = length_ratio * traces[best].num_tokens
    return [i for i, trace in enumerate(traces) if not trace.accepted or trace.num_tokens > limit]


def build_pairs(traces: Sequence[Trace], length_ratio: float = PAPER_LENGTH_RATIO,
                max_pairs: int = 0) -> list[PairIndices]:
    """(shortest correct, negative) pairs of one problem, negatives in sample order; max_pairs > 0 keeps the first
    max_pairs of them."""
    best = shortest_correct(traces)
    if best is None:
        return []
    pairs = [PairIndices(best, i) for i in negatives(traces, length_ratio)]
    return pairs[:max_pairs] if max_pairs > 0 else pairs


def shortest_record(problem: Problem, traces: Sequence[Trace], teacher: str) -> Problem | None:
    """The SFT record of shortest rejection sampling: the problem with its shortest correct reply as solution."""
    best = shortest_correct(traces)
    if best is None:
        return None
    meta = dict(problem.meta, long2short="shortest", long2short_of=problem.pid, teacher=teacher,
                trace_index=best, trace_tokens=traces[best].num_tokens)
    return problem.copy(pid=f"{problem.pid}-short{best}", solution=traces[best].text, meta=meta)


def pair_records(problem: Problem, traces: Sequence[Trace], teacher: str, length_ratio: float = PAPER_LENGTH_RATIO,
                 max_pairs: int = 0) -> list[Problem]:
    """The DPO records of one problem: `solution` the chosen reply, meta["rejected"] the rejected one (the format
    mmreason/dpo/loop.py reads)."""
    records = []
    for chosen, rejected in build_pairs(traces, length_ratio, max_pairs):
        meta = dict(problem.meta, long2short="dpo", long2short_of=problem.pid, teacher=teacher,
                    rejected=traces[rejected].text, chosen_tokens=traces[chosen].num_tokens,
                    rejected_tokens=traces[rejected].num_tokens, rejected_reason=traces[rejected].reason,
                    rejected_correct=traces[rejected].accepted)
        records.append(problem.copy(pid=f"{problem.pid}-pair{chosen}x{rejected}", solution=traces[chosen].text,
                                    meta=meta))
    return records
