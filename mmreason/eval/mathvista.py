"""MathVista scoring with the benchmark's own rules, without the GPT answer extractor.

    python -m mmreason.eval.mathvista score --data testmini.parquet --predictions preds.jsonl --out results/
    python -m mmreason.eval.mathvista run --model CKPT --data testmini.parquet --out results/   (mmreason/eval/run.py)

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

Problems without a prediction count as wrong and are listed under `missing`.
The report breaks accuracy down by question_type, answer_type and every
metadata key present (task, skills — multi-label: a problem counts toward each
of its skills — grade, language, source, context, category; and our synthetic
problems' family, subject, difficulty).

`load_mathvista`, `score_predictions` and `write_report` are the pieces a
`run` subcommand (generate with a checkpoint, then score) builds on.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import re
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from PIL import Image

from mmreason.problem import Problem, ProblemError, decode_image
from mmreason.rewards.extract import find_boxes, split_think
from mmreason.rewards.verify import clean_latex, read_number
from mmreason.jsonl import iter_json_objects

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

BREAKDOWN_KEYS = (
    "question_type", "answer_type", "task", "skills", "grade", "language", "source", "context", "category",
    "family", "subject", "difficulty",
)
"""Keys accuracy is broken down by, in report order (each only when some problem has it)."""
MULTI_LABEL_KEYS = frozenset({"skills"})
"""Keys whose value is a list; a problem counts toward each of its labels."""


class MathVistaError(ValueError):
    """Bad benchmark data or predictions; the message names the file, line or pid."""


@dataclass(frozen=True)
class Prediction:
    """One model output to score: the raw response, or an answer already extracted."""

    pid: str
    response: str | None = None
    extraction: str | None = None
    """When given, used as is instead of extracting from `response` (like the official pipeline's field)."""


# ---------------------------------------------------------------- loading the benchmark

_PLACEHOLDER = Image.new("L", (1, 1))


def _check(problem: Problem, num_images: int) -> Problem:
    """Problem.validate, also for records loaded without their images (placeholders stand in)."""
    if problem.images or not num_images:
        return problem.validate()
    problem.copy(images=[_PLACEHOLDER] * num_images).validate()
    return problem


def _precision(value: Any, where: str) -> int | None:
    """MathVista stores precision as a float (1.0), NaN or None when absent."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as err:
        raise MathVistaError(f"{where}: field 'precision': expected a number or null, got {value!r}") from err


def _record_image(record: dict[str, Any], where: str) -> list[Image.Image]:
    decoded = record.get("decoded_image")
    data = decoded.get("bytes") if isinstance(decoded, dict) else None
    if not data:
        return []
    if isinstance(data, str):
        try:
            data = base64.b64decode(data, validate=True)
        except ValueError as err:
            raise MathVistaError(f"{where}: field 'decoded_image.bytes' is a string but not base64 ({err})") from err
    return [decode_image(data, where)]


def problem_from_mathvista(record: dict[str, Any], where: str, with_images: bool = False) -> Problem:
    """A Problem from one row in the HF `AI4Math/MathVista` schema (images decoded only when asked)."""
    for key in ("pid", "question", "answer", "question_type", "answer_type"):
        if record.get(key) is None:
            raise MathVistaError(f"{where}: field {key!r} missing (expected the MathVista schema)")
    pid = str(record["pid"])
    where = f"{where} (pid {pid!r})"
    choices = record.get("choices")
    if choices is not None:
        if not isinstance(choices, (list, tuple)):
            raise MathVistaError(f"{where}: field 'choices': expected a list or null, got {type(choices).__name__}")
        choices = [str(choice) for choice in choices] or None
    unit = record.get("unit") or None
    meta: dict[str, Any] = {}
    if isinstance(record.get("metadata"), dict):
        meta["metadata"] = record["metadata"]
    for key in ("query", "image"):
        if record.get(key) is not None:
            meta[key] = record[key]
    images = _record_image(record, where) if with_images else []
    problem = Problem(
        pid=pid,
        question=str(record["question"]),
        answer=str(record["answer"]),
        answer_type=str(record["answer_type"]),
        question_type=str(record["question_type"]),
        images=images,
        choices=choices,
        precision=_precision(record.get("precision"), where),
        unit=str(unit) if unit is not None else None,
        meta=meta,
    )
    has_image = bool(images) or bool(record.get("image")) or isinstance(record.get("decoded_image"), dict)
    try:
        return _check(problem, 1 if has_image and not images else 0)
    except ProblemError as err:
        raise MathVistaError(f"{where}: {err}") from err


def _parquet_records(path: Path, with_images: bool) -> Iterator[tuple[dict[str, Any], str]]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ... for a bad file
        raise MathVistaError(f"{path}: cannot read as parquet ({err})") from err
    skip = set() if with_images else {"decoded_image"}  # image bytes are the bulk of the file
    columns = [name for name in file.schema_arrow.names if name not in skip]
    row = 0
    for batch in file.iter_batches(batch_size=256, columns=columns):
        for record in batch.to_pylist():
            yield record, f"{path} row {row}"
            row += 1


def _shard_problems(spec: str, with_images: bool) -> Iterator[Problem]:
    """Problems from our webdataset shards; without images only the json members are parsed."""
    from mmreason.data.shards import read_raw_samples, resolve_urls

    for url in resolve_urls(spec):
        if with_images:
            for sample in read_raw_samples(url):
                try:
                    yield Problem.from_sample(sample)
                except ProblemError as err:  # a benchmark must not silently lose problems
                    raise MathVistaError(f"shard {url}: {err}") from err
            continue
        try:
            tar = tarfile.open(url, "r:")
        except (tarfile.TarError, OSError) as err:
            raise MathVistaError(f"shard {url}: cannot read as a tar file ({err})") from err
        with tar:
            for member in tar:
                if not (member.isreg() and member.name.endswith(".json")):
                    continue
                where = f"shard {url} member {member.name}"
                try:
                    record = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
                    num_images = int(record.pop("num_images", 0))
                    problem = Problem(**record)
                except (ValueError, TypeError, AttributeError) as err:
                    raise MathVistaError(f"{where}: not a Problem record ({err})") from err
                if isinstance(problem.precision, float):
                    problem.precision = _precision(problem.precision, where)
                try:
                    yield _check(problem, num_images)
                except ProblemError as err:
                    raise MathVistaError(f"{where}: {err}") from err


def load_mathvista(path: str | Path, with_images: bool = False) -> list[Problem]:
    """The problems of a MathVista-schema file or our shards.

    path: a .parquet or .jsonl file with the HF `AI4Math/MathVista` columns, a
    directory of *.tar shards or of *.parquet / *.jsonl files, or a shard
    pattern (`dir/shard-{000000..000003}.tar`, comma-separated tars).
    with_images: decode the images too (scoring does not need them).
    Raises MathVistaError naming the file and row for bad records and on duplicate pids.
    """
    text = str(path)
    path = Path(path)
    problems: list[Problem] = []
    if path.is_dir() and not any(path.glob("*.tar")):
        files = sorted(list(path.glob("*.parquet")) + list(path.glob("*.jsonl")))
        if not files:
            raise MathVistaError(f"{path}: directory holds no *.tar, *.parquet or *.jsonl files")
        for file in files:
            problems.extend(load_mathvista(file, with_images))
    elif path.is_file() and path.suffix == ".parquet":
        problems = [problem_from_mathvista(r, where, with_images) for r, where in _parquet_records(path, with_images)]
    elif path.is_file() and path.suffix == ".jsonl":
        problems = [problem_from_mathvista(r, where, with_images) for r, _, where in iter_json_objects(path, MathVistaError)]
    elif path.is_dir() or ".tar" in text:
        problems = list(_shard_problems(text, with_images))
    elif not path.exists():
        raise MathVistaError(f"{text}: no such file or directory")
    else:
        raise MathVistaError(f"{text}: expected a .parquet or .jsonl file, or shards (*.tar)")
    seen: set[str] = set()
    for problem in problems:
        if problem.pid in seen:
            raise MathVistaError(f"{text}: pid {problem.pid!r} appears more than once")
        seen.add(problem.pid)
    return problems


def load_predictions(path: str | Path) -> list[Prediction]:
    """Predictions from jsonl: one {"pid", "response"} (or {"pid", "extraction"}) object per line."""
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
    reasoning, final = split_think(response)
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


# ---------------------------------------------------------------- scoring and the report


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


# ---------------------------------------------------------------- command line


def _score_command(args: argparse.Namespace) -> int:
    # predictions.py reads every predictions shape `run` writes (several samples per pid too).
    from mmreason.eval.predictions import format_scores, score_file

    problems = load_mathvista(args.data)
    _, report = score_file(problems, args.predictions, args.out, args.ignore_empty_extractions)
    out = Path(args.out)
    print(format_scores(report), end="")
    print(f"wrote {out / 'scores.json'}, {out / 'scores.md'}, {out / 'per_problem.jsonl'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The CLI; subcommands register a handler in `func` (`run` lives in mmreason/eval/run.py)."""
    from mmreason.eval.run import add_run_parser

    parser = argparse.ArgumentParser(prog="python -m mmreason.eval.mathvista", description=__doc__.splitlines()[0])
    # The deepspeed launcher (scripts/eval_mathvista.py) passes --local_rank; the rank comes from the environment.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser("score", help="score predictions.jsonl against MathVista-schema data")
    score.add_argument("--data", required=True, help=".parquet / .jsonl in the HF AI4Math/MathVista schema, or shards")
    score.add_argument("--predictions", required=True,
                       help='jsonl: {"pid": ..., "response": ...} (or "extraction") per line; several samples per pid '
                            'as "sample": i lines or a "responses" list (what `run` writes)')
    score.add_argument("--out", required=True, help="directory for scores.json, scores.md, per_problem.jsonl")
    score.add_argument("--ignore-empty-extractions", action="store_true",
                       help="count an empty multiple-choice extraction wrong instead of mapping it to the nearest choice")
    score.set_defaults(func=_score_command)
    add_run_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (MathVistaError, ProblemError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # Run the package's module, not this __main__ copy: run.py and predictions.py import
    # mmreason.eval.mathvista, and errors must be the classes `main` catches.
    from mmreason.eval.mathvista import main as package_main

    sys.exit(package_main())
