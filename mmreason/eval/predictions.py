"""predictions.jsonl with one or several responses per problem: read, write, score.

A predictions file holds one JSON object per line, in any of three shapes
(a file may mix the first two):

    {"pid": "12", "response": "..."}                          one response (sample 0)
    {"pid": "12", "sample": 1, "response": "...", "num_tokens": 57}    one line per sample
    {"pid": "12", "responses": ["...", "..."], "num_tokens": [57, 80]} every sample on one line

"extraction" may stand in for "response" (used as is, as in MathVista's own
pipeline). "num_tokens" is optional: the response length in generated tokens,
end-of-turn token included, as `python -m mmreason.eval.cli run` writes
it; when every line has it the report carries the mean as `response_length`.

Scoring with one sample per problem is exactly `scoring.score_predictions`.
With K samples each (problem, sample) pair is one trial: `overall` counts
correct trials out of N*K, so its accuracy is pass@1 averaged over the K
samples (the same number as the mean of the per-sample accuracies, or of the
per-problem mean correctness). The breakdowns count trials the same way.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmreason.eval.load import MathVistaError
from mmreason.eval.report import build_report, format_report, write_report
from mmreason.eval.scoring import Prediction, safe_equal, score_predictions
from mmreason.jsonl import iter_json_objects
from mmreason.problem import Problem


@dataclass(frozen=True)
class SampledPrediction:
    """One response to score, with its sample index and (when known) its length in tokens."""

    prediction: Prediction
    sample: int = 0
    num_tokens: int | None = None


# ---------------------------------------------------------------- reading and writing


def _optional_string(record: dict[str, Any], key: str, where: str) -> str | None:
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise MathVistaError(f"{where}: field {key!r}: expected a string, got {type(value).__name__}")
    return value


def _token_count(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MathVistaError(f"{where}: field 'num_tokens': expected a non-negative integer, got {value!r}")
    return value


def _sample_index(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MathVistaError(f"{where}: field 'sample': expected a non-negative integer, got {value!r}")
    return value


def _from_responses_list(record: dict[str, Any], pid: str, where: str) -> list[SampledPrediction]:
    responses = record["responses"]
    if not isinstance(responses, list) or not responses or not all(isinstance(r, str) for r in responses):
        raise MathVistaError(f"{where}: field 'responses': expected a non-empty list of strings")
    if "response" in record or "sample" in record:
        raise MathVistaError(f"{where}: a line with 'responses' takes no 'response' or 'sample' field")
    counts = record.get("num_tokens")
    if counts is None:
        counts = [None] * len(responses)
    elif not isinstance(counts, list) or len(counts) != len(responses):
        raise MathVistaError(f"{where}: field 'num_tokens': expected a list as long as 'responses' ({len(responses)})")
    return [
        SampledPrediction(Prediction(pid=pid, response=response), sample=index, num_tokens=_token_count(count, where))
        for index, (response, count) in enumerate(zip(responses, counts))
    ]


def read_predictions(path: str | Path) -> list[SampledPrediction]:
    """Every response in a predictions file (any of the shapes in the module docstring), in file order."""
    path = Path(path)
    if not path.is_file():
        raise MathVistaError(f"predictions file {str(path)!r} does not exist")
    lines: list[SampledPrediction] = []
    for record, _, where in iter_json_objects(path, MathVistaError):
        if "pid" not in record:
            raise MathVistaError(f"{where}: field 'pid' missing")
        pid = str(record["pid"])
        if "responses" in record:
            lines.extend(_from_responses_list(record, pid, where))
            continue
        response = _optional_string(record, "response", where)
        extraction = _optional_string(record, "extraction", where)
        if response is None and extraction is None:
            raise MathVistaError(f"{where}: needs a 'response', 'responses' or 'extraction' field")
        lines.append(SampledPrediction(
            Prediction(pid=pid, response=response, extraction=extraction),
            sample=_sample_index(record.get("sample", 0), where),
            num_tokens=_token_count(record.get("num_tokens"), where),
        ))
    return lines


def load_predictions(path: str | Path) -> list[Prediction]:
    """One response per pid, from jsonl: one {"pid", "response"} (or {"pid", "extraction"}) object per line
    (the first shape of the module docstring only; `read_predictions` reads every shape)."""
    path = Path(path)
    if not path.is_file():
        raise MathVistaError(f"predictions file {str(path)!r} does not exist")
    predictions = []
    for record, _, where in iter_json_objects(path, MathVistaError):
        if "pid" not in record:
            raise MathVistaError(f"{where}: field 'pid' missing")
        response, extraction = record.get("response"), record.get("extraction")
        if response is None and extraction is None:
            raise MathVistaError(f"{where}: needs a 'response' or an 'extraction' field")
        for key, value in (("response", response), ("extraction", extraction)):
            if value is not None and not isinstance(value, str):
                raise MathVistaError(f"{where}: field {key!r}: expected a string, got {type(value).__name__}")
        predictions.append(Prediction(pid=str(record["pid"]), response=response, extraction=extraction))
    return predictions


def prediction_record(line: SampledPrediction, with_sample: bool) -> dict[str, Any]:
    """The JSON object of one line; `sample` is written when the file holds several samples per pid."""
    record: dict[str, Any] = {"pid": line.prediction.pid}
    if with_sample:
        record["sample"] = line.sample
    if line.prediction.response is not None:
        record["response"] = line.prediction.response
    if line.prediction.extraction is not None:
        record["extraction"] = line.prediction.extraction
    if line.num_tokens is not None:
        record["num_tokens"] = line.num_tokens
    return record


def write_predictions(path: str | Path, lines: Sequence[SampledPrediction], with_sample: bool | None = None) -> Path:
    """One line per response; a `sample` index on each line when asked, or by default when any sample is above 0."""
    path = Path(path)
    if with_sample is None:
        with_sample = any(line.sample > 0 for line in lines)
    with path.open("w", encoding="utf-8") as file:
        for line in lines:
            file.write(json.dumps(prediction_record(line, with_sample), ensure_ascii=False) + "\n")
    return path


# ---------------------------------------------------------------- scoring


def num_samples(lines: Iterable[SampledPrediction]) -> int:
    """K, after checking the sample indices are exactly 0..K-1 and no (pid, sample) repeats."""
    seen: set[tuple[str, int]] = set()
    indices: set[int] = set()
    for line in lines:
        key = (line.prediction.pid, line.sample)
        if key in seen:
            raise MathVistaError(f"pid {key[0]!r} sample {key[1]} is predicted more than once")
        seen.add(key)
        indices.add(line.sample)
    count = max(indices, default=0) + 1
    absent = sorted(set(range(count)) - indices)
    if absent:
        raise MathVistaError(f"sample indices must run 0..{count - 1}, but no line has sample {absent}")
    return count


def mean_response_length(lines: Sequence[SampledPrediction]) -> float | None:
    """Mean `num_tokens` over all responses; None when a line lacks it (e.g. predictions written by hand)."""
    counts = [line.num_tokens for line in lines]
    if not counts or any(count is None for count in counts):
        return None
    return sum(counts) / len(counts)  # type: ignore[arg-type]


def _merge_rows(problems: Sequence[Problem], rows_per_sample: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per problem holding every sample's response, extraction, normalization and correctness."""
    merged = []
    for index, problem in enumerate(problems):
        rows = [sample_rows[index] for sample_rows in rows_per_sample]
        correct = [bool(row["correct"]) for row in rows]
        merged.append({
            "pid": problem.pid,
            "answer": problem.answer,
            "responses": [row["response"] for row in rows],
            "extractions": [row["extraction"] for row in rows],
            "normalized": [row["normalized"] for row in rows],
            "correct": correct,
            "mean_correct": sum(correct) / len(correct),
            "missing": any(row["missing"] for row in rows),
        })
    return merged


def majority_vote(normalized: Sequence[str | None]) -> str | None:
    """The most common normalised answer of one problem's samples (None ignored; ties go to the earliest
    sample's answer), or None when no sample gave one."""
    votes = Counter(answer for answer in normalized if answer is not None)
    if not votes:
        return None
    top = max(votes.values())
    return next(answer for answer in normalized if answer is not None and votes[answer] == top)


def score_sampled(
    problems: Sequence[Problem], lines: Sequence[SampledPrediction], ignore_empty_extractions: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score one or several samples per problem: (one row per problem, the report).

    The report is `scoring.score_predictions`'s, plus `samples` (K),
    `per_sample_accuracy` (K numbers), `pass_at_k` (the fraction of problems
    with at least one correct sample), `majority_at_k` (the fraction whose
    majority-vote answer is right: self-consistency, what sharpening the
    policy towards its own consensus could reach) and `response_length`
    (mean tokens, or None). With K = 1 the rows are exactly `score_predictions`'s; with K > 1 a
    row holds lists (`responses`, `extractions`, `normalized`, `correct`) and
    `mean_correct`. A (problem, sample) without a response counts wrong and
    its pid is listed once under `missing`.
    """
    k = num_samples(lines)
    by_sample: list[list[Prediction]] = [[] for _ in range(k)]
    for line in lines:
        by_sample[line.sample].append(line.prediction)
    scored = [score_predictions(problems, predictions, ignore_empty_extractions) for predictions in by_sample]
    rows_per_sample = [rows for rows, _ in scored]
    if k == 1:
        rows, report = scored[0]
        per_problem_correct = [[bool(row["correct"])] for row in rows]
        majority_right = sum(bool(row["correct"]) for row in rows)
    else:
        trials = [row for rows in rows_per_sample for row in rows]
        report = build_report(trials, list(problems) * k)
        report["missing"] = list(dict.fromkeys(report["missing"]))
        rows = _merge_rows(problems, rows_per_sample)
        per_problem_correct = [row["correct"] for row in rows]
        majority_right = sum(safe_equal(majority_vote(row["normalized"]), row["answer"]) for row in rows)
    report["samples"] = k
    report["per_sample_accuracy"] = [sample_report["overall"]["accuracy"] for _, sample_report in scored]
    solved = sum(any(correct) for correct in per_problem_correct)
    report["pass_at_k"] = solved / len(problems) if problems else 0.0
    report["majority_at_k"] = majority_right / len(problems) if problems else 0.0
    report["response_length"] = mean_response_length(lines)
    return rows, report


def format_scores(report: dict[str, Any]) -> str:
    """`report.format_report` plus a summary of samples, pass@k and response length."""
    k = report.get("samples", 1)
    length = report.get("response_length")
    lines = [
        "", "## summary", "", "| metric | value |", "| --- | ---: |",
        f"| samples per problem | {k} |",
        f"| pass@1{' (mean over samples)' if k > 1 else ''} | {report['overall']['accuracy'] * 100:.2f}% |",
    ]
    if k > 1:
        lines.append(f"| pass@{k} (any sample right) | {report['pass_at_k'] * 100:.2f}% |")
        lines.append(f"| maj@{k} (majority vote right) | {report['majority_at_k'] * 100:.2f}% |")
    lines.append(f"| mean response length (tokens) | {'n/a' if length is None else f'{length:.1f}'} |")
    return format_report(report) + "\n".join(lines) + "\n"


def score_file(
    problems: Sequence[Problem], predictions_path: str | Path, out_dir: str | Path, ignore_empty_extractions: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read, score and write scores.json, scores.md and per_problem.jsonl into out_dir (what `score` and `run` do)."""
    rows, report = score_sampled(problems, read_predictions(predictions_path), ignore_empty_extractions)
    out = write_report(report, out_dir, rows)
    (out / "scores.md").write_text(format_scores(report), encoding="utf-8")
    return rows, report
