"""`python -m mmreason.eval.cli run` with the tiny checkpoint on MathVista-schema files with real images.

The tiny model has random weights, so its answers are wrong; the tests check
the structure of what `run` writes, that `score` re-scores it identically, and
that two ranks produce the same predictions as one process.
"""

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image, ImageDraw

from mmreason.ports import free_port
from mmreason.eval.cli import main

MAX_NEW_TOKENS = 8


def dots_png(count: int, size=(112, 112)) -> bytes:
    """A real picture: `count` dots on white, PNG-encoded (what MathVista's decoded_image holds)."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for i in range(count):
        x, y = 14 + 24 * (i % 4), 14 + 30 * (i // 4)
        draw.ellipse([x, y, x + 16, y + 16], fill=(20 + 40 * i, 60, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def mathvista_row(pid, question, answer, question_type, answer_type, image, choices=None, precision=None):
    return {
        "pid": pid, "question": question, "image": f"images/{pid}.png",
        "decoded_image": {"bytes": image, "path": f"images/{pid}.png"},
        "choices": choices, "unit": None, "precision": precision, "answer": answer,
        "question_type": question_type, "answer_type": answer_type,
        "metadata": {"task": "figure question answering" if int(pid) % 2 else "math word problem",
                     "skills": ["arithmetic reasoning"], "source": "handmade", "language": "english"},
        "query": f"Hint: Please answer the question and provide the final answer at the end.\nQuestion: {question}",
    }


ROWS = [
    mathvista_row("1", "How many dots are there?", "3", "free_form", "integer", dots_png(3)),
    mathvista_row("2", "Which count is shown?", "5", "multi_choice", "text", dots_png(5, (84, 140)),
                  choices=["4", "5", "6"]),
    mathvista_row("3", "Half the number of dots?", "1.0", "free_form", "float", dots_png(2), precision=1.0),
    mathvista_row("4", "What color are the dots?", "blue", "free_form", "text", dots_png(1)),
    mathvista_row("5", "How many dots are there?", "7", "free_form", "integer", dots_png(7, (140, 112))),
]
PIDS = [row["pid"] for row in ROWS]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The same five problems as jsonl (images base64) and as parquet (images as bytes)."""
    root = tmp_path_factory.mktemp("mathvista")
    with (root / "testmini.jsonl").open("w") as file:
        for row in ROWS:
            record = dict(row, decoded_image={**row["decoded_image"],
                                              "bytes": base64.b64encode(row["decoded_image"]["bytes"]).decode()})
            file.write(json.dumps(record) + "\n")
    pq.write_table(pa.Table.from_pylist(ROWS), root / "testmini.parquet")
    return root


def run_args(checkpoint, data, out, *extra):
    return ["run", "--model", str(checkpoint), "--data", str(data), "--out", str(out),
            "--max-new-tokens", str(MAX_NEW_TOKENS), "--batch-size", "2", *extra]


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def greedy_run(tiny_checkpoint, data_dir, tmp_path_factory):
    """One greedy run over the jsonl file, shared by the structure, re-scoring and two-rank tests.

    One prompt per generate call and one thread, as each rank of the two-rank test runs: every
    answer is then computed by the same kernels on the same inputs, so the predictions must match.
    """
    out = tmp_path_factory.mktemp("greedy")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(run_args(tiny_checkpoint, data_dir / "testmini.jsonl", out, "--batch-size", "1")) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def test_greedy_run_writes_every_output(greedy_run, capsys):
    predictions = read_jsonl(greedy_run / "predictions.jsonl")
    assert [p["pid"] for p in predictions] == PIDS  # one line per problem, in the data's order
    assert all(isinstance(p["response"], str) and "sample" not in p for p in predictions)
    assert all(1 <= p["num_tokens"] <= MAX_NEW_TOKENS for p in predictions)

    scores = json.loads((greedy_run / "scores.json").read_text())
    assert scores["overall"]["total"] == len(ROWS)
    assert 0.0 <= scores["overall"]["accuracy"] <= 1.0
    assert scores["overall"]["accuracy"] == scores["overall"]["correct"] / len(ROWS)
    assert scores["missing"] == []
    assert scores["samples"] == 1 and scores["per_sample_accuracy"] == [scores["overall"]["accuracy"]]
    assert scores["response_length"] == pytest.approx(sum(p["num_tokens"] for p in predictions) / len(ROWS))
    assert set(scores["by"]) >= {"question_type", "answer_type", "task", "skills", "source"}

    rows = read_jsonl(greedy_run / "per_problem.jsonl")
    assert [r["pid"] for r in rows] == PIDS
    for row, prediction, source in zip(rows, predictions, ROWS):
        assert row["response"] == prediction["response"] and row["answer"] == source["answer"]
        assert isinstance(row["correct"], bool) and row["missing"] is False
    assert sum(r["correct"] for r in rows) == scores["overall"]["correct"]

    generation = json.loads((greedy_run / "generation.json").read_text())
    assert generation["temperature"] == 0.0 and generation["samples"] == 1
    assert generation["template"] == "mathvista_query" and generation["max_new_tokens"] == MAX_NEW_TOKENS
    assert generation["num_problems"] == len(ROWS) and generation["world_size"] == 1
    assert generation["response_length"] == scores["response_length"]
    assert "Overall:" in (greedy_run / "scores.md").read_text()
    assert "mean response length (tokens)" in (greedy_run / "scores.md").read_text()


def test_score_subcommand_reproduces_run_scores(greedy_run, data_dir, tmp_path):
    out = tmp_path / "rescored"
    command = [sys.executable, "-m", "mmreason.eval.cli", "score", "--data", str(data_dir / "testmini.jsonl"),
               "--predictions", str(greedy_run / "predictions.jsonl"), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "scores.json").read_text()) == json.loads((greedy_run / "scores.json").read_text())
    assert read_jsonl(out / "per_problem.jsonl") == read_jsonl(greedy_run / "per_problem.jsonl")
    assert "Overall:" in done.stdout


def test_limit_on_parquet_with_template(tiny_checkpoint, data_dir, tmp_path):
    out = tmp_path / "limited"
    assert main(run_args(tiny_checkpoint, data_dir / "testmini.parquet", out, "--limit", "2",
                         "--template", "r1_boxed", "--system-prompt", "You are a careful solver.")) == 0
    assert [p["pid"] for p in read_jsonl(out / "predictions.jsonl")] == PIDS[:2]
    scores = json.loads((out / "scores.json").read_text())
    assert scores["overall"]["total"] == 2
    generation = json.loads((out / "generation.json").read_text())
    assert generation["limit"] == 2 and generation["template"] == "r1_boxed"
    assert generation["system_prompt"] == "You are a careful solver."


def test_samples_give_pass_at_1_averaged(tiny_checkpoint, data_dir, tmp_path):
    out = tmp_path / "sampled"
    assert main(run_args(tiny_checkpoint, data_dir / "testmini.jsonl", out, "--samples", "2",
                         "--temperature", "1.0", "--seed", "3")) == 0
    predictions = read_jsonl(out / "predictions.jsonl")
    assert [(p["pid"], p["sample"]) for p in predictions] == [(pid, s) for pid in PIDS for s in (0, 1)]
    assert all(1 <= p["num_tokens"] <= MAX_NEW_TOKENS for p in predictions)

    scores = json.loads((out / "scores.json").read_text())
    assert scores["samples"] == 2
    assert scores["overall"]["total"] == 2 * len(ROWS)  # every (problem, sample) pair is a trial
    per_sample = scores["per_sample_accuracy"]
    assert len(per_sample) == 2
    assert scores["overall"]["accuracy"] == pytest.approx(sum(per_sample) / 2)

    rows = read_jsonl(out / "per_problem.jsonl")
    assert [r["pid"] for r in rows] == PIDS
    for row in rows:
        assert len(row["responses"]) == len(row["correct"]) == len(row["extractions"]) == 2
        assert row["mean_correct"] == sum(row["correct"]) / 2
    assert sum(r["mean_correct"] for r in rows) / len(rows) == pytest.approx(scores["overall"]["accuracy"])
    assert scores["pass_at_k"] == sum(any(r["correct"]) for r in rows) / len(rows)
    assert json.loads((out / "generation.json").read_text())["temperature"] == 1.0

    rescored = tmp_path / "rescored"
    assert main(["score", "--data", str(data_dir / "testmini.jsonl"), "--predictions", str(out / "predictions.jsonl"),
                 "--out", str(rescored)]) == 0
    assert json.loads((rescored / "scores.json").read_text()) == scores


def test_sampling_defaults_and_bad_settings(tiny_checkpoint, data_dir, tmp_path, capsys):
    from mmreason.eval.run import DEFAULT_SAMPLING_TEMPERATURE, resolve_temperature

    assert resolve_temperature(1, None) == 0.0
    assert resolve_temperature(4, None) == DEFAULT_SAMPLING_TEMPERATURE
    assert main(run_args(tiny_checkpoint, data_dir / "testmini.jsonl", tmp_path / "a", "--samples", "2",
                         "--temperature", "0")) == 2
    assert "2 identical greedy responses" in capsys.readouterr().err
    assert main(run_args(tiny_checkpoint, data_dir / "testmini.jsonl", tmp_path / "a", "--batch-size", "0")) == 2
    assert "--batch-size must be at least 1, got 0" in capsys.readouterr().err
    assert main(run_args(tiny_checkpoint, data_dir / "testmini.jsonl", tmp_path / "b", "--template", "no_such")) == 2
    assert "prompt template 'no_such' not found" in capsys.readouterr().err
    assert main(run_args(tmp_path / "no_ckpt", data_dir / "testmini.jsonl", tmp_path / "c")) == 2
    assert "no such checkpoint directory" in capsys.readouterr().err


def test_two_ranks_merge_into_the_single_process_predictions(greedy_run, tiny_checkpoint, data_dir, tmp_path,
                                                             repo_root):
    two = tmp_path / "two"
    two.mkdir()
    (two / "predictions.rank1.jsonl").write_text('{"pid": "stale", "sample": 0, "response": "x"}\n')  # earlier run
    deepspeed = Path(sys.executable).with_name("deepspeed")  # the venv's launcher, also when the venv is not on PATH
    # a free port, not the default 29500: other launches on the machine may hold it
    command = [str(deepspeed), "--num_gpus", "2", "--master_port", str(free_port()), "scripts/eval_mathvista.py",
               *run_args(tiny_checkpoint, data_dir / "testmini.jsonl", two, "--batch-size", "1")]
    done = subprocess.run(command, cwd=repo_root, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    merged = read_jsonl(two / "predictions.jsonl")
    assert [p["pid"] for p in merged] == PIDS  # rank 0 answered 1, 3, 5 and rank 1 2, 4; merged in the data's order
    assert merged == read_jsonl(greedy_run / "predictions.jsonl")
    assert not list(two.glob("predictions.rank*"))
    assert json.loads((two / "scores.json").read_text()) == json.loads((greedy_run / "scores.json").read_text())
    assert json.loads((two / "generation.json").read_text())["world_size"] == 2
    assert "Overall:" in done.stdout
