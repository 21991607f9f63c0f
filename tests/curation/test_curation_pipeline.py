"""The whole curation on a synthetic corpus with planted problems for every step, in process and on the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from curation_builders import (
    EVAL_QUESTIONS,
    ColourCounter,
    SkillSolver,
    arithmetic_reader,
    draw_figure,
    jpeg_copy,
    make_problem,
    write_mathvista_parquet,
)
from PIL import Image

from mmreason.config import ConfigError, load_config
from mmreason.curation.config import CurateConfig, CurationError
from mmreason.curation.pipeline import STEP_ORDER, run_curation
from mmreason.data.shards import stream_problems, write_shards
from mmreason.data.synth import generate_problems

REPO = Path(__file__).resolve().parents[2]
NUM_SAMPLES = 4
EVERY_STEP_ON = [f"{step}.enabled=true"
                 for step in ("dedup", "decontam", "hackable", "blind", "difficulty", "balance")]
"""configs/quickstart/curate.yaml runs tagging and evaluability only; these turn the other steps back on."""


def planted_corpus():
    """Synthetic problems (with the generator's own duplicates, multiple choice and true/false) plus extras."""
    problems = generate_problems(80, seed=11)
    problems += [
        make_problem("guessable", question="What is 17 + 25?", answer="42"),
        make_problem("proof", question="Prove that the triangles are congruent, then give the side length.",
                     answer="5", images=[draw_figure(50)]),
        make_problem("bad_answer", question="What is the perimeter?", answer="about twelve", images=[draw_figure(51)]),
        make_problem("eval_copy", question=EVAL_QUESTIONS[0], answer="12", images=[jpeg_copy(draw_figure(100))]),
        make_problem("eval_lookalike", question=EVAL_QUESTIONS[0], answer="12", images=[draw_figure(52)]),
        make_problem("answer_prior", question="How many colours are in the picture?", answer="1",
                     images=[draw_figure(53)]),  # the blind reader's only answer
    ]
    return problems


def level_solver(problems) -> SkillSolver:
    """Level 1 synthetic problems are always solved, level 2 half the time, level 3 never; the extras once."""
    per_level = {1: NUM_SAMPLES, 2: NUM_SAMPLES // 2, 3: 0}
    return SkillSolver({p.pid: per_level.get(p.meta.get("difficulty"), 1) for p in problems})


def pipeline_config(root: Path, *overrides: str) -> CurateConfig:
    return load_config(None, [
        f"input={root / 'input'}", f"output={root / 'out'}", "model.path=unused-generate-fns-given",
        f"difficulty.num_samples={NUM_SAMPLES}", "hackable.num_tries=2", "blind.enabled=true", "blind.num_tries=2",
        "generation.problems_per_batch=16", "shard_size=8", *overrides,
    ], schema=CurateConfig)


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    root = tmp_path_factory.mktemp("curate")
    corpus = planted_corpus()
    write_shards(corpus, root / "input", shard_size=30)
    eval_file = write_mathvista_parquet(root / "testmini.parquet", seeds=[100, 101])
    cfg = pipeline_config(root, f"eval_sets=[{eval_file}]", "balance.total=20")
    solver = level_solver(corpus)
    images_given: dict[str, int] = {}

    def reader(problems, num_samples, temperature):
        images_given.update({p.pid: len(p.images) for p in problems})
        return arithmetic_reader(problems, num_samples, temperature)

    report = run_curation(cfg, generate_fns={"hackable": reader, "blind": ColourCounter(), "difficulty": solver})
    removed = [json.loads(line) for line in (root / "out" / "removed.jsonl").read_text().splitlines()]
    return corpus, report, {r["pid"]: r for r in removed}, root / "out", images_given


def test_every_planted_problem_is_removed_by_the_right_step(curated):
    corpus, report, removed, *_ = curated
    for problem in corpus:
        if "duplicate_of" in problem.meta or "near_duplicate_of" in problem.meta:
            assert removed[problem.pid]["step"] == "dedup", problem.pid
            expected = "exact_duplicate" if "duplicate_of" in problem.meta else "near_duplicate"
            assert removed[problem.pid]["kind"] == expected
        elif problem.meta.get("kind") == "true_false":
            assert (removed[problem.pid]["step"], removed[problem.pid]["kind"]) in {
                ("evaluability", "true_false"), ("dedup", "exact_duplicate"), ("dedup", "near_duplicate")}
        elif problem.question_type == "multi_choice":
            assert (removed[problem.pid]["step"], removed[problem.pid]["kind"]) in {
                ("evaluability", "multiple_choice"), ("dedup", "exact_duplicate"), ("dedup", "near_duplicate")}
    planted = ("guessable", "answer_prior", "proof", "bad_answer", "eval_copy")
    assert {k: (removed[k]["step"], removed[k]["kind"]) for k in planted} == {
        "guessable": ("hackable", "answered_without_reasoning"),
        "answer_prior": ("blind", "answered_without_image"),
        "proof": ("evaluability", "proof"),
        "bad_answer": ("evaluability", "unverifiable_answer"),
        "eval_copy": ("decontam", "eval_match"),
    }
    assert removed["eval_copy"]["related"] == "testmini.parquet:1"
    assert removed.get("eval_lookalike", {}).get("step") not in ("dedup", "decontam")
    solved = [p.pid for p in corpus if p.meta.get("difficulty") == 1 and p.pid in removed
              and removed[p.pid]["step"] == "difficulty"]
    assert solved and all(removed[pid]["kind"] == "solved" for pid in solved)


def test_report_counts_chain_from_input_to_output(curated):
    corpus, report, removed, out, _ = curated
    data = json.loads((out / "report.json").read_text())
    assert data["input"] == len(corpus) and data["output"] == report.output == 20
    assert [s["name"] for s in data["steps"]] == list(STEP_ORDER)
    remaining = data["input"]
    for step in data["steps"]:
        assert step["enabled"] is (step["name"] != "presample")  # presample is off unless asked for
        remaining -= step["removed"]
        assert step["kept"] == remaining, step["name"]
        assert sum(step["removed_by_kind"].values()) == step["removed"]
        assert step["removed"] == sum(1 for r in removed.values() if r["step"] == step["name"])
    assert remaining == data["output"]
    assert sum(data["domains_before"].values()) == len(corpus)
    assert sum(data["domains_after"].values()) == data["output"]
    assert data["difficulty_basis"] == "pass_rate"
    scored = next(s for s in data["steps"] if s["name"] == "blind")["kept"]
    assert sum(data["difficulty_before"].values()) == scored
    assert set(data["difficulty_before"]) <= {"0.00", "0.25", "0.50", "0.75", "1.00"}
    assert "1.00" not in data["difficulty_after"]
    markdown = (out / "report.md").read_text()
    assert "| step | enabled | removed | kept |" in markdown
    assert all(f"| {name} | on |" in markdown for name in STEP_ORDER if name != "presample")
    assert "| presample | off | - |" in markdown


def test_curated_shards_hold_tagged_scored_problems(curated):
    _, report, removed, out, _ = curated
    problems = list(stream_problems(str(out), rank=0, world_size=1))
    assert len(problems) == report.output == 20
    assert len(report.shards) == 3  # 20 problems, 8 per shard
    for problem in problems:
        assert problem.pid not in removed
        assert problem.meta["domain"] and problem.meta["subject"]
        assert problem.meta["pass_rate"] * NUM_SAMPLES in (1, 2, 3) or problem.meta["pass_rate"] == 0.0
    assert {p.meta["domain"] for p in problems} == set(report.domains_after)


def test_model_steps_get_images_read_back_from_the_shards(curated):
    corpus, *_, images_given = curated
    by_pid = {p.pid: p for p in corpus}
    assert images_given and all(count == len(by_pid[pid].images) for pid, count in images_given.items())
    assert sum(images_given.values()) > 0


def test_input_problems_must_have_unique_pids_and_output_must_differ_from_input(tmp_path):
    write_shards([make_problem("a"), make_problem("b")], tmp_path / "input" / "one", shard_size=5)
    write_shards([make_problem("a", answer="3")], tmp_path / "input" / "two", shard_size=5)
    spec = f"{tmp_path / 'input' / 'one' / 'shard-000000.tar'},{tmp_path / 'input' / 'two' / 'shard-000000.tar'}"
    cfg = pipeline_config(tmp_path, "balance.total=5", f"input={spec}")
    with pytest.raises(CurationError, match="pid 'a' appears twice"):
        run_curation(cfg)
    cfg = pipeline_config(tmp_path, "balance.total=5", f"input={tmp_path / 'input' / 'one'}",
                          f"output={tmp_path / 'input' / 'one'}")
    with pytest.raises(CurationError, match="config key 'output' .* is the input directory"):
        run_curation(cfg)


def test_plots_are_written(curated):
    *_, out, _ = curated
    for name in ("domains.png", "difficulty.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.width > 300 and image.height > 200


def test_rerun_reuses_the_model_caches_and_replaces_the_shards(curated):
    corpus, report, _, out, _ = curated
    cfg = pipeline_config(out.parent, "balance.total=6", "decontam.enabled=false")
    solver = level_solver(corpus)
    hackable_calls = []

    def counting_reader(problems, num_samples, temperature):
        hackable_calls.append(len(problems))
        return arithmetic_reader(problems, num_samples, temperature)

    blind = ColourCounter()
    second = run_curation(cfg, generate_fns={"hackable": counting_reader, "blind": blind, "difficulty": solver})
    assert second.output == 6
    # eval_copy is no longer removed by decontam: it is the only problem the model steps had not seen.
    assert hackable_calls == [1] and list(blind.images_seen) == ["eval_copy"] and solver.seen == ["eval_copy"]
    assert sorted(p.name for p in out.glob("shard-*.tar")) == ["shard-000000.tar"]
    assert [s.enabled for s in second.steps] == [True, False, True, True, False, True, True, True, True]


def test_presample_caps_what_the_model_steps_see(curated, tmp_path):
    corpus, *_ = curated
    write_shards(corpus, tmp_path / "input", shard_size=40)
    cfg = pipeline_config(tmp_path, "balance.total=10", "balance.presample=15", "decontam.enabled=false")
    solver = level_solver(corpus)
    seen_by_hackable: list[str] = []

    def reader(problems, num_samples, temperature):
        seen_by_hackable.extend(p.pid for p in problems)
        return arithmetic_reader(problems, num_samples, temperature)

    report = run_curation(cfg, generate_fns={"hackable": reader, "blind": ColourCounter(), "difficulty": solver})
    presample = next(s for s in report.steps if s.name == "presample")
    assert presample.enabled and presample.kept == 15 and presample.removed_by_kind == {"over_target": presample.removed}
    assert len(seen_by_hackable) == 15 and len(solver.seen) <= 15
    assert report.output <= 10


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "data_prep/curate.py", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def test_quickstart_rl_prompt_set_is_the_free_form_problems_without_a_model(tmp_path):
    """configs/quickstart/curate.yaml as shipped: tagging and evaluability only, on the CLI."""
    corpus = planted_corpus()[-25:]
    write_shards(corpus, tmp_path / "input", shard_size=10)
    result = run_cli("--config", "configs/quickstart/curate.yaml", f"input={tmp_path / 'input'}",
                     f"output={tmp_path / 'out'}")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [s["name"] for s in report["steps"] if s["enabled"]] == ["tagging", "evaluability"]
    assert report["difficulty_basis"] == "bucket"
    kept = {p.pid: p for p in stream_problems(str(tmp_path / "out"), rank=0, world_size=1)}
    removed = [json.loads(line) for line in (tmp_path / "out" / "removed.jsonl").read_text().splitlines()]
    assert {r["step"] for r in removed} == {"evaluability"} and {"proof", "bad_answer"} <= {r["pid"] for r in removed}
    assert len(kept) + len(removed) == 25 == report["input"] and report["output"] == len(kept)
    assert "guessable" in kept and all(p.question_type == "free_form" for p in kept.values())
    assert f"25 problems in, {len(kept)} out" in result.stdout


def test_quickstart_clean_pool_config_dedups_and_decontaminates_only(tmp_path):
    """configs/quickstart/clean_pool.yaml: what warmup SFT and RL curation start from; no model, no balancing."""
    corpus = planted_corpus()
    write_shards(corpus, tmp_path / "input", shard_size=30)
    eval_file = write_mathvista_parquet(tmp_path / "testmini.parquet", seeds=[100, 101])
    result = run_cli("--config", "configs/quickstart/clean_pool.yaml", f"input={tmp_path / 'input'}",
                     f"output={tmp_path / 'out'}", f"eval_sets=[{eval_file}]")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    records = [json.loads(line) for line in (tmp_path / "out" / "removed.jsonl").read_text().splitlines()]
    removed = {record["pid"]: record for record in records}
    assert {r["step"] for r in removed.values()} == {"dedup", "decontam"}
    assert removed["eval_copy"]["step"] == "decontam"
    planted_duplicates = {p.pid for p in corpus if "duplicate_of" in p.meta or "near_duplicate_of" in p.meta}
    assert planted_duplicates and planted_duplicates <= set(removed)
    assert report["output"] == len(corpus) - len(removed)
    kept = {p.pid for p in stream_problems(str(tmp_path / "out"), rank=0, world_size=1)}
    # Multiple choice and true/false stay: warmup SFT may learn from them (RL curation removes them later).
    assert any(p.question_type == "multi_choice" and p.pid in kept for p in corpus)


def test_cli_errors_name_the_key():
    result = run_cli("--config", "configs/quickstart/curate.yaml", "dedup.max_distanse=3")
    assert result.returncode == 2 and "unknown key 'dedup.max_distanse'" in result.stderr


def test_missing_input_names_the_key(tmp_path):
    cfg = pipeline_config(tmp_path, "balance.total=5")
    with pytest.raises(CurationError, match=r"config key 'input' .*does not exist"):
        run_curation(cfg)


@pytest.mark.parametrize(
    "override, message",
    [
        ("dedup.max_distance=256", "dedup.max_distance"),
        ("dedup.skew_kept_ratio=1.5", "dedup.skew_kept_ratio"),
        ("dedup.skew_min_problems=0", "dedup.skew_min_problems"),
        ("hackable.temperature=0", "greedy decoding"),
        ("balance.total=0", "balance.total"),
        ("balance.difficulty_weights.trivial=1", "balance.difficulty_weights.trivial"),
        ("eval_sets=[/no/such/file.parquet]", "eval_sets[0]"),
        ("model.path=", "model.path"),
        ("balance.presample=5", "balance.presample"),
        ("hackable.template=no_such_template", "hackable.template"),
        ("blind.temperature=0", "blind.temperature"),
        ("blind.num_tries=0", "blind.num_tries"),
        ("generation.engine=sglang", "generation.engine"),
        ("evaluability.proof_patterns=[(unclosed]", "evaluability.proof_patterns[0]"),
    ],
)
def test_config_validation_names_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(REPO / "configs" / "quickstart" / "curate.yaml", [*EVERY_STEP_ON, override], schema=CurateConfig)


def test_a_model_step_template_is_checked_when_the_step_is_enabled():
    quickstart = REPO / "configs" / "quickstart" / "curate.yaml"
    load_config(quickstart, ["blind.template=no_such_template"], schema=CurateConfig)  # blind is off there
    with pytest.raises(ConfigError, match="blind.template"):
        load_config(quickstart, ["blind.enabled=true", "blind.template=no_such_template"], schema=CurateConfig)


def test_both_shipped_configs_load():
    real = load_config(REPO / "configs" / "curate.yaml", ["decontam.enabled=false"], schema=CurateConfig)
    assert real.model.path == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert (real.hackable.num_tries, real.difficulty.num_samples, real.difficulty.temperature) == (8, 10, 1.0)
    quick = load_config(REPO / "configs" / "quickstart" / "curate.yaml", [], schema=CurateConfig)
    assert quick.model.path == "runs/quickstart/sft"


def test_presample_without_a_model_step_is_refused():
    """Presampling only saves model-step work; with every model step off it would just drop problems."""
    quickstart = REPO / "configs" / "quickstart" / "curate.yaml"  # its model steps are off
    with pytest.raises(ConfigError, match=r"balance.presample.*none of \['hackable', 'blind', 'difficulty'\]"):
        load_config(quickstart, ["balance.presample=800"], schema=CurateConfig)
    load_config(quickstart, ["balance.presample=800", "difficulty.enabled=true"], schema=CurateConfig)
