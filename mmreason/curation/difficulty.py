"""Step 7: model-based difficulty (k1.5).

The model samples `num_samples` chain-of-thought answers per problem at a
high temperature; the fraction that verifies is the problem's pass rate,
stored in meta["pass_rate"] (and meta["pass_rate_samples"]) for the balance
step and for curriculum sampling in RL. A problem every sample solves teaches
nothing (in GRPO all its advantages are zero) and is dropped; optionally so is
one no sample solves.
"""

from __future__ import annotations

from typing import Sequence

from mmreason.curation.config import DifficultyConfig
from mmreason.curation.model_steps import GenerateFn, SamplingSetup, fingerprint, sample_and_judge
from mmreason.curation.removal import Removal, StepResult
from mmreason.problem import Problem

STEP = "difficulty"


def settings_key(cfg: DifficultyConfig, setup: SamplingSetup) -> str:
    """What decides a cached sample: the model, the prompt and the sampling settings."""
    return fingerprint(STEP, setup.model_fingerprint, cfg.template, cfg.num_samples, cfg.temperature,
                       cfg.max_new_tokens)


def pass_rate(correct: Sequence[bool]) -> float:
    """Fraction of samples that are right (rounded so that k/N prints cleanly)."""
    return round(sum(correct) / len(correct), 6)


def measure_pass_rates(
    problems: Sequence[Problem], cfg: DifficultyConfig, generate_fn: GenerateFn, setup: SamplingSetup
) -> list[Problem]:
    """Copies of `problems` with meta["pass_rate"] and meta["pass_rate_samples"] set."""
    correct = sample_and_judge(
        problems,
        step=STEP,
        generate_fn=generate_fn,
        num_samples=cfg.num_samples,
        temperature=cfg.temperature,
        setup=setup,
        settings_key=settings_key(cfg, setup),
    )
    scored = []
    for problem in problems:
        copy = problem.copy()
        copy.meta["pass_rate"] = pass_rate(correct[problem.pid])
        copy.meta["pass_rate_samples"] = cfg.num_samples
        scored.append(copy)
    return scored


def drop_by_pass_rate(scored: Sequence[Problem], cfg: DifficultyConfig) -> StepResult:
    """Remove the problems every sample solved (and, with drop_unsolved, those none solved)."""
    kept: list[Problem] = []
    removed: list[Removal] = []
    for problem in scored:
        rate = problem.meta["pass_rate"]
        n = problem.meta["pass_rate_samples"]
        if cfg.drop_solved and rate == 1.0:
            removed.append(Removal(problem.pid, STEP, "solved", f"solved by all {n} samples (pass rate 1.0)"))
        elif cfg.drop_unsolved and rate == 0.0:
            removed.append(Removal(problem.pid, STEP, "unsolved", f"solved by none of {n} samples (pass rate 0.0)"))
        else:
            kept.append(problem)
    return StepResult(kept, removed)


def score_difficulty(
    problems: Sequence[Problem], cfg: DifficultyConfig, generate_fn: GenerateFn, setup: SamplingSetup
) -> StepResult:
    """Store meta["pass_rate"] on every problem; remove the solved (and, if asked, the unsolved) ones."""
    return drop_by_pass_rate(measure_pass_rates(problems, cfg, generate_fn, setup), cfg)
