"""predictions.jsonl with one or several samples per problem: reading every shape, and pass@1 averaged over samples."""

import json

import pytest

from mmreason.eval.load import MathVistaError
from mmreason.eval.predictions import (
    SampledPrediction,
    format_scores,
    majority_vote,
    read_predictions,
    score_file,
    score_sampled,
    write_predictions,
)
from mmreason.eval.scoring import Prediction, score_predictions
from mmreason.problem import Problem

PROBLEMS = [
    Problem(pid="a", question="How many?", answer="12", answer_type="integer"),
    Problem(pid="b", question="Which?", answer="red", answer_type="text", question_type="multi_choice",
            choices=["blue", "red"], meta={"metadata": {"source": "handmade"}}),
    Problem(pid="c", question="Slope?", answer="0.5", answer_type="float", precision=1),
]


def write_lines(path, *records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_reads_all_three_shapes_in_file_order(tmp_path):
    path = write_lines(
        tmp_path / "p.jsonl",
        {"pid": "a", "response": "\\boxed{12}", "num_tokens": 5},
        {"pid": "b", "sample": 1, "extraction": "B"},
        {"pid": 7, "responses": ["x", "y"], "num_tokens": [3, 4]},
    )
    assert read_predictions(path) == [
        SampledPrediction(Prediction("a", "\\boxed{12}"), sample=0, num_tokens=5),
        SampledPrediction(Prediction("b", extraction="B"), sample=1),
        SampledPrediction(Prediction("7", "x"), sample=0, num_tokens=3),
        SampledPrediction(Prediction("7", "y"), sample=1, num_tokens=4),
    ]


@pytest.mark.parametrize("record, message", [
    ({"response": "1"}, "line 1: field 'pid' missing"),
    ({"pid": "a"}, "line 1: needs a 'response', 'responses' or 'extraction' field"),
    ({"pid": "a", "sample": -1, "response": "1"}, "field 'sample': expected a non-negative integer, got -1"),
    ({"pid": "a", "sample": "0", "response": "1"}, "field 'sample': expected a non-negative integer"),
    ({"pid": "a", "response": "1", "num_tokens": 2.5}, "field 'num_tokens': expected a non-negative integer"),
    ({"pid": "a", "responses": []}, "field 'responses': expected a non-empty list of strings"),
    ({"pid": "a", "responses": ["1"], "num_tokens": [1, 2]}, "expected a list as long as 'responses' \\(1\\)"),
    ({"pid": "a", "responses": ["1"], "sample": 0}, "takes no 'response' or 'sample' field"),
    ({"pid": "a", "response": 12}, "field 'response': expected a string, got int"),
])
def test_bad_lines_name_file_line_and_field(tmp_path, record, message):
    path = write_lines(tmp_path / "p.jsonl", record)
    with pytest.raises(MathVistaError, match=message):
        read_predictions(path)


def test_one_sample_is_exactly_score_predictions():
    predictions = [Prediction("a", "so \\boxed{12}"), Prediction("b", "(A)")]
    rows, report = score_sampled(PROBLEMS, [SampledPrediction(p, num_tokens=n) for p, n in zip(predictions, (4, 6))])
    expected_rows, expected_report = score_predictions(PROBLEMS, predictions)
    assert rows == expected_rows
    assert {k: report[k] for k in expected_report} == expected_report
    assert report["overall"] == {"accuracy": 1 / 3, "correct": 1, "total": 3}  # "c" is missing
    assert report["samples"] == 1 and report["per_sample_accuracy"] == [1 / 3] and report["pass_at_k"] == 1 / 3
    assert report["response_length"] == 5.0


def test_two_samples_average_pass_at_1_over_trials():
    # a: right, right; b: wrong (A is blue), right; c: wrong (0.7), no sample 1 (missing, counts wrong).
    lines = [
        SampledPrediction(Prediction("a", "\\boxed{12}"), 0, 10),
        SampledPrediction(Prediction("a", "The answer is 12"), 1, 20),
        SampledPrediction(Prediction("b", "(A)"), 0, 30),
        SampledPrediction(Prediction("b", "red"), 1, 40),
        SampledPrediction(Prediction("c", "\\boxed{0.7}"), 0, 50),
    ]
    rows, report = score_sampled(PROBLEMS, lines)
    # Trials: sample 0 gets a; sample 1 gets a and b: 3 right of 3 problems x 2 samples.
    assert report["overall"] == {"accuracy": 0.5, "correct": 3, "total": 6}
    assert report["per_sample_accuracy"] == [1 / 3, 2 / 3]  # their mean is the overall accuracy
    assert report["pass_at_k"] == 2 / 3  # a and b have a right sample, c has none
    assert report["majority_at_k"] == 1 / 3  # a's vote is 12; b's is a blue/red tie, which goes to sample 0's blue
    assert report["missing"] == ["c"]  # listed once although only its sample 1 is missing
    assert report["samples"] == 2
    assert report["response_length"] == 30.0
    assert report["by"]["answer_type"]["integer"] == {"accuracy": 1.0, "correct": 2, "total": 2}
    assert report["by"]["source"]["handmade"] == {"accuracy": 0.5, "correct": 1, "total": 2}
    assert [row["pid"] for row in rows] == ["a", "b", "c"]
    assert [row["correct"] for row in rows] == [[True, True], [False, True], [False, False]]
    assert [row["mean_correct"] for row in rows] == [1.0, 0.5, 0.0]
    assert rows[1]["normalized"] == ["blue", "red"] and rows[2]["responses"] == ["\\boxed{0.7}", None]
    assert [row["missing"] for row in rows] == [False, False, True]
    summary = format_scores(report)
    assert "| pass@1 (mean over samples) | 50.00% |" in summary and "| pass@2 (any sample right) | 66.67% |" in summary
    assert "| maj@2 (majority vote right) | 33.33% |" in summary


@pytest.mark.parametrize("normalized, vote", [
    (["3", "4", "4"], "4"),
    (["3", "4", None, None], "3"),  # a tie goes to the earliest sample's answer; None never votes
    ([None, None], None),
])
def test_majority_vote(normalized, vote):
    assert majority_vote(normalized) == vote


def test_majority_at_k_differs_from_pass_at_k_and_pass_at_1():
    # a: 12 once in three samples (pass@3 yes, vote 11 wrong); c: 0.5 twice (vote right).
    lines = [SampledPrediction(Prediction(pid, f"\\boxed{{{answer}}}"), sample)
             for pid, answers in (("a", ["11", "12", "11"]), ("b", ["red", "red", "red"]), ("c", ["0.5", "0.7", "0.5"]))
             for sample, answer in enumerate(answers)]
    _, report = score_sampled(PROBLEMS, lines)
    assert report["pass_at_k"] == 1.0
    assert report["majority_at_k"] == 2 / 3
    assert report["overall"]["accuracy"] == 6 / 9


def test_sample_indices_must_be_contiguous_and_unique():
    with pytest.raises(MathVistaError, match="no line has sample \\[1\\]"):
        score_sampled(PROBLEMS, [SampledPrediction(Prediction("a", "1"), 0), SampledPrediction(Prediction("a", "1"), 2)])
    with pytest.raises(MathVistaError, match="pid 'a' sample 0 is predicted more than once"):
        score_sampled(PROBLEMS, [SampledPrediction(Prediction("a", "1")), SampledPrediction(Prediction("a", "2"))])


def test_response_length_needs_every_count():
    lines = [SampledPrediction(Prediction("a", "12"), num_tokens=3), SampledPrediction(Prediction("b", "red"))]
    _, report = score_sampled(PROBLEMS, lines)
    assert report["response_length"] is None
    assert "| mean response length (tokens) | n/a |" in format_scores(report)


def test_write_read_round_trip_and_score_file(tmp_path):
    lines = [SampledPrediction(Prediction(pid, f"\\boxed{{{answer}}}"), sample, 7)
             for pid, answer in (("a", "12"), ("b", "B"), ("c", "0.5")) for sample in (0, 1)]
    path = write_predictions(tmp_path / "predictions.jsonl", lines)
    assert json.loads(path.read_text().splitlines()[1]) == {"pid": "a", "sample": 1, "response": "\\boxed{12}",
                                                           "num_tokens": 7}
    assert read_predictions(path) == lines
    single = write_predictions(tmp_path / "single.jsonl", lines[::2])
    assert "sample" not in json.loads(single.read_text().splitlines()[0])  # one sample: MathVista's own shape
    rows, report = score_file(PROBLEMS, path, tmp_path / "out")
    assert report["overall"] == {"accuracy": 1.0, "correct": 6, "total": 6}
    assert json.loads((tmp_path / "out" / "scores.json").read_text()) == report
    assert len((tmp_path / "out" / "per_problem.jsonl").read_text().splitlines()) == 3
    assert "## summary" in (tmp_path / "out" / "scores.md").read_text()
