"""Find the final answer in a model response.

The reward is only as strict as this extraction. Rules, in order:

1. Reasoning tags. When the response contains ``</think>``, only the text after
   the last ``</think>`` counts: an answer written only inside the reasoning
   earns nothing (reason ``inside_think_only``). A response that opens
   ``<think>`` but never closes it has no answer at all (``unclosed_think``):
   it was cut off mid-thought, and whatever it boxed along the way is a draft.
2. Sources, tried in the caller's priority order (``RewardConfig.answer_sources``):

   - ``boxed``: the ``\\boxed{...}`` / ``\\fbox{...}`` groups, braces matched
     (so ``\\boxed{\\frac{1}{2}}`` yields ``\\frac{1}{2}``). Several boxes with
     different contents are a hedge (``conflicting_boxes``); the same content
     boxed twice is fine. An empty box is no answer (``empty_box``), and next to
     a filled box it is ignored (a response echoing the prompt's "put your final
     answer in \\boxed{}" before its real box is not hedging).
   - ``answer_tag``: ``<answer>...</answer>`` (the same rules for several tags).
   - ``answer_is``: "the (final) answer is X" — the last such phrase, up to the
     end of its line or sentence.

   The first source that finds anything decides, even when what it finds is
   unusable: conflicting boxes do not fall through to a "the answer is" line.
   A bare number with no box is no answer unless a looser source is allowed.

Hedging inside one answer ("12 or 13", "A, B") is judged by `verify.py`, not
here: whether "2, 3" is a hedge or the answer depends on the problem (a list
answer, a choice text that contains "and" or a comma).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from mmreason.config import ANSWER_SOURCES
from mmreason.rewards.think import THINK_CLOSE, THINK_OPEN, split_think  # noqa: F401  (split_think: part of this module's API)

BOX_COMMANDS = ("\\boxed", "\\fbox")

_BOX_START = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
# "The answer is X" / "the final answer is: X" up to the end of the line or a
# sentence-ending period (a period followed by whitespace or the end, so the
# decimal point in "1.5" does not end the answer).
_ANSWER_IS = re.compile(
    r"\b(?:the\s+)?(?:final\s+)?answer\s+is\s*:?\s*(.+?)(?=\.\s|\.$|\n|$)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Extraction:
    """The final answer of a response, or None with the reason there is none."""

    answer: str | None
    """The answer text as written (box contents without the \\boxed{}), stripped."""
    source: str | None
    """Which source it came from: boxed / answer_tag / answer_is; None when there is no answer."""
    reason: str
    """ok, or why there is no answer: no_answer, empty_box, empty_answer, conflicting_boxes,
    conflicting_answers, inside_think_only, unclosed_think."""


@dataclass(frozen=True)
class Box:
    """One \\boxed{...} group: its contents and where it sits in the text."""

    content: str
    start: int
    end: int
    """Index just past the closing brace."""


def brace_pairs(text: str) -> dict[int, int]:
    """Index of every ``{`` that is closed -> index of its ``}``, in one left-to-right pass.

    Escaped braces (``\\{``, ``\\}``) are literal and do not count; a ``}`` with no open ``{`` is ignored.
    """
    pairs: dict[int, int] = {}
    stack: list[int] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            stack.append(i)
        elif char == "}" and stack:
            pairs[stack.pop()] = i
        i += 1
    return pairs


def find_boxes(text: str) -> tuple[list[Box], int]:
    """All closed ``\\boxed{...}`` / ``\\fbox{...}`` groups in order, and how many were left unclosed.

    Braces are matched, so nested groups (``\\boxed{\\frac{1}{2}}``) stay whole;
    escaped braces (``\\{``) do not count. A box nested inside another box is
    part of the outer box's content, not a box of its own. Linear time: the
    braces are paired in one pass (`brace_pairs`), so 20,000 unclosed
    ``\\boxed{`` cost one scan, not one scan each.
    """
    boxes: list[Box] = []
    unclosed = 0
    position = 0
    pairs: dict[int, int] | None = None
    while True:
        match = _BOX_START.search(text, position)
        if match is None:
            return boxes, unclosed
        if pairs is None:
            pairs = brace_pairs(text)
        close = pairs.get(match.end() - 1)
        if close is None:
            unclosed += 1
            position = match.end()
            continue
        boxes.append(Box(content=text[match.end():close], start=match.start(), end=close + 1))
        position = close + 1


def matching_brace(text: str, open_index: int) -> int | None:
    """Index of the ``}`` closing the ``{`` at `open_index`, or None when it is never closed (scans from there)."""
    depth = 0
    i = open_index
    while i < len(text):
        char = text[i]
        if char == "\\":  # skip the escaped character: \{ and \} are literal braces
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _same(a: str, b: str) -> bool:
    """Two answer texts that differ only in whitespace are the same answer."""
    return re.sub(r"\s+", "", a) == re.sub(r"\s+", "", b)


def _from_boxes(text: str) -> Extraction | None:
    boxes, _ = find_boxes(text)
    if not boxes:
        return None
    contents = [box.content.strip() for box in boxes]
    filled = [content for content in contents if content and not is_blank_answer(content)]
    if filled:  # "put your final answer in \\boxed{}" echoed from the prompt is not a second answer
        contents = filled
    final = contents[-1]
    if any(not _same(content, final) for content in contents):
        return Extraction(None, "boxed", "conflicting_boxes")
    if not final or is_blank_answer(final):
        return Extraction(None, "boxed", "empty_box")
    return Extraction(final, "boxed", "ok")


def _from_answer_tags(text: str) -> Extraction | None:
    contents = [content.strip() for content in _ANSWER_TAG.findall(text)]
    if not contents:
        return None
    final = contents[-1]
    if any(not _same(content, final) for content in contents):
        return Extraction(None, "answer_tag", "conflicting_answers")
    if not final or is_blank_answer(final):
        return Extraction(None, "answer_tag", "empty_answer")
    return Extraction(final, "answer_tag", "ok")


def _from_answer_is(text: str) -> Extraction | None:
    matches = list(_ANSWER_IS.finditer(text))
    if not matches:
        return None
    final = matches[-1].group(1).strip()
    # Markdown emphasis and a closing colon or period around the answer are not part of it.
    final = final.strip("*_ ").rstrip(".:").strip()
    if not final or is_blank_answer(final):
        return Extraction(None, "answer_is", "empty_answer")
    return Extraction(final, "answer_is", "ok")


_FINDERS = {"boxed": _from_boxes, "answer_tag": _from_answer_tags, "answer_is": _from_answer_is}


def is_blank_answer(text: str) -> bool:
    """True for contents that render as nothing: ``$ $``, ``\\text{}``, ``{}``, ``\\quad``."""
    stripped = re.sub(r"\\(?:text|mathrm|textbf|mathbf)\s*\{\s*\}|\\(?:quad|qquad|,|;|!| )|[${}\s]", "", text)
    return not stripped


def check_sources(sources: Sequence[str]) -> None:
    """Raise ValueError when `sources` is empty or names an unknown answer source."""
    if isinstance(sources, str):
        raise ValueError(f"answer sources must be a list such as ['boxed'], got the string {sources!r}")
    if not sources:
        raise ValueError(f"answer sources: empty; expected some of {list(ANSWER_SOURCES)}")
    for source in sources:
        if source not in _FINDERS:
            raise ValueError(f"answer source {source!r} is unknown; expected some of {list(ANSWER_SOURCES)}")


def _find(text: str, sources: Sequence[str]) -> Extraction | None:
    for source in sources:
        found = _FINDERS[source](text)
        if found is not None:
            return found
    return None


def extract_answer(response: str, sources: Sequence[str] = ("boxed",)) -> Extraction:
    """The final answer of `response`, read from the allowed `sources` in priority order.

    See the module docstring for the rules. Hedged answers ("12 or 13") are
    returned as written; `verify_answer` rejects them.
    """
    check_sources(sources)
    if not isinstance(response, str):
        raise TypeError(f"extract_answer: response must be a string, got {type(response).__name__}")
    reasoning, final_part = split_think(response)
    if final_part is None:
        return Extraction(None, None, "unclosed_think")
    found = _find(final_part, sources)
    if found is not None:
        return found
    if reasoning is not None and _find(reasoning, sources) is not None:
        return Extraction(None, None, "inside_think_only")
    return Extraction(None, None, "no_answer")


__all__ = [
    "Extraction", "Box", "extract_answer", "find_boxes", "brace_pairs", "matching_brace", "split_think", "check_sources", "is_blank_answer",
]
