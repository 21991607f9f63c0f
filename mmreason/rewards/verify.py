"""Is an extracted answer right? Verification by the problem's answer type.

`judge_answer(pred, problem)` returns a `Verdict` (correct + reason);
`verify_answer` is its boolean. Rules by type:

- integer: the prediction must read as one number with an integer value equal
  to the ground truth: "12", "12.0", "$12$", "\\boxed{12}", "x = 12",
  "\\frac{24}{2}", "12 cm" when "cm" is the problem's unit, "30^\\circ", "25\\%".
- float: with `problem.precision` set, both sides are rounded to that many
  decimals with Python's `round` and compared — MathVista's rule (its
  `normalize_extracted_answer` rounds the prediction; its ground truths are
  already written at that precision). Python rounds half to even on the binary
  value: with answer "1.25" and precision 1 the ground truth becomes 1.2, so
  "1.2" and "1.25" are right and "1.3" is wrong. Without a precision the two
  numbers are compared by math_verify (exact for rationals: "0.5" == "1/2").
- list: element by element, order matters, same length: "[2, 3]" == "(2,3)"
  == "2, 3"; numeric elements compare as numbers, others as normalised text.
- text: normalised equality (case, whitespace, \\text{}, a final period), then
  math_verify equivalence when the ground truth looks mathematical ("x^2+1"
  vs "1+x^{2}"); plain words never go through math_verify ("ab" would equal
  "ba" as a product of symbols). "y = 1+x^2" is read as 1+x^2, but any other
  relation the ground truth lacks ("junk = x^2+1", "a \\implies x^2+1") is
  wrong: math_verify would compare only its right-hand side.
- multiple choice (`question_type` multi_choice, any answer_type): a letter
  ("B", "(B)", "B.", "Option B") selects choices[1]; otherwise the prediction
  must be a choice text (normalised, or numerically equal); "(B) 12" needs the
  letter and the text to agree. A letter past the last choice is wrong. The
  selected choice is right when its text equals the answer's text, so with two
  options of the same text either letter is right.

Strictness against reward hacking comes from here, not from math_verify
(which takes the last number of "A or B or 12"): a prediction holding several
candidates — "12 or 13", "12, 13", "12; 13", "3 \\pm 1", "either 3 and 4",
"12 13" — is rejected as hedged before math_verify sees it, unless the ground
truth itself contains that separator (a list answer's commas, a choice text
such as "salt and pepper").

Typography is normalised before anything else (`normalize_typography`): the
Unicode minus and dashes, full-width characters ("（Ｂ）", "１２"), non-breaking
and thin spaces; redundant braces around a whole answer ("{{4}}") go too.

Time limit: everything that calls sympy or math_verify runs in a helper process
(`mmreason.rewards.symbolic`) under a per-answer deadline (`time_limit`
seconds, default DEFAULT_TIME_LIMIT); an answer whose verification runs out of
time is wrong with reason ``timeout`` (counted by the callers' reason tallies).
math_verify's own timeouts are signal-based (main thread only), so they stay
off. Expressions are still screened before anything is evaluated: answers
longer than MAX_ANSWER_CHARS, power towers, huge factorials and binomials and
unevaluated sums/integrals are refused (a boxed 9^{9^{9^9}} never reaches sympy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from mmreason.problem import ANSWER_TYPES, Problem, ProblemError
from mmreason.rewards import symbolic
from mmreason.rewards.extract import find_boxes, matching_brace
from mmreason.rewards.symbolic import DEFAULT_TIME_LIMIT, MAX_DIGITS, MAX_EXPONENT, MAX_FACTORIAL, is_tame  # noqa: F401

MAX_ANSWER_CHARS = 200
"""Predictions longer than this (and than twice the ground truth) are wrong without parsing."""

Number = Fraction | float
"""Exact when the answer is rational ("0.5", "\\frac{1}{2}"), else a float (sqrt(2), pi)."""


@dataclass(frozen=True)
class Verdict:
    """Whether a prediction is right, and why (for logs and per-problem reports)."""

    correct: bool
    reason: str
    """correct, or why not: wrong, hedged, not_a_number, not_a_list, wrong_length, not_a_choice,
    letter_out_of_range, letter_text_mismatch, too_long, empty, timeout (the time limit ran out),
    unreadable_ground_truth
    (`check_ground_truth` catches the last one when data is loaded)."""


# ---------------------------------------------------------------- text clean-up

_WRAPPER_COMMANDS = ("text", "textbf", "textit", "textrm", "mathrm", "mathbf", "mathit", "mbox", "operatorname", "emph")
_WRAPPER_START = re.compile(r"\\(?:%s)\s*\{" % "|".join(_WRAPPER_COMMANDS))
_SPACING = re.compile(r"\\(?:quad|qquad|,|;|:|!|\s)|~")
_SIZING = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|displaystyle)(?![A-Za-z])")


def _unwrap_commands(text: str) -> str:
    r"""Replace \text{...}-like groups by their contents (braces matched)."""
    while True:
        match = _WRAPPER_START.search(text)
        if match is None:
            return text
        close = matching_brace(text, match.end() - 1)
        if close is None:  # unbalanced: drop the command name, keep the rest
            return text[: match.start()] + text[match.end():]
        text = text[: match.start()] + text[match.end():close] + text[close + 1:]


def _strip_outer(text: str) -> str:
    """Remove one layer of math delimiters, a whole-answer box, or markdown bold; '' when nothing to strip."""
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**")):
        if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
            return text[len(left): len(text) - len(right)]
    boxes, _ = find_boxes(text)
    if len(boxes) == 1 and boxes[0].start == 0 and boxes[0].end == len(text):
        return boxes[0].content
    return ""


# Characters that print like ASCII ones: the Unicode minus and dashes, full-width forms (U+FF01-FF5E, common
# in Chinese text: "（Ｂ）", "１２"), the ideographic, non-breaking and thin spaces.
_TYPOGRAPHY = {0x2212: "-", 0x2012: "-", 0x2013: "-", 0x2010: "-", 0x2011: "-", 0xFE63: "-",
               0x3000: " ", 0x00A0: " ", 0x2009: " ", 0x202F: " ", 0x2007: " ", 0x200B: "",
               0x3002: ".", 0x2044: "/", 0x2215: "/"}
_TYPOGRAPHY.update({code: chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)})


_DIGIT_GROUP_SPACE = re.compile(r"(?<=\d)[\u2009\u202f](?=\d{3}(?!\d))")


def normalize_typography(text: str) -> str:
    """ASCII for characters that only look different: "−4" -> "-4", "（Ｂ）" -> "(B)"; a thin space between
    digit groups is a thousands separator ("1\u202f000" -> "1000")."""
    return _DIGIT_GROUP_SPACE.sub("", text).translate(_TYPOGRAPHY)


def _strip_braces(text: str) -> str:
    """"{4}" -> "4": a brace group around the whole answer adds nothing."""
    while len(text) >= 2 and text[0] == "{" and matching_brace(text, 0) == len(text) - 1:
        text = text[1:-1].strip()
    return text


def clean_latex(text: str) -> str:
    r"""An answer without the wrappers that do not change it.

    Normalises typography (`normalize_typography`); strips surrounding
    ``$...$``, ``\(...\)``, ``\[...\]``, a box or redundant braces around the
    whole answer, markdown bold and a final period; unwraps ``\text{}``-like
    commands; drops ``\left``/``\right`` and LaTeX spacing; writes
    ``\dfrac``/``\tfrac`` as ``\frac``; collapses whitespace.
    """
    text = _strip_braces(normalize_typography(text).strip())
    while True:
        inner = _strip_outer(text)
        if not inner and not (text.endswith(".") and not text.endswith("..")):
            break
        text = _strip_braces((inner if inner else text[:-1]).strip())
    text = _unwrap_commands(text)
    text = re.sub(r"(?<!\\)\$", "", text)  # stray math delimiters ("$12$ cm" after a unit)
    text = _SIZING.sub("", text)
    text = _SPACING.sub(" ", text)
    text = re.sub(r"\\[dt]frac(?![A-Za-z])", r"\\frac", text)
    return re.sub(r"\s+", " ", text).strip()


def normalize_text(text: str) -> str:
    """Case- and whitespace-insensitive form of a text answer (after `clean_latex`)."""
    text = clean_latex(text).lower()
    text = text.strip(" \"'`")
    return re.sub(r"\s+", " ", text.rstrip(".")).strip()


# ---------------------------------------------------------------- hedging

_HEDGE_WORDS = re.compile(
    r"\b(?:or|and|either)\b|\\(?:lor|pm|mp)(?![A-Za-z])|[;±∓]", re.IGNORECASE
)
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_ADJACENT_NUMBERS = re.compile(r"\d\s+\.?\d")  # "12 13", "12 .5": two numbers side by side


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split at `separator` outside (), [] and {} (so "f(1,2), 3" has two parts)."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == separator and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def hedge_markers(text: str) -> set[str]:
    """The candidate separators in an answer: or/and/either, ;, \\pm, top-level commas, numbers side by side."""
    cleaned = clean_latex(text)
    markers = {match.group(0).lower() for match in _HEDGE_WORDS.finditer(cleaned)}
    if len(split_top_level(cleaned)) > 1 and not _THOUSANDS.match(cleaned):
        markers.add(",")
    if _ADJACENT_NUMBERS.search(cleaned):
        markers.add("adjacent numbers")
    return markers


def _hedged(pred: str, *allowed_texts: str) -> bool:
    """True when `pred` holds a candidate separator none of `allowed_texts` (the ground truth) has."""
    allowed: set[str] = set()
    for text in allowed_texts:
        allowed |= hedge_markers(text)
    return bool(hedge_markers(pred) - allowed)


# ---------------------------------------------------------------- numbers

# At most three exponent digits: Fraction("1e100000000") would build a 100-million-digit integer.
_PLAIN_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,3})?$")
_PLAIN_FRACTION = re.compile(r"^[+-]?\d+\s*/\s*\d+$")
# \frac{7}{20}, -\frac{1}{2}, \frac12: read directly (math_verify's LaTeX parser takes ~10-50 ms per answer).
_LATEX_FRACTION = re.compile(r"^([+-]?)\\frac\s*(?:\{\s*(-?\d+)\s*\}|(\d))\s*(?:\{\s*(\d+)\s*\}|(\d))$")
_ASSIGNMENT = re.compile(r"^[A-Za-z](?:_\{?\w+\}?)?\s*=\s*([^=]+)$")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree(?![A-Za-z])|\s*\bdegrees?\b", re.IGNORECASE)
_PERCENT = re.compile(r"\s*\\?%$")
_NUMERIC_COMMANDS = re.compile(r"\\(?:frac|sqrt|pi|cdot|times|div)(?![A-Za-z])")
_NUMERIC_CHARS = re.compile(r"^[0-9.+\-*/^(){}\[\] ]*$")


def _normalize_unit(text: str) -> str:
    return re.sub(r"\^\{(\w+)\}", r"^\1", clean_latex(text)).replace(" ", "").lower()


def _strip_unit(text: str, unit: str | None) -> str:
    """Remove the problem's unit, degree marks and a percent sign written after a number."""
    text = _DEGREES.sub("", text).strip()
    text = _PERCENT.sub("", text).strip()
    if unit and unit.strip():
        want = _normalize_unit(unit)
        squeezed = _normalize_unit(text)
        if want and squeezed.endswith(want) and len(squeezed) > len(want):
            # Cut the unit off the original text: walk back over as many non-space characters.
            kept, remaining = len(text), len(want)
            while remaining and kept:
                kept -= 1
                if not text[kept].isspace() and text[kept] not in "{}":
                    remaining -= 1
            text = text[:kept].strip()
    return text


def read_number(text: str, unit: str | None = None) -> Number | None:
    r"""The single number `text` states, or None.

    Accepts plain numbers ("12", "-0.5", "1,000", "1e3"), "3/4", an assignment
    ("x = 12"), the problem's `unit`, degrees and percent after the number, and
    LaTeX built only from digits, operators, \frac, \sqrt, \pi, \cdot, \times
    and \div (parsed by math_verify). Several numbers ("12 13", "12, 13") and
    anything with words in it are not a number.
    """
    cleaned = clean_latex(text)
    if len(cleaned) > MAX_ANSWER_CHARS:
        return None
    assignment = _ASSIGNMENT.match(cleaned)
    if assignment:
        cleaned = assignment.group(1).strip()
    cleaned = _strip_unit(cleaned, unit).replace("\\$", "").strip()  # "\$12": a currency sign
    if _THOUSANDS.match(cleaned):
        cleaned = cleaned.replace(",", "")
    if _PLAIN_NUMBER.match(cleaned):
        return Fraction(cleaned)
    if _PLAIN_FRACTION.match(cleaned):
        numerator, denominator = (part.strip() for part in cleaned.split("/"))
        return Fraction(int(numerator), int(denominator)) if int(denominator) else None
    fraction = _LATEX_FRACTION.match(cleaned)
    if fraction:
        numerator = int(fraction.group(2) or fraction.group(3))
        denominator = int(fraction.group(4) or fraction.group(5))
        sign = -1 if fraction.group(1) == "-" else 1
        return sign * Fraction(numerator, denominator) if denominator else None
    if not cleaned or _ADJACENT_NUMBERS.search(cleaned):
        return None
    if not _NUMERIC_CHARS.match(_NUMERIC_COMMANDS.sub(" ", cleaned)):
        return None
    return symbolic.call("number", cleaned)  # sympy, in the helper process under the answer's time limit


def math_equivalent(gold: str, pred: str) -> bool:
    """math_verify equivalence of two LaTeX answers (screened by `is_tame`, under the answer's time limit)."""
    return bool(symbolic.call("equivalent", clean_latex(gold), clean_latex(pred)))


def numbers_equal(gold: Number, pred: Number, answer_type: str, precision: int | None) -> bool:
    """Compare two numbers by the answer type's rule (see the module docstring)."""
    if answer_type == "integer":
        return isinstance(pred, Fraction) and pred.denominator == 1 and pred == gold
    try:
        if precision is not None:  # int(): MathVista's own files store precision as a float (1.0)
            return round(float(gold), int(precision)) == round(float(pred), int(precision))
    except OverflowError:  # a number too large for a float is not a MathVista-style float answer
        return False
    if isinstance(gold, Fraction) and isinstance(pred, Fraction):
        return gold == pred
    return bool(symbolic.call("numbers_match", gold, pred))


# ---------------------------------------------------------------- lists

_LIST_BRACKETS = (("[", "]"), ("(", ")"), ("\\{", "\\}"))


def split_list(text: str) -> list[str] | None:
    """The elements of a list answer ("[2, 3]", "(2,3)", "2, 3"), or None when brackets do not balance."""
    cleaned = clean_latex(text)
    for left, right in _LIST_BRACKETS:
        if cleaned.startswith(left) and cleaned.endswith(right):
            inner = cleaned[len(left): len(cleaned) - len(right)]
            if _balanced(inner):
                cleaned = inner
                break
    if not _balanced(cleaned):
        return None
    elements = [element.strip() for element in split_top_level(cleaned)]
    if any(not element for element in elements):
        return None
    return elements


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if depth < 0:
            return False
    return depth == 0


# ---------------------------------------------------------------- judges by type


def _judge_number(pred: str, problem: Problem, gold_text: str, answer_type: str) -> Verdict:
    gold = read_number(gold_text, problem.unit)
    if gold is None:
        return Verdict(False, "unreadable_ground_truth")
    if _hedged(pred):
        return Verdict(False, "hedged")
    value = read_number(pred, problem.unit)
    if value is None:
        return Verdict(False, "not_a_number")
    if numbers_equal(gold, value, answer_type, problem.precision):
        return Verdict(True, "correct")
    return Verdict(False, "wrong")


# math_verify compares only the right-hand side of "a = b" (and of similar chains), so
# "anything = x^2+1" would pass for x^2+1. A relation the ground truth lacks makes a text answer wrong.
_RELATIONS = re.compile(r"=|\\(?:approx|equiv|implies|Rightarrow|rightarrow|to|iff)(?![A-Za-z])")


def _judge_text(pred: str, gold: str) -> Verdict:
    if normalize_text(pred) == normalize_text(gold):
        return Verdict(True, "correct")
    if _hedged(pred, gold):
        return Verdict(False, "hedged")
    if not _looks_mathematical(gold):
        return Verdict(False, "wrong")
    expression = clean_latex(pred)
    assignment = _ASSIGNMENT.match(expression)  # "y = x^2+1": the variable name is not part of the answer
    if assignment and not _RELATIONS.search(clean_latex(gold)):
        expression = assignment.group(1).strip()
    if _RELATIONS.search(expression) and not _RELATIONS.search(clean_latex(gold)):
        return Verdict(False, "wrong")
    if math_equivalent(gold, expression):
        return Verdict(True, "correct")
    return Verdict(False, "wrong")


def _looks_mathematical(text: str) -> bool:
    """Digits, LaTeX commands or operators: worth asking math_verify (plain words are not)."""
    return bool(re.search(r"[\d\\^+\-*/=<>]", clean_latex(text)))


def _judge_list(pred: str, problem: Problem) -> Verdict:
    gold_elements = split_list(problem.answer)
    if gold_elements is None:
        return Verdict(False, "unreadable_ground_truth")
    if _hedged(pred, problem.answer, ",".join(gold_elements)):
        return Verdict(False, "hedged")
    pred_elements = split_list(pred)
    if pred_elements is None:
        return Verdict(False, "not_a_list")
    if len(pred_elements) != len(gold_elements):
        return Verdict(False, "wrong_length")
    for gold_element, pred_element in zip(gold_elements, pred_elements):
        gold_number = read_number(gold_element, problem.unit)
        if gold_number is not None:
            element_type = "integer" if isinstance(gold_number, Fraction) and gold_number.denominator == 1 else "float"
            verdict = _judge_number(pred_element, problem, gold_element, element_type)
            if element_type == "integer" and not verdict.correct:
                # "[2.0, 3]" for "[2, 3]": an integer element may be written as a float.
                verdict = _judge_number(pred_element, problem, gold_element, "float")
        else:
            verdict = _judge_text(pred_element, gold_element)
        if not verdict.correct:
            return verdict
    return Verdict(True, "correct")


_LETTER = re.compile(r"^(?:(?:option|choice)\s*)?\(?([A-Za-z])\)?[.:)]?$", re.IGNORECASE)
# Upper-case letters only: "a cat" is the text "a cat", not option A followed by "cat".
_LETTER_WITH_TEXT = re.compile(r"^(?:(?i:option|choice)\s*)?\(?([A-Z])\)?[.:)]?\s*(?:[-=:]\s*)?(.+)$")
# Arithmetic between two numbers: "0.2 - 0.4" is a range label when it is a choice, not -0.2.
_ARITHMETIC = re.compile(r"[\d.]\s*[-+*/^×÷]\s*[\d.(]|\\(?:cdot|times|div)(?![A-Za-z])")


def _text_matches(pred: str, choice: str) -> bool:
    return normalize_text(pred) == normalize_text(choice)


def _value_matches(pred: str, choice: str, unit: str | None) -> bool:
    """Equal as plain numbers ("0.50" vs "0.5", "\\frac{1}{2}" vs "0.5"); never by evaluating arithmetic."""
    if _ARITHMETIC.search(clean_latex(pred)) or _ARITHMETIC.search(clean_latex(choice)):
        return False
    pred_number, choice_number = read_number(pred, unit), read_number(choice, unit)
    return pred_number is not None and choice_number is not None and pred_number == choice_number


def _choice_matches(pred: str, choice: str, unit: str | None) -> bool:
    return _text_matches(pred, choice) or _value_matches(pred, choice, unit)


def _unwrap_parens(text: str) -> str:
    """"(Yes)" -> "Yes": the text of "A (Yes)" written in parentheses or brackets."""
    text = text.strip()
    if len(text) >= 2 and (text[0], text[-1]) in (("(", ")"), ("[", "]")) and _balanced(text[1:-1]):
        return text[1:-1].strip()
    return text


def select_choice(pred: str, choices: list[str], unit: str | None = None) -> tuple[int | None, str]:
    """Which option `pred` picks: (index, "ok"), or (None, why not).

    Choice texts first (normalised text over every option, then plain numeric value), then a letter,
    then a letter with text ("B 12", "A (Yes)", "(B): 12") whose text must agree with its option.
    Choices are never evaluated as arithmetic: "0.2 - 0.4" is the option of that text, not -0.2.
    """
    cleaned = clean_latex(pred)
    for index, choice in enumerate(choices):
        if _text_matches(cleaned, choice):
            return index, "ok"
    for index, choice in enumerate(choices):
        if _value_matches(cleaned, choice, unit):
            return index, "ok"
    letter = _LETTER.match(cleaned)
    if letter:
        index = ord(letter.group(1).upper()) - ord("A")
        return (index, "ok") if index < len(choices) else (None, "letter_out_of_range")
    if _hedged(cleaned, *choices):  # before "B text": "A or B" is a hedge, not option A saying "or B"
        return None, "hedged"
    with_text = _LETTER_WITH_TEXT.match(cleaned)
    if with_text:
        index = ord(with_text.group(1)) - ord("A")
        if index >= len(choices):
            return None, "letter_out_of_range"
        text = with_text.group(2)
        if _choice_matches(text, choices[index], unit) or _choice_matches(_unwrap_parens(text), choices[index], unit):
            return index, "ok"
        return None, "letter_text_mismatch"
    return None, "not_a_choice"


def _judge_choice(pred: str, problem: Problem) -> Verdict:
    choices = list(problem.choices or [])
    index, why = select_choice(pred, choices, problem.unit)
    if index is None:
        return Verdict(False, why)
    # Compare texts, not indices: duplicated option texts are all right.
    if normalize_text(choices[index]) == normalize_text(problem.answer):
        return Verdict(True, "correct")
    return Verdict(False, "wrong")


# ---------------------------------------------------------------- public API


def judge_answer(pred: str, problem: Problem, time_limit: float | None = DEFAULT_TIME_LIMIT) -> Verdict:
    """Whether the extracted answer `pred` is right for `problem`, with the reason.

    time_limit: seconds the sympy / math_verify part may take (in a helper process); past it the verdict
    is (False, "timeout"). None runs everything in this process without a limit.
    """
    if not isinstance(pred, str):
        raise TypeError(f"problem {problem.pid!r}: prediction must be a string, got {type(pred).__name__}")
    if not pred.strip():
        return Verdict(False, "empty")
    if len(pred) > MAX_ANSWER_CHARS and len(pred) > 2 * len(problem.answer):
        return Verdict(False, "too_long")
    try:
        with symbolic.time_limit(time_limit):
            return _judge(pred, problem)
    except symbolic.VerificationTimeout:
        return Verdict(False, "timeout")


def _judge(pred: str, problem: Problem) -> Verdict:
    if problem.question_type == "multi_choice":
        return _judge_choice(pred, problem)
    if problem.answer_type in ("integer", "float"):
        return _judge_number(pred, problem, problem.answer, problem.answer_type)
    if problem.answer_type == "list":
        return _judge_list(pred, problem)
    if problem.answer_type == "text":
        return _judge_text(pred, problem.answer)
    raise ProblemError(
        f"problem {problem.pid!r}: field 'answer_type': unknown value {problem.answer_type!r}; "
        f"expected one of {list(ANSWER_TYPES)}"
    )


def verify_answer(pred: str, problem: Problem) -> bool:
    """True when the extracted answer `pred` is right for `problem` (see the module docstring)."""
    return judge_answer(pred, problem).correct


def check_ground_truth(problem: Problem) -> None:
    """Raise ProblemError naming the pid when the verifier cannot use the problem's ground truth.

    The answer must read as its answer_type (an integer-valued number, a
    number, a balanced list, non-empty text; for multiple choice, one of the
    choices) and must verify against itself. Loaders call this so that an
    unparseable ground truth can never hand out reward 1.
    """

    def fail(what: str) -> None:
        raise ProblemError(f"problem {problem.pid!r}: field 'answer': {problem.answer!r} {what}")

    if problem.answer_type not in ANSWER_TYPES:
        raise ProblemError(
            f"problem {problem.pid!r}: field 'answer_type': unknown value {problem.answer_type!r}; "
            f"expected one of {list(ANSWER_TYPES)}"
        )
    if not isinstance(problem.answer, str) or not problem.answer.strip():
        fail("is empty; expected a non-empty string")
    if problem.question_type == "multi_choice":
        if not problem.choices:
            raise ProblemError(f"problem {problem.pid!r}: field 'choices': multi_choice question without choices")
        if problem.answer not in problem.choices:
            fail(f"is not among the choices {problem.choices}")
    elif problem.answer_type == "integer":
        value = read_number(problem.answer, problem.unit)
        if value is None or not isinstance(value, Fraction) or value.denominator != 1:
            fail("cannot be read as an integer (answer_type integer)")
    elif problem.answer_type == "float":
        if read_number(problem.answer, problem.unit) is None:
            fail("cannot be read as a number (answer_type float)")
    elif problem.answer_type == "list":
        if split_list(problem.answer) is None:
            fail("cannot be read as a list such as [2, 3] (answer_type list)")
    elif not normalize_text(problem.answer):
        fail("is empty after normalisation (answer_type text)")
    verdict = judge_answer(problem.answer, problem)
    if not verdict.correct:
        fail(f"does not verify against itself ({verdict.reason}; answer_type {problem.answer_type})")


__all__ = [
    "Verdict",
    "judge_answer",
    "verify_answer",
    "check_ground_truth",
    "clean_latex",
    "normalize_text",
    "read_number",
    "split_list",
    "select_choice",
    "hedge_markers",
    "is_tame",
    "math_equivalent",
    "normalize_typography",
    "DEFAULT_TIME_LIMIT",
    "MAX_ANSWER_CHARS",
]
