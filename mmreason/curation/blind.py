"""Step 6: drop problems the model answers right with its images blanked (image-blind guessing).

k1.5 keeps out of the RL prompt set whatever a model can answer without
reasoning; a vision-language model has a second shortcut, answering without
looking. Every image of the problem is replaced by a flat image of the same
size in its mean colour (the prompt keeps its image tokens, the picture loses
its content), the model answers with its usual chain of thought `num_tries`
times, and any correct try drops the problem. A reward there would pay for the
prior over answers (the most common count, the usual value) instead of for
reading the picture. MMStar screens benchmark items for the same reason
("visual dependency"). Problems without images are not sent to the model and
are kept (their tries are recorded as empty replies): there is nothing to
blank, and the hackable step covers text-only guessing.
"""

from __future__ import annotations

from typing import Sequence

from PIL import Image, ImageStat

from mmreason.curation.config import BlindConfig
from mmreason.curation.model_steps import (
    GenerateFn,
    SamplingSetup,
    check_responses,
    drop_answered,
    fingerprint,
    sample_and_judge,
)
from mmreason.curation.removal import StepResult
from mmreason.problem import Problem

STEP = "blind"


def blank_image(image: Image.Image) -> Image.Image:
    """A flat RGB image of the same size in the image's mean colour: same image tokens, no content."""
    rgb = image.convert("RGB")
    mean_colour = tuple(round(channel) for channel in ImageStat.Stat(rgb).mean)
    return Image.new("RGB", rgb.size, mean_colour)


def blindfolded(problem: Problem) -> Problem:
    """The problem with every image blanked (a copy; the input is not changed)."""
    return problem.copy(images=[blank_image(image) for image in problem.images])


def blindfold(generate_fn: GenerateFn) -> GenerateFn:
    """A GenerateFn that answers the problems with their images blanked (empty replies for those without)."""

    def generate(problems: Sequence[Problem], num_samples: int, temperature: float) -> list[list[str]]:
        visual = [p for p in problems if p.images]
        answers = generate_fn([blindfolded(p) for p in visual], num_samples, temperature) if visual else []
        check_responses(answers, visual, num_samples, STEP)
        by_pid = {p.pid: texts for p, texts in zip(visual, answers)}
        return [by_pid.get(p.pid, [""] * num_samples) for p in problems]

    return generate


def settings_key(cfg: BlindConfig, setup: SamplingSetup) -> str:
    """What decides a cached try: the model, the prompt and the sampling settings."""
    return fingerprint(STEP, setup.model_fingerprint, cfg.template, cfg.num_tries, cfg.temperature, cfg.max_new_tokens)


def filter_blind(
    problems: Sequence[Problem], cfg: BlindConfig, generate_fn: GenerateFn, setup: SamplingSetup
) -> StepResult:
    """Remove every problem the model answers right in one of `num_tries` tries with its images blanked.

    generate_fn is the plain model; this step blanks the images before calling it.
    """
    correct = sample_and_judge(
        problems,
        step=STEP,
        generate_fn=blindfold(generate_fn),
        num_samples=cfg.num_tries,
        temperature=cfg.temperature,
        setup=setup,
        settings_key=settings_key(cfg, setup),
    )
    return drop_answered(problems, correct, STEP, "answered_without_image", "with the image blanked", cfg.num_tries)
