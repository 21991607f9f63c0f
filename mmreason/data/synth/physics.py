"""physics: circuits, levers and motion graphs with labelled quantities.

Level 1: two resistors in series, labelled in ohms (single digits); total resistance.
Level 2: three resistors in series; a balanced lever (unknown mass = m x d1 / d2,
    chosen whole); or speed from a position-time line through the origin and one
    labelled point.
Level 3: two resistors in parallel (R1 R2 / (R1 + R2), a float to 2 decimals
    when not whole); or speed from two labelled points on a position-time line
    (a float to 1 decimal when not whole).
"""

from __future__ import annotations

import random

from mmreason.data.synth.canvas import COLOURS, Axes, Canvas
from mmreason.data.synth.draft import Draft, about, number_answer, rounding_hint

LABEL_SIZE = 11


def _series_circuit(values: list[int], image_size: int) -> Canvas:
    """A rectangular loop: battery on the left side, resistors in a row along the top."""
    canvas = Canvas(image_size)
    left, right, top, bottom = 12.0, 100.0, 40.0, 88.0
    n = len(values)
    segment = (right - left) / n
    x = left
    for value in values:
        start, end = x + segment * 0.2, x + segment * 0.8
        canvas.line([(x, top), (start, top)], width=1.5)
        canvas.resistor((start, top), (end, top))
        canvas.line([(end, top), (x + segment, top)], width=1.5)
        canvas.text(((start + end) / 2, top - 9), str(value), LABEL_SIZE + 2, anchor="mb")
        x += segment
    canvas.line([(right, top), (right, bottom), (left, bottom), (left, 70)], width=1.5)
    canvas.line([(left, top), (left, 58)], width=1.5)
    canvas.line([(left - 7, 58), (left + 7, 58)], width=2)  # battery: long plate
    canvas.line([(left - 4, 64), (left + 4, 64)], width=3)  # short plate
    canvas.line([(left, 64), (left, 70)], width=1.5)
    return canvas


def _parallel_circuit(r1: int, r2: int, image_size: int) -> Canvas:
    """Two resistors on parallel branches between two junctions, fed from the left."""
    canvas = Canvas(image_size)
    j1, j2 = 30.0, 86.0
    y1, y2, feed = 34.0, 74.0, 54.0
    canvas.line([(8, feed), (j1, feed)], width=1.5)
    canvas.line([(j2, feed), (104, feed)], width=1.5)
    for x in (j1, j2):
        canvas.line([(x, y1), (x, y2)], width=1.5)
        canvas.circle((x, feed), 2)
    for y, value in ((y1, r1), (y2, r2)):
        canvas.line([(j1, y), (j1 + 10, y)], width=1.5)
        canvas.resistor((j1 + 10, y), (j2 - 10, y))
        canvas.line([(j2 - 10, y), (j2, y)], width=1.5)
        canvas.text(((j1 + j2) / 2, y - 7), str(value), LABEL_SIZE + 2, anchor="mb")
    canvas.text((8, feed - 4), "A", 9, anchor="lb")
    canvas.text((104, feed - 4), "B", 9, anchor="rb")
    return canvas


def _series_draft(rng: random.Random, count: int, image_size: int) -> Draft:
    values = [rng.randint(1, 9) for _ in range(count)]
    total = sum(values)
    added = " + ".join(str(v) for v in values)
    return Draft(
        image=_series_circuit(values, image_size).image,
        question=f"The {count} resistors are in series; their resistances in ohms are written above them. "
        "What is the total resistance, in ohms?",
        answer=str(total),
        answer_type="integer",
        subject="physics",
        plan="resistances in series add up.",
        steps=[f"the resistors are {', '.join(str(v) for v in values[:-1])} and {values[-1]} ohms.",
               f"{added} = {total}."],
        check=f"{total} - {values[-1]} = {total - values[-1]}, the sum of the others.",
        claim="The total resistance is {} ohms.",
        params={"resistors": values, "task": "series"},
        unit="ohm",
    )


def _parallel_draft(rng: random.Random, image_size: int) -> Draft:
    r1, r2 = rng.choice([(2, 2), (3, 6), (4, 4), (6, 3), (4, 12)]) if rng.random() < 0.3 else \
        (rng.randint(1, 12), rng.randint(1, 12))
    total = r1 * r2 / (r1 + r2)
    answer, answer_type, precision = number_answer(total, max_precision=2)
    return Draft(
        image=_parallel_circuit(r1, r2, image_size).image,
        question="The two resistors are in parallel between A and B; their resistances in ohms are written above "
        "them. What is the total resistance between A and B, in ohms?" + rounding_hint(precision),
        answer=answer,
        answer_type=answer_type,
        subject="physics",
        plan="for two resistors in parallel, R = R1 x R2 / (R1 + R2).",
        steps=[f"R1 = {r1} and R2 = {r2}.",
               f"{r1} x {r2} / ({r1} + {r2}) = {r1 * r2} / {r1 + r2} = {about(total, answer)}{answer}."],
        check=f"{answer} is smaller than both {r1} and {r2}, as a parallel combination must be.",
        claim="The total resistance between A and B is {} ohms.",
        params={"resistors": [r1, r2], "task": "parallel"},
        precision=precision,
        unit="ohm",
    )


def _lever_draft(rng: random.Random, image_size: int) -> Draft:
    d2 = rng.randint(1, 4)
    d1 = rng.choice([d for d in range(1, 5) if d != d2])
    m2 = rng.randint(1, 6) * d1  # the unknown mass: whole because m1 = m2 d2 / d1 must be too
    m1 = m2 * d2 // d1
    canvas = Canvas(image_size)
    pivot, beam_y, unit = 56.0, 62.0, 10.5
    canvas.polygon([(pivot, beam_y), (pivot - 8, beam_y + 14), (pivot + 8, beam_y + 14)], fill=(90, 90, 90),
                   outline=None)
    canvas.line([(pivot - 4.6 * unit, beam_y), (pivot + 4.6 * unit, beam_y)], width=3)
    for d in range(-4, 5):
        canvas.line([(pivot + d * unit, beam_y + 2), (pivot + d * unit, beam_y + 5)], width=1)
    for x, label, colour in ((pivot - d1 * unit, f"{m1} kg", "blue"), (pivot + d2 * unit, "?", "orange")):
        canvas.rectangle((x - 6, beam_y - 13), (x + 6, beam_y - 1), fill=COLOURS[colour], outline=None)
        canvas.text((x, beam_y - 15), label, 10, anchor="mb")
    # Dimension lines from the pivot to each mass, on two rows so short spans' labels never collide.
    for end, distance, row in ((pivot - d1 * unit, d1, beam_y + 19), (pivot + d2 * unit, d2, beam_y + 32)):
        canvas.line([(pivot, row), (end, row)], width=1)
        for x in (pivot, end):
            canvas.line([(x, row - 2), (x, row + 2)], width=1)
        canvas.text(((pivot + end) / 2, row + 2), f"{distance} m", 9, anchor="mt")
    return Draft(
        image=canvas.image,
        question="The lever is balanced. The distances from the pivot are labelled. What is the mass marked ?, in kg?",
        answer=str(m2),
        answer_type="integer",
        subject="physics",
        plan="balance means mass x distance is equal on both sides.",
        steps=[f"left side: {m1} kg x {d1} m = {m1 * d1}.", f"right side: ? x {d2} m = {m1 * d1}, so ? = {m1 * d1} / {d2} = {m2}."],
        check=f"{m2} x {d2} = {m2 * d2} = {m1} x {d1}.",
        claim="For the lever to balance, the mass marked ? must be {} kg.",
        params={"left_mass": m1, "left_distance": d1, "right_distance": d2, "task": "lever"},
        unit="kg",
    )


def _speed_draft(rng: random.Random, level: int, image_size: int) -> Draft:
    canvas = Canvas(image_size)
    axes = Axes((22, 16, 104, 92), (0, 6), (0, 24))
    axes.draw(canvas, x_ticks=range(0, 7), y_ticks=range(0, 25, 4), label_size=9)
    canvas.text((104, 101), "t (s)", 9, anchor="rt")
    canvas.text((2, 6), "x (m)", 9, anchor="lm")
    if level == 2:
        t2 = rng.randint(2, 6)
        x2 = rng.randint(1, 24 // t2) * t2 if rng.random() < 0.7 else rng.randint(2, 24)
        t1, x1 = 0, 0
    else:
        t1, t2 = sorted(rng.sample(range(0, 7), 2))
        x1 = rng.randint(0, 10)
        x2 = rng.randint(x1 + 1, 24)
    speed = (x2 - x1) / (t2 - t1)
    answer, answer_type, precision = number_answer(speed, max_precision=1)
    start, end = axes.point(t1, x1), axes.point(t2, x2)
    canvas.line([start, end], width=2, fill=COLOURS["blue"])
    labelled = [(t2, x2)] if level == 2 else [(t1, x1), (t2, x2)]
    for t, x in labelled:
        px, py = axes.point(t, x)
        canvas.circle((px, py), 2.5, fill=COLOURS["red"])
        # label on the side of the point with more room (right of early points, left of late ones)
        canvas.text((px + 3, py - 3), f"({t}, {x})", 9, anchor="lb") if t <= 2 else \
            canvas.text((px - 3, py - 3), f"({t}, {x})", 9, anchor="rb")
    if level == 2:
        steps = [f"the line starts at (0, 0) and passes through ({t2}, {x2}).",
                 f"speed = {x2} m / {t2} s = {about(speed, answer)}{answer} m/s."]
        plan = "speed is distance divided by time; read the labelled point."
    else:
        steps = [f"the labelled points are ({t1}, {x1}) and ({t2}, {x2}).",
                 f"speed = ({x2} - {x1}) / ({t2} - {t1}) = {x2 - x1} / {t2 - t1} = {about(speed, answer)}{answer} m/s."]
        plan = "speed is the slope of the position-time line: change in x over change in t."
    return Draft(
        image=canvas.image,
        question="The graph shows an object's position x (m) against time t (s); labelled points are (t, x). "
        "What is its speed, in m/s?" + rounding_hint(precision),
        answer=answer,
        answer_type=answer_type,
        subject="physics",
        plan=plan,
        steps=steps,
        check=f"{answer} x {t2 - t1} is about {float(answer) * (t2 - t1):g}, the distance covered.",
        claim="The position-time graph shows a speed of {} m/s.",
        params={"points": [[t1, x1], [t2, x2]], "task": "speed"},
        precision=precision,
        unit="m/s",
    )


def generate(rng: random.Random, level: int, image_size: int, kind: str) -> Draft:
    if level == 1:
        return _series_draft(rng, 2, image_size)
    if level == 2:
        task = rng.choice(["series", "lever", "speed"])
        if task == "series":
            return _series_draft(rng, 3, image_size)
        return _lever_draft(rng, image_size) if task == "lever" else _speed_draft(rng, 2, image_size)
    return _parallel_draft(rng, image_size) if rng.random() < 0.5 else _speed_draft(rng, 3, image_size)
