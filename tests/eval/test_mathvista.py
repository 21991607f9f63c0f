"""MathVista scoring on hand-made rows in the HF `AI4Math/MathVista` schema (parquet and jsonl) and our shards."""

import base64
import io
import json
import math
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mmreason.eval.load import MathVistaError, load_mathvista
from mmreason.eval.predictions import load_predictions
from mmreason.eval.report import write_report
from mmreason.eval.scoring import (
    Prediction,
    edit_distance,
    extract_mathvista,
    normalize_mathvista,
    score_predictions,
)
from mmreason.problem import Problem


def png_bytes(color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


def metadata(task, skills, grade="high school", source="GeoQA+", context="geometry diagram",
             category="math-targeted-vqa", language="english"):
    return {"category": category, "context": context, "grade": grade, "img_height": 8, "img_width": 8,
            "language": language, "skills": skills, "source": source, "split": "testmini", "task": task}


def row(pid, question, answer, question_type, answer_type, choices=None, unit=None, precision=None, meta=None):
    return {
        "pid": pid, "question": question, "image": f"images/{pid}.jpg",
        "decoded_image": {"bytes": png_bytes(), "path": f"images/{pid}.jpg"},
        "choices": choices, "unit": unit, "precision": precision, "answer": answer,
        "question_type": question_type, "answer_type": answer_type,
        "metadata": meta or metadata("figure question answering", ["arithmetic reasoning"]),
        "query": f"Hint: ...\nQuestion: {question}",
    }


# Every answer_type and question_type, precision stored as a float, None units and choices,
# a NaN precision, duplicate choice texts, a list answer, multi-label skills.
ROWS = [
    row("1", "Which angle is largest?", "30°", "multi_choice", "text", choices=["20°", "30°", "40°"],
        meta=metadata("geometry problem solving", ["geometry reasoning", "algebraic reasoning"])),
    row("2", "How many cubes?", "12", "free_form", "integer",
        meta=metadata("math word problem", ["arithmetic reasoning"], grade="elementary school", source="CLEVR-Math")),
    row("3", "Length of AB?", "12", "free_form", "integer", unit="cm",
        meta=metadata("geometry problem solving", ["geometry reasoning"])),
    row("4", "What is the slope?", "1.2", "free_form", "float", precision=1.0,
        meta=metadata("figure question answering", ["algebraic reasoning", "statistical reasoning"], source="FunctionQA")),
    row("5", "Ratio of bars?", "0.35", "free_form", "float", precision=2.0,
        meta=metadata("figure question answering", ["statistical reasoning"], source="ChartQA")),
    row("6", "Which two points?", "[2, 3]", "free_form", "list",
        meta=metadata("textbook question answering", ["algebraic reasoning"], source="TabMWP")),
    row("7", "Which color is the ball?", "red", "multi_choice", "text", choices=["red", "blue", "red"],
        precision=float("nan"), meta=metadata("visual question answering", ["numeric commonsense"], source="VQA2.0")),
    row("8", "Name the shape.", "triangle", "free_form", "text",
        meta=metadata("visual question answering", ["logical reasoning"], source="IQTest", language="chinese")),
]



@pytest.fixture()
def parquet_path(tmp_path):
    path = tmp_path / "testmini.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    return path


@pytest.fixture()
def jsonl_path(tmp_path):
    path = tmp_path / "testmini.jsonl"
    with path.open("w") as file:
        for record in ROWS:
            record = dict(record, decoded_image={"bytes": base64.b64encode(png_bytes()).decode(), "path": None})
            if isinstance(record["precision"], float) and math.isnan(record["precision"]):
                record["precision"] = None  # JSON has no NaN
            file.write(json.dumps(record) + "\n")
    return path


def by_pid(problems):
    return {problem.pid: problem for problem in problems}


# ---------------------------------------------------------------- loading


def test_parquet_loads_every_type_with_precision_and_nones(parquet_path):
    problems = by_pid(load_mathvista(parquet_path))
    assert list(problems) == [r["pid"] for r in ROWS]
    assert problems["4"].precision == 1 and isinstance(problems["4"].precision, int)
    assert problems["5"].precision == 2
    assert problems["7"].precision is None  # NaN in the parquet column
    assert problems["2"].precision is None and problems["2"].unit is None and problems["2"].choices is None
    assert problems["3"].unit == "cm"
    assert problems["7"].choices == ["red", "blue", "red"]
    assert problems["1"].meta["metadata"]["skills"] == ["geometry reasoning", "algebraic reasoning"]
    assert problems["1"].meta["query"].startswith("Hint:")
    assert all(problem.images == [] for problem in problems.values())  # not decoded for scoring


def test_jsonl_loads_the_same_problems(parquet_path, jsonl_path):
    from_parquet, from_jsonl = load_mathvista(parquet_path), load_mathvista(jsonl_path)
    def fields(p):
        return (p.pid, p.question, p.answer, p.answer_type, p.question_type, p.choices, p.precision, p.unit, p.meta)

    assert [fields(p) for p in from_jsonl] == [fields(p) for p in from_parquet]


def test_images_decoded_only_when_asked(parquet_path, jsonl_path):
    for path in (parquet_path, jsonl_path):
        problems = load_mathvista(path, with_images=True)
        assert [len(p.images) for p in problems] == [1] * len(ROWS)
        assert problems[0].images[0].size == (8, 8)


def test_bad_record_names_file_and_pid(tmp_path):
    path = tmp_path / "bad.jsonl"
    record = dict(ROWS[0], choices=["20°", "40°"])  # the answer is not a choice
    record.pop("decoded_image")
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(MathVistaError, match=r"bad.jsonl line 1 \(pid '1'\).*not among the choices"):
        load_mathvista(path)


def test_missing_column_and_duplicate_pid(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"pid": "1", "question": "q"}) + "\n")
    with pytest.raises(MathVistaError, match="line 1: field 'answer' missing"):
        load_mathvista(path)
    record = dict(ROWS[1])
    record.pop("decoded_image")
    path.write_text((json.dumps(record) + "\n") * 2)
    with pytest.raises(MathVistaError, match="pid '2' appears more than once"):
        load_mathvista(path)


def test_shards_load_without_decoding_images(tmp_path):
    from mmreason.data.shards import write_shards

    image = Image.new("RGB", (8, 8), (0, 0, 255))
    problems = [
        Problem(pid="syn-1", question="<image> How many dots?", answer="3", answer_type="integer", images=[image],
                meta={"family": "counting", "subject": "arithmetic", "difficulty": 1}),
        Problem(pid="syn-2", question="<image> Which?", answer="B side", question_type="multi_choice",
                choices=["A side", "B side"], images=[image], meta={"family": "compare", "difficulty": 2}),
    ]
    write_shards(problems, tmp_path / "shards", shard_size=1)
    loaded = load_mathvista(tmp_path / "shards")
    assert [(p.pid, p.answer, p.images, p.meta) for p in loaded] == [(p.pid, p.answer, [], p.meta) for p in problems]
    assert [len(p.images) for p in load_mathvista(tmp_path / "shards", with_images=True)] == [1, 1]
    rows, report = score_predictions(loaded, [Prediction("syn-1", "\\boxed{3}"), Prediction("syn-2", "(A)")])
    assert [r["correct"] for r in rows] == [True, False]
    assert report["by"]["family"] == {
        "counting": {"accuracy": 1.0, "correct": 1, "total": 1},
        "compare": {"accuracy": 0.0, "correct": 0, "total": 1},
    }
    assert set(report["by"]["difficulty"]) == {"1", "2"}
    assert report["by"]["subject"] == {"arithmetic": {"accuracy": 1.0, "correct": 1, "total": 1}}


# ---------------------------------------------------------------- extraction and normalisation

PROBLEMS = by_pid([
    Problem(pid=r["pid"], question=r["question"], answer=r["answer"], question_type=r["question_type"],
            answer_type=r["answer_type"], choices=r["choices"], unit=r["unit"],
            precision=None if r["precision"] is None or math.isnan(r["precision"]) else int(r["precision"]))
    for r in ROWS
])

# (case, pid, response, extraction)
EXTRACT_TABLE = [
    ("boxed", "2", "Count them: 4 x 3 = 12. \\boxed{12}", "12"),
    ("after think only", "2", "<think>maybe \\boxed{11}</think> so \\boxed{12}", "12"),
    ("unclosed think: whole text", "2", "<think>cut off at 7", "7"),
    ("answer is", "2", "Adding up, the answer is 12 cubes.", "12"),
    ("Answer colon", "5", "Ratio = 7/20\nAnswer: 0.35", "0.35"),
    ("latex fraction becomes plain", "5", "\\boxed{\\frac{7}{20}}", "0.35"),
    ("unit in box", "3", "\\boxed{12 \\text{ cm}}", "12"),
    ("last number", "4", "rise 6 over run 5 gives 1.2", "1.2"),
    ("bare number response", "4", "1.20", "1.2"),
    ("multi-choice final letter", "1", "The largest is the one opposite the long side, (B)", "B"),
    ("multi-choice bare final letter", "1", "So I pick B.", "B"),
    ("multi-choice exact choice text", "1", "30°", "30°"),
    ("multi-choice boxed letter with text", "1", "\\boxed{(B) 30°}", "B"),
    ("multi-choice answer is letter", "7", "The answer is C.", "C"),
    ("list boxed", "6", "\\boxed{[2, 3]}", "[2, 3]"),
    ("text answer is", "8", "The answer is triangle.", "triangle"),
    ("nothing found", "8", "It has three sides.", ""),
    ("empty response", "2", "", ""),
]


@pytest.mark.parametrize("pid,response,expected", [c[1:] for c in EXTRACT_TABLE], ids=[c[0] for c in EXTRACT_TABLE])
def test_extract_table(pid, response, expected):
    assert extract_mathvista(response, PROBLEMS[pid]) == expected


# (case, pid, extraction, normalized) — the official normalize_extracted_answer
NORMALIZE_TABLE = [
    ("letter to choice", "1", "B", "30°"),
    ("letter in parens with text", "1", "(c) 40 degrees", "40°"),
    ("text nearest by edit distance", "1", "30 deg", "30°"),
    ("letter out of range goes to nearest", "1", "E", "20°"),
    ("empty extraction maps to nearest choice", "1", "", "20°"),
    ("integer truncates like MathVista", "2", "12.7", "12"),
    ("integer failure", "2", "twelve", None),
    ("float rounds to precision stored as float", "4", "1.25", "1.2"),
    ("float precision 2", "5", "0.3521", "0.35"),
    ("float failure", "5", "", None),
    ("list stays a string", "6", "[2, 3]", "[2, 3]"),
    ("duplicate texts: first letter", "7", "A", "red"),
    ("duplicate texts: last letter", "7", "C", "red"),
    ("text unchanged", "8", "Triangle", "Triangle"),
]


@pytest.mark.parametrize("pid,extraction,expected", [c[1:] for c in NORMALIZE_TABLE], ids=[c[0] for c in NORMALIZE_TABLE])
def test_normalize_table(pid, extraction, expected):
    assert normalize_mathvista(extraction, PROBLEMS[pid]) == expected


def test_ignore_empty_extractions():
    assert normalize_mathvista("", PROBLEMS["1"], ignore_empty_extractions=True) is None
    assert normalize_mathvista("B", PROBLEMS["1"], ignore_empty_extractions=True) == "30°"


def test_edit_distance():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("same", "same") == 0


# ---------------------------------------------------------------- scoring and report

RESPONSES = {
    "1": "<think>compare</think> \\boxed{B}",     # right (letter)
    "2": "The answer is 13.",                    # wrong
    "3": "AB = 12 cm. \\boxed{12}",               # right
    "4": "slope is 1.24",                        # right at precision 1
    "6": "\\boxed{[3, 2]}",                       # wrong order
    "7": "(C)",                                  # right: duplicate text
    "8": "The answer is triangle.",              # right
}  # "5" has no prediction


def test_score_predictions_rows_and_report(parquet_path):
    problems = load_mathvista(parquet_path)
    rows, report = score_predictions(problems, [Prediction(pid, text) for pid, text in RESPONSES.items()])
    assert [r["pid"] for r in rows] == [r["pid"] for r in ROWS]
    assert {r["pid"]: r["correct"] for r in rows} == {
        "1": True, "2": False, "3": True, "4": True, "5": False, "6": False, "7": True, "8": True}
    row5 = next(r for r in rows if r["pid"] == "5")
    assert row5["missing"] and row5["extraction"] is None
    assert report["overall"] == {"accuracy": 5 / 8, "correct": 5, "total": 8}
    assert report["missing"] == ["5"]
    # Multi-label skills: pid 1 counts for geometry and algebraic, pid 4 for algebraic and statistical.
    assert report["by"]["skills"]["algebraic reasoning"] == {"accuracy": 2 / 3, "correct": 2, "total": 3}
    assert report["by"]["skills"]["statistical reasoning"] == {"accuracy": 0.5, "correct": 1, "total": 2}
    assert report["by"]["skills"]["geometry reasoning"] == {"accuracy": 1.0, "correct": 2, "total": 2}
    assert report["by"]["question_type"]["multi_choice"] == {"accuracy": 1.0, "correct": 2, "total": 2}
    assert report["by"]["answer_type"]["float"] == {"accuracy": 0.5, "correct": 1, "total": 2}
    assert report["by"]["language"]["chinese"] == {"accuracy": 1.0, "correct": 1, "total": 1}
    assert set(report["by"]) >= {"task", "skills", "grade", "language", "source", "context", "category"}
    accuracies = [v["accuracy"] for v in report["by"]["source"].values()]
    assert accuracies == sorted(accuracies, reverse=True)


def test_extraction_field_is_used_as_is():
    problems = [PROBLEMS["2"]]
    rows, _ = score_predictions(problems, [Prediction("2", response="ignored \\boxed{3}", extraction="12")])
    assert rows[0]["extraction"] == "12" and rows[0]["correct"]


def test_unknown_and_repeated_pids_are_errors():
    with pytest.raises(MathVistaError, match="'99'"):
        score_predictions([PROBLEMS["2"]], [Prediction("99", "12")])
    with pytest.raises(MathVistaError, match="'2' is predicted more than once"):
        score_predictions([PROBLEMS["2"]], [Prediction("2", "12"), Prediction("2", "13")])


def test_predictions_file_errors_name_the_line(tmp_path):
    path = tmp_path / "preds.jsonl"
    path.write_text('{"pid": 2, "response": "12"}\n{"response": "x"}\n')
    with pytest.raises(MathVistaError, match="preds.jsonl line 2: field 'pid' missing"):
        load_predictions(path)
    path.write_text('{"pid": 2}\n')
    with pytest.raises(MathVistaError, match="line 1: needs a 'response' or an 'extraction'"):
        load_predictions(path)
    path.write_text('{"pid": 2, "response": "12"}\n')
    assert load_predictions(path) == [Prediction("2", "12")]  # integer pids are read as strings


def test_write_report_files(tmp_path):
    rows, report = score_predictions([PROBLEMS["2"]], [Prediction("2", "\\boxed{12}")])
    out = write_report(report, tmp_path / "out", rows)
    assert json.loads((out / "scores.json").read_text()) == report
    assert "Overall: 100.00% (1/1)" in (out / "scores.md").read_text()
    assert [json.loads(line)["correct"] for line in (out / "per_problem.jsonl").read_text().splitlines()] == [True]


def test_cli_end_to_end(parquet_path, tmp_path, repo_root):
    predictions = tmp_path / "preds.jsonl"
    predictions.write_text("".join(json.dumps({"pid": pid, "response": text}) + "\n" for pid, text in RESPONSES.items()))
    out = tmp_path / "scores"
    command = [sys.executable, "-m", "mmreason.eval.cli", "score",
               "--data", str(parquet_path), "--predictions", str(predictions), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=repo_root)
    assert done.returncode == 0, done.stderr
    assert "Overall: 62.50% (5/8)" in done.stdout
    scores = json.loads((out / "scores.json").read_text())
    assert scores["overall"] == {"accuracy": 0.625, "correct": 5, "total": 8}
    assert scores["missing"] == ["5"]
    assert "## skills" in (out / "scores.md").read_text()
    rows = [json.loads(line) for line in (out / "per_problem.jsonl").read_text().splitlines()]
    assert set(rows[0]) >= {"pid", "response", "extraction", "normalized", "answer", "correct"}
    assert len(rows) == 8



def test_cli_error_names_the_unknown_pid(parquet_path, tmp_path, capsys):
    from mmreason.eval.cli import main

    predictions = tmp_path / "preds.jsonl"
    predictions.write_text(json.dumps({"pid": "404", "response": "1"}) + "\n")
    code = main(["score", "--data", str(parquet_path), "--predictions", str(predictions), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "prediction for pid '404'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
