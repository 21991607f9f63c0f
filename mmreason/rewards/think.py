"""Reasoning tags: where a response's chain of thought ends and its final part begins."""

from __future__ import annotations

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def split_think(response: str) -> tuple[str | None, str | None]:
    """(reasoning text, text after the reasoning) of a response.

    No think tags at all: (None, response). ``</think>`` present: the text
    before and after the last one. ``<think>`` without ``</think>``: the
    response was cut off mid-thought, so there is no final part: (rest, None).
    """
    if THINK_CLOSE in response:
        head, _, tail = response.rpartition(THINK_CLOSE)
        return head, tail
    if THINK_OPEN in response:
        return response, None
    return None, response
