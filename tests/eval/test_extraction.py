"""MathVista extraction on the answer forms of real model outputs (issue 25), and the agreement benchmark
on the hand-written official-format fixture (tests/fixtures/mathvista_responses)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from mmreason.eval.extraction import extract_mathvista
from mmreason.eval.scoring import normalize_mathvista
from mmreason.problem import Problem


def mc(answer, choices):
    return Problem(pid="p", question="q", answer=answer, answer_type="text", question_type="multi_choice",
                   choices=choices)


def free(answer, answer_type="integer", precision=None, unit=None):
    return Problem(pid="p", question="q", answer=answer, answer_type=answer_type, precision=precision, unit=unit)


SHAPES = mc("circle", ["triangle", "square", "circle", "pentagon"])
YES_NO = mc("Yes", ["Yes", "No"])
TREND = mc("decrease", ["increase", "decrease", "stay the same"])
CLOCK = mc("o'clock", ["half past", "quarter to", "o'clock", "quarter past"])
QUARTERS = mc("quarter to", ["quarter", "quarter to", "quarter past"])
NUMBERS = mc("16", ["12", "14", "16", "18"])
COUNT = free("4")
FOOD_WEB = mc("fish decreases", ["algae increases", "fish decreases", "nothing changes"])
CUBES = Problem(pid="p", question="Subtract all spheres. How many cubes are left?", answer="4", answer_type="integer")
BARS = Problem(pid="p", question="How many bars have values below 20?", answer="3", answer_type="integer")
AGE = Problem(pid="p", question="What is the age gap between these two people in image?", answer="7",
              answer_type="integer", unit="years")
BEADS = Problem(pid="p", question="Ann buys 3 kilograms of glass beads and 2 kilograms of wooden beads. How much "
                "does she spend? (Unit: $)", answer="36", answer_type="integer")
GROUPS = Problem(pid="p", question="The model has 6 dots divided into 3 equal groups. There are (_) dots in each "
                 "group.", answer="2", answer_type="integer")
YEAR = Problem(pid="p", question="Which year had the highest sales of the decade?", answer="2015",
               answer_type="integer")

# (case, problem, response, extraction, scored correct)
CASES = [
    ("leading option in parentheses", SHAPES, "(C) circle", "C", True),
    ("leading option, closing parenthesis", NUMBERS, "C) 16", "C", True),
    ("leading option, yes", YES_NO, "(A) yes", "A", True),
    ("leading option, capitalised text", TREND, "(B) Decrease", "B", True),
    ("leading option, then reasoning", TREND, "(B) decrease\nWarm water holds less oxygen.", "B", True),
    ("the correct option is", TREND, "The correct option is (B) decrease.", "B", True),
    ("the answer to the question is", SHAPES, "The answer to the question is (C) circle.", "C", True),
    ("chinese answer phrase", SHAPES, "所以，答案是(C)", "C", True),
    ("chinese full-width parentheses", SHAPES, "所以，答案是（C）", "C", True),
    ("chinese 故选", SHAPES, "∠BOC=145°，故选C。", "C", True),
    ("choice text leads a sentence", YES_NO, "Yes, the function is even.", "Yes", True),
    ("choice text inside a sentence", CLOCK, "The time shown is twelve o'clock.", "o'clock", True),
    ("longer choice text wins", QUARTERS, "It is a quarter to three.", "quarter to", True),
    ("two choice texts named: none", YES_NO, "Yes or no, it is hard to say.", "", False),
    ("answer colon does not read a sentence on the next line", COUNT,
     "Answer:\nLet me count the cubes again, there are 4 of them.", "4", True),
    ("answer colon reads a bare answer on the next line", NUMBERS, "**Answer:**\n(C) 16", "C", True),
    ("number in words", COUNT, "After subtracting, there are four objects left.", "4", True),
    ("stated number, not the explanation's", COUNT,
     "There are 4 objects left, since 2 of the 6 objects were removed.", "4", True),
    ("copula number", free("5", unit="years"), "The ages are 45 and 50, so the age gap is 5 years.", "5", True),
    ("which-clause states the result", free("0.35", "float", 2), "The ratio is 7:20, which is 0.35.", "0.35", True),
    ("compared-with clause is not the answer", free("1000"), "The largest bar is 1000, compared with 850.", "1000", True),
    ("first number of the stated answer", COUNT, "The answer is 4 because 6 - 2 = 4 and 1 more is 5.", "4", True),
    ("boxed after echoed empty box", COUNT, "Put the answer in \\boxed{}. \\boxed{4}", "4", True),
    ("unicode minus", free("-3"), "The answer is −3.", "-3", True),
    ("thin-space thousands", free("1000"), "\\boxed{1\u202f000}", "1000", True),
    # Forms found in published MathVista responses (the sample of scripts/bench_mathvista_agreement.py).
    ("markdown bold around the number", free("16", unit="m"), "Each side is 4 m, so P = **16 m**.", "16", True),
    ("letter then its option text in parentheses", TREND, "Thus, the answer is B (the level would decrease).",
     "B", True),
    ("option letter phrase, letter and colon", NUMBERS, "So the correct option letter is C: 16 units.", "C", True),
    ("leading letter beyond the options is kept", NUMBERS, "(E) 20", "E", False),
    ("option text up to plural s", FOOD_WEB, "So the fish decrease.", "fish decreases", True),
    ("option text with a modal verb between its words", FOOD_WEB, "Without pike, the fish would decrease.",
     "fish decreases", True),
    ("main clause before the if-clause", FOOD_WEB, "If algae increases, the fish will decrease.",
     "fish decreases", True),
    ("yes/no by a plain statement", YES_NO, "There are fewer red cubes than blue spheres.", "Yes", True),
    ("yes/no by a negated statement", YES_NO, "The red cube is not the largest object.", "No", False),
    ("yes/no refusal is no answer", YES_NO, "The image does not provide enough information to compare them.",
     "", False),
    ("number after than is the condition", free("3"), "Only 3 bars have values higher than 40.", "3", True),
    ("run-on question of its own is cut", COUNT,
     "There are 4 cubes left.\nQuestion: How many spheres are there?\nAnswer: 7", "4", True),
    ("repeat of the problem's question is not cut", CUBES,
     "Let me read it again.\nQuestion: Subtract all spheres. How many cubes are left?\nAnswer: 4", "4", True),
    ("conclusion sentence over a later aside", free("7"),
     "Thus, there are 7 apples in total.\nThis counts the 3 baskets shown.", "7", True),
    ("code is not a statement of the answer", free("18"),
     "Therefore, Sam will spend $18.\n```python\ntotal = 6 * 3\n```", "18", True),
    # Rules added after a second, larger sample of published responses (issue 25, 1,302 responses).
    ("count in words, the digits are the question's condition", BARS, "There are three bars with values below 20.",
     "3", True),
    ("number with the question's own neighbouring word is not the answer", AGE,
     "There is a seven year age gap between these two people.", "7", True),
    ("question's quantities restated, the answer stated once", BEADS,
     "She will pay $36 in all for the 3 kilograms of glass beads and 2 kilograms of wooden beads.", "36", True),
    ("a sentence of only the question's numbers states nothing", BARS,
     "To answer, count the bars whose values are below 20 in the chart.", "", False),
    ("main clause restates the question, the answer follows the comma", GROUPS,
     "The picture shows 6 dots divided into 3 equal groups, with 2 dots in each group.", "2", True),
    ("N out of M is N", free("12"), "Pizza is the favourite, with 12 out of 50 people choosing it.", "12", True),
    ("a fraction is its value", free("0.75", "float", 2), "The share of red marbles is 3/4 of the bag.", "0.75",
     True),
    ("numbers in parentheses are asides", free("500"),
     "The tallest and the shortest bar differ by about 500 units (950 against 450).", "500", True),
    ("the sentence restating the question over a later table", YEAR,
     "The year 2015 had the highest sales of the decade.\n\nSales by year:\n2014 | 310\n2015 | 420\n2016 | 380",
     "2015", True),
    ("an explanation after the answer is not read", COUNT,
     "After removing the spheres, there are 4 objects left. This is because there were 7 objects and 3 spheres.",
     "4", True),
    ("multiple choice: a stated value that is no choice is kept", mc("5", ["5", "6", "8", "10"]),
     "Using the Pythagorean theorem, CD^2 = 100 + 64 = 164.\nTherefore, the length of CD is 12.", "12", False),
    ("multiple choice: a refusal with numbers states no value", NUMBERS,
     "The figure is not shown, so I cannot tell whether it is 12 or 14.", "", False),
]


@pytest.mark.parametrize("prob,response,extraction,correct", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_answer_forms(prob, response, extraction, correct):
    got = extract_mathvista(response, prob)
    assert got == extraction
    assert (normalize_mathvista(got, prob, ignore_empty_extractions=True) == prob.answer) is correct


def test_nearest_choice_fallback_no_longer_picks_square():
    """The issue's example: "(C) circle" used to extract nothing and fall to the nearest choice, "square"."""
    assert normalize_mathvista(extract_mathvista("(C) circle", SHAPES), SHAPES) == "circle"


def test_long_response_is_not_an_answer():
    """A paragraph inside a box is not an extraction (and cannot make the edit-distance fallback slow)."""
    assert extract_mathvista("\\boxed{" + "word " * 100_000 + "}", SHAPES) == ""


def test_agreement_benchmark_on_the_fixture(repo_root):
    result = subprocess.run(
        [sys.executable, "scripts/bench_mathvista_agreement.py", "tests/fixtures/mathvista_responses", "--show", "0"],
        cwd=repo_root, capture_output=True, text=True, check=True,
    )
    lines = result.stdout.strip().splitlines()
    models = {line.split()[0] for line in lines if " agreement " in line}
    assert models == {"shortqa", "chatcot", "r1style", "wrongs", "heldout", "restated"}
    assert lines[-3] == "not text-style: 0 empty responses, 0 program outputs (records with an execution field)"
    assert lines[-2].startswith("text-style agreement: ") and lines[-2].endswith("(90 responses)")
    last = lines[-1]
    assert last.startswith("agreement: ") and last.endswith("(90 responses)")
    assert float(last.split()[1]) >= 0.95


def test_agreement_benchmark_text_style_excludes_only_empty_and_program_outputs(repo_root, tmp_path):
    """Text-style outputs are non-empty free-text responses: an empty response and a program-of-thought record
    (one with an `execution` field) are counted in the overall agreement but not in the text-style one."""
    problem = {"question": "How many cubes are left?", "choices": None, "unit": None, "precision": None,
               "answer": "4", "question_type": "free_form", "answer_type": "integer"}
    records = {
        "1": dict(problem, pid="1", response="There are 4 cubes left.", extraction="4", true_false=True),
        "2": dict(problem, pid="2", response="  \n", extraction="4", true_false=True),  # empty: official says 4
        "3": dict(problem, pid="3", response="cubes = 6 - 2\nprint(cubes)", execution="4", extraction="4",
                  true_false=True),  # a program: the official extraction reads its printed output
        "4": dict(problem, pid="4", response="I cannot see the image.", extraction="N/A", true_false=False),
    }
    (tmp_path / "output_mix.json").write_text(json.dumps(records), encoding="utf-8")
    (tmp_path / "output_other.json").write_text(json.dumps({"1": records["1"]}), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "scripts/bench_mathvista_agreement.py", str(tmp_path), "--show", "5", "--held-out", "other"],
        cwd=repo_root, capture_output=True, text=True, check=True,
    )
    lines = result.stdout.strip().splitlines()
    assert lines[-3] == "not text-style: 1 empty responses, 1 program outputs (records with an execution field)"
    assert lines[-2] == "text-style agreement: 1.0000 (3 responses)"
    assert lines[-1] == "agreement: 0.6000 (5 responses)"
    assert "studied: agreement 0.5000 (4 responses), text-style 1.0000 (2 responses)" in lines
    assert "held out: agreement 1.0000 (1 responses), text-style 1.0000 (1 responses)" in lines
    assert sum(line.startswith("--- mix pid") for line in lines) == 2  # the empty and the program output


def test_agreement_benchmark_rejects_an_unknown_held_out_name(repo_root):
    result = subprocess.run(
        [sys.executable, "scripts/bench_mathvista_agreement.py", "tests/fixtures/mathvista_responses",
         "--show", "0", "--held-out", "nosuchmodel"],
        cwd=repo_root, capture_output=True, text=True,
    )
    assert result.returncode != 0 and "nosuchmodel" in result.stderr


@pytest.mark.parametrize("response", [
    "\\boxed{" + "1+" * 100_000 + "1}",  # 100,000 numbers, each once checked for a "than" before it
    "4\nHint: h" * 20_000,  # run-on "Hint:" lines, each with a bounded look for its "Question:"
    "4" + " \n" * 100_000 + "Question: a",
    "than 5 " * 30_000,
], ids=["numbers in a long box", "hint lines", "blank lines", "conditions"])
def test_rules_stay_linear(response):
    """The run-on cut and the condition rule scan once; a quadratic scan of these takes minutes."""
    start = time.perf_counter()
    extract_mathvista(response, COUNT)
    assert time.perf_counter() - start < 5


NUMBERED_QUESTION = Problem(pid="p", question="How many of the 3 red bars and 4 blue bars are above 20? " * 200,
                            answer="2", answer_type="integer")
NUMERIC_CHOICES = mc("8", ["2", "4", "8", "16"])


@pytest.mark.parametrize("prob,response", [
    (COUNT, "(12) " * 100_000),  # one sentence of parenthesised asides
    (NUMBERED_QUESTION, "the 3 red bars and 4 blue bars " * 30_000),  # numbers echoing a long question
    (NUMBERED_QUESTION, "There are 3 red bars. " * 40_000),  # many sentences, each checked for a restatement
    (NUMERIC_CHOICES, "The side is 5 (or 6). " * 40_000),  # multiple choice reading a stated value
], ids=["asides", "question echoes", "restatements", "stated value"])
def test_number_rules_stay_linear(prob, response):
    """The question-echo, restatement, aside and stated-value rules read each number and sentence a bounded
    number of times, so a 1 MB response stays well under the 2 s budget."""
    start = time.perf_counter()
    extract_mathvista(response, prob)
    assert time.perf_counter() - start < 5
