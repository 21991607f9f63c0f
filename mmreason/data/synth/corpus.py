"""Build the synthetic corpus: drafts -> Problems (free-form / multiple choice / true-false), duplicates, manifest.

Problem `index` depends only on (seed, index): it owns `random.Random(f"...:{seed}:{index}")`
and draws, in this order, its role (original / exact duplicate / near duplicate),
its base item if it is a duplicate, its kind and then the family's picture.
So any item can be regenerated alone, which is how a duplicate gets its
original back without the corpus being held in memory. The family and level
follow the index round-robin (families take turns; each family cycles through
the levels), so even a small corpus covers every family at every level evenly.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from mmreason.data.synth.draft import Draft, numeric_distractors
from mmreason.data.synth.registry import FAMILIES, LEVELS, check_family_names, check_levels
from mmreason.problem import Problem

KINDS = ("free_form", "multi_choice", "true_false")
TRUE_FALSE_CHOICES = ["True", "False"]
NUM_CHOICES = 4

DEFAULT_MC_FRAC = 0.15
DEFAULT_TF_FRAC = 0.10
DEFAULT_DUP_FRAC = 0.02
DEFAULT_NEAR_DUP_FRAC = 0.05


@dataclass(frozen=True)
class CorpusSpec:
    """Everything that decides the corpus besides the item index."""

    seed: int
    families: tuple[str, ...] = tuple(FAMILIES)
    levels: tuple[int, ...] = LEVELS
    image_size: int = 112
    mc_frac: float = DEFAULT_MC_FRAC
    """Share of multiple-choice items (4 options; some families ask natively multiple-choice questions)."""
    tf_frac: float = DEFAULT_TF_FRAC
    """Share of true/false items (a claim about the image; choices True / False)."""
    dup_frac: float = DEFAULT_DUP_FRAC
    """Share of exact duplicates of an earlier item (new pid, meta duplicate_of)."""
    near_dup_frac: float = DEFAULT_NEAR_DUP_FRAC
    """Share of near duplicates: an earlier item with one pixel changed (meta near_duplicate_of)."""

    def __post_init__(self) -> None:
        check_family_names(list(self.families))
        check_levels(list(self.levels))
        for name in ("mc_frac", "tf_frac", "dup_frac", "near_dup_frac"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.mc_frac + self.tf_frac > 1.0:
            raise ValueError(f"mc_frac + tf_frac must be <= 1, got {self.mc_frac} + {self.tf_frac}")
        if self.dup_frac + self.near_dup_frac > 1.0:
            raise ValueError(f"dup_frac + near_dup_frac must be <= 1, got {self.dup_frac} + {self.near_dup_frac}")
        if self.image_size < 32:
            raise ValueError(f"image_size must be at least 32 pixels, got {self.image_size}")


def problem_id(seed: int, index: int) -> str:
    return f"synth-{seed}-{index:07d}"


def item_rng(seed: int, index: int) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`: stable across processes and runs.
    return random.Random(f"mmreason-synth:{seed}:{index}")


@dataclass(frozen=True)
class Role:
    kind: str
    """original, duplicate or near_duplicate."""
    base: int | None = None
    """Index of the earlier item copied (duplicates only)."""


def draw_role(rng: random.Random, index: int, spec: CorpusSpec) -> Role:
    """The first draws of an item's rng: is it a copy, and of which earlier item?"""
    roll = rng.random()
    if index == 0 or roll >= spec.dup_frac + spec.near_dup_frac:
        return Role("original")
    base = rng.randrange(index)
    return Role("duplicate" if roll < spec.dup_frac else "near_duplicate", base)


def role_of(spec: CorpusSpec, index: int) -> Role:
    return draw_role(item_rng(spec.seed, index), index, spec)


def original_index(spec: CorpusSpec, index: int) -> int:
    """Follow duplicate links back to the item that was generated from scratch."""
    role = role_of(spec, index)
    while role.kind != "original":
        index = role.base
        role = role_of(spec, index)
    return index


# ---------------------------------------------------------------- draft -> Problem


def solution_text(plan: str, steps: Sequence[str], check: str, answer: str) -> str:
    """The reference solution: Plan, Step(s), Check, Conclude; the last line ends with the answer."""
    lines = [f"Plan: {plan}"] + [f"Step: {step}" for step in steps] + [f"Check: {check}"]
    lines.append(f"Conclude: the answer is {answer}")
    return "\n".join(lines)


def wrong_answers(draft: Draft, rng: random.Random) -> list[str]:
    if draft.distractors:
        return list(draft.distractors)
    return numeric_distractors(draft.answer, draft.answer_type, draft.precision, rng)


def draft_to_problem(draft: Draft, kind: str, rng: random.Random, pid: str, family: str, level: int) -> Problem:
    """Turn a family's draft into a free-form, multiple-choice or true/false Problem."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    if draft.choices is not None and kind != "multi_choice":
        raise ValueError(f"family {family!r} returned native choices for a {kind} request")
    meta: dict[str, Any] = {
        "family": family,
        "subject": draft.subject,
        "difficulty": level,
        "source": "synthetic",
        "kind": kind,
        "params": draft.params,
    }
    if kind == "free_form":
        return Problem(
            pid=pid, question=draft.question, answer=draft.answer, answer_type=draft.answer_type,
            question_type="free_form", images=[draft.image], precision=draft.precision, unit=draft.unit,
            solution=solution_text(draft.plan, draft.steps, draft.check, draft.answer), meta=meta,
        ).validate()
    if kind == "multi_choice":
        if draft.choices is not None:
            choices = list(draft.choices)
        else:
            choices = [draft.answer] + wrong_answers(draft, rng)[: NUM_CHOICES - 1]
            rng.shuffle(choices)
        letter = "ABCDEFGH"[choices.index(draft.answer)]
        return Problem(
            pid=pid, question=draft.question, answer=draft.answer, answer_type=draft.answer_type,
            question_type="multi_choice", images=[draft.image], choices=choices, precision=draft.precision,
            unit=draft.unit,
            solution=solution_text(draft.plan, draft.steps, f"{draft.check} That is option {letter}.", draft.answer),
            meta=meta,
        ).validate()
    truthful = rng.random() < 0.5
    claimed = draft.answer if truthful else rng.choice(wrong_answers(draft, rng))
    verdict = "True" if truthful else "False"
    judged = "which matches" if truthful else f"but the answer is {draft.answer}"
    meta.update(claimed=claimed, true_answer=draft.answer)
    return Problem(
        pid=pid,
        question=f"True or false: {draft.claim.format(claimed)}",
        answer=verdict, answer_type="text", question_type="multi_choice", images=[draft.image],
        choices=list(TRUE_FALSE_CHOICES),
        solution=solution_text(draft.plan, draft.steps, f"{draft.check} The statement says {claimed}, {judged}.",
                               verdict),
        meta=meta,
    ).validate()


def draw_kind(rng: random.Random, spec: CorpusSpec) -> str:
    roll = rng.random()
    if roll < spec.tf_frac:
        return "true_false"
    if roll < spec.tf_frac + spec.mc_frac:
        return "multi_choice"
    return "free_form"


def family_and_level(spec: CorpusSpec, index: int) -> tuple[str, int]:
    """Families take turns by index and each family cycles through the levels: a balanced corpus."""
    n_families = len(spec.families)
    return spec.families[index % n_families], spec.levels[(index // n_families) % len(spec.levels)]


def make_original(spec: CorpusSpec, index: int) -> Problem:
    rng = item_rng(spec.seed, index)
    draw_role(rng, index, spec)  # consume the role draws so the rest is the same for every role outcome
    family, level = family_and_level(spec, index)
    kind = draw_kind(rng, spec)
    draft = FAMILIES[family](rng, level, spec.image_size, kind)
    return draft_to_problem(draft, kind, rng, problem_id(spec.seed, index), family, level)


def nudge_one_pixel(image, rng: random.Random):
    """A copy of the image with one pixel shifted by a few levels: invisible, answer unchanged."""
    changed = image.copy()
    x, y = rng.randrange(changed.width), rng.randrange(changed.height)
    delta = rng.randint(4, 12)
    pixel = changed.getpixel((x, y))
    channels = pixel if isinstance(pixel, tuple) else (pixel,)
    shifted = tuple(c - delta if c >= 128 else c + delta for c in channels)
    changed.putpixel((x, y), shifted if isinstance(pixel, tuple) else shifted[0])
    return changed


def make_problem(spec: CorpusSpec, index: int) -> Problem:
    """Item `index` of the corpus described by `spec` (depends on nothing else)."""
    rng = item_rng(spec.seed, index)
    role = draw_role(rng, index, spec)
    if role.kind == "original":
        return make_original(spec, index)
    root = original_index(spec, role.base)
    base = make_original(spec, root)
    meta = dict(base.meta)
    if role.kind == "duplicate":
        meta["duplicate_of"] = base.pid
        images = [image.copy() for image in base.images]
    else:
        meta["near_duplicate_of"] = base.pid
        images = [nudge_one_pixel(image, rng) for image in base.images]
    return base.copy(pid=problem_id(spec.seed, index), images=images, meta=meta).validate()


def iter_problems(
    num: int,
    seed: int,
    families: Sequence[str] | None = None,
    image_size: int = 112,
    levels: Sequence[int] | None = None,
    mc_frac: float = DEFAULT_MC_FRAC,
    tf_frac: float = DEFAULT_TF_FRAC,
    dup_frac: float = DEFAULT_DUP_FRAC,
    near_dup_frac: float = DEFAULT_NEAR_DUP_FRAC,
) -> Iterator[Problem]:
    """Items 0..num-1 of the corpus, generated one at a time (constant memory)."""
    if num < 0:
        raise ValueError(f"num must be >= 0, got {num}")
    spec = CorpusSpec(
        seed=seed,
        families=tuple(families) if families is not None else tuple(FAMILIES),
        levels=tuple(levels) if levels is not None else LEVELS,
        image_size=image_size, mc_frac=mc_frac, tf_frac=tf_frac, dup_frac=dup_frac, near_dup_frac=near_dup_frac,
    )
    return (make_problem(spec, index) for index in range(num))


def generate_problems(
    num: int,
    seed: int,
    families: Sequence[str] | None = None,
    image_size: int = 112,
    levels: Sequence[int] | None = None,
    mc_frac: float = DEFAULT_MC_FRAC,
    tf_frac: float = DEFAULT_TF_FRAC,
    dup_frac: float = DEFAULT_DUP_FRAC,
    near_dup_frac: float = DEFAULT_NEAR_DUP_FRAC,
) -> list[Problem]:
    """The first `num` items of the corpus for `seed`, as a list (see `iter_problems`)."""
    return list(iter_problems(num, seed, families, image_size, levels, mc_frac, tf_frac, dup_frac, near_dup_frac))


# ---------------------------------------------------------------- manifest


@dataclass
class CorpusTally:
    """Counts problems as they stream past (for the manifest)."""

    total: int = 0
    by: dict[str, Counter] = field(default_factory=lambda: {
        name: Counter() for name in ("family", "difficulty", "answer_type", "question_type", "kind", "subject")
    })
    duplicates: int = 0
    near_duplicates: int = 0

    def observe(self, problem: Problem) -> Problem:
        self.total += 1
        meta = problem.meta
        self.by["family"][str(meta.get("family"))] += 1
        self.by["difficulty"][str(meta.get("difficulty"))] += 1
        self.by["answer_type"][problem.answer_type] += 1
        self.by["question_type"][problem.question_type] += 1
        self.by["kind"][str(meta.get("kind"))] += 1
        self.by["subject"][str(meta.get("subject"))] += 1
        self.duplicates += "duplicate_of" in meta
        self.near_duplicates += "near_duplicate_of" in meta
        return problem

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            **{f"by_{name}": dict(sorted(counts.items())) for name, counts in self.by.items()},
            "duplicates": self.duplicates,
            "near_duplicates": self.near_duplicates,
        }


def write_manifest(problems: Iterable[Problem], path: str | Path, **settings: Any) -> dict[str, Any]:
    """Write counts (total; by family, difficulty, answer_type, question_type, kind, subject) as JSON.

    `settings` (seed, image size, ...) are stored under "settings". Returns the manifest.
    """
    tally = CorpusTally()
    for problem in problems:
        tally.observe(problem)
    return _save_manifest(tally, Path(path), settings)


def _save_manifest(tally: CorpusTally, path: Path, settings: dict[str, Any], **extra: Any) -> dict[str, Any]:
    settings = {key: list(value) if isinstance(value, tuple) else value for key, value in settings.items()}
    manifest = {**tally.as_dict(), **extra, "settings": settings}
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def write_corpus(out_dir: str | Path, num: int, seed: int, shard_size: int = 1000, **options: Any) -> dict[str, Any]:
    """Generate `num` problems into shards under `out_dir` plus `out_dir/manifest.json`; returns the manifest.

    `options` are `iter_problems`' keyword arguments (families, image_size, levels, fractions).
    The problems stream straight into the shards, so memory stays flat for any `num`.
    """
    out_dir = Path(out_dir)
    tally = CorpusTally()
    from mmreason.data.shards import write_shards  # imports torch: not needed to parse the CLI's arguments

    shards = write_shards((tally.observe(p) for p in iter_problems(num, seed, **options)), out_dir, shard_size)
    settings = {"seed": seed, "num": num, "shard_size": shard_size, **options}
    return _save_manifest(tally, out_dir / "manifest.json", settings, shards=[path.name for path in shards])
