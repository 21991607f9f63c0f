"""The verifier holes found on real data (issue 25): choices as choices, letter with text, typography,
the per-answer time limit, linear box finding, the prompt's echoed empty box."""

from __future__ import annotations

import threading

import pytest

from mmreason.config import RewardConfig
from mmreason.problem import Problem
from mmreason.rewards import extract, symbolic
from mmreason.rewards.extract import extract_answer, find_boxes
from mmreason.rewards.score import score, score_all
from mmreason.rewards.verify import judge_answer, normalize_typography


def problem(answer, answer_type="text", choices=None, unit=None):
    return Problem(pid="p", question="q", answer=answer, answer_type=answer_type,
                   question_type="multi_choice" if choices else "free_form", choices=choices, unit=unit)


RANGES = problem("0.0 - 0.2", choices=["0.0 - 0.2", "0.2 - 0.4", "0.4 - 0.6"])
ORDERS = problem("5-2-3-1-4", choices=["1-2-3-4-5", "5-2-3-1-4", "5-3-2-1-4"])
YES_NO = problem("Yes", choices=["Yes", "No"])

CASES = [
    # (case, problem, prediction, correct, reason)
    ("range choice is not arithmetic", RANGES, "0.2 - 0.4", False, "wrong"),
    ("range choice by its text", RANGES, "0.0 - 0.2", True, "correct"),
    ("range choice by letter", RANGES, "(A)", True, "correct"),
    ("sequence choice against itself", ORDERS, "5-2-3-1-4", True, "correct"),
    ("sequence choice, another order", ORDERS, "5-3-2-1-4", False, "wrong"),
    ("sequence free-form against itself", problem("5-2-3-1-4"), "5-2-3-1-4", True, "correct"),
    ("numeric choice still by value", problem("0.5", choices=["0.25", "0.5"]), "\\frac{1}{2}", True, "correct"),
    ("letter with text in parentheses", YES_NO, "A (Yes)", True, "correct"),
    ("letter with text after a colon", YES_NO, "(A): Yes", True, "correct"),
    ("letter and text disagree", YES_NO, "B (Yes)", False, "letter_text_mismatch"),
    ("redundant braces", problem("4", "integer"), "{4}", True, "correct"),
    ("doubly redundant braces", problem("4", "integer"), "{{4}}", True, "correct"),
    ("unicode minus", problem("-4", "integer"), "\u22124", True, "correct"),
    ("unicode minus in braces", problem("-4", "integer"), "{\u22124}", True, "correct"),
    ("full-width digits and parentheses", problem("12", "integer"), "\uff11\uff12", True, "correct"),
    ("full-width option letter", YES_NO, "\uff08A\uff09", True, "correct"),
    ("en dash as minus", problem("-0.5", "float"), "\u20130.5", True, "correct"),
]


@pytest.mark.parametrize("prob,pred,correct,reason", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_verifier_holes(prob, pred, correct, reason):
    verdict = judge_answer(pred, prob)
    assert (verdict.correct, verdict.reason) == (correct, reason)


def test_typography_table():
    assert normalize_typography("\u22124 \u2013 3\u3000\uff08\uff22\uff09") == "-4 - 3 (B)"


@pytest.mark.parametrize("pred", [
    r"\binom{10^{7}}{5\cdot10^{6}}",  # refused by the screen (huge binomial) before sympy evaluates it
    r"{10^{7} \choose 5\cdot10^{6}}",
])
def test_huge_binomials_are_refused_quickly(pred):
    verdict = judge_answer(pred, problem("x^2+1"))
    assert verdict.correct is False and verdict.reason in ("wrong", "timeout")


def test_slow_expansion_times_out_and_is_counted():
    """(x+1)^{2000} against a polynomial: sympy expands for a long time; the helper is killed at the limit."""
    symbolic.clear_cache()
    before = symbolic.stats["timeouts"]
    verdict = judge_answer("(x+1)^{2000}", problem("x^2+1"), time_limit=0.3)
    assert (verdict.correct, verdict.reason) == (False, "timeout")
    assert symbolic.stats["timeouts"] == before + 1
    # The helper was replaced: the next answer is verified normally.
    assert judge_answer("1+x^{2}", problem("x^2+1")).correct


def test_timeout_reason_reaches_the_scores():
    symbolic.clear_cache()
    scores = score("\\boxed{(x+1)^{2000}}", problem("x^2+1"), RewardConfig())
    assert scores.accuracy == 0.0 and scores.reason == "timeout"
    batch = score_all(["\\boxed{(x+1)^{2000}}", "\\boxed{1+x^2}"], [problem("x^2+1")] * 2, RewardConfig())
    assert batch.reasons == ["timeout", "correct"]


def test_time_limit_in_threads():
    """The limit is a helper process, not a signal: it works off the main thread too."""
    symbolic.clear_cache()
    results = []

    def work():
        with symbolic.time_limit(0.2):
            try:
                symbolic.call("sleep", 5)
                results.append("finished")
            except symbolic.VerificationTimeout:
                results.append("timeout")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=30)
    assert results == ["timeout"]


def test_no_limit_runs_in_process():
    symbolic.clear_cache()
    starts = symbolic.stats["helper_starts"]
    assert judge_answer("1+x^{2}", problem("x^2+1"), time_limit=None).correct
    assert symbolic.stats["helper_starts"] == starts


def test_box_finding_is_one_pass(monkeypatch):
    """20,000 unclosed boxes: the braces are paired once, not once per box (the old scan was quadratic)."""
    calls = []
    real = extract.brace_pairs
    monkeypatch.setattr(extract, "brace_pairs", lambda text: calls.append(len(text)) or real(text))
    text = "\\boxed{" * 20_000 + "\\boxed{3}"
    boxes, unclosed = find_boxes(text)
    assert [b.content for b in boxes] == ["3"] and unclosed == 20_000
    assert calls == [len(text)]


def test_echoed_empty_box_is_not_a_conflict():
    def found(text):
        e = extract_answer(text)
        return e.answer, e.source, e.reason

    response = "<think>The prompt says to put the final answer in \\boxed{}. 3 + 4 = 7.</think> So \\boxed{7}."
    assert found(response) == ("7", "boxed", "ok")
    assert found("Put it in \\boxed{} like this: \\boxed{7}") == ("7", "boxed", "ok")
    assert extract_answer("\\boxed{} and \\boxed{ }").reason == "empty_box"
    assert extract_answer("\\boxed{6} then \\boxed{7}").reason == "conflicting_boxes"
