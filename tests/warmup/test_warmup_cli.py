"""`python data_prep/build_warmup.py`: the real command line on synthetic shards, and config errors naming keys."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from mmreason.config import ConfigError, RewardConfig, load_config
from mmreason.data.shards import stream_problems, write_shards
from mmreason.data.synth import FAMILIES, generate_problems
from mmreason.rewards import score
from mmreason.warmup.build import run_warmup
from mmreason.warmup.config import WarmupConfig, WarmupError

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "quickstart" / "warmup.yaml"
REAL_SCALE = REPO / "configs" / "warmup.yaml"
SCRIPT = REPO / "data_prep" / "build_warmup.py"


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_cli_writes_verified_template_shards_and_a_report(tmp_path):
    problems = generate_problems(42, seed=31)
    problems[5] = problems[5].copy(solution=None)  # no reference: skipped and counted
    write_shards(problems, tmp_path / "in", shard_size=20)
    out = tmp_path / "out"
    result = run_script("--config", str(QUICKSTART), f"input={tmp_path / 'in'}", f"output={out}",
                        "template.reflection_prob=0.5", "shard_size=16")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "42 problems in, 41 records out" in result.stdout

    report = json.loads((out / "report.json").read_text())
    assert report["input"] == 42 and report["output"] == 41
    template = report["sources"]["template"]
    assert (template["problems"], template["kept"], template["records"]) == (42, 41, 41)
    assert template["dropped"] == {"no_solution": 1}
    assert 10 <= template["reflected"] <= 31  # about half
    expected_totals = Counter(p.meta["family"] for p in problems)
    assert {family: counts["template"]["total"] for family, counts in report["families"].items()} == expected_totals
    skipped_family = problems[5].meta["family"]
    assert report["families"][skipped_family]["template"]["kept"] == expected_totals[skipped_family] - 1
    assert set(report["families"]) == set(FAMILIES)
    markdown = (out / "report.md").read_text()
    assert "| template | 41 / 42 | 41 | no_solution: 1 |" in markdown
    assert (out / "config.yaml").is_file()

    shards = sorted(out.glob("shard-*.tar"))
    assert len(shards) == 3  # 41 records, 16 per shard
    written = list(stream_problems(out))
    by_pid = {p.pid: p for p in problems}
    assert [r.pid for r in written] == [p.pid for p in problems if p.solution]
    for record in written:
        assert record.meta["warmup_source"] == "template"
        assert record.solution.startswith("<think>\n") and "</think>\n\\boxed{" in record.solution
        assert len(record.images) == len(by_pid[record.pid].images) == 1
        scores = score(record.solution, by_pid[record.pid], RewardConfig())
        assert scores.accuracy == 1 and scores.format == 1


def test_cli_names_an_unknown_key_and_a_bad_source(tmp_path):
    unknown = run_script("--config", str(QUICKSTART), "input=x", f"output={tmp_path}", "template.reflection=0.3")
    assert unknown.returncode == 2 and "template.reflection" in unknown.stderr
    assert "reflection_prob" in unknown.stderr  # the valid keys of the section are listed
    bad_source = run_script("--config", str(QUICKSTART), "input=x", f"output={tmp_path}", "sources=[template,teacher]")
    assert bad_source.returncode == 2 and "sources[1]" in bad_source.stderr and "'teacher'" in bad_source.stderr


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["sources=[]"], "sources"),
        (["sources=[template,template]"], "sources"),
        (["sources=[rejection]"], "rejection.model.path"),
        (["template.reflection_prob=1.5"], "template.reflection_prob"),
        (["template.choice_answer=number"], "template.choice_answer"),
        (["rejection.keep=longest"], "rejection.keep"),
        (["rejection.engine=sglang"], "rejection.engine"),
        (["rejection.engine=vllm", "rejection.device_map=auto"], "rejection.engine"),
        (["rejection.temperature=0"], "rejection.temperature"),
        (["rejection.num_samples=0"], "rejection.num_samples"),
        (["sources=[rejection]", "rejection.model.path=m", "rejection.prompt_template=nope"],
         "rejection.prompt_template"),
        (["shard_size=0"], "shard_size"),
        (["limit=-1"], "limit"),
        (["limit=many"], "limit"),
        (["family_limits={shape_count: -1}"], "family_limits.shape_count"),
    ],
)
def test_config_errors_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("[", r"\[")):
        load_config(QUICKSTART, ["input=x", "output=y", *overrides], schema=WarmupConfig)


def test_both_shipped_configs_load():
    quick = load_config(QUICKSTART, [], schema=WarmupConfig)
    assert quick.sources == ["template"] and quick.template.reflection_prob == 0.0
    real = load_config(REAL_SCALE, [], schema=WarmupConfig)
    assert real.sources == ["template", "rejection"] and real.template.reflection_prob == 0.3
    assert (real.rejection.num_samples, real.rejection.keep) == (8, "shortest")
    assert real.rejection.model.path == "Qwen/Qwen2.5-VL-72B-Instruct"


def test_missing_input_names_the_key(tmp_path):
    cfg = load_config(QUICKSTART, [f"input={tmp_path / 'none'}", f"output={tmp_path / 'out'}"], schema=WarmupConfig)
    with pytest.raises(WarmupError, match="config key 'input'"):
        run_warmup(cfg)


def test_limit_takes_the_first_problems_and_a_rerun_replaces_old_shards(tmp_path):
    problems = generate_problems(12, seed=32)
    write_shards(problems, tmp_path / "in", shard_size=5)
    out = tmp_path / "out"
    common = [f"input={tmp_path / 'in'}", f"output={out}", "shard_size=2"]
    first = run_warmup(load_config(QUICKSTART, common, schema=WarmupConfig))
    assert first.input == 12 and len(first.shards) == 6
    second = run_warmup(load_config(QUICKSTART, [*common, "limit=3"], schema=WarmupConfig))
    assert second.input == 3 and len(second.shards) == 2
    assert [r.pid for r in stream_problems(out)] == [p.pid for p in problems[:3]]


def test_family_limits_cap_a_family_before_limit_and_the_report_counts_the_rest(tmp_path):
    problems = generate_problems(40, seed=34)
    write_shards(problems, tmp_path / "in", shard_size=10)
    family = Counter(p.meta["family"] for p in problems).most_common(1)[0][0]
    out = tmp_path / "out"
    cfg = load_config(QUICKSTART, [f"input={tmp_path / 'in'}", f"output={out}", "limit=30",
                                   f"family_limits={{{family}: 2}}"], schema=WarmupConfig)
    report = run_warmup(cfg)
    # The first two of the capped family, then every other problem in input order until `limit`.
    expected, taken = [], 0
    for problem in problems:
        if problem.meta["family"] == family:
            if taken == 2:
                continue
            taken += 1
        expected.append(problem.pid)
    expected = expected[:30]
    assert [r.pid for r in stream_problems(out)] == expected
    assert report.input == len(expected)
    last_read = [p.pid for p in problems].index(expected[-1])
    passed_over = sum(p.meta["family"] == family for p in problems[:last_read + 1]) - 2
    assert report.over_family_limit == {family: passed_over} and passed_over > 0
    assert f"family_limits.{family} was reached" in (out / "report.md").read_text()


def test_missing_teacher_names_the_key(tmp_path):
    write_shards(generate_problems(2, seed=33), tmp_path / "in", shard_size=2)
    cfg = load_config(QUICKSTART, [f"input={tmp_path / 'in'}", f"output={tmp_path / 'out'}", "sources=[rejection]",
                                   f"rejection.model.path={tmp_path / 'no-such-teacher'}"], schema=WarmupConfig)
    with pytest.raises(WarmupError, match="config key 'rejection.model.path'.*no such checkpoint directory"):
        run_warmup(cfg)
