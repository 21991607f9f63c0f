"""Problem + prompt template -> chat messages (qwen-vl-utils format).

Templates are jinja files under configs/prompts/ (or any path). A template
sees `question` (the text with `<image>` markers kept), `choices`, `letters`,
`unit`, `precision`, `answer_type`, `question_type` and `meta`, and renders
the user's text. `<image>` markers in the rendered text say where each image
goes; without markers the images come first, as MathVista prompts assume.
"""

from __future__ import annotations

import functools
import string
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mmreason.problem import Problem
from mmreason.resources import configs_dir

IMAGE_MARKER = "<image>"
LETTERS = string.ascii_uppercase
_REPO_PROMPTS = configs_dir() / "prompts"  # the clone's configs/prompts, or the wheel's packaged copy


class TemplateError(ValueError):
    """A prompt template that cannot be found or rendered; names the template."""


def template_path(name_or_path: str) -> Path:
    """A template name (`r1_boxed`) from configs/prompts/, or a path to a .jinja file."""
    candidates = [Path(name_or_path)]
    if not name_or_path.endswith(".jinja"):
        candidates += [Path("configs/prompts") / f"{name_or_path}.jinja", _REPO_PROMPTS / f"{name_or_path}.jinja"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    available = sorted(p.stem for p in _REPO_PROMPTS.glob("*.jinja"))
    raise TemplateError(f"prompt template {name_or_path!r} not found; built-in templates: {available}")


@functools.lru_cache(maxsize=32)
def load_template(name_or_path: str) -> jinja2.Template:
    path = template_path(name_or_path)
    # Sandboxed: a template (a file anyone may pass by path) can format the problem, not reach Python internals
    # (`{{ problem.__class__.__mro__ }}`-style escapes raise SecurityError) nor change the objects it is given.
    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    try:
        return env.from_string(path.read_text())
    except jinja2.TemplateSyntaxError as err:
        raise TemplateError(f"prompt template {str(path)!r}: line {err.lineno}: {err.message}") from err


def render_prompt(problem: Problem, template: str) -> str:
    """The user's text for `problem` (with `<image>` markers where images go, if any)."""
    try:
        text = load_template(template).render(
            question=problem.question,
            choices=problem.choices,
            letters=LETTERS,
            unit=problem.unit,
            precision=problem.precision,
            answer_type=problem.answer_type,
            question_type=problem.question_type,
            meta=problem.meta,
        )
    except (jinja2.UndefinedError, jinja2.exceptions.SecurityError) as err:
        raise TemplateError(f"prompt template {template!r} on problem {problem.pid!r}: {err}") from err
    return text.strip()


def build_messages(
    problem: Problem,
    template: str,
    *,
    system_prompt: str | None = None,
    response: str | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> list[dict[str, Any]]:
    """Chat messages for qwen-vl-utils / the processor's chat template.

    Images become `{"type": "image", "image": PIL.Image}` parts, interleaved at
    the `<image>` markers or placed first. `response` adds the assistant turn (SFT).
    """
    text = render_prompt(problem, template)
    pieces = text.split(IMAGE_MARKER)
    content: list[dict[str, Any]] = []

    def image_part(image) -> dict[str, Any]:
        part: dict[str, Any] = {"type": "image", "image": image}
        if min_pixels is not None:
            part["min_pixels"] = min_pixels
        if max_pixels is not None:
            part["max_pixels"] = max_pixels
        return part

    if len(pieces) == 1:  # no markers: images first
        content += [image_part(image) for image in problem.images]
        content.append({"type": "text", "text": text})
    else:
        if len(pieces) - 1 != len(problem.images):
            raise TemplateError(
                f"problem {problem.pid!r}: the rendered prompt has {len(pieces) - 1} <image> markers "
                f"but the problem has {len(problem.images)} images"
            )
        for i, piece in enumerate(pieces):
            if piece.strip():
                content.append({"type": "text", "text": piece.strip() if i == len(pieces) - 1 else piece})
            if i < len(problem.images):
                content.append(image_part(problem.images[i]))
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": content})
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return messages
