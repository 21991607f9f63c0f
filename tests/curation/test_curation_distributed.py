"""The curation on two ranks under the deepspeed launcher (CPU, gloo): split, barrier, merge, rank-0 outputs."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from curation_builders import make_problem

from mmreason.data.shards import stream_problems, write_shards
from mmreason.data.synth import generate_problems

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@pytest.mark.skipif(shutil.which("deepspeed", path=str(Path(sys.executable).parent)) is None,
                    reason="the deepspeed launcher is not installed")
def test_two_ranks_split_the_model_steps_and_rank0_writes_once(tmp_path):
    problems = generate_problems(14, seed=21, mc_frac=0, tf_frac=0, dup_frac=0, near_dup_frac=0)
    problems.append(make_problem("guessable", question="What is 2 + 3?", answer="5"))
    write_shards(problems, tmp_path / "input", shard_size=6)
    out = tmp_path / "out"
    launcher = str(Path(sys.executable).parent / "deepspeed")
    result = subprocess.run(
        [launcher, "--num_gpus", "2", "--master_port", "29731", str(HERE / "two_rank_curation.py"),
         "--config", "configs/quickstart/curate.yaml", f"input={tmp_path / 'input'}", f"output={out}",
         "model.path=unused-generate-fns-given", "hackable.enabled=true", "hackable.num_tries=2",
         "difficulty.enabled=true", "difficulty.num_samples=3", "balance.enabled=true", "balance.total=100",
         "generation.problems_per_batch=2"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    seen = [json.loads((out / f"seen.rank{rank}.json").read_text()) for rank in (0, 1)]
    pids = [p.pid for p in problems]
    # Every problem is generated for exactly once, by rank index % 2.
    assert seen[0]["hackable"] == pids[0::2] and seen[1]["hackable"] == pids[1::2]
    survivors = [pid for pid in pids if pid != "guessable"]
    assert seen[0]["difficulty"] == survivors[0::2] and seen[1]["difficulty"] == survivors[1::2]
    for step in ("hackable", "difficulty"):
        for rank in (0, 1):
            assert (out / "cache" / f"{step}.rank{rank}.jsonl").is_file()
    report = json.loads((out / "report.json").read_text())
    removed = [json.loads(line) for line in (out / "removed.jsonl").read_text().splitlines()]
    # Pass rates cycle 0..3 of 3 by input index: those at 3/3 are solved and dropped.
    solved = [pid for index, pid in enumerate(pids) if index % 4 == 3 and pid != "guessable"]
    assert sorted(r["pid"] for r in removed if r["step"] == "difficulty") == sorted(solved)
    assert [r["pid"] for r in removed if r["step"] == "hackable"] == ["guessable"]
    curated = list(stream_problems(str(out), rank=0, world_size=1))
    assert report["output"] == len(curated) == len(pids) - 1 - len(solved)
    assert sorted(str(p) for p in out.glob("shard-*.tar")) == sorted(report["shards"])
