"""Answer skew from cleaning: which (question, answer) classes dedup and decontamination nearly emptied.

Dedup matches problems on question, answer and perceptual image hash. When a
templated source draws one answer's images too alike for the hash (every
2-bar chart with one full-height bar, regular pentagons that differ only in
colour and rotation), that answer's problems collapse into a few, while other
answers of the same question survive. Nothing looks wrong in the step totals,
but the cleaned set now teaches the model that the answer is rare: a tiny
model trained on it never answered "5" to a pentagon. This module counts the
classes on the stream and names the ones whose kept share fell far below
the overall one; the report and the log show them.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from mmreason.curation.signatures import normalize_answer, normalize_text
from mmreason.problem import Problem


@dataclass
class SkewedClass:
    """One (question, answer) class that cleaning kept much less of than of the whole input."""

    question: str
    """The normalised question text."""
    answer: str
    """The normalised answer."""
    input: int
    """Problems of the class in the input."""
    kept: int
    """Problems of the class left after dedup and decontamination."""
    removed_by: dict[str, int] = field(default_factory=dict)
    """Removals per step (dedup, decontam)."""


def class_key(problem: Problem) -> bytes:
    """A compact key of the normalised (question, answer): 8 bytes per class, whatever the texts' length."""
    text = f"{normalize_text(problem.question)}\x00{normalize_answer(problem.answer)}"
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


class AnswerClassTally:
    """Counts classes on the input stream and the removals of the cleaning steps (call in input order)."""

    def __init__(self, min_problems: int, steps: Sequence[str]):
        self.min_problems = min_problems
        self.steps = tuple(steps)
        """The cleaning steps in pipeline order (the order of SkewedClass.removed_by)."""
        self.input: Counter[bytes] = Counter()
        self.removed: dict[bytes, Counter[str]] = {}
        self.labels: dict[bytes, tuple[str, str]] = {}
        """Texts of the classes big enough to be checked (only those: a corpus of unique questions stays small)."""

    def add(self, problem: Problem) -> bytes:
        if not self.steps:  # no cleaning step runs (the RL prompt-set config): nothing to tally on the hot path
            return b""
        key = class_key(problem)
        self.input[key] += 1
        if self.input[key] == self.min_problems:
            self.labels[key] = (normalize_text(problem.question), normalize_answer(problem.answer))
        return key

    def remove(self, key: bytes, step: str) -> None:
        self.removed.setdefault(key, Counter())[step] += 1

    def skewed(self, kept_ratio: float) -> list[SkewedClass]:
        """Classes of at least min_problems whose kept share is below kept_ratio times the overall kept share,
        least kept first."""
        return skewed_classes(self.input, self.removed, self.labels, kept_ratio, self.steps)


def skewed_classes(
    input_counts: Counter[bytes],
    removed: dict[bytes, Counter[str]],
    labels: dict[bytes, tuple[str, str]],
    kept_ratio: float,
    steps: Sequence[str],
) -> list[SkewedClass]:
    """The classes in `labels` that kept less than kept_ratio x (overall kept share) of their input."""
    total = sum(input_counts.values())
    if total == 0 or kept_ratio <= 0:
        return []
    overall_kept_share = 1 - sum(sum(c.values()) for c in removed.values()) / total
    rows = []
    for key, (question, answer) in labels.items():
        n = input_counts[key]
        by_step = removed.get(key, Counter())
        kept = n - sum(by_step.values())
        if kept < kept_ratio * overall_kept_share * n:
            rows.append(SkewedClass(question, answer, n, kept, {step: by_step[step] for step in steps if by_step[step]}))
    return sorted(rows, key=lambda row: (row.kept / row.input, -row.input, row.question, row.answer))
