"""MathVista scoring with the benchmark's own rules, without the GPT answer extractor.

Three steps per problem, as in MathVista's `evaluation/` scripts:

1. extract (`extract_mathvista`, in `mmreason/eval/extraction.py`): rules
   instead of GPT-4, covering the answer forms of real model outputs (boxes,
   answer phrases in English and Chinese, a leading or final option letter, a
   choice's text in a sentence, the stated number of the concluding sentence,
   numbers in words); LaTeX wrappers are removed and numeric LaTeX is written
   as a plain number ("\\frac{1}{2}" -> "0.5"), which is what the GPT extractor
   returns. See that module for the rules in order.
2. normalise (`normalize_mathvista`), exactly as `calculate_score.py`'s
   `normalize_extracted_answer`: multiple choice maps a letter ("B" or "(B)")
   to its choice text, anything else to the choice nearest by edit distance;
   integer -> ``str(int(float(x)))`` (so "12.7" becomes "12", MathVista's
   truncation); float -> ``str(round(float(x), precision))``; list -> ``str(x)``;
   text is left as is; failures -> None.
3. compare (`safe_equal`): exact string equality with the ground truth.

Consequences of the official rules, kept on purpose so numbers match published ones:
- An empty extraction for a multiple-choice problem is mapped to the nearest
  (shortest) choice and may be right; pass `ignore_empty_extractions=True`
  (CLI `--ignore-empty-extractions`, an option of the official script too) to
  count it wrong instead.
- Duplicate choice texts: a letter maps to its option's text and texts are
  compared, so every letter whose option has the answer's text is right; the
  nearest-choice rule returns the first of equal candidates, which has the same text.
- A float problem without a precision (not in MathVista, possible in our own
  data) is normalised as ``str(float(x))``.

Problems without a prediction count as wrong and are listed under `missing`;
the report itself (breakdowns, scores.json) is `mmreason/eval/report.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mmreason.eval.extraction import extract_mathvista
from mmreason.eval.load import MathVistaError
from mmreason.eval.report import build_report
from mmreason.problem import Problem

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Prediction:
    """One model output to score: the raw response, or an answer already extracted."""

    pid: str
    response: str | None = None
    extraction: str | None = None
    """When given, used as is instead of extracting from `response` (like the official pipeline's field)."""



# ---------------------------------------------------------------- extraction and normalisation

def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: fewest single-character insertions, deletions and substitutions."""
    start = 0  # a shared prefix or suffix never changes the distance
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    a, b = a[start:], b[start:]
    end = 0
    while end < min(len(a), len(b)) and a[-1 - end] == b[-1 - end]:
        end += 1
    a, b = a[: len(a) - end], b[: len(b) - end]
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def most_similar_choice(prediction: str, choices: Sequence[str]) -> str:
    """The choice with the smallest edit distance to `prediction` (the first one on ties)."""
    distances = [edit_distance(prediction, choice) for choice in choices]
    return choices[distances.index(min(distances))]


def normalize_mathvista(extraction: str | None, problem: Problem, ignore_empty_extractions: bool = False) -> str | None:
    """MathVista's `normalize_extracted_answer` (see the module docstring); None when it fails."""
    if problem.question_type == "multi_choice":
        choices = list(problem.choices or [])
        text = (extraction or "").strip()
        if ignore_empty_extractions and not text:
            return None
        letters = re.findall(r"\(([a-zA-Z])\)", text)  # "(b) text" -> "B"
        if letters:
            text = letters[0].upper()
        options = LETTERS[: len(choices)]
        if len(text) == 1 and text in options:
            return choices[options.index(text)]
        return most_similar_choice(text, choices)
    if extraction is None:
        return None
    if problem.answer_type == "integer":
        try:
            return str(int(float(extraction)))
        except (ValueError, OverflowError):
            return None
    if problem.answer_type == "float":
        try:
            value = float(extraction)
            return str(round(value, problem.precision)) if problem.precision is not None else str(value)
        except (ValueError, OverflowError):
            return None
    return str(extraction)



# ---------------------------------------------------------------- scoring


def safe_equal(normalized: str | None, answer: str) -> bool:
    """MathVista's comparison: a normalised answer is right when it equals the ground truth as a string."""
    return normalized is not None and normalized == answer


def score_predictions(
    problems: Sequence[Problem], predictions: Iterable[Prediction], ignore_empty_extractions: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score predictions against the problems: (one row per problem, the report dict).

    Each row: pid, response, extraction, normalized, answer, correct, missing.
    A prediction whose pid is not a problem, or a pid predicted twice, is a MathVistaError.
    """
    by_pid = {problem.pid: problem for problem in problems}
    chosen: dict[str, Prediction] = {}
    for prediction in predictions:
        if prediction.pid not in by_pid:
            raise MathVistaError(f"prediction for pid {prediction.pid!r}, which is not a problem of the data")
        if prediction.pid in chosen:
            raise MathVistaError(f"pid {prediction.pid!r} is predicted more than once")
        chosen[prediction.pid] = prediction
    rows = []
    for problem in problems:
        prediction = chosen.get(problem.pid)
        if prediction is None:
            rows.append({"pid": problem.pid, "response": None, "extraction": None, "normalized": None,
                         "answer": problem.answer, "correct": False, "missing": True})
            continue
        if prediction.extraction is not None:
            extraction = prediction.extraction
        else:
            extraction = extract_mathvista(prediction.response or "", problem)
        normalized = normalize_mathvista(extraction, problem, ignore_empty_extractions)
        rows.append({
            "pid": problem.pid,
            "response": prediction.response,
            "extraction": extraction,
            "normalized": normalized,
            "answer": problem.answer,
            "correct": safe_equal(normalized, problem.answer),
            "missing": False,
        })
    return rows, build_report(rows, problems)
