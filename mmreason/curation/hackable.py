"""Step 5: drop easy-to-hack problems (k1.5).

A model is asked for the final answer only, with no chain of thought
(`hackable.template`, answer in \\boxed{}), `num_tries` times. If any try is
right the problem is dropped: it can be answered by guessing or by a
shortcut, so RL on it would reward answers whose reasoning is not needed.
"""

from __future__ import annotations

from typing import Sequence

from mmreason.curation.config import HackableConfig
from mmreason.curation.model_steps import GenerateFn, SamplingSetup, drop_answered, fingerprint, sample_and_judge
from mmreason.curation.removal import StepResult
from mmreason.problem import Problem

STEP = "hackable"


def settings_key(cfg: HackableConfig, setup: SamplingSetup) -> str:
    """What decides a cached try: the model, the prompt and the sampling settings."""
    return fingerprint(
        STEP, setup.model_fingerprint, cfg.template, cfg.num_tries, cfg.temperature, cfg.max_new_tokens,
        cfg.response_prefix,
    )


def filter_hackable(
    problems: Sequence[Problem], cfg: HackableConfig, generate_fn: GenerateFn, setup: SamplingSetup
) -> StepResult:
    """Remove every problem the model answers right in at least one of `num_tries` answer-only tries."""
    correct = sample_and_judge(
        problems,
        step=STEP,
        generate_fn=generate_fn,
        num_samples=cfg.num_tries,
        temperature=cfg.temperature,
        setup=setup,
        settings_key=settings_key(cfg, setup),
    )
    return drop_answered(problems, correct, STEP, "answered_without_reasoning", "without reasoning", cfg.num_tries)
