"""Re-cropped copies of a diagram are near-duplicates; another diagram with the same question and answer is not
(issue 25: real Geometry3K re-crops sat 50-90 bits apart on whole-image hashes)."""

from __future__ import annotations

from PIL import Image, ImageDraw

from mmreason.curation.config import DedupConfig
from mmreason.curation.dedup import deduplicate
from mmreason.curation.signatures import image_hash, image_hash_untrimmed, trim_border
from mmreason.problem import Problem


def triangle(points, label="12", size=(320, 240)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.polygon(points, outline="black", width=2)
    for letter, (x, y) in zip("ABC", points):
        draw.text((x + 4, y + 2), letter, fill="black")
    draw.text(((points[0][0] + points[1][0]) // 2, (points[0][1] + points[1][1]) // 2), label, fill="black")
    return image


ORIGINAL = triangle([(60, 200), (260, 190), (120, 40)])
OTHER = triangle([(40, 60), (280, 90), (200, 210)])  # another triangle, same question and answer


def recropped(image: Image.Image, pad: tuple[int, int, int, int], scale: float) -> Image.Image:
    """Pad (positive) or trim (negative) a uniform white border on each side, then rescale."""
    left, top, right, bottom = pad
    canvas = Image.new("RGB", (image.width + left + right, image.height + top + bottom), "white")
    canvas.paste(image, (left, top))
    return canvas.resize((round(canvas.width * scale), round(canvas.height * scale)), Image.BILINEAR)


COPIES = [
    recropped(ORIGINAL, (40, 10, 0, 30), 0.9),     # padded, scaled down 10%
    recropped(ORIGINAL, (-20, -15, -25, -10), 1.12),  # margins trimmed, scaled up 12%
    recropped(ORIGINAL, (0, 60, 50, 0), 0.86),     # padded on two sides, scaled down 14%
]


def distance(a, b, fn=image_hash):
    return (fn(a, 16) ^ fn(b, 16)).bit_count()


def test_trim_border_finds_the_drawing():
    trimmed = trim_border(recropped(ORIGINAL, (50, 50, 50, 50), 1.0).convert("L"))
    assert abs(trimmed.width - trim_border(ORIGINAL.convert("L")).width) <= 1
    blank = Image.new("L", (30, 20), 255)
    assert trim_border(blank).size == (30, 20)


def test_recropped_copies_are_within_the_threshold_and_other_diagrams_are_not():
    limit = DedupConfig().max_distance
    assert all(distance(ORIGINAL, copy) <= limit for copy in COPIES)
    assert distance(ORIGINAL, OTHER) > limit
    # What the whole-image hash saw: at least one copy out of reach (why trimming was added).
    assert max(distance(ORIGINAL, copy, image_hash_untrimmed) for copy in COPIES) > limit


def problem(pid, image):
    return Problem(pid=pid, question="Find x.", answer="12", answer_type="integer", images=[image])


def test_dedup_removes_recrops_and_keeps_the_other_diagram():
    problems = [problem("orig", ORIGINAL)] + [problem(f"copy{i}", c) for i, c in enumerate(COPIES)]
    problems.append(problem("other", OTHER))
    result = deduplicate(problems, DedupConfig())
    assert [p.pid for p in result.kept] == ["orig", "other"]
    assert {r.pid: r.related for r in result.removed} == {"copy0": "orig", "copy1": "orig", "copy2": "orig"}
