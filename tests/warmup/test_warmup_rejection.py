"""The rejection source: verify sampled replies, keep the shortest (or all) accepted ones, merge ranks' parts."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mmreason.config import RewardConfig, load_config
from mmreason.data.shards import stream_problems, write_shards
from mmreason.data.synth import generate_problems
from mmreason.problem import Problem
from mmreason.rewards import score
from mmreason.warmup.build import run_warmup
from mmreason.warmup.config import WarmupConfig
from mmreason.warmup.rejection import (
    Trace,
    judge_trace,
    read_parts,
    rejection_records,
    select_traces,
    settings_fingerprint,
)

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "quickstart" / "warmup.yaml"


def seven() -> Problem:
    return Problem(pid="sum-1", question="What is 3 + 4?", answer="7", answer_type="integer",
                   meta={"family": "arithmetic_text"})


# Hand-written replies to `seven()`, from a teacher that sometimes rambles, errs or forgets the format.
SHORT_RIGHT = "<think>\n3 + 4 = 7.\n</think>\n\\boxed{7}"
LONG_RIGHT = "<think>\nThree plus four. Count up from 3: 4, 5, 6, 7. So 3 + 4 = 7.\n</think>\nThe sum is \\boxed{7}."
WRONG = "<think>\n3 + 4 = 8.\n</think>\n\\boxed{8}"
NO_THINK = "3 + 4 = 7, so \\boxed{7}"  # right answer, wrong format
CUT_OFF = "<think>\n3 + 4 = 7, so \\boxed{7} and"  # never closed its reasoning


def traces_for(texts: list[str]) -> list[Trace]:
    return [judge_trace(text, seven(), num_tokens=len(text.split())) for text in texts]


def test_judge_accepts_only_format_one_and_accuracy_one():
    judged = traces_for([SHORT_RIGHT, LONG_RIGHT, WRONG, NO_THINK, CUT_OFF])
    assert [t.accepted for t in judged] == [True, True, False, False, False]
    assert (judged[2].format, judged[2].accuracy, judged[2].reason) == (1.0, 0.0, "wrong")
    assert (judged[3].format, judged[3].accuracy) == (0.0, 1.0)
    assert judged[4].reason == "unclosed_think"


def test_keep_shortest_takes_the_shortest_accepted_reply():
    judged = traces_for([WRONG, LONG_RIGHT, NO_THINK, SHORT_RIGHT])
    assert select_traces(judged, "shortest") == [3]
    assert select_traces(judged, "all") == [1, 3]
    # NO_THINK is the shortest of all, but its format is wrong; WRONG is short but wrong.
    assert judged[2].num_tokens < judged[3].num_tokens and judged[0].num_tokens <= judged[1].num_tokens


def test_keep_shortest_breaks_ties_by_sample_order_and_keeps_nothing_without_an_accepted_reply():
    assert select_traces(traces_for([SHORT_RIGHT, WRONG, SHORT_RIGHT]), "shortest") == [0]
    assert select_traces(traces_for([WRONG, NO_THINK, CUT_OFF]), "shortest") == []
    assert select_traces(traces_for([WRONG, NO_THINK, CUT_OFF]), "all") == []
    with pytest.raises(ValueError, match="rejection.keep"):
        select_traces(traces_for([SHORT_RIGHT]), "longest")


def test_records_carry_the_reply_as_solution_and_name_their_source():
    judged = traces_for([WRONG, LONG_RIGHT, SHORT_RIGHT])
    records = rejection_records(seven(), judged, "all", teacher="teacher-dir")
    assert [r.pid for r in records] == ["sum-1-rej1", "sum-1-rej2"]
    assert [r.solution for r in records] == [LONG_RIGHT, SHORT_RIGHT]
    for record in records:
        assert record.meta["warmup_source"] == "rejection" and record.meta["warmup_of"] == "sum-1"
        assert record.meta["family"] == "arithmetic_text" and record.meta["teacher"] == "teacher-dir"
        record.validate()


def test_read_parts_keeps_current_settings_and_skips_torn_lines(tmp_path):
    line = lambda pid, key, texts: json.dumps(  # noqa: E731
        {"pid": pid, "fingerprint": key, "traces": [vars(t) for t in traces_for(texts)]})
    (tmp_path / "rank0.jsonl").write_text(
        line("a", "new", [SHORT_RIGHT]) + "\n" + line("b", "old", [WRONG]) + "\n" + '{"pid": "c", "fingerp')
    (tmp_path / "rank1.jsonl").write_text(line("b", "new", [WRONG, LONG_RIGHT]) + "\n")
    merged = read_parts(tmp_path, "new")
    assert sorted(merged) == ["a", "b"]
    assert [t.text for t in merged["b"]] == [WRONG, LONG_RIGHT]
    assert merged["a"][0].accepted and not merged["b"][0].accepted


def test_fingerprint_changes_with_sampling_settings():
    cfg = load_config(QUICKSTART, ["input=x", "output=y"], schema=WarmupConfig)
    base = settings_fingerprint(cfg.rejection, 0)
    assert settings_fingerprint(cfg.rejection, 0) == base
    assert settings_fingerprint(cfg.rejection, 1) != base
    cfg.rejection.max_new_tokens += 1
    assert settings_fingerprint(cfg.rejection, 0) != base


# ---------------------------------------------------------------- a real teacher run (tiny checkpoint)

NUM_PROBLEMS, K = 3, 2


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory, tiny_checkpoint):
    root = tmp_path_factory.mktemp("rejection")
    problems = generate_problems(NUM_PROBLEMS, seed=21)
    write_shards(problems, root / "in", shard_size=2)
    overrides = [
        f"input={root / 'in'}", f"output={root / 'out'}", "sources=[template,rejection]",
        f"rejection.model.path={tiny_checkpoint}", "rejection.model.dtype=float32",
        "rejection.device_map=auto",  # one process spreading the teacher over its devices (here: the CPU)
        f"rejection.num_samples={K}", "rejection.max_new_tokens=8", "rejection.batch_size=4", "rejection.keep=all",
    ]
    cfg = load_config(QUICKSTART, overrides, schema=WarmupConfig)
    report = run_warmup(cfg)
    return cfg, problems, report, root / "out"


def test_teacher_run_samples_k_replies_per_problem(teacher_run):
    cfg, problems, report, out = teacher_run
    tally = report.sources["rejection"]
    assert (tally.problems, tally.sampled) == (NUM_PROBLEMS, NUM_PROBLEMS * K)
    lines = [json.loads(text) for text in (out / "rejection_parts" / "rank0.jsonl").read_text().splitlines()]
    assert [line["pid"] for line in lines] == [p.pid for p in problems]
    assert all(len(line["traces"]) == K for line in lines)
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["sources"]["rejection"]["sampled"] == NUM_PROBLEMS * K
    assert sum(f["rejection"]["total"] for f in on_disk["families"].values()) == NUM_PROBLEMS


def test_teacher_run_keeps_exactly_the_replies_the_reward_accepts(teacher_run):
    cfg, problems, report, out = teacher_run
    by_pid = {p.pid: p for p in problems}
    expected_kept = []
    for line in (out / "rejection_parts" / "rank0.jsonl").read_text().splitlines():
        record = json.loads(line)
        for index, trace in enumerate(record["traces"]):
            fresh = score(trace["text"], by_pid[record["pid"]], RewardConfig())
            assert (trace["accuracy"], trace["format"]) == (fresh.accuracy, fresh.format)
            if fresh.accuracy == 1 and fresh.format == 1:
                expected_kept.append(f"{record['pid']}-rej{index}")
    written = list(stream_problems(out))
    from_teacher = [r for r in written if r.meta["warmup_source"] == "rejection"]
    assert [r.pid for r in from_teacher] == expected_kept
    assert report.sources["rejection"].accepted == len(expected_kept)
    for record in from_teacher:
        scores = score(record.solution, by_pid[record.meta["warmup_of"]], RewardConfig())
        assert scores.accuracy == 1 and scores.format == 1
    # The template source ran alongside: one verified record per problem.
    assert sum(r.meta["warmup_source"] == "template" for r in written) == NUM_PROBLEMS
    assert report.output == len(written)


def test_restarted_run_reuses_the_sampled_replies(teacher_run):
    cfg, problems, report, out = teacher_run
    part = out / "rejection_parts" / "rank0.jsonl"
    before = part.read_bytes()
    again = run_warmup(cfg)
    assert part.read_bytes() == before  # nothing sampled again
    assert again.to_json() == report.to_json()


def test_two_ranks_under_deepspeed_split_the_problems(tmp_path, tiny_checkpoint):
    """The real launcher: rank r samples problems i % 2 == r; rank 0 alone renders templates and writes."""
    deepspeed = shutil.which("deepspeed", path=str(Path(sys.executable).parent)) or shutil.which("deepspeed")
    assert deepspeed, "the deepspeed launcher is installed with the package"
    problems = generate_problems(4, seed=22)
    write_shards(problems, tmp_path / "in", shard_size=3)
    out = tmp_path / "out"
    command = [
        deepspeed, "--num_gpus", "2", "--master_port", str(29500 + os.getpid() % 1000),
        str(REPO / "data_prep" / "build_warmup.py"), "--config", str(QUICKSTART),
        f"input={tmp_path / 'in'}", f"output={out}", "sources=[template,rejection]",
        f"rejection.model.path={tiny_checkpoint}", "rejection.model.dtype=float32",
        f"rejection.num_samples={K}", "rejection.max_new_tokens=4", "rejection.batch_size=4",
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    parts = {}
    for rank in (0, 1):
        lines = (out / "rejection_parts" / f"rank{rank}.jsonl").read_text().splitlines()
        parts[rank] = [json.loads(line)["pid"] for line in lines]
    assert parts == {0: [problems[0].pid, problems[2].pid], 1: [problems[1].pid, problems[3].pid]}
    report = json.loads((out / "report.json").read_text())
    assert report["input"] == 4 and report["sources"]["rejection"]["sampled"] == 4 * K
    assert report["sources"]["template"]["records"] == 4
    written = [r.pid for r in stream_problems(out)]
    assert len(written) == len(set(written)) == report["output"] >= 4  # one writer: no record twice
