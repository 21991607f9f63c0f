"""bar_chart: read values off a bar chart, compare or combine them.

Level 1: 2-4 bars of one random colour and width on a fixed 0-10 value axis (no ticks). Either
    "How many bars are in the chart?" or the value printed above the tallest bar ("What is the
    value of the tallest bar?").
Level 2: 3-4 bars named A..D with their values printed on top: read one bar,
    or how much taller one bar is than another.
Level 3: 4-5 bars named A..E, no printed values: read heights off a 0-10 grid;
    sum or difference of two bars, or (multiple choice) which bar is tallest.
"""

from __future__ import annotations

import random

from mmreason.data.synth.canvas import COLOURS, Axes, Canvas
from mmreason.data.synth.draft import Draft

NAMES = "ABCDE"


# Level-1 charts: heights on a fixed axis, so a bar's height shows its value rather than its share of the
# tallest. Scaled to the tallest, every 2-bar chart had one full-height bar and looked alike to the
# perceptual hash: dedup kept 2 of a quickstart corpus's 159 two-bar charts.
LEVEL1_TOP_VALUE = 11.5  # room above a 9 for its printed value
LEVEL1_WIDTHS = (0.18, 0.42)  # half a bar's width, as a fraction of its slot


def _chart(values: list[int], image_size: int, *, names: bool, printed: bool, grid_max: int | None,
           top_value: float | None = None, half_width: float = 0.3, colour: str = "blue") -> Canvas:
    """Bars at x = 0..n-1; grid_max draws a 0..grid_max y grid with labels (else no y axis ticks).

    The value axis ends at grid_max, else at top_value, else a quarter above the tallest bar;
    half_width is half a bar's width as a fraction of its slot.
    """
    canvas = Canvas(image_size)
    if grid_max is not None:
        top_value = grid_max
    elif top_value is None:
        top_value = max(values) * 1.25
    left = 18 if grid_max is not None else 8
    axes = Axes((left, 10, 106, 96 if names else 104), (-0.5, len(values) - 0.5), (0, top_value))
    y_ticks = list(range(0, grid_max + 1, 2)) if grid_max is not None else []
    axes.draw(canvas, y_ticks=y_ticks, grid=grid_max is not None, label_size=9)
    half_width_px = half_width * (axes.right - axes.left) / len(values)
    for i, value in enumerate(values):
        x, y_top = axes.point(i, value)
        _, y_base = axes.point(i, 0)
        canvas.rectangle((x - half_width_px, y_top), (x + half_width_px, y_base), fill=COLOURS[colour], outline=None)
        if printed:
            canvas.text((x, y_top - 1), str(value), 12, anchor="mb")
        if names:
            canvas.text((x, y_base + 2), NAMES[i], 11, anchor="mt")
    return canvas


def _level1(rng: random.Random, image_size: int) -> Draft:
    n = rng.randint(2, 4)
    style = {"top_value": LEVEL1_TOP_VALUE, "half_width": rng.uniform(*LEVEL1_WIDTHS),
             "colour": rng.choice(sorted(COLOURS))}
    if rng.random() < 0.5:
        values = [rng.randint(2, 9) for _ in range(n)]
        canvas = _chart(values, image_size, names=False, printed=False, grid_max=None, **style)
        return Draft(
            image=canvas.image,
            question="How many bars are in the chart?",
            answer=str(n),
            answer_type="integer",
            subject="statistics",
            plan="count the bars from left to right.",
            steps=[f"I see {n} bars."],
            check=f"counting again gives {n}.",
            claim="The chart has {} bars.",
            params={"values": values, "task": "count"},
        )
    values = rng.sample(range(1, 10), n)  # distinct, so "the tallest" is unambiguous
    tallest = max(values)
    canvas = _chart(values, image_size, names=False, printed=True, grid_max=None, **style)
    return Draft(
        image=canvas.image,
        question="What is the value of the tallest bar?",
        answer=str(tallest),
        answer_type="integer",
        subject="statistics",
        plan="find the tallest bar and read the number above it.",
        steps=[f"the tallest bar has the number {tallest} above it."],
        check=f"every other bar is shorter and shows a smaller number than {tallest}.",
        claim="The tallest bar has the value {}.",
        params={"values": values, "task": "max_value"},
    )


def _level2(rng: random.Random, image_size: int) -> Draft:
    n = rng.randint(3, 4)
    values = rng.sample(range(1, 10), n)
    canvas = _chart(values, image_size, names=True, printed=True, grid_max=None)
    params = {"values": values, "names": list(NAMES[:n])}
    if rng.random() < 0.5:
        i = rng.randrange(n)
        return Draft(
            image=canvas.image,
            question=f"What is the value of bar {NAMES[i]}?",
            answer=str(values[i]),
            answer_type="integer",
            subject="statistics",
            plan=f"find bar {NAMES[i]} and read the number above it.",
            steps=[f"bar {NAMES[i]} shows {values[i]}."],
            check=f"the bar named {NAMES[i]} is the one with {values[i]} on top.",
            claim=f"Bar {NAMES[i]} has the value {{}}.",
            params={**params, "task": "read", "bars": [NAMES[i]]},
        )
    i, j = rng.sample(range(n), 2)
    if values[i] < values[j]:
        i, j = j, i
    difference = values[i] - values[j]
    return Draft(
        image=canvas.image,
        question=f"How much larger is bar {NAMES[i]} than bar {NAMES[j]}?",
        answer=str(difference),
        answer_type="integer",
        subject="statistics",
        plan=f"read bars {NAMES[i]} and {NAMES[j]}, then subtract.",
        steps=[f"bar {NAMES[i]} is {values[i]} and bar {NAMES[j]} is {values[j]}.",
               f"{values[i]} - {values[j]} = {difference}."],
        check=f"{values[j]} + {difference} = {values[i]}.",
        claim=f"Bar {NAMES[i]} is larger than bar {NAMES[j]} by {{}}.",
        params={**params, "task": "difference", "bars": [NAMES[i], NAMES[j]]},
    )


def _level3(rng: random.Random, image_size: int, kind: str) -> Draft:
    n = rng.randint(4, 5)
    values = rng.sample(range(1, 11), n)
    canvas = _chart(values, image_size, names=True, printed=False, grid_max=10)
    names = list(NAMES[:n])
    params = {"values": values, "names": names}
    reading = ", ".join(f"{name} = {v}" for name, v in zip(names, values))
    if kind == "multi_choice" and rng.random() < 0.5:
        best = names[values.index(max(values))]
        return Draft(
            image=canvas.image,
            question="Which bar is the tallest?",
            answer=best,
            answer_type="text",
            subject="statistics",
            plan="read every bar against the grid and pick the largest.",
            steps=[f"reading the grid: {reading}."],
            check=f"{max(values)} is larger than every other value.",
            claim="The tallest bar is bar {}.",
            params={**params, "task": "argmax"},
            choices=names,
            distractors=[name for name in names if name != best],
        )
    i, j = sorted(rng.sample(range(n), 2))
    if rng.random() < 0.5:
        total = values[i] + values[j]
        return Draft(
            image=canvas.image,
            question=f"What is the sum of the values of bars {names[i]} and {names[j]}?",
            answer=str(total),
            answer_type="integer",
            subject="statistics",
            plan=f"read bars {names[i]} and {names[j]} against the grid, then add.",
            steps=[f"bar {names[i]} reaches {values[i]} and bar {names[j]} reaches {values[j]}.",
                   f"{values[i]} + {values[j]} = {total}."],
            check=f"{total} - {values[j]} = {values[i]}.",
            claim=f"Bars {names[i]} and {names[j]} add up to {{}}.",
            params={**params, "task": "sum", "bars": [names[i], names[j]]},
        )
    difference = abs(values[i] - values[j])
    return Draft(
        image=canvas.image,
        question=f"What is the difference between the values of bars {names[i]} and {names[j]}?",
        answer=str(difference),
        answer_type="integer",
        subject="statistics",
        plan=f"read bars {names[i]} and {names[j]} against the grid, then subtract the smaller from the larger.",
        steps=[f"bar {names[i]} reaches {values[i]} and bar {names[j]} reaches {values[j]}.",
               f"{max(values[i], values[j])} - {min(values[i], values[j])} = {difference}."],
        check=f"{min(values[i], values[j])} + {difference} = {max(values[i], values[j])}.",
        claim=f"The values of bars {names[i]} and {names[j]} differ by {{}}.",
        params={**params, "task": "difference", "bars": [names[i], names[j]]},
    )


def generate(rng: random.Random, level: int, image_size: int, kind: str) -> Draft:
    if level == 1:
        return _level1(rng, image_size)
    if level == 2:
        return _level2(rng, image_size)
    return _level3(rng, image_size, kind)
