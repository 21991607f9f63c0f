"""geometry: labelled figures; angles, areas, perimeters, Pythagoras.

Level 1: one large filled convex polygon with 3-6 sides, irregular (corners at jittered angles and
    distances); "How many sides does this shape have?"
Level 2: a triangle with two labelled angles (find the third), or a rectangle
    with labelled sides (area or perimeter).
Level 3: a right triangle with labelled legs (hypotenuse, a float to 1 decimal
    unless the triple is Pythagorean), or a triangle with labelled base and
    height (area, a float when odd).
Figures are drawn to scale from the labelled numbers.
"""

from __future__ import annotations

import math
import random

from mmreason.data.synth.canvas import COLOURS, DESIGN_SIZE, Canvas, Point
from mmreason.data.synth.draft import Draft, number_answer, rounding_hint

POLYGON_NAMES = {3: "triangle", 4: "quadrilateral", 5: "pentagon", 6: "hexagon"}
LABEL_SIZE = 11


def _fit(points: list[Point], margin: float = 18) -> list[Point]:
    """Scale and centre points (y up, any units) into the canvas, keeping proportions (y flipped)."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    span = max(max(xs) - min(xs), max(ys) - min(ys))
    scale = (DESIGN_SIZE - 2 * margin) / span
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    return [(DESIGN_SIZE / 2 + (x - cx) * scale, DESIGN_SIZE / 2 - (y - cy) * scale) for x, y in points]


def _toward(point: Point, target: Point, distance: float) -> Point:
    """The point `distance` units from `point` in the direction of `target`."""
    dx, dy = target[0] - point[0], target[1] - point[1]
    length = math.hypot(dx, dy) or 1.0
    return (point[0] + dx / length * distance, point[1] + dy / length * distance)


def _outside_edge(a: Point, b: Point, centroid: Point, distance: float = 8) -> Point:
    """Label position next to the midpoint of edge ab, on the side away from the centroid."""
    mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    away = (2 * mid[0] - centroid[0], 2 * mid[1] - centroid[1])
    return _toward(mid, away, distance)


# Level-1 polygons are irregular: corners at jittered angles and distances from a jittered centre. Regular
# polygons differing only in colour and rotation share one perceptual hash: dedup and decontamination left
# 8 of 299 generated pentagons in a quickstart pool (seed 4), so there were almost none to learn from.
MIN_TURN_DEGREES = 25  # every corner bends the outline by at least this much, so no side hides in a straight line
MIN_EDGE = 14  # design pixels: every side is long enough to see at 112 px


def _turns(corners: list[Point]) -> list[float]:
    """Signed turning angle (degrees) at each corner, walking the outline in order."""
    turns = []
    for i, here in enumerate(corners):
        before, after = corners[i - 1], corners[(i + 1) % len(corners)]
        incoming = math.atan2(here[1] - before[1], here[0] - before[0])
        outgoing = math.atan2(after[1] - here[1], after[0] - here[0])
        turns.append((math.degrees(outgoing - incoming) + 180) % 360 - 180)
    return turns


def is_plain_convex(corners: list[Point]) -> bool:
    """Convex, every corner turning by at least MIN_TURN_DEGREES and every side at least MIN_EDGE long."""
    turns = _turns(corners)
    same_way = all(t > 0 for t in turns) or all(t < 0 for t in turns)
    edges = [math.dist(corners[i - 1], corners[i]) for i in range(len(corners))]
    return same_way and min(abs(t) for t in turns) >= MIN_TURN_DEGREES and min(edges) >= MIN_EDGE


def irregular_polygon(rng: random.Random, sides: int) -> list[Point]:
    """A random convex polygon with `sides` corners inside the design canvas, redrawn until plainly convex."""
    while True:
        gaps = [rng.uniform(0.6, 1.4) for _ in range(sides)]
        total = sum(gaps)
        angle, angles = rng.uniform(0, 360), []
        for gap in gaps:
            angles.append(angle)
            angle += 360 * gap / total
        radius = rng.uniform(34, 44)
        cx, cy = DESIGN_SIZE / 2 + rng.uniform(-6, 6), DESIGN_SIZE / 2 + rng.uniform(-6, 6)
        corners = [(cx + radius * rng.uniform(0.8, 1.0) * math.cos(math.radians(a)),
                    cy - radius * rng.uniform(0.8, 1.0) * math.sin(math.radians(a))) for a in angles]
        if is_plain_convex(corners):
            return corners


def _polygon_draft(rng: random.Random, image_size: int) -> Draft:
    sides = rng.randint(3, 6)
    corners = irregular_polygon(rng, sides)
    canvas = Canvas(image_size)
    canvas.polygon(corners, fill=COLOURS[rng.choice(sorted(COLOURS))], outline=None)
    return Draft(
        image=canvas.image,
        question="How many sides does this shape have?",
        answer=str(sides),
        answer_type="integer",
        subject="geometry",
        plan="count the straight edges around the shape.",
        steps=[f"going around the shape I count {sides} edges."],
        check=f"it also has {sides} corners, so it is a {POLYGON_NAMES[sides]}.",
        claim="The shape has {} sides.",
        params={"sides": sides},
    )


def _triangle_angle_draft(rng: random.Random, image_size: int) -> Draft:
    a = rng.randrange(30, 90, 5)
    b = rng.randrange(30, 150 - a + 1, 5)
    c = 180 - a - b
    # Place A at the origin and B on the x axis; C where the angles at A and B meet.
    ta, tb = math.tan(math.radians(a)), math.tan(math.radians(b))
    cx = tb / (ta + tb)
    apex = (cx, cx * ta)
    vertices = _fit([(0.0, 0.0), (1.0, 0.0), apex], margin=22)
    centroid = (sum(p[0] for p in vertices) / 3, sum(p[1] for p in vertices) / 3)
    canvas = Canvas(image_size)
    canvas.polygon(vertices, outline=(0, 0, 0), width=2)
    # Acute corners leave no room for text inside: mark each angle with an arc and
    # write its label just outside the corner, away from the centroid.
    for k, (vertex, label) in enumerate(zip(vertices, [f"{a}°", f"{b}°", "?"])):
        canvas.angle_arc(vertex, vertices[(k + 1) % 3], vertices[(k + 2) % 3], radius=6)
        away = (2 * vertex[0] - centroid[0], 2 * vertex[1] - centroid[1])
        canvas.text(_toward(vertex, away, 9), label, LABEL_SIZE)
    return Draft(
        image=canvas.image,
        question="Two angles of the triangle are labelled. What is the measure of the angle marked ?, in degrees?",
        answer=str(c),
        answer_type="integer",
        subject="geometry",
        plan="use that the angles of a triangle add up to 180 degrees.",
        steps=[f"the labelled angles are {a} and {b} degrees.", f"180 - {a} - {b} = {c}."],
        check=f"{a} + {b} + {c} = 180.",
        claim="The angle marked ? measures {} degrees.",
        params={"angles": [a, b], "task": "third_angle"},
        unit="degrees",
    )


def _rectangle_draft(rng: random.Random, image_size: int) -> Draft:
    width, height = rng.randint(3, 12), rng.randint(2, 9)
    corners = _fit([(0.0, 0.0), (float(width), 0.0), (float(width), float(height)), (0.0, float(height))], margin=22)
    centroid = (DESIGN_SIZE / 2, DESIGN_SIZE / 2)
    canvas = Canvas(image_size)
    canvas.polygon(corners, outline=(0, 0, 0), width=2)
    canvas.text(_outside_edge(corners[0], corners[1], centroid), str(width), LABEL_SIZE)
    canvas.text(_outside_edge(corners[1], corners[2], centroid), str(height), LABEL_SIZE)
    if rng.random() < 0.5:
        area = width * height
        return Draft(
            image=canvas.image,
            question="What is the area of the rectangle?",
            answer=str(area),
            answer_type="integer",
            subject="geometry",
            plan="multiply the two labelled side lengths.",
            steps=[f"the sides are {width} and {height}.", f"{width} x {height} = {area}."],
            check=f"{area} / {width} = {height}.",
            claim="The area of the rectangle is {}.",
            params={"sides": [width, height], "task": "rectangle_area"},
        )
    perimeter = 2 * (width + height)
    return Draft(
        image=canvas.image,
        question="What is the perimeter of the rectangle?",
        answer=str(perimeter),
        answer_type="integer",
        subject="geometry",
        plan="add all four sides: twice the width plus twice the height.",
        steps=[f"the sides are {width} and {height}.", f"2 x ({width} + {height}) = {perimeter}."],
        check=f"{width} + {height} + {width} + {height} = {perimeter}.",
        claim="The perimeter of the rectangle is {}.",
        params={"sides": [width, height], "task": "rectangle_perimeter"},
    )


def _hypotenuse_draft(rng: random.Random, image_size: int) -> Draft:
    if rng.random() < 0.35:
        a, b = rng.choice([(3, 4), (6, 8), (5, 12), (8, 6), (4, 3), (12, 5)])
    else:
        a, b = rng.randint(2, 12), rng.randint(2, 12)
    c = math.hypot(a, b)
    answer, answer_type, precision = number_answer(c, max_precision=1)
    corners = _fit([(0.0, 0.0), (float(a), 0.0), (0.0, float(b))], margin=20)
    centroid = (sum(p[0] for p in corners) / 3, sum(p[1] for p in corners) / 3)
    canvas = Canvas(image_size)
    canvas.polygon(corners, outline=(0, 0, 0), width=2)
    right = corners[0]
    marker = 6
    canvas.line([(right[0] + marker, right[1]), (right[0] + marker, right[1] - marker), (right[0], right[1] - marker)],
                width=1)
    canvas.text(_outside_edge(corners[0], corners[1], centroid), str(a), LABEL_SIZE)
    canvas.text(_outside_edge(corners[0], corners[2], centroid), str(b), LABEL_SIZE)
    canvas.text(_outside_edge(corners[1], corners[2], centroid), "?", LABEL_SIZE)
    squares = a * a + b * b
    return Draft(
        image=canvas.image,
        question="The triangle has a right angle. What is the length of the side marked ??" + rounding_hint(precision),
        answer=answer,
        answer_type=answer_type,
        subject="geometry",
        plan="use the Pythagorean theorem on the two labelled legs.",
        steps=[f"the legs are {a} and {b}.", f"{a}^2 + {b}^2 = {a * a} + {b * b} = {squares}.",
               f"sqrt({squares}) = {c:.3f}, about {answer}." if answer_type == "float" else f"sqrt({squares}) = {answer}."],
        check=f"{answer}^2 is about {float(answer) ** 2:.1f}, close to {squares}.",
        claim="The side marked ? has length {}.",
        params={"legs": [a, b], "task": "hypotenuse"},
        precision=precision,
    )


def _triangle_area_draft(rng: random.Random, image_size: int) -> Draft:
    base, height = rng.randint(3, 12), rng.randint(2, 10)
    apex_x = rng.uniform(0.2, 0.8) * base
    corners = _fit([(0.0, 0.0), (float(base), 0.0), (apex_x, float(height))], margin=20)
    foot = (corners[2][0], corners[0][1])
    centroid = (sum(p[0] for p in corners) / 3, sum(p[1] for p in corners) / 3)
    canvas = Canvas(image_size)
    canvas.polygon(corners, outline=(0, 0, 0), width=2)
    canvas.dashed_line(corners[2], foot, dash=2.5)
    canvas.text(_outside_edge(corners[0], corners[1], centroid), str(base), LABEL_SIZE)
    # Write the height beside the dashed line, on the side where the triangle is wider.
    side = 6 if apex_x < base / 2 else -6
    canvas.text(((corners[2][0] + foot[0]) / 2 + side, (corners[2][1] + foot[1]) / 2), str(height), LABEL_SIZE)
    area = base * height / 2
    answer, answer_type, precision = number_answer(area, max_precision=1)
    return Draft(
        image=canvas.image,
        question="The dashed line is the height of the triangle. What is the area of the triangle?"
        + rounding_hint(precision),
        answer=answer,
        answer_type=answer_type,
        subject="geometry",
        plan="area of a triangle = base x height / 2.",
        steps=[f"the base is {base} and the height is {height}.", f"{base} x {height} / 2 = {base * height} / 2 = {answer}."],
        check=f"2 x {answer} = {base * height}.",
        claim="The area of the triangle is {}.",
        params={"base": base, "height": height, "task": "triangle_area"},
        precision=precision,
    )


def generate(rng: random.Random, level: int, image_size: int, kind: str) -> Draft:
    if level == 1:
        return _polygon_draft(rng, image_size)
    if level == 2:
        return _triangle_angle_draft(rng, image_size) if rng.random() < 0.5 else _rectangle_draft(rng, image_size)
    return _hypotenuse_draft(rng, image_size) if rng.random() < 0.5 else _triangle_area_draft(rng, image_size)
