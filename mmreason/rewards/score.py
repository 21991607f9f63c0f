"""The per-response checks every reward and evaluation builds on: accuracy (the extracted answer verifies) and
format. `score` handles one response; `score_all` a batch, returning float32 tensors.

How they are weighted with the other terms into one reward is `mmreason/rewards/reward.py`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from mmreason.config import RewardConfig
from mmreason.problem import Problem
from mmreason.rewards.extract import check_sources, extract_answer
from mmreason.rewards.format import format_reward
from mmreason.rewards.verify import judge_answer


@dataclass(frozen=True)
class Scores:
    """The rewards of one response."""

    accuracy: float
    """1.0 when the extracted answer verifies against the ground truth, else 0.0."""
    format: float
    """1.0 for <think>reasoning</think> then exactly one boxed answer, else 0.0."""
    extracted: str | None
    """The final answer read from the response; None when there is none."""
    reason: str
    """correct, or why not: an extraction reason (no_answer, conflicting_boxes, ...) or a
    verification reason (wrong, hedged, not_a_number, ...)."""


@dataclass(frozen=True)
class BatchScores:
    """The rewards of N responses (one entry per response, problems already repeated per group)."""

    accuracy: Tensor
    """[N] float32, 0/1."""
    format: Tensor
    """[N] float32, 0/1."""
    extracted: list[str | None]
    """N extracted answers."""
    reasons: list[str]
    """N reasons (see Scores.reason)."""

    def __len__(self) -> int:
        return len(self.reasons)


def score(response: str, problem: Problem, cfg: RewardConfig) -> Scores:
    """Accuracy and format of one response to `problem`."""
    extraction = extract_answer(response, cfg.answer_sources)
    if extraction.answer is None:
        accuracy, reason = 0.0, extraction.reason
    else:
        verdict = judge_answer(extraction.answer, problem)
        accuracy, reason = float(verdict.correct), verdict.reason
    fmt = format_reward(response)
    return Scores(accuracy=accuracy, format=fmt, extracted=extraction.answer, reason=reason)


def score_all(responses: Sequence[str], problems: Sequence[Problem], cfg: RewardConfig) -> BatchScores:
    """Score N responses; `problems[i]` is the problem `responses[i]` answers (repeat it per group)."""
    if len(responses) != len(problems):
        raise ValueError(
            f"score_all: {len(responses)} responses but {len(problems)} problems; "
            "pass one problem per response (repeat each problem group_size times)"
        )
    check_sources(cfg.answer_sources)
    results = [score(response, problem, cfg) for response, problem in zip(responses, problems)]
    return BatchScores(
        accuracy=torch.tensor([r.accuracy for r in results], dtype=torch.float32),
        format=torch.tensor([r.format for r in results], dtype=torch.float32),
        extracted=[r.extracted for r in results],
        reasons=[r.reason for r in results],
    )


__all__ = ["Scores", "BatchScores", "score", "score_all"]
