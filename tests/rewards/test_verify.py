"""Verification by answer type, hedging, ground-truth checks, and math_verify off the main thread."""

import threading

import pytest

from mmreason.problem import Problem, ProblemError
from mmreason.rewards import check_ground_truth, judge_answer, verify_answer
from mmreason.rewards.verify import is_tame, read_number, split_list


def problem(answer, answer_type="integer", **fields):
    return Problem(pid="p-7", question="How many?", answer=answer, answer_type=answer_type, **fields)


INTEGER = problem("12")
INTEGER_CM = problem("12", unit="cm")
FLOAT = problem("0.5", "float")
FLOAT_P1 = problem("1.25", "float", precision=1)
LIST = problem("[2, 3]", "list")
TEXT_MATH = problem("x^2+1", "text")
TEXT_WORDS = problem("Paris", "text")
TEXT_WITH_AND = problem("salt and pepper", "text")
CHOICE = Problem(pid="mc-1", question="Which?", answer="12", question_type="multi_choice", choices=["10", "12", "14"])
DUPLICATE_CHOICES = Problem(pid="mc-2", question="Which?", answer="red", question_type="multi_choice",
                            choices=["red", "blue", "red"])
CHOICE_WITH_AND = Problem(pid="mc-3", question="Which?", answer="Both A and B", question_type="multi_choice",
                          choices=["Only A", "Both A and B"])

# (case, problem, prediction, correct, reason)
VERIFY_TABLE = [
    # integer
    ("int plain", INTEGER, "12", True, "correct"),
    ("int as float", INTEGER, "12.0", True, "correct"),
    ("int in dollars", INTEGER, "$12$", True, "correct"),
    ("int boxed inner form", INTEGER, r"\boxed{12}", True, "correct"),
    ("int assignment", INTEGER, "x = 12", True, "correct"),
    ("int latex fraction", INTEGER, r"\frac{24}{2}", True, "correct"),
    ("int sqrt", INTEGER, r"\sqrt{144}", True, "correct"),
    ("int text wrapper", INTEGER, r"\text{12}", True, "correct"),
    ("int degrees", INTEGER, r"12^\circ", True, "correct"),
    ("int non-integer value", INTEGER, "12.5", False, "wrong"),
    ("int wrong", INTEGER, "13", False, "wrong"),
    ("int unit stripped when it is the problem's", INTEGER_CM, "12 cm", True, "correct"),
    ("int unit in text", INTEGER_CM, r"12\text{ cm}", True, "correct"),
    ("int other unit", INTEGER_CM, "12 m", False, "not_a_number"),
    ("int unit when problem has none", INTEGER, "12 cm", False, "not_a_number"),
    ("int word", INTEGER, "twelve", False, "not_a_number"),
    # hedging: several candidates in one answer
    ("hedge letters and number", INTEGER, "A or B or 12", False, "hedged"),
    ("hedge or", INTEGER, "12 or 13", False, "hedged"),
    ("hedge comma", INTEGER, "12, 13", False, "hedged"),
    ("hedge semicolon", INTEGER, "12; 13", False, "hedged"),
    ("hedge either and", INTEGER, "either 12 and 13", False, "hedged"),
    ("hedge side by side", INTEGER, "12 13", False, "hedged"),
    ("hedge plus-minus", INTEGER, r"12 \pm 1", False, "hedged"),
    ("hedge same number twice", INTEGER, "12 or 12", False, "hedged"),
    ("thousands separator is not a hedge", problem("1000"), "1,000", True, "correct"),
    # screened before sympy evaluates anything
    ("power tower", INTEGER, "9^{9^{9^{9}}}", False, "not_a_number"),
    ("huge factorial", INTEGER, "100000!", False, "not_a_number"),
    ("small tower evaluates", problem("256"), "2^{2^{3}}", True, "correct"),
    # float
    ("float nested frac", FLOAT, r"\frac{1}{2}", True, "correct"),
    ("float trailing zero", FLOAT, "0.50", True, "correct"),
    ("float slash", FLOAT, "1/2", True, "correct"),
    ("float no precision is exact", FLOAT, "0.5000001", False, "wrong"),
    # precision 1, both sides rounded with Python's round: 1.25 -> 1.2 (half to even on the binary value)
    ("precision: ground truth rounds to 1.2", FLOAT_P1, "1.2", True, "correct"),
    ("precision: 1.3 is wrong", FLOAT_P1, "1.3", False, "wrong"),
    ("precision: full value rounds the same", FLOAT_P1, "1.25", True, "correct"),
    ("precision: sqrt(2) at precision 1", problem("1.4", "float", precision=1), r"\sqrt{2}", True, "correct"),
    ("precision: 1.5 vs 1.4", problem("1.4", "float", precision=1), "1.5", False, "wrong"),
    # list
    ("list same", LIST, "[2, 3]", True, "correct"),
    ("list parens", LIST, "(2,3)", True, "correct"),
    ("list bare", LIST, "2, 3", True, "correct"),
    ("list left/right", LIST, r"\left[2, 3\right]", True, "correct"),
    ("list float element", LIST, "[2.0, 3]", True, "correct"),
    ("list order matters", LIST, "[3, 2]", False, "wrong"),
    ("list length", LIST, "[2, 3, 4]", False, "wrong_length"),
    ("list hedge", LIST, "2 or 3", False, "hedged"),
    ("list element hedge", LIST, "[2, 3 or 4]", False, "hedged"),
    ("list unbalanced", LIST, "[2, 3]]", False, "not_a_list"),
    # text
    ("text math equivalent", TEXT_MATH, "1+x^{2}", True, "correct"),
    ("text math wrong", TEXT_MATH, "x^2+2", False, "wrong"),
    ("text math hedge", TEXT_MATH, "x^2+1 or x^2+2", False, "hedged"),
    ("text math assignment", TEXT_MATH, "y = 1+x^2", True, "correct"),
    ("text math junk = answer", TEXT_MATH, r"x^2+2 \text{ then } y = x^2+1", False, "wrong"),
    ("text math implies answer", TEXT_MATH, r"x^2+2 \implies x^2+1", False, "wrong"),
    ("text math two expressions", TEXT_MATH, r"x^2+2 \quad x^2+1", False, "wrong"),
    ("text math equation answer", problem("y = 2x", "text"), "y=2x", True, "correct"),
    ("text case", TEXT_WORDS, "paris", True, "correct"),
    ("text latex wrapper and period", TEXT_WORDS, r"\text{Paris}.", True, "correct"),
    ("text wrong", TEXT_WORDS, "London", False, "wrong"),
    ("text words are not multiplied symbols", problem("ab", "text"), "ba", False, "wrong"),
    ("text 'and' allowed when the answer has it", TEXT_WITH_AND, "Salt and Pepper", True, "correct"),
    ("text 'or' hedge", TEXT_WITH_AND, "salt or pepper", False, "hedged"),
    # multiple choice: letter vs text
    ("mc letter", CHOICE, "B", True, "correct"),
    ("mc letter in parens", CHOICE, "(B)", True, "correct"),
    ("mc letter with period", CHOICE, "B.", True, "correct"),
    ("mc lower-case letter", CHOICE, "(b)", True, "correct"),
    ("mc option word", CHOICE, "Option B", True, "correct"),
    ("mc choice text", CHOICE, "12", True, "correct"),
    ("mc choice text as number", CHOICE, "12.0", True, "correct"),
    ("mc letter and matching text", CHOICE, "(B) 12", True, "correct"),
    ("mc letter and other text", CHOICE, "B) 14", False, "letter_text_mismatch"),
    ("mc wrong letter", CHOICE, "A", False, "wrong"),
    ("mc letter out of range", CHOICE, "D", False, "letter_out_of_range"),
    ("mc hedge letters", CHOICE, "A or B", False, "hedged"),
    ("mc hedge comma", CHOICE, "B, C", False, "hedged"),
    ("mc not a choice", CHOICE, "13", False, "not_a_choice"),
    ("mc duplicate text first letter", DUPLICATE_CHOICES, "A", True, "correct"),
    ("mc duplicate text second letter", DUPLICATE_CHOICES, "C", True, "correct"),
    ("mc duplicate other letter", DUPLICATE_CHOICES, "B", False, "wrong"),
    ("mc 'and' inside a choice text", CHOICE_WITH_AND, "Both A and B", True, "correct"),
    ("mc 'or' between choices", CHOICE_WITH_AND, "Only A or Both A and B", False, "hedged"),
    # anything
    ("empty", INTEGER, "  ", False, "empty"),
    ("too long", INTEGER, "1" * 300, False, "too_long"),
]


@pytest.mark.parametrize(
    "prob,pred,correct,reason",
    [case[1:] for case in VERIFY_TABLE],
    ids=[case[0] for case in VERIFY_TABLE],
)
def test_verify_table(prob, pred, correct, reason):
    verdict = judge_answer(pred, prob)
    assert (verdict.correct, verdict.reason) == (correct, reason)
    assert verify_answer(pred, prob) is correct


def test_math_verify_alone_would_accept_the_hedge():
    """Why hedging is checked before math_verify (see FIELD-NOTES)."""
    from math_verify import parse, verify

    assert verify(parse("$12$", parsing_timeout=None), parse("A or B or 12", parsing_timeout=None), timeout_seconds=None)
    assert not verify_answer("A or B or 12", INTEGER)


def test_float_precision_stored_as_float_is_accepted():
    """MathVista's files store precision as 1.0; a Problem built directly may carry it."""
    prob = problem("1.2", "float")
    prob.precision = 1.0
    assert verify_answer("1.21", prob)
    assert not verify_answer("1.3", prob)


def test_verification_works_in_threads():
    """math_verify's signal-based timeout fails outside the main thread; ours is switched off."""
    from math_verify import parse

    from mmreason.rewards.symbolic import clear_cache

    clear_cache()  # make the threads really verify (in the time-limited helper process)
    cases = [(INTEGER, r"\frac{36}{3}"), (TEXT_MATH, "1+x^{2}"), (FLOAT, r"\frac{2}{4}")]
    results, errors, default_timeout_errors = [], [], []

    def work():
        try:
            parse("$1$")  # math_verify's default (signal) timeout: fails off the main thread
        except ValueError as err:
            default_timeout_errors.append(err)
        try:
            results.extend(verify_answer(pred, prob) for prob, pred in cases)
        except Exception as err:  # surfaced below; a thread swallows exceptions otherwise
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(default_timeout_errors) == 2  # the problem this guards against is real
    assert errors == []
    assert results == [True] * 6


def test_read_number_forms():
    assert read_number("1,000") == 1000
    assert read_number(r"\$12") == 12
    assert read_number("25\\%") == 25
    assert read_number("-3/4") == -0.75
    assert read_number("1e3") == 1000
    assert read_number(r"\frac{1}{0}") is None
    assert read_number("1e100000000") is None  # would build a 100-million-digit integer
    assert abs(read_number(r"\pi") - 3.14159265) < 1e-8


def test_split_list():
    assert split_list("[2, 3]") == ["2", "3"]
    assert split_list("(f(1,2), 3)") == ["f(1,2)", "3"]
    assert split_list("[1,") is None
    assert split_list("[1, , 2]") is None


def test_is_tame_refuses_towers_but_not_ordinary_powers():
    from math_verify import parse

    def expr(latex):
        return parse(f"${latex}$", parsing_timeout=None)[0]

    assert is_tame(expr("2^{10} + x^{3}"))
    assert not is_tame(expr("9^{9^{9^{9}}}"))
    assert not is_tame(expr("((10^{400})^{1000})^{1000}"))


# ---------------------------------------------------------------- check_ground_truth

BAD_GROUND_TRUTHS = [
    ("integer word", problem("twelve"), "cannot be read as an integer"),
    ("integer non-integral", problem("12.5"), "cannot be read as an integer"),
    ("float text", problem("abc", "float"), "cannot be read as a number"),
    ("list unclosed", problem("[1,", "list"), "cannot be read as a list"),
    ("empty text", problem("  ", "text"), "is empty"),
    ("unknown type", problem("1", "complex"), "answer_type"),
    ("choice not listed", Problem(pid="p-7", question="q", answer="9", question_type="multi_choice", choices=["1", "2"]),
     "not among the choices"),
    ("hedged ground truth", problem("12 or 13"), "cannot be read as an integer"),
]


@pytest.mark.parametrize("prob,message", [case[1:] for case in BAD_GROUND_TRUTHS], ids=[case[0] for case in BAD_GROUND_TRUTHS])
def test_check_ground_truth_errors_name_the_pid(prob, message):
    with pytest.raises(ProblemError, match=message) as info:
        check_ground_truth(prob)
    assert "'p-7'" in str(info.value)


@pytest.mark.parametrize("prob", [INTEGER, INTEGER_CM, FLOAT, FLOAT_P1, LIST, TEXT_MATH, TEXT_WORDS, TEXT_WITH_AND,
                                  CHOICE, DUPLICATE_CHOICES, CHOICE_WITH_AND, problem("12 cm", unit="cm"),
                                  problem(r"\frac{1}{2}", "float")])
def test_check_ground_truth_accepts_good_answers(prob):
    assert check_ground_truth(prob) is None
