"""Step 4: keep only problems whose answers a rule-based verifier checks reliably.

k1.5 excludes multiple-choice, true/false and proof-based questions from the
RL set: a policy can guess the first two right often enough to be rewarded for
a wrong chain of thought, and the third has no single answer to verify. A
problem whose ground truth our verifier cannot parse would give reward 0 to
every response, so it is dropped too, and so is one that states its value
with words around it ("Volume = 904.78 cm^3") when the bare value a correct
response would box ("904.78") does not verify against it.

Multiple choice in disguise counts as multiple choice: a free-form problem
whose answer is an option letter (MathVerse's Vision Only items, options drawn
in the image), and a question that picks among options ("Which of the
following cannot be the perimeter?") without its choices.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from mmreason.curation.config import EvaluabilityConfig
from mmreason.curation.removal import Removal, StepResult, apply_check
from mmreason.problem import Problem, ProblemError
from mmreason.rewards import check_ground_truth, verify_answer
from mmreason.rewards.verify import clean_latex

STEP = "evaluability"

BINARY_ANSWERS = frozenset({"yes", "no", "true", "false", "correct", "incorrect"})
"""Free-form answers that make a question a disguised true/false one (compared lowercased, without final '.')."""

# Options listed inside a free-form question's text ("Choices: (A) 3 (B) 4", or "A. 3" and "B. 4" on lines):
# still a multiple-choice question, just not labelled as one.
_INLINE_CHOICES = re.compile(
    r"\bchoices?\s*:|\boptions?\s*:|\(A\)[^\n]*\(B\)|(?:^|\n)\s*A[.)]\s+\S.*\n\s*B[.)]\s+\S", re.IGNORECASE
)


Verdict = tuple[str, str]
"""(kind, reason) of a removal."""


# A question that only makes sense with options in front of the solver ("Which of the following cannot be the
# perimeter?"); without its choices it has no answer the verifier could check.
_NEEDS_CHOICES = re.compile(
    r"\bwhich\s+(?:one\s+)?of\s+(?:the\s+following|these|the\s+(?:options|choices|answers|figures|graphs))\b"
    r"|\b(?:choose|select|pick)\s+the\s+(?:correct|right|best)\b|\bthe\s+following\s+(?:options|choices)\b",
    re.IGNORECASE,
)
_BARE_LETTER = re.compile(r"^\(?[A-H]\)?\.?$")


def multiple_choice_reason(problem: Problem) -> Verdict | None:
    if problem.question_type != "multi_choice" and not problem.choices:
        if problem.meta.get("choices_in_image"):
            return "multiple_choice", "multiple choice with the options only in the image"
        if _BARE_LETTER.match(problem.answer.strip()):
            return "multiple_choice", f"free-form question whose answer is an option letter ({problem.answer!r})"
        if _NEEDS_CHOICES.search(problem.question):
            return "multiple_choice", "asks to pick among options but has no choices"
    if problem.question_type == "multi_choice":
        return "multiple_choice", f"multiple choice ({len(problem.choices or [])} options)"
    if problem.choices:
        return "multiple_choice", f"free-form question with {len(problem.choices)} choices attached"
    if _INLINE_CHOICES.search(problem.question):
        return "multiple_choice", "free-form question that lists lettered options in its text"
    return None


def true_false_reason(problem: Problem) -> Verdict | None:
    if problem.meta.get("kind") == "true_false":
        return "true_false", "true/false question (meta kind true_false)"
    answer = problem.answer.strip().rstrip(".").lower()
    if answer in BINARY_ANSWERS:
        return "true_false", f"true/false question (answer {problem.answer!r})"
    if problem.choices and all(c.strip().rstrip(".").lower() in BINARY_ANSWERS for c in problem.choices):
        return "true_false", f"true/false question (choices {problem.choices})"
    return None


def proof_reason(problem: Problem, patterns: Sequence[re.Pattern[str]]) -> Verdict | None:
    for pattern in patterns:
        found = pattern.search(problem.question)
        if found:
            return "proof", f"proof-style question ({found.group(0)!r})"
    return None


# "Volume $=904.78 \\mathrm{~cm}^{3}$", "x = 5", "12 cm": a ground truth that states a value with a name or a
# unit around it. The bare value is what a correct response boxes, so it must verify.
_STATED_VALUE = re.compile(r"^(?:[^=]*=\s*)?(-?\d+(?:\.\d+)?(?:/\d+)?)(?:\s*[A-Za-z^{}~\\%°0-9 ]*)?$")


def bare_value(answer: str) -> str | None:
    """The number a worded ground truth states ("Volume = 904.78 cm^3" -> "904.78"), or None."""
    cleaned = clean_latex(answer)
    match = _STATED_VALUE.match(cleaned)
    if not match or match.group(1) == cleaned:
        return None
    return match.group(1)


def unparsable_reason(problem: Problem) -> Verdict | None:
    try:
        check_ground_truth(problem)
    except ProblemError as err:
        return "unverifiable_answer", f"ground truth not verifiable: {err}"
    if problem.question_type != "multi_choice":
        value = bare_value(problem.answer)
        if value is not None and not verify_answer(value, problem):
            return "unverifiable_answer", (
                f"ground truth {problem.answer!r} rejects its own bare value {value!r}; "
                f"normalise the answer to {value!r} (and the unit into the unit field)"
            )
    return None


def compile_patterns(cfg: EvaluabilityConfig) -> list[re.Pattern[str]]:
    """The proof patterns, case-insensitive (validate_curate has checked that they compile)."""
    return [re.compile(pattern, re.IGNORECASE) for pattern in cfg.proof_patterns]


def evaluability_reason(
    problem: Problem, cfg: EvaluabilityConfig, patterns: Sequence[re.Pattern[str]]
) -> Verdict | None:
    """(kind, reason) why `problem` cannot be verified reliably, or None when it can."""
    # True/false first: it is the more specific verdict for a True/False multiple-choice item.
    if cfg.drop_true_false and (reason := true_false_reason(problem)):
        return reason
    if cfg.drop_multiple_choice and (reason := multiple_choice_reason(problem)):
        return reason
    if cfg.drop_proofs and (reason := proof_reason(problem, patterns)):
        return reason
    if cfg.check_answer_parses and (reason := unparsable_reason(problem)):
        return reason
    return None


class EvaluabilityFilter:
    """Per-problem evaluability check."""

    def __init__(self, cfg: EvaluabilityConfig):
        self.cfg = cfg
        self.patterns = compile_patterns(cfg)

    def __call__(self, problem: Problem) -> Problem | Removal:
        verdict = evaluability_reason(problem, self.cfg, self.patterns)
        return problem if verdict is None else Removal(problem.pid, STEP, *verdict)


def filter_evaluable(problems: Iterable[Problem], cfg: EvaluabilityConfig) -> StepResult:
    """Keep the problems a verifier can check; the others are removed with the rule that caught them."""
    return apply_check(problems, EvaluabilityFilter(cfg))
