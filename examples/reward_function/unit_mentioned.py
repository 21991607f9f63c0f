"""An example reward term: does the final answer carry the problem's unit?

MathVista-style problems give a `unit` ("cm", "degrees", "N") that the ground truth leaves out. This term pays
1.0 when a problem has a unit and the response's text after its reasoning names it, 0.0 when it does not, and
0.0 for problems without a unit. Use it with a small weight, next to accuracy:

    reward:
      function: examples/reward_function/unit_mentioned.py:unit_mentioned
      function_weight: 0.1

The contract (mmreason/rewards/custom.py): called once per batch, with one problem per response; returns one
finite number per response. It is logged as reward/unit_mentioned.
"""

from __future__ import annotations

import re

import torch

from mmreason.problem import Problem


def final_part(response: str) -> str:
    """The text after the last </think> (the whole response when it has none)."""
    return response.rpartition("</think>")[2]


def unit_mentioned(responses: list[str], problems: list[Problem], *, lengths: torch.Tensor,
                   truncated: torch.Tensor, step: int) -> list[float]:
    values = []
    for response, problem in zip(responses, problems):
        unit = (problem.unit or "").strip()
        named = bool(unit) and re.search(rf"(?<![A-Za-z]){re.escape(unit)}(?![A-Za-z])", final_part(response)) is not None
        values.append(1.0 if named else 0.0)
    return values
