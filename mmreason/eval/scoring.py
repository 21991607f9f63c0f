"""MathVista scoring with the benchmark's own rules, without the GPT answer extractor.

Three steps per problem, as in MathVista's `evaluation/` scripts:

1. extract (`extract_mathvista`): rules instead of GPT-4. Only the text after
   ``</think>`` counts when there is one. Then: a response that is exactly a
   choice text or a number; the last ``\\boxed{}``; "the answer is X" /
   "Answer: X"; for multiple choice a final option letter ("(B)", "B") or a
   response that is exactly a choice text; for integer/float the last number;
   else "". LaTeX wrappers are removed and numeric LaTeX is written as a plain
   number ("\\frac{1}{2}" -> "0.5"), which is what the GPT extractor returns.
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

from mmreason.eval.load import MathVistaError
from mmreason.eval.report import build_report
from mmreason.problem import Problem
from mmreason.rewards.extract import find_boxes, split_think
from mmreason.rewards.verify import clean_latex, read_number

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Prediction:
    """One model output to score: the raw response, or an answer already extracted."""

    pid: str
    response: str | None = None
    extraction: str | None = None
    """When given, used as is instead of extracting from `response` (like the official pipeline's field)."""



# ---------------------------------------------------------------- extraction and normalisation

_ANSWER_PHRASE = re.compile(
    r"(?:\bthe\s+(?:final\s+|correct\s+)?answer\s+is|\banswer\s*:)\s*:?\s*(.+?)(?=\.\s|\.$|\n|$)", re.IGNORECASE
)
_FINAL_LETTER = re.compile(r"(?:^|[\s:(])\(?([A-Z])\)?[.)]?\s*$")
_LETTER_ONLY = re.compile(r"^(?:(?i:option|choice)\s*)?\(?([A-Za-z])\)?[.:)]?$")
_LETTER_LEAD = re.compile(r"^(?:(?i:option|choice)\s*)?\(([A-Za-z])\)|^(?:(?i:option|choice)\s*)?([A-Z])[.:)]\s")
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?|-?\.\d+")


def _plain(candidate: str, problem: Problem) -> str:
    """What the GPT extractor would return: no LaTeX wrappers; numbers written plainly; letters bare."""
    text = clean_latex(candidate)
    if problem.question_type == "multi_choice":
        letter = _LETTER_ONLY.match(text)
        if letter:
            return letter.group(1).upper()
        lead = _LETTER_LEAD.match(text)  # "(B) 12" / "B. 12": the option letter decides
        if lead:
            return (lead.group(1) or lead.group(2)).upper()
        return text
    if problem.answer_type in ("integer", "float"):
        value = read_number(text, problem.unit)
        if value is not None:
            return _decimal(value)
        numbers = _NUMBER.findall(text)
        if len(numbers) == 1:  # "12 cubes": the one number in it (several numbers stay unreadable)
            return numbers[0].replace(",", "")
    return text


def _decimal(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


def extract_mathvista(response: str, problem: Problem) -> str:
    """The answer in a free-text response by rules (see the module docstring); "" when none is found."""
    _, final = split_think(response)
    text = (final if final is not None else response).strip()
    if not text:
        return ""
    choices = problem.choices or []
    if problem.question_type == "multi_choice" and text in choices:
        return text
    if problem.answer_type in ("integer", "float") and problem.question_type != "multi_choice":
        try:
            return _decimal(float(text))
        except (ValueError, OverflowError):
            pass
    boxes, _ = find_boxes(text)
    if boxes:
        return _plain(boxes[-1].content, problem)
    phrases = list(_ANSWER_PHRASE.finditer(text))
    if phrases:
        answer = phrases[-1].group(1).strip().strip("*_ ").rstrip(".:").strip()
        if answer:
            return _plain(answer, problem)
    if problem.question_type == "multi_choice":
        stripped = text.rstrip(".").strip()
        for choice in choices:
            if stripped == choice.strip():
                return choice
        letter = _FINAL_LETTER.search(text)
        if letter and letter.group(1) in LETTERS[: len(choices)]:
            return letter.group(1)
        return ""
    if problem.answer_type in ("integer", "float"):
        numbers = _NUMBER.findall(text)
        if numbers:
            return numbers[-1].replace(",", "")
    return ""


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: fewest single-character insertions, deletions and substitutions."""
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
