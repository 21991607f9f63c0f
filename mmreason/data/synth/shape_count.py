"""shape_count: count shapes by kind and colour, or compare two shapes' sizes.

Level 1: 1-4 large shapes, all of one kind and colour ("How many circles are there?"), radius 14 px
    at 112 px. FIELD-NOTES found radius 9 learnable for dots alone; mixed with bar charts and polygons in
    the quickstart's warmup, radius 10 was learned on some seeds only (docs/quickstart-tuning.md).
Level 2: 3-7 medium shapes in 2 colours x 2 kinds; count one colour+kind.
    As multiple choice: "Which shape is larger: the red circle or the blue square?"
Level 3: 6-12 small shapes in 3 colours x 3 kinds; count one colour+kind.
"""

from __future__ import annotations

import random

from mmreason.data.synth.canvas import COLOURS, Canvas, scatter
from mmreason.data.synth.draft import Draft

KINDS = ("circle", "square", "triangle")
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles"}

# (number of colours, number of kinds, total shapes range, shape radius, target count range)
LEVELS = {
    1: (1, 1, None, 14.0, (1, 4)),
    2: (2, 2, (3, 7), 8.0, (1, 4)),
    3: (3, 3, (6, 12), 6.5, (1, 6)),
}


def count_matching(shapes: list[dict], kind: str, colour: str | None) -> int:
    """How many shapes have this kind (and colour, unless colour is None)."""
    return sum(1 for s in shapes if s["kind"] == kind and (colour is None or s["colour"] == colour))


def _counting_draft(rng: random.Random, level: int, image_size: int) -> Draft:
    n_colours, n_kinds, total_range, radius, target_range = LEVELS[level]
    colours = rng.sample(sorted(COLOURS), n_colours)
    kinds = rng.sample(KINDS, n_kinds)
    target_kind, target_colour = kinds[0], colours[0]
    target = rng.randint(*target_range)
    if total_range is None:
        total = target
        others: list[tuple[str, str]] = []
    else:
        total = max(target + 1, rng.randint(*total_range))
        distractor_pairs = [(k, c) for k in kinds for c in colours if (k, c) != (target_kind, target_colour)]
        others = [rng.choice(distractor_pairs) for _ in range(total - target)]
    specs = [(target_kind, target_colour)] * target + others
    rng.shuffle(specs)
    centres = scatter(rng, total, radius)
    canvas = Canvas(image_size)
    shapes = []
    for (kind, colour), centre in zip(specs, centres):
        canvas.shape(kind, centre, radius, COLOURS[colour])
        shapes.append({"kind": kind, "colour": colour, "x": centre[0], "y": centre[1], "r": radius})

    # Level 1 has a single colour, so the question names only the kind.
    colour_in_question = None if level == 1 else target_colour
    what = PLURAL[target_kind] if colour_in_question is None else f"{target_colour} {PLURAL[target_kind]}"
    answer = count_matching(shapes, target_kind, colour_in_question)
    singular = target_kind if colour_in_question is None else f"{target_colour} {target_kind}"
    steps = [f"I see {answer} {singular if answer == 1 else what}."]
    if level > 1:
        steps.insert(0, f"there are {total} shapes; I keep only the {what}.")
    return Draft(
        image=canvas.image,
        question=f"How many {what} are there?",
        answer=str(answer),
        answer_type="integer",
        subject="counting",
        plan=f"count the {what} one by one.",
        steps=steps,
        check=f"counting again gives {answer}.",
        claim=f"There are {{}} {what} in the image.",
        params={"shapes": shapes, "target": {"kind": target_kind, "colour": colour_in_question}},
    )


def _size_draft(rng: random.Random, level: int, image_size: int) -> Draft:
    """Two shapes of clearly different sizes (radius ratio >= 1.6); which is larger?"""
    colours = rng.sample(sorted(COLOURS), 2)
    kinds = [rng.choice(KINDS), rng.choice(KINDS)]
    small = rng.uniform(7, 10)
    large = small * rng.uniform(1.6, 2.2)
    radii = [large, small] if rng.random() < 0.5 else [small, large]
    canvas = Canvas(image_size)
    centres = [(30.0, rng.uniform(40, 72)), (82.0, rng.uniform(40, 72))]
    names = []
    for kind, colour, radius, centre in zip(kinds, colours, radii, centres):
        canvas.shape(kind, centre, radius, COLOURS[colour])
        names.append(f"the {colour} {kind}")
    larger, smaller = (names[0], names[1]) if radii[0] > radii[1] else (names[1], names[0])
    return Draft(
        image=canvas.image,
        question=f"Which shape is larger: {names[0]} or {names[1]}?",
        answer=larger,
        answer_type="text",
        subject="counting",
        plan="compare the sizes of the two shapes.",
        steps=[f"{larger} is about {max(radii) / min(radii):.1f} times as wide as {smaller}."],
        check=f"{smaller} clearly fits inside {larger}.",
        claim="The larger shape is {}.",
        params={"shapes": [{"kind": k, "colour": c, "r": round(r, 2)} for k, c, r in zip(kinds, colours, radii)]},
        choices=names,
        distractors=[smaller],
    )


def generate(rng: random.Random, level: int, image_size: int, kind: str) -> Draft:
    if kind == "multi_choice" and level >= 2 and rng.random() < 0.5:
        return _size_draft(rng, level, image_size)
    return _counting_draft(rng, level, image_size)
