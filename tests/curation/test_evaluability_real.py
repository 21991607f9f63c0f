"""Evaluability on real-data shapes (issue 25): choice-dependent questions without choices, bare-letter answers
to free-form questions, worded ground truths that reject their bare value."""

from __future__ import annotations

import pytest

from mmreason.curation.config import EvaluabilityConfig
from mmreason.curation.evaluability import bare_value, compile_patterns, evaluability_reason
from mmreason.problem import Problem


def problem(question, answer, answer_type="text", **fields):
    return Problem(pid="p", question=question, answer=answer, answer_type=answer_type, **fields)


CASES = [
    ("needs its choices", problem("Which of the following cannot be the perimeter?", "24", "integer"), "multiple_choice"),
    ("which of these", problem("Which of these shapes has the largest area?", "5", "integer"), "multiple_choice"),
    ("letter answer", problem("According to the image, find the length.", "B"), "multiple_choice"),
    ("letter in parentheses", problem("Find the angle.", "(C)"), "multiple_choice"),
    ("options in the image", problem("According to the image.", "12", "integer", meta={"choices_in_image": True}),
     "multiple_choice"),
    ("worded ground truth", problem("Find the volume of the sphere.", "Volume $=904.78 \\mathrm{~cm}^{3}$"),
     "unverifiable_answer"),
    ("plain number kept", problem("Find the volume of the sphere.", "904.78", "float", precision=2), None),
    ("number with unit kept", problem("Find AB.", "12", "integer", unit="cm"), None),
    ("text answer kept", problem("Name the shape.", "hexagon"), None),
    ("assignment that verifies kept", problem("Solve for x.", "x = 5"), None),
]


@pytest.mark.parametrize("prob,kind", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_evaluability_on_real_shapes(prob, kind):
    cfg = EvaluabilityConfig()
    verdict = evaluability_reason(prob, cfg, compile_patterns(cfg))
    assert (verdict[0] if verdict else None) == kind


def test_bare_value():
    assert bare_value("Volume $=904.78 \\mathrm{~cm}^{3}$") == "904.78"
    assert bare_value("12 cm") == "12"
    assert bare_value("12") is None
    assert bare_value("hexagon") is None
