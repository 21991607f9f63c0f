"""Scores end to end: extraction + verification + format, weighted; and the batched tensors."""

import pytest
import torch

from mmreason.config import RewardConfig
from mmreason.problem import Problem
from mmreason.rewards import format_reward, score, score_all

INT_12 = Problem(pid="int-12", question="How many?", answer="12", answer_type="integer")
HALF = Problem(pid="half", question="What fraction?", answer="0.5", answer_type="float")
LIST = Problem(pid="pair", question="Which two?", answer="[2, 3]", answer_type="list")
CHOICE = Problem(pid="mc", question="Which?", answer="12", question_type="multi_choice", choices=["10", "12", "14"])

CFG = RewardConfig(accuracy_weight=1.0, format_weight=0.1, answer_sources=["boxed"])

GOOD = "<think>4 rows of 3</think> So the answer is \\boxed{12}."

# Each hacking attempt, listed explicitly: (case, problem, response, accuracy, reason)
HACKING_TABLE = [
    ("several candidates in one box", INT_12, "<think>hmm</think>\\boxed{11, 12, 13}", 0.0, "hedged"),
    ("letters and a number in one box", INT_12, "<think>hmm</think>\\boxed{A or B or 12}", 0.0, "hedged"),
    ("'12 or 13'", INT_12, "<think>hmm</think>\\boxed{12 or 13}", 0.0, "hedged"),
    ("several different boxes", INT_12, "<think>hmm</think>\\boxed{12} \\boxed{13}", 0.0, "conflicting_boxes"),
    ("empty box", INT_12, "<think>hmm</think>\\boxed{}", 0.0, "empty_box"),
    ("answer only inside think", INT_12, "<think>so \\boxed{12}</think> done", 0.0, "inside_think_only"),
    ("bare number where a box is required", INT_12, "<think>hmm</think> 12", 0.0, "no_answer"),
    ("unclosed think", INT_12, "<think>it is 12 \\boxed{12}", 0.0, "unclosed_think"),
    ("same answer boxed twice (allowed)", INT_12, "<think>hmm</think>\\boxed{12} so \\boxed{12}", 1.0, "correct"),
    ("nested braces, float 0.5", HALF, "<think>hmm</think>\\boxed{\\frac{1}{2}}", 1.0, "correct"),
    ("multiple choice letter", CHOICE, "<think>hmm</think>\\boxed{B}", 1.0, "correct"),
    ("multiple choice text", CHOICE, "<think>hmm</think>\\boxed{12}", 1.0, "correct"),
    ("multiple choice wrong letter", CHOICE, "<think>hmm</think>\\boxed{C}", 0.0, "wrong"),
    ("multiple choice two letters", CHOICE, "<think>hmm</think>\\boxed{B or C}", 0.0, "hedged"),
    ("list answer with commas", LIST, "<think>hmm</think>\\boxed{[2, 3]}", 1.0, "correct"),
    ("list answer as bare pair", LIST, "<think>hmm</think>\\boxed{2, 3}", 1.0, "correct"),
]


@pytest.mark.parametrize(
    "prob,response,accuracy,reason",
    [case[1:] for case in HACKING_TABLE],
    ids=[case[0] for case in HACKING_TABLE],
)
def test_hacking_table(prob, response, accuracy, reason):
    scores = score(response, prob, CFG)
    assert (scores.accuracy, scores.reason) == (accuracy, reason)


def test_accuracy_format_and_extracted_answer():
    # The weighted sum of these (and the other terms) is tests/rewards/test_reward.py's.
    scores = score(GOOD, INT_12, CFG)
    assert (scores.accuracy, scores.format, scores.extracted) == (1.0, 1.0, "12")
    wrong = score(GOOD.replace("12", "13"), INT_12, CFG)
    assert (wrong.accuracy, wrong.format, wrong.extracted) == (0.0, 1.0, "13")


def test_answer_is_source_only_when_configured():
    response = "<think>x</think> The answer is 12."
    assert score(response, INT_12, CFG).accuracy == 0.0
    assert score(response, INT_12, RewardConfig(answer_sources=["boxed", "answer_is"])).accuracy == 1.0


FORMAT_TABLE = [
    ("think then one box", GOOD, 1.0),
    ("whitespace around", "\n <think>\nwork\n</think>\n\\boxed{3}\n", 1.0),
    ("box need not be last", "<think>w</think>\\boxed{3} because of w", 1.0),
    ("no think", "\\boxed{12}", 0.0),
    ("empty reasoning", "<think>  </think>\\boxed{12}", 0.0),
    ("text before think", "Sure! <think>w</think>\\boxed{12}", 0.0),
    ("two think blocks", "<think>a</think><think>b</think>\\boxed{12}", 0.0),
    ("unclosed think", "<think>a \\boxed{12}", 0.0),
    ("no box", "<think>a</think> 12", 0.0),
    ("two boxes, even equal", "<think>a</think>\\boxed{12}\\boxed{12}", 0.0),
    ("empty box", "<think>a</think>\\boxed{ }", 0.0),
    ("box only inside think", "<think>\\boxed{12}</think> twelve", 0.0),
    ("unclosed box", "<think>a</think>\\boxed{12", 0.0),
]


@pytest.mark.parametrize("response,expected", [case[1:] for case in FORMAT_TABLE], ids=[case[0] for case in FORMAT_TABLE])
def test_format_table(response, expected):
    assert format_reward(response) == expected


def test_score_all_shapes_and_values():
    responses = [GOOD, "<think>a</think>\\boxed{13}", "\\boxed{12}", "<think>a</think>\\boxed{B}"]
    problems = [INT_12, INT_12, INT_12, CHOICE]
    batch = score_all(responses, problems, CFG)
    for tensor in (batch.accuracy, batch.format):
        assert tensor.shape == (4,)
        assert tensor.dtype == torch.float32
    assert batch.accuracy.tolist() == [1.0, 0.0, 1.0, 1.0]
    assert batch.format.tolist() == [1.0, 1.0, 0.0, 1.0]
    assert batch.extracted == ["12", "13", "12", "B"]
    assert batch.reasons == ["correct", "wrong", "correct", "correct"]
    assert len(batch) == 4


def test_score_all_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="3 responses but 2 problems"):
        score_all([GOOD] * 3, [INT_12] * 2, CFG)


def test_score_all_rejects_unknown_source():
    with pytest.raises(ValueError, match="'box'"):
        score_all([GOOD], [INT_12], RewardConfig(answer_sources=["box"]))
