r"""The `template` warmup source: a problem's reference solution rendered as a long-CoT reply.

The reply keeps the reference's own lines, in a layout that never varies, so a
1-5 M parameter model can learn to imitate it on a CPU in minutes::

    <think>
    Plan: read the expression, then compute it.
    Step: the image shows 2 + 4.
    Step: 2 + 4 = 7.
    Wait, that is wrong: 7 should be 6, so 2 + 4 = 6.
    Check: 6 - 4 = 2, which matches.
    Conclude: the answer is 6
    </think>
    \boxed{6}

The "Wait" line is the reflection of Kimi k1.5's warmup traces: with
probability `reflection_prob` (seeded per pid) one number in one step is
written wrong, and the next line notices it and restates the step with the
right value; the rest of the reply is unchanged.

The boxed answer is the answer the reference *states* (its last
``\boxed{}``, else its last "the answer is X"), not the ground truth copied
in: so checking the reply with the reward's verifier checks that the
reasoning actually arrives at the right answer. For multiple choice the box
holds the option text the reference states, or its letter
(`choice_answer: letter`); the verifier accepts both.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from decimal import Decimal

from mmreason.config import RewardConfig
from mmreason.data.prompts import LETTERS
from mmreason.problem import Problem
from mmreason.rewards import extract_answer, score
from mmreason.rewards.verify import select_choice
from mmreason.warmup.config import TemplateConfig

LINE_KINDS = {"Plan:": "plan", "Step:": "step", "Check:": "check", "Conclude:": "conclude"}
"""Prefixes of a structured reference solution (the synthetic generator writes these)."""

REFLECTION = "Wait, that is wrong: {wrong} should be {right}, so {corrected}"
RECHECK = "Check: once more, {body}"

# A number standing on its own: not part of a name such as R1 or x2, nor a piece of 1,000
# (changing those is no arithmetic slip).
_NUMBER = re.compile(r"(?<![\w.,])\d+(?:\.\d+)?(?!\w|,\d)")

_JUDGE = RewardConfig()
"""The reward's own defaults: the reply must earn accuracy 1 and format 1 exactly as RL will score it."""


@dataclass(frozen=True)
class ReferenceLine:
    kind: str
    """plan / step / check / conclude, or text for a line without a known prefix (kept as written)."""
    body: str
    """The line without its prefix."""

    def render(self) -> str:
        prefix = next((p for p, kind in LINE_KINDS.items() if kind == self.kind), None)
        return f"{prefix} {self.body}" if prefix else self.body


@dataclass(frozen=True)
class Slip:
    """A wrong number written into one step, and what it should have been."""

    line_index: int
    """Index (in the parsed reference lines) of the step that gets the slip."""
    start: int
    end: int
    """Span of the number inside that step's body."""
    wrong: str
    right: str


@dataclass(frozen=True)
class TemplateReply:
    reply: str | None
    """The full assistant reply, or None when the problem was dropped."""
    reason: str
    """ok, or why the problem was dropped: no_solution, no_stated_answer, not_a_choice, bad_format,
    not_verified:<verifier reason>."""
    reflected: bool = False
    """Whether the reply contains a slip and its correction."""


def parse_reference(solution: str) -> list[ReferenceLine]:
    """The non-empty lines of a reference solution, each tagged by its Plan/Step/Check/Conclude prefix."""
    lines = []
    for raw in solution.splitlines():
        text = raw.strip()
        if not text:
            continue
        for prefix, kind in LINE_KINDS.items():
            if text.startswith(prefix):
                lines.append(ReferenceLine(kind, text[len(prefix):].strip()))
                break
        else:
            lines.append(ReferenceLine("text", text))
    return lines


def stated_answer(solution: str) -> str | None:
    """The answer a reference solution arrives at: its last \\boxed{}, else its last "the answer is X"."""
    return extract_answer(solution, ("boxed", "answer_is")).answer


def boxed_answer(problem: Problem, stated: str, choice_answer: str) -> str | None:
    """What goes in the box: the stated answer, or for multiple choice with `letter` its option letter.

    None when `letter` is asked for and the stated answer picks no option.
    """
    if problem.question_type != "multi_choice" or choice_answer == "text":
        return stated
    index, _ = select_choice(stated, list(problem.choices or []), problem.unit)
    return None if index is None else LETTERS[index]


def wrong_value(number: str, rng: random.Random) -> str:
    """A plausible slip for `number`: one unit off in its last written digit, never negative, same format."""
    places = len(number.partition(".")[2])
    value = Decimal(number)
    unit = Decimal(1).scaleb(-places)
    delta = rng.choice((-1, 1))
    if value - unit < 0:
        delta = 1
    return f"{value + delta * unit:.{places}f}"


def plan_slip(lines: list[ReferenceLine], rng: random.Random) -> Slip | None:
    """Pick a step with a number and corrupt its last number; None when no step holds one."""
    candidates = [i for i, line in enumerate(lines) if line.kind == "step" and _NUMBER.search(line.body)]
    if not candidates:
        return None
    index = rng.choice(candidates)
    last = list(_NUMBER.finditer(lines[index].body))[-1]
    return Slip(index, last.start(), last.end(), wrong_value(last.group(), rng), last.group())


def render_reply(lines: list[ReferenceLine], boxed: str, slip: Slip | None = None, rechecks: int = 0) -> str:
    """`<think>` + the reference lines (a slipped step followed by its correction; the last check, else the last
    step, restated `rechecks` more times) + `</think>` + the box."""
    checked = [i for i, line in enumerate(lines) if line.kind == "check"] or [
        i for i, line in enumerate(lines) if line.kind == "step"]
    rendered = []
    for i, line in enumerate(lines):
        if slip is not None and i == slip.line_index:
            body = line.body[: slip.start] + slip.wrong + line.body[slip.end:]
            rendered.append(ReferenceLine(line.kind, body).render())
            rendered.append(REFLECTION.format(wrong=slip.wrong, right=slip.right, corrected=line.body))
        else:
            rendered.append(line.render())
        if checked and i == checked[-1]:
            rendered += [RECHECK.format(body=line.body)] * rechecks
    return "<think>\n" + "\n".join(rendered) + "\n</think>\n\\boxed{" + boxed + "}"


def reflection_rng(seed: int, pid: str) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`: the same draws in every process and run.
    return random.Random(f"mmreason-warmup-reflection:{seed}:{pid}")


def check_reply(reply: str, problem: Problem) -> str:
    """ok when the reply earns format 1 and accuracy 1 from the reward; else bad_format or not_verified:<why>."""
    scores = score(reply, problem, _JUDGE)
    if scores.format != 1:
        return "bad_format"
    if scores.accuracy != 1:
        return f"not_verified:{scores.reason}"
    return "ok"


def template_reply(problem: Problem, cfg: TemplateConfig, seed: int) -> TemplateReply:
    """The verified warmup reply for `problem` from its reference solution, or why there is none."""
    if not problem.solution or not problem.solution.strip():
        return TemplateReply(None, "no_solution")
    stated = stated_answer(problem.solution)
    if stated is None:
        return TemplateReply(None, "no_stated_answer")
    boxed = boxed_answer(problem, stated, cfg.choice_answer)
    if boxed is None:
        return TemplateReply(None, "not_a_choice")
    lines = parse_reference(problem.solution)
    rng = reflection_rng(seed, problem.pid)
    slip = plan_slip(lines, rng) if rng.random() < cfg.reflection_prob else None
    # drawn after the slip, and only when asked for, so replies without rechecks are as they always were
    rechecks = rng.randint(0, cfg.recheck_max) if cfg.recheck_max else 0
    reply = render_reply(lines, boxed, slip, rechecks)
    verdict = check_reply(reply, problem)
    if verdict != "ok":
        return TemplateReply(None, verdict, slip is not None)
    return TemplateReply(reply, "ok", slip is not None)


__all__ = [
    "ReferenceLine",
    "Slip",
    "TemplateReply",
    "parse_reference",
    "stated_answer",
    "boxed_answer",
    "wrong_value",
    "plan_slip",
    "render_reply",
    "check_reply",
    "template_reply",
]
