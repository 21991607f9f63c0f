"""Shard writers own their output directory; readers report what truncation lost (issue 26)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from mmreason.data.shards import SHARD_MANIFEST, SkipCounter, stream_problems, write_shards
from mmreason.problem import Problem
from shard_surgery import cut_after_sample


def tiny(index: int) -> Problem:
    return Problem(pid=f"q{index}", question=f"{index} + 1?", answer=str(index + 1), answer_type="integer",
                   images=[Image.new("RGB", (8, 8), (index * 20 % 256, 0, 0))])


def test_shard_cut_at_a_block_boundary_is_reported_with_the_samples_lost(tmp_path, caplog):
    [shard] = write_shards([tiny(i) for i in range(6)], tmp_path / "out", shard_size=6)
    cut_after_sample(shard, 2)
    skipped = SkipCounter()
    with caplog.at_level(logging.WARNING, logger="mmreason.data.shards"):
        problems = list(stream_problems(tmp_path / "out", skipped=skipped))
    assert [p.pid for p in problems] == ["q0", "q1"]
    assert skipped.truncated == {str(shard): 4} and skipped.lost == 4
    assert "2 of the 6 samples" in caplog.text and "4 lost" in caplog.text


def test_truncation_without_a_manifest_is_still_reported(tmp_path, caplog):
    [shard] = write_shards([tiny(i) for i in range(6)], tmp_path / "out", shard_size=6)
    (tmp_path / "out" / SHARD_MANIFEST).unlink()
    cut_after_sample(shard, 3)
    skipped = SkipCounter()
    with caplog.at_level(logging.WARNING, logger="mmreason.data.shards"):
        assert len(list(stream_problems(str(shard), skipped=skipped))) == 3
    assert skipped.truncated == {str(shard): None}
    assert "no end-of-archive marker" in caplog.text and "unknown" in caplog.text


def test_intact_shards_report_nothing(tmp_path):
    write_shards([tiny(i) for i in range(7)], tmp_path / "out", shard_size=3)
    skipped = SkipCounter()
    assert len(list(stream_problems(tmp_path / "out", skipped=skipped))) == 7
    assert skipped.truncated == {} and skipped.count == 0
    assert json.loads((tmp_path / "out" / SHARD_MANIFEST).read_text())["samples"] == {
        "shard-000000.tar": 3, "shard-000001.tar": 3, "shard-000002.tar": 1}


def run_cli(repo_root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=repo_root, capture_output=True, text=True, timeout=300)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    for row in rows:
        if "image" in row and not (path.parent / row["image"]).exists():
            Image.new("RGB", (8, 8)).save(path.parent / row["image"])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_reconverting_to_the_same_out_leaves_only_the_new_shards(tmp_path, repo_root):
    out = tmp_path / "shards"
    three = write_jsonl(tmp_path / "in3" / "p.jsonl", [{"image": "a.png", "question": f"q{i}", "answer": str(i)}
                                                       for i in range(3)])
    one = write_jsonl(tmp_path / "in1" / "p.jsonl", [{"image": "a.png", "question": "q", "answer": "1"}])
    assert run_cli(repo_root, "data_prep/convert.py", "--format", "jsonl", "--input", str(three), "--out", str(out),
                   "--shard-size", "1").returncode == 0
    assert len(list(out.glob("*.tar"))) == 3
    assert run_cli(repo_root, "data_prep/convert.py", "--format", "jsonl", "--input", str(one), "--out", str(out),
                   "--shard-size", "1").returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["shard-000000.tar", SHARD_MANIFEST]
    assert [p.pid for p in stream_problems(out)] == ["p-1"]


def test_failed_conversion_keeps_the_previous_shards_and_leaves_no_partial_ones(tmp_path, repo_root):
    out = tmp_path / "shards"
    good = write_jsonl(tmp_path / "good" / "p.jsonl", [{"image": "a.png", "question": "q", "answer": "1"}])
    assert run_cli(repo_root, "data_prep/convert.py", "--format", "jsonl", "--input", str(good), "--out",
                   str(out)).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = write_jsonl(tmp_path / "bad" / "p.jsonl", [{"image": "a.png", "question": f"q{i}", "answer": str(i)}
                                                     for i in range(3)] + [{"image": "a.png", "question": "no answer"}])
    result = run_cli(repo_root, "data_prep/convert.py", "--format", "jsonl", "--input", str(bad), "--out", str(out),
                     "--shard-size", "1")
    assert result.returncode == 2 and "line 4" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_synth_rerun_with_fewer_problems_leaves_only_its_new_shards(tmp_path, repo_root):
    out = tmp_path / "synth"
    for num in ("6", "2"):
        result = run_cli(repo_root, "data_prep/synth_visual_math.py", "--out", str(out), "--num", num, "--seed", "0",
                         "--levels", "1", "--shard-size", "2")
        assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.glob("*.tar")) == ["shard-000000.tar"]
    assert json.loads((out / "manifest.json").read_text())["total"] == 2


def test_rl_prompt_loading_counts_what_it_skips(tmp_path, caplog):
    from mmreason.rl.loop import load_prompt_set

    [shard] = write_shards([tiny(i) for i in range(6)], tmp_path / "out", shard_size=6)
    cut_after_sample(shard, 4)
    with caplog.at_level(logging.WARNING, logger="mmreason.rl.loop"):
        assert len(load_prompt_set(str(tmp_path / "out"))) == 4
    assert "2 samples lost in 1 truncated shard" in caplog.text


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
