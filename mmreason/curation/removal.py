"""What every curation step returns: the problems it kept and, for each one it removed, why.

Steps are written per problem (`Check`: a problem in, the problem, possibly
re-tagged, or a Removal out) so the pipeline can stream the input through
them without holding every image in memory; `apply_check` turns a Check into
the list form `(problems, cfg) -> StepResult(kept, removed)` that the steps
also offer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, NamedTuple, Optional, Union

from mmreason.problem import Problem


@dataclass(frozen=True)
class Removal:
    """One removed problem: a line of removed.jsonl."""

    pid: str
    step: str
    """Name of the step that removed it (dedup, decontam, evaluability, hackable, blind, difficulty, balance)."""
    kind: str
    """Short category the report counts, e.g. near_duplicate, multiple_choice, solved."""
    reason: str
    """Human-readable reason, e.g. "near-duplicate of p17 (image hash distance 6)"."""
    related: Optional[str] = None
    """The pid (or eval-set reference) the reason points at, when there is one."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class StepResult(NamedTuple):
    """`kept, removed = step(problems, cfg_section, ...)`; kept keeps the input order."""

    kept: list[Problem]
    removed: list[Removal]


Check = Callable[[Problem], Union[Problem, Removal]]
"""A per-problem step: the problem to keep (maybe with new meta) or why it is removed."""


def apply_check(problems: Iterable[Problem], check: Check) -> StepResult:
    kept: list[Problem] = []
    removed: list[Removal] = []
    for problem in problems:
        outcome = check(problem)
        if isinstance(outcome, Removal):
            removed.append(outcome)
        else:
            kept.append(outcome)
    return StepResult(kept, removed)
