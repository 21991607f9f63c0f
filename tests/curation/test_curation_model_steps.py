"""Hackable and difficulty steps with rule-based generate_fns (see curation_builders), the model-free half."""

import json
import threading

import pytest
from curation_builders import ColourCounter, SkillSolver, arithmetic_reader, colour_count, draw_figure, make_problem
from PIL import Image

from mmreason.curation.blind import blank_image, filter_blind
from mmreason.curation.config import BlindConfig, DifficultyConfig, HackableConfig
from mmreason.curation.difficulty import score_difficulty
from mmreason.curation.hackable import filter_hackable
from mmreason.curation.model_steps import RankContext, SamplingSetup, cache_path, read_cache, sample_and_judge
from mmreason.problem import Problem

def visual_problems(n: int) -> list[Problem]:
    return [make_problem(f"v{i}", question="What is the area of the shaded region?", answer=str(10 + i),
                         images=[draw_figure(i)]) for i in range(n)]


def test_hackable_removes_what_is_answered_without_reasoning(tmp_path):
    problems = [
        make_problem("text_sum", question="What is 17 + 25?", answer="42"),
        make_problem("text_product", question="<image> What is 6 * 7 in the picture?", answer="42",
                     images=[draw_figure(1)]),
        make_problem("zero", question="How many red shapes are there?", answer="0"),  # a lucky guess counts too
        *visual_problems(2),
    ]
    setup = SamplingSetup(cache_dir=tmp_path / "cache", problems_per_batch=2)
    kept, removed = filter_hackable(problems, HackableConfig(num_tries=3), arithmetic_reader, setup)
    assert [p.pid for p in kept] == ["v0", "v1"]
    assert [(r.pid, r.kind, r.reason) for r in removed] == [
        ("text_sum", "answered_without_reasoning", "answered right without reasoning in 3 of 3 tries"),
        ("text_product", "answered_without_reasoning", "answered right without reasoning in 3 of 3 tries"),
        ("zero", "answered_without_reasoning", "answered right without reasoning in 3 of 3 tries"),
    ]
    lines = cache_path(tmp_path / "cache", "hackable", 0).read_text().splitlines()
    assert [json.loads(line)["pid"] for line in lines] == [p.pid for p in problems]
    assert json.loads(lines[0])["responses"] == ["\\boxed{42}"] * 3


def test_blank_image_keeps_the_size_and_the_mean_colour_and_nothing_else():
    image = Image.new("RGB", (30, 20), "white")
    image.paste((0, 0, 0), (0, 0, 15, 20))  # left half black
    blank = blank_image(image)
    assert blank.size == (30, 20) and blank.getcolors() == [(600, (128, 128, 128))]
    assert blank_image(Image.new("L", (4, 4), 10)).getcolors() == [(16, (10, 10, 10))]  # any mode becomes RGB


def test_blind_removes_what_is_answered_with_the_image_blanked(tmp_path):
    figure = draw_figure(2)
    problems = [
        # One colour is the blind reader's only answer: right without looking at the picture.
        make_problem("prior_answer", question="How many colours are in the picture?", answer="1",
                     images=[draw_figure(1)]),
        make_problem("needs_looking", question="How many colours are in the picture?",
                     answer=str(colour_count(figure)), images=[figure]),
        make_problem("text_only", question="What is 17 + 25?", answer="42"),
    ]
    counter = ColourCounter()
    assert counter(problems[1:2], 1, 1.0) == [[f"<think>I count the colours.</think> \\boxed{{{problems[1].answer}}}"]]
    counter.images_seen.clear()  # looking, it answers right: only the blanking makes it fail below

    setup = SamplingSetup(cache_dir=tmp_path / "cache", problems_per_batch=2)
    kept, removed = filter_blind(problems, BlindConfig(num_tries=2), counter, setup)
    assert [p.pid for p in kept] == ["needs_looking", "text_only"]
    assert [(r.pid, r.step, r.kind, r.reason) for r in removed] == [
        ("prior_answer", "blind", "answered_without_image", "answered right with the image blanked in 2 of 2 tries"),
    ]
    assert sorted(counter.images_seen) == ["needs_looking", "prior_answer"]  # nothing to blank: not asked
    for pid, images in counter.images_seen.items():
        original = next(p for p in problems if p.pid == pid).images[0]
        assert images[0].size == original.size and colour_count(images[0]) == 1
    assert colour_count(problems[1].images[0]) > 1  # the input problems keep their pictures
    lines = [json.loads(line) for line in cache_path(tmp_path / "cache", "blind", 0).read_text().splitlines()]
    assert [line["pid"] for line in lines] == [p.pid for p in problems]
    assert lines[2]["responses"] == ["", ""] and lines[2]["correct"] == [False, False]


def test_difficulty_stores_pass_rates_and_drops_solved(tmp_path):
    problems = visual_problems(5)
    solver = SkillSolver({"v0": 0, "v1": 1, "v2": 5, "v3": 10, "v4": 7})
    setup = SamplingSetup(cache_dir=tmp_path / "cache", problems_per_batch=4)
    kept, removed = score_difficulty(problems, DifficultyConfig(num_samples=10), solver, setup)
    assert {p.pid: p.meta["pass_rate"] for p in kept} == {"v0": 0.0, "v1": 0.1, "v2": 0.5, "v4": 0.7}
    assert all(p.meta["pass_rate_samples"] == 10 for p in kept)
    assert [(r.pid, r.kind, r.reason) for r in removed] == [("v3", "solved", "solved by all 10 samples (pass rate 1.0)")]
    assert "pass_rate" not in problems[0].meta  # inputs are not mutated
    assert solver.calls == 2  # 5 problems in batches of 4

    kept, removed = score_difficulty(problems, DifficultyConfig(num_samples=10, drop_unsolved=True), solver, setup)
    assert [p.pid for p in kept] == ["v1", "v2", "v4"]
    assert [(r.pid, r.kind) for r in removed] == [("v0", "unsolved"), ("v3", "solved")]
    assert solver.calls == 2  # the same settings: everything came from the cache


def test_killed_run_resumes_without_recomputing_finished_problems(tmp_path):
    problems = visual_problems(10)
    solved = {p.pid: i % 4 for i, p in enumerate(problems)}
    cfg = DifficultyConfig(num_samples=4)
    setup = SamplingSetup(cache_dir=tmp_path / "cache", problems_per_batch=3)

    crashing = SkillSolver(solved, fail_after_calls=1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        score_difficulty(problems, cfg, crashing, setup)
    assert crashing.seen == ["v0", "v1", "v2"]
    assert set(read_cache(setup.cache_dir, "difficulty", _key(cfg, setup))) == {"v0", "v1", "v2"}

    resumed = SkillSolver(solved)
    kept, _ = score_difficulty(problems, cfg, resumed, setup)
    assert resumed.seen == [f"v{i}" for i in range(3, 10)]  # the first batch was not generated again
    assert resumed.calls == 3

    fresh = SkillSolver(solved)
    expected, _ = score_difficulty(problems, cfg, fresh, SamplingSetup(cache_dir=tmp_path / "fresh", problems_per_batch=3))
    assert [(p.pid, p.meta["pass_rate"]) for p in kept] == [(p.pid, p.meta["pass_rate"]) for p in expected]


def _key(cfg: DifficultyConfig, setup: SamplingSetup) -> str:
    from mmreason.curation.difficulty import settings_key

    return settings_key(cfg, setup)


def test_torn_cache_line_is_ignored_and_the_next_record_starts_on_its_own_line(tmp_path):
    problems = visual_problems(3)
    cfg = DifficultyConfig(num_samples=2)
    setup = SamplingSetup(cache_dir=tmp_path / "cache", problems_per_batch=1)
    score_difficulty(problems[:2], cfg, SkillSolver({p.pid: 1 for p in problems}), setup)
    path = cache_path(setup.cache_dir, "difficulty", 0)
    path.write_text(path.read_text() + '{"pid": "v2", "fingerp')  # killed mid-write
    solver = SkillSolver({p.pid: 1 for p in problems})
    kept, _ = score_difficulty(problems, cfg, solver, setup)
    assert solver.seen == ["v2"]
    assert [p.meta["pass_rate"] for p in kept] == [0.5, 0.5, 0.5]
    lines = path.read_text().splitlines()
    assert lines[2] == '{"pid": "v2", "fingerp' and json.loads(lines[3])["pid"] == "v2"


def test_changed_settings_or_model_are_not_served_from_the_cache(tmp_path):
    problems = visual_problems(2)
    solver = SkillSolver({"v0": 1, "v1": 2})
    setup = SamplingSetup(cache_dir=tmp_path / "cache", model_fingerprint="model-a")
    score_difficulty(problems, DifficultyConfig(num_samples=2), solver, setup)
    score_difficulty(problems, DifficultyConfig(num_samples=2, temperature=0.7), solver, setup)
    score_difficulty(problems, DifficultyConfig(num_samples=2), solver,
                     SamplingSetup(cache_dir=tmp_path / "cache", model_fingerprint="model-b"))
    score_difficulty(problems, DifficultyConfig(num_samples=2), solver, setup)  # back to the first: cached
    assert solver.calls == 3


def test_ranks_split_the_problems_and_all_see_the_merged_result(tmp_path):
    problems = visual_problems(7)
    solved = {p.pid: i % 3 for i, p in enumerate(problems)}
    barrier = threading.Barrier(2)
    solvers = [SkillSolver(solved), SkillSolver(solved)]
    results: dict[int, dict[str, list[bool]]] = {}

    def run(rank: int) -> None:
        setup = SamplingSetup(cache_dir=tmp_path / "cache", problems_per_batch=2,
                              ranks=RankContext(rank=rank, world_size=2, barrier=barrier.wait))
        results[rank] = sample_and_judge(problems, step="difficulty", generate_fn=solvers[rank], num_samples=2,
                                         temperature=1.0, setup=setup, settings_key="k")

    threads = [threading.Thread(target=run, args=(rank,)) for rank in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert solvers[0].seen == ["v0", "v2", "v4", "v6"]
    assert solvers[1].seen == ["v1", "v3", "v5"]
    assert results[0] == results[1] == {p.pid: [j < solved[p.pid] for j in range(2)] for p in problems}
    assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == ["difficulty.rank0.jsonl", "difficulty.rank1.jsonl"]


def test_a_rank_that_never_wrote_its_share_is_an_error(tmp_path):
    problems = visual_problems(4)
    setup = SamplingSetup(cache_dir=tmp_path / "cache", ranks=RankContext(rank=0, world_size=2))
    with pytest.raises(RuntimeError, match=r"2 problems have no cached result \(first: \['v1', 'v3'\]\)"):
        sample_and_judge(problems, step="difficulty", generate_fn=SkillSolver({p.pid: 1 for p in problems}),
                         num_samples=1, temperature=1.0, setup=setup, settings_key="k")


def test_generate_fn_with_the_wrong_shape_is_named(tmp_path):
    problems = visual_problems(2)
    setup = SamplingSetup(cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match=r"difficulty: generate_fn returned 1 response lists for 2 problems"):
        sample_and_judge(problems, step="difficulty", generate_fn=lambda ps, n, t: [["\\boxed{1}"] * n],
                         num_samples=2, temperature=1.0, setup=setup, settings_key="k")
    with pytest.raises(ValueError, match=r"returned 1 responses for problem 'v0', expected 2 strings"):
        sample_and_judge(problems, step="difficulty", generate_fn=lambda ps, n, t: [["x"] for _ in ps],
                         num_samples=2, temperature=1.0, setup=setup, settings_key="k")
