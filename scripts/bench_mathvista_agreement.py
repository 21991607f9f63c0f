"""Agreement of our rule-based MathVista scoring with the official verdicts, on published model responses.

    python scripts/bench_mathvista_agreement.py DIR [--show N]

DIR holds response files in the official MathVista results format
(`results/<model>/output_<model>.json` in github.com/lupantech/MathVista, or
any directory of such files, searched recursively): one JSON object per file,
keyed by pid, each value a testmini problem (question, choices, unit,
precision, answer, question_type, answer_type, ...) plus the model's
`response`, the official GPT-4 `extraction`, `prediction` and the official
verdict `true_false`. Files named scores_*.json and entries without a
`response` or a boolean `true_false` are skipped.

For every response our extraction (`extract_mathvista`, no LLM) and the
official normalisation score it; it agrees when our verdict equals
`true_false`. Prints agreement per model (file) and overall, then the
disagreements (--show N of them), and last:

    agreement: 0.9667 (60 responses)

The tests run it on tests/fixtures/mathvista_responses (hand-written
responses in this format); the number that matters is the one on the real
published files, which must be downloaded from the MathVista repository.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mmreason.eval.load import MathVistaError, problem_from_mathvista
from mmreason.eval.scoring import extract_mathvista, normalize_mathvista, safe_equal


def response_files(root: Path) -> list[Path]:
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*.json") if not p.name.startswith("scores"))
    if not files:
        raise SystemExit(f"{root}: no response files (*.json) found")
    return files


def model_name(path: Path) -> str:
    return path.stem.removeprefix("output_")


def score_file(path: Path) -> list[dict[str, Any]]:
    """One row per scorable response: pid, response, ours (extraction, normalized, correct), official verdict."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SystemExit(f"{path}: cannot read as JSON ({err})") from err
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected an object keyed by pid, got {type(data).__name__}")
    rows = []
    for pid, record in data.items():
        if not isinstance(record, dict) or not isinstance(record.get("true_false"), bool):
            continue
        if not isinstance(record.get("response"), str):
            continue
        try:
            problem = problem_from_mathvista(dict(record, pid=record.get("pid", pid)), f"{path} pid {pid}")
        except MathVistaError as err:
            raise SystemExit(str(err)) from err
        extraction = extract_mathvista(record["response"], problem)
        normalized = normalize_mathvista(extraction, problem)
        correct = safe_equal(normalized, problem.answer)
        rows.append({"pid": problem.pid, "response": record["response"], "extraction": extraction,
                     "official_extraction": record.get("extraction"), "normalized": normalized,
                     "answer": problem.answer, "ours": correct, "official": record["true_false"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="directory of official-format response files (or one file)")
    parser.add_argument("--show", type=int, default=10, help="print up to N disagreements (default 10)")
    args = parser.parse_args(argv)
    total = agree = 0
    disagreements = []
    for path in response_files(args.dir):
        rows = score_file(path)
        if not rows:
            continue
        same = sum(row["ours"] == row["official"] for row in rows)
        ours_acc = sum(row["ours"] for row in rows) / len(rows)
        official_acc = sum(row["official"] for row in rows) / len(rows)
        print(f"{model_name(path):40s} agreement {same / len(rows):.4f} ({len(rows)} responses; "
              f"accuracy ours {ours_acc:.4f}, official {official_acc:.4f})")
        total += len(rows)
        agree += same
        disagreements += [(model_name(path), row) for row in rows if row["ours"] != row["official"]]
    if not total:
        raise SystemExit(f"{args.dir}: no responses with a boolean true_false")
    for model, row in disagreements[: args.show]:
        print(f"--- {model} pid {row['pid']}: ours {row['ours']} (extraction {row['extraction']!r} -> "
              f"{row['normalized']!r}), official {row['official']} (extraction {row['official_extraction']!r}), "
              f"answer {row['answer']!r}\n    response: {row['response'][-300:]!r}")
    print(f"agreement: {agree / total:.4f} ({total} responses)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
