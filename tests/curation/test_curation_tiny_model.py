"""The model steps with the real tiny checkpoint (session fixture `tiny_checkpoint` from tests/conftest.py)."""

import json
from pathlib import Path

import pytest

from mmreason.config import ModelConfig, load_config
from mmreason.curation.config import CurateConfig, DifficultyConfig, GenerationConfig
from mmreason.curation.difficulty import score_difficulty
from mmreason.curation.model_steps import SamplingSetup, cache_path
from mmreason.curation.pipeline import ModelGenerators, run_curation
from mmreason.data.shards import stream_problems, write_shards
from mmreason.data.synth import generate_problems

REPO = Path(__file__).resolve().parents[2]


def free_form_problems(n: int, seed: int):
    return generate_problems(n, seed=seed, mc_frac=0, tf_frac=0, dup_frac=0, near_dup_frac=0)


def test_pipeline_with_the_tiny_checkpoint_scores_every_kept_problem(tiny_checkpoint, tmp_path):
    problems = free_form_problems(6, seed=31)
    write_shards(problems, tmp_path / "input", shard_size=4)
    out = tmp_path / "out"
    cfg = load_config(REPO / "configs" / "quickstart" / "curate.yaml", [
        f"input={tmp_path / 'input'}", f"output={out}", f"model.path={tiny_checkpoint}",
        "hackable.enabled=true", "hackable.num_tries=1", "hackable.max_new_tokens=4", "blind.enabled=true",
        "blind.num_tries=1", "blind.max_new_tokens=4", "difficulty.enabled=true", "difficulty.num_samples=2",
        "difficulty.max_new_tokens=6", "balance.enabled=true", "balance.total=100", "generation.problems_per_batch=4",
    ], schema=CurateConfig)
    report = run_curation(cfg)  # no generate_fns: the steps sample from the checkpoint
    curated = list(stream_problems(str(out), rank=0, world_size=1))
    assert len(curated) == report.output > 0
    for problem in curated:
        assert problem.meta["pass_rate"] in (0.0, 0.5) and problem.meta["pass_rate_samples"] == 2
    difficulty = [json.loads(line) for line in cache_path(out / "cache", "difficulty", 0).read_text().splitlines()]
    blind = [json.loads(line) for line in cache_path(out / "cache", "blind", 0).read_text().splitlines()]
    assert len(blind) == next(s for s in report.steps if s.name == "hackable").kept
    scored = next(s for s in report.steps if s.name == "blind").kept
    assert len(difficulty) == scored and all(len(line["responses"]) == 2 for line in difficulty)
    assert sum(report.difficulty_before.values()) == scored


class CountingCrash:
    """Wraps a real generate_fn: counts the problems it is asked for, and raises once `crash_after` calls are done."""

    def __init__(self, generate_fn, crash_after: int | None = None):
        self.generate_fn = generate_fn
        self.crash_after = crash_after
        self.calls = 0
        self.seen: list[str] = []

    def __call__(self, problems, num_samples, temperature):
        if self.crash_after is not None and self.calls >= self.crash_after:
            raise KeyboardInterrupt("killed")  # what a Ctrl-C or a preempted job does mid-run
        self.calls += 1
        self.seen += [p.pid for p in problems]
        return self.generate_fn(problems, num_samples, temperature)


def test_killed_run_with_the_tiny_checkpoint_resumes_from_its_cache(tiny_checkpoint, tmp_path):
    problems = free_form_problems(5, seed=32)
    generators = ModelGenerators(ModelConfig(path=str(tiny_checkpoint), dtype="float32"), GenerationConfig(batch_size=8))
    generate = generators.generate_fn("r1_boxed", max_new_tokens=4)
    cfg = DifficultyConfig(num_samples=2, drop_solved=False)
    setup = SamplingSetup(cache_dir=tmp_path / "cache", problems_per_batch=2, model_fingerprint="tiny")

    first = CountingCrash(generate, crash_after=1)
    with pytest.raises(KeyboardInterrupt):
        score_difficulty(problems, cfg, first, setup)
    assert first.seen == [p.pid for p in problems[:2]]

    second = CountingCrash(generate)
    kept, removed = score_difficulty(problems, cfg, second, setup)
    assert second.seen == [p.pid for p in problems[2:]] and second.calls == 2
    assert removed == [] and [p.pid for p in kept] == [p.pid for p in problems]
    assert all(p.meta["pass_rate"] in (0.0, 0.5, 1.0) for p in kept)
    lines = cache_path(setup.cache_dir, "difficulty", 0).read_text().splitlines()
    assert sorted(json.loads(line)["pid"] for line in lines) == sorted(p.pid for p in problems)  # none twice
