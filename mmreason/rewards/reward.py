"""The whole RL reward in one place: named terms, their weights and the weighted sum the advantages use.

    record = compute_reward(texts, problems, lengths=..., truncated=..., repetitive=..., group_size=G, step=step,
                            max_new_tokens=L, cfg=cfg.reward)
    advantages = compute_advantages(record.overall.view(B, G), cfg.algo)

=============  ===================================================  ==============================  ==============
term           value per response                                   weight                          source
=============  ===================================================  ==============================  ==============
accuracy       1 if the extracted answer verifies, else 0           reward.accuracy_weight          R1 / k1.5
format         1 for <think>...</think> then one boxed answer       reward.format_weight            R1
length         in [-0.5, 0.5]: shortest correct in its group +0.5   reward.length_penalty_weight    Kimi k1.5
               down to longest -0.5; wrong ones only penalised;     (0 before
               0 before reward.length_penalty_start_step            length_penalty_start_step)
overlong       in [-1, 0]: linear inside the last                   reward.overlong_penalty         DAPO
               reward.overlong_buffer tokens of max_new_tokens
repetition     1 for a response cut at degenerate repetition        reward.repetition_penalty       this project
                                                                    (negative)
language       share of the chain of thought in reward.language     reward.language_consistency_    DeepSeek-R1
               (only when its weight is not 0)                      weight
<your fn>      whatever reward.function returns                     reward.function_weight          you
=============  ===================================================  ==============================  ==============

    overall = sum over terms of weight * value

Answers are verified once per response (`score_all`); the record keeps the extracted answers and reasons, and
DAPO's dynamic sampling reads its accuracies instead of verifying again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor

from mmreason.config import RewardConfig
from mmreason.problem import Problem
from mmreason.rewards.custom import call_reward_function, load_reward_function
from mmreason.rewards.language import check_language, language_consistency
from mmreason.rewards.length import k15_length_reward, overlong_penalty
from mmreason.rewards.score import score_all


@dataclass(frozen=True)
class RewardRecord:
    """The reward of N responses (problems repeated per group, a prompt's G responses adjacent)."""

    terms: dict[str, Tensor]
    """Term name -> [N] float32 value before its weight (see the table above)."""
    weights: dict[str, float]
    """Term name -> its weight in `overall`."""
    overall: Tensor
    """[N] float32: sum of weight * value over the terms; what the advantages are computed from."""
    extracted: list[Optional[str]]
    """N final answers read from the responses (None where there is none)."""
    reasons: list[str]
    """N verification outcomes: correct, or why not (see rewards.score.Scores.reason)."""

    @property
    def accuracy(self) -> Tensor:
        return self.terms["accuracy"]

    def select(self, rows: Tensor) -> RewardRecord:
        """The record of `rows` ([n] indices) only."""
        kept = rows.tolist()
        return RewardRecord(
            terms={name: value[rows] for name, value in self.terms.items()}, weights=dict(self.weights),
            overall=self.overall[rows], extracted=[self.extracted[i] for i in kept], reasons=[self.reasons[i] for i in kept],
        )

    @staticmethod
    def concat(records: Sequence[RewardRecord]) -> RewardRecord:
        """Records of consecutive row blocks (e.g. DAPO's sampling rounds) joined in order."""
        first = records[0]
        return RewardRecord(
            terms={name: torch.cat([r.terms[name] for r in records]) for name in first.terms},
            weights=dict(first.weights), overall=torch.cat([r.overall for r in records]),
            extracted=[a for r in records for a in r.extracted], reasons=[a for r in records for a in r.reasons],
        )


def weighted_sum(terms: dict[str, Tensor], weights: dict[str, float]) -> Tensor:
    """[N] sum of weights[name] * terms[name]; a term without a weight is an error, not a silent zero."""
    missing = set(terms) ^ set(weights)
    if missing:
        raise ValueError(f"reward terms and weights differ: {sorted(missing)}")
    total = torch.zeros_like(next(iter(terms.values())), dtype=torch.float32)
    for name, value in terms.items():
        total = total + weights[name] * value.float()
    return total


@functools.lru_cache(maxsize=None)
def _user_function(spec: str):
    return load_reward_function(spec)


def compute_reward(responses: Sequence[str], problems: Sequence[Problem], *, lengths: Tensor, truncated: Tensor,
                   repetitive: Tensor, group_size: int, step: int, max_new_tokens: int, cfg: RewardConfig) -> RewardRecord:
    """Every term of the reward for N responses and their weighted sum.

    lengths [N] tokens generated (EOS included), truncated [N] bool (cut at max_new_tokens), repetitive [N] bool
    (cut at degenerate repetition); group_size G with N = B * G. `cfg.overlong_buffer` None counts as 0
    (config validation fills it from the algo preset).
    """
    n = len(responses)
    for name, tensor in (("lengths", lengths), ("truncated", truncated), ("repetitive", repetitive)):
        if tuple(tensor.shape) != (n,):
            raise ValueError(f"compute_reward: {name} must have shape ({n},) (one per response), got {tuple(tensor.shape)}")
    if group_size < 1 or n % group_size:
        raise ValueError(f"compute_reward: {n} responses do not split into groups of {group_size}")
    scores = score_all(responses, problems, cfg)
    lengths_f = lengths.float()
    length = torch.zeros(n)
    if cfg.length_penalty_weight and step >= cfg.length_penalty_start_step:
        length = k15_length_reward(lengths_f.view(-1, group_size), scores.accuracy.view(-1, group_size).bool()).reshape(-1)
    buffer = cfg.overlong_buffer or 0
    terms = {
        "accuracy": scores.accuracy,
        "format": scores.format,
        "length": length,
        "overlong": overlong_penalty(lengths, max_new_tokens, buffer, 1.0),
        "repetition": repetitive.float(),
    }
    weights = {
        "accuracy": cfg.accuracy_weight,
        "format": cfg.format_weight,
        "length": cfg.length_penalty_weight,
        "overlong": cfg.overlong_penalty,
        "repetition": cfg.repetition_penalty,
    }
    if cfg.language_consistency_weight:
        check_language(cfg.language)
        terms["language"] = torch.tensor([language_consistency(r, cfg.language) for r in responses], dtype=torch.float32)
        weights["language"] = cfg.language_consistency_weight
    if cfg.function:
        fn = _user_function(cfg.function)
        terms[fn.__name__] = call_reward_function(fn, responses, problems, lengths=lengths, truncated=truncated, step=step)
        weights[fn.__name__] = cfg.function_weight
    return RewardRecord(terms=terms, weights=weights, overall=weighted_sum(terms, weights),
                        extracted=scores.extracted, reasons=scores.reasons)
