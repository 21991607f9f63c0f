"""The MathVista report: overall accuracy, breakdowns, and the files scores.json, scores.md, per_problem.jsonl.

The report breaks accuracy down by question_type, answer_type and every
metadata key present (task, skills — multi-label: a problem counts toward each
of its skills — grade, language, source, context, category; and our synthetic
problems' family, subject, difficulty). Rows come from
`mmreason/eval/scoring.py` (one sample per problem) or
`mmreason/eval/predictions.py` (several).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmreason.problem import Problem

BREAKDOWN_KEYS = (
    "question_type", "answer_type", "task", "skills", "grade", "language", "source", "context", "category",
    "family", "subject", "difficulty",
)
"""Keys accuracy is broken down by, in report order (each only when some problem has it)."""
MULTI_LABEL_KEYS = frozenset({"skills"})
"""Keys whose value is a list; a problem counts toward each of its labels."""


def _labels(problem: Problem) -> dict[str, list[str]]:
    """Breakdown labels of a problem: question/answer type plus metadata (in meta["metadata"] or meta)."""
    metadata = problem.meta.get("metadata") if isinstance(problem.meta.get("metadata"), dict) else {}
    labels = {"question_type": [problem.question_type], "answer_type": [problem.answer_type]}
    for key in BREAKDOWN_KEYS[2:]:
        value = metadata.get(key, problem.meta.get(key))
        if value is None or value == "":
            continue
        if key in MULTI_LABEL_KEYS and isinstance(value, (list, tuple)):
            labels[key] = sorted({str(v) for v in value})
        else:
            labels[key] = [str(value)]
    return labels


def _accuracy(correct: int, total: int) -> dict[str, Any]:
    return {"accuracy": correct / total if total else 0.0, "correct": correct, "total": total}


def build_report(per_problem: Sequence[dict[str, Any]], problems: Sequence[Problem]) -> dict[str, Any]:
    """Overall accuracy, breakdowns by BREAKDOWN_KEYS (sorted by accuracy, best first) and missing pids."""
    counts: dict[str, dict[str, list[int]]] = {}
    for row, problem in zip(per_problem, problems):
        for key, values in _labels(problem).items():
            for value in values:
                tally = counts.setdefault(key, {}).setdefault(value, [0, 0])
                tally[0] += int(row["correct"])
                tally[1] += 1
    by = {}
    for key in BREAKDOWN_KEYS:
        if key in counts:
            rows = {name: _accuracy(c, t) for name, (c, t) in counts[key].items()}
            by[key] = dict(sorted(rows.items(), key=lambda item: (-item[1]["accuracy"], item[0])))
    correct = sum(int(row["correct"]) for row in per_problem)
    return {
        "overall": _accuracy(correct, len(per_problem)),
        "by": by,
        "missing": [row["pid"] for row in per_problem if row["missing"]],
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as markdown tables (what `write_report` saves as scores.md and the CLI prints)."""
    overall = report["overall"]
    lines = [
        "# MathVista scores",
        "",
        f"Overall: {overall['accuracy'] * 100:.2f}% ({overall['correct']}/{overall['total']})",
        f"Missing predictions (counted wrong): {len(report['missing'])}",
    ]
    for key, rows in report["by"].items():
        lines += ["", f"## {key}", "", f"| {key} | accuracy | correct | total |", "| --- | ---: | ---: | ---: |"]
        for name, row in rows.items():
            lines.append(f"| {name} | {row['accuracy'] * 100:.2f}% | {row['correct']} | {row['total']} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: str | Path, per_problem: Sequence[dict[str, Any]] | None = None) -> Path:
    """Write scores.json, scores.md and (when given) per_problem.jsonl into out_dir; returns out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scores.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "scores.md").write_text(format_report(report), encoding="utf-8")
    if per_problem is not None:
        with (out / "per_problem.jsonl").open("w", encoding="utf-8") as file:
            for row in per_problem:
                file.write(json.dumps(row, ensure_ascii=False) + "\n")
    return out
