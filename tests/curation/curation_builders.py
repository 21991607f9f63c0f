"""Builders for the curation tests: Problems with real PIL drawings, MathVista-schema files, rule-based answerers.

The answerers stand in for the model behind `generate_fn(problems, num_samples,
temperature)`. They are real deterministic rules, not recordings:
`arithmetic_reader` solves "What is A + B?" by reading the numbers in the
question (so a problem whose answer sits in its text is hackable without the
image), and `SkillSolver` answers right on the first k samples of each problem,
k chosen per problem, which gives known pass rates.

Imported by the curation tests as `from curation_builders import ...` (pytest puts this directory on sys.path).
"""

from __future__ import annotations

import io
import random
import re
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from mmreason.problem import Problem, encode_png


def draw_figure(seed: int, size: int = 160) -> Image.Image:
    """A random figure: a few filled shapes and lines at seeded positions (phash-distinct per seed)."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(3, 5)):
        x0, y0 = rng.randint(0, size - 40), rng.randint(0, size - 40)
        x1, y1 = x0 + rng.randint(15, 40), y0 + rng.randint(15, 40)
        colour = rng.choice(["black", "navy", "darkred", "darkgreen"])
        if rng.random() < 0.5:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        else:
            draw.rectangle([x0, y0, x1, y1], fill=colour)
    draw.line([rng.randint(0, size), 0, rng.randint(0, size), size], fill="black", width=3)
    return image


def jpeg_copy(image: Image.Image, quality: int = 90) -> Image.Image:
    """The image saved as JPEG and reloaded (what a scraper or a re-upload does to it)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    reloaded = Image.open(io.BytesIO(buffer.getvalue()))
    reloaded.load()
    return reloaded


def resized_copy(image: Image.Image, dx: int = 1, dy: int = 1) -> Image.Image:
    return image.resize((image.width + dx, image.height + dy))


def make_problem(pid: str, question: str = "What is the area of the shaded region?", answer: str = "12",
                 images: list[Image.Image] | None = None, **fields: Any) -> Problem:
    return Problem(pid=pid, question=question, answer=answer, answer_type=fields.pop("answer_type", "integer"),
                   images=images if images is not None else [], **fields).validate()


EVAL_QUESTIONS = [
    "What is the area of the shaded region?",
    "Find the perimeter of the figure.",
    "What is the value of x?",
]


def write_mathvista_parquet(path, seeds):
    """A file in MathVista's Hugging Face schema (testmini.parquet)."""
    rows = {
        "pid": [str(i + 1) for i in range(len(seeds))],
        "question": [EVAL_QUESTIONS[i % len(EVAL_QUESTIONS)] for i in range(len(seeds))],
        "image": [f"images/{i + 1}.jpg" for i in range(len(seeds))],
        "decoded_image": [{"bytes": encode_png(draw_figure(seed)), "path": f"{i + 1}.jpg"} for i, seed in enumerate(seeds)],
        "choices": [None] * len(seeds),
        "unit": [None] * len(seeds),
        "precision": [None] * len(seeds),
        "answer": ["12"] * len(seeds),
        "question_type": ["free_form"] * len(seeds),
        "answer_type": ["integer"] * len(seeds),
        "query": [EVAL_QUESTIONS[i % len(EVAL_QUESTIONS)] for i in range(len(seeds))],
    }
    schema = pa.schema([
        ("pid", pa.string()), ("question", pa.string()), ("image", pa.string()),
        ("decoded_image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("choices", pa.list_(pa.string())), ("unit", pa.string()), ("precision", pa.float64()),
        ("answer", pa.string()), ("question_type", pa.string()), ("answer_type", pa.string()), ("query", pa.string()),
    ])
    pq.write_table(pa.table(rows, schema=schema), path)
    return path


_SUM = re.compile(r"what is (\d+) ([+\-*]) (\d+)", re.IGNORECASE)


def arithmetic_reader(problems: Sequence[Problem], num_samples: int, temperature: float) -> list[list[str]]:
    """Answer-only responses: compute "A op B" when the question spells it out, else guess 0."""
    responses = []
    for problem in problems:
        found = _SUM.search(problem.question)
        if found:
            a, op, b = int(found.group(1)), found.group(2), int(found.group(3))
            answer = {"+": a + b, "-": a - b, "*": a * b}[op]
        else:
            answer = 0
        responses.append([f"\\boxed{{{answer}}}"] * num_samples)
    return responses


def colour_count(image: Image.Image) -> int:
    return len(image.convert("RGB").getcolors(maxcolors=1 << 16))


class ColourCounter:
    """Answers "how many colours?" from the first image (a reader that looks); records the images it was given."""

    def __init__(self):
        self.images_seen: dict[str, list[Image.Image]] = {}

    def __call__(self, problems: Sequence[Problem], num_samples: int, temperature: float) -> list[list[str]]:
        self.images_seen.update({p.pid: list(p.images) for p in problems})
        return [[f"<think>I count the colours.</think> \\boxed{{{colour_count(p.images[0]) if p.images else 0}}}"]
                * num_samples for p in problems]


class SkillSolver:
    """Right on the first `solved[pid]` of the samples of each problem; counts calls and problems seen."""

    def __init__(self, solved: dict[str, int], fail_after_calls: int | None = None):
        self.solved = solved
        self.fail_after_calls = fail_after_calls
        self.calls = 0
        self.seen: list[str] = []

    def __call__(self, problems: Sequence[Problem], num_samples: int, temperature: float) -> list[list[str]]:
        if self.fail_after_calls is not None and self.calls >= self.fail_after_calls:
            raise RuntimeError("simulated crash (the job was killed)")
        self.calls += 1
        self.seen += [p.pid for p in problems]
        return [
            [f"<think>work</think> \\boxed{{{p.answer if i < self.solved[p.pid] else 'nope'}}}" for i in range(num_samples)]
            for p in problems
        ]
