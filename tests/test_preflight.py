"""Pre-flight: each mistake a user makes fails before any model is loaded, with one line naming the key.

`mmreason/train.py`'s main runs in this process with the model loader and the distributed init replaced by
functions that fail the test: every case must stop before either is reached.
"""

import importlib.util
import json

import pytest
from PIL import Image

import mmreason.distributed
import mmreason.models
import mmreason.train
from mmreason.data.shards import write_shards
from mmreason.preflight import EXIT_CODE, PreflightError, check_eval, count_problems
from mmreason.problem import Problem


def problems(n):
    return [Problem(pid=f"p{i}", question="How many dots?", answer=str(i % 3 + 1), answer_type="integer",
                    images=[Image.new("RGB", (8, 8))]) for i in range(n)]


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """A fake checkpoint directory, 6 problems in shards, and a loader that fails the test if reached."""

    def never(*args, **kwargs):
        raise AssertionError("pre-flight let the run reach model loading / distributed init")

    monkeypatch.setattr(mmreason.models, "load_policy", never)
    monkeypatch.setattr(mmreason.distributed, "init_distributed", never)
    monkeypatch.setattr(mmreason.train, "tie_rank_to_launcher", lambda: [])
    monkeypatch.delenv("RANK", raising=False)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    write_shards(problems(6), tmp_path / "shards", shard_size=4)
    return tmp_path, ckpt


def run_train(stage_config, tmp_path, *overrides):
    argv = ["--config", stage_config, f"train.output_dir={tmp_path / 'run'}", "data.eval=null", *overrides]
    with pytest.raises(SystemExit) as exit_info:
        mmreason.train.main(argv)
    return exit_info.value.code


SFT, RL = "configs/quickstart/sft_warmup.yaml", "configs/quickstart/rl_vision.yaml"


def one_line_naming(capsys, key, *fragments):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"'{key}'" in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_missing_sft_data(setup, capsys):
    tmp_path, ckpt = setup
    code = run_train(SFT, tmp_path, f"model.path={ckpt}", f"data.train={tmp_path / 'no_such_dir'}")
    assert code == EXIT_CODE
    one_line_naming(capsys, "data.train", "does not exist")


def test_wrong_template_name(setup, capsys):
    tmp_path, ckpt = setup
    code = run_train(SFT, tmp_path, f"model.path={ckpt}", f"data.train={tmp_path / 'shards'}",
                     "data.prompt_template=r1_boxd")
    assert code == EXIT_CODE
    one_line_naming(capsys, "data.prompt_template", "r1_boxd", "r1_boxed")


def test_wandb_project_without_wandb(setup, capsys, monkeypatch):
    tmp_path, ckpt = setup
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    code = run_train(SFT, tmp_path, f"model.path={ckpt}", f"data.train={tmp_path / 'shards'}", "train.wandb_project=x")
    assert code == EXIT_CODE
    one_line_naming(capsys, "train.wandb_project", "'wandb' package is not installed", "pip install")


def test_missing_rl_model_path(setup, capsys):
    tmp_path, _ = setup
    code = run_train(RL, tmp_path, f"model.path={tmp_path / 'no_ckpt'}", f"data.train={tmp_path / 'shards'}")
    assert code == EXIT_CODE
    one_line_naming(capsys, "model.path", "no such checkpoint directory")


def test_prompts_per_step_larger_than_the_prompt_set(setup, capsys):
    tmp_path, ckpt = setup
    code = run_train(RL, tmp_path, f"model.path={ckpt}", f"data.train={tmp_path / 'shards'}",
                     "rollout.prompts_per_step=8", "train.micro_batch_size=4")
    assert code == EXIT_CODE
    one_line_naming(capsys, "rollout.prompts_per_step", "holds 6 problems")


def test_jsonl_directory_instead_of_shards_gets_the_convert_hint(setup, capsys):
    tmp_path, ckpt = setup
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "problems.jsonl").write_text(json.dumps({"pid": "1", "question": "q", "answer": "1"}) + "\n")
    code = run_train(SFT, tmp_path, f"model.path={ckpt}", f"data.train={raw}")
    assert code == EXIT_CODE
    one_line_naming(capsys, "data.train", "not webdataset shards", "data_prep/convert.py")


def test_bad_deepspeed_json(setup, capsys):
    tmp_path, ckpt = setup
    bad = tmp_path / "ds.json"
    bad.write_text("{not json")
    code = run_train(SFT, tmp_path, f"model.path={ckpt}", f"data.train={tmp_path / 'shards'}",
                     f"train.deepspeed_config={bad}")
    assert code == EXIT_CODE
    one_line_naming(capsys, "train.deepspeed_config", "not valid JSON")


def test_batch_not_divisible_by_world_size(setup, capsys, monkeypatch):
    tmp_path, ckpt = setup
    monkeypatch.setenv("WORLD_SIZE", "3")
    code = run_train(SFT, tmp_path, f"model.path={ckpt}", f"data.train={tmp_path / 'shards'}", "train.batch_size=8")
    assert code == EXIT_CODE
    one_line_naming(capsys, "train.batch_size", "3 ranks")


def test_other_ranks_exit_quietly_with_the_same_code(setup, capsys, monkeypatch):
    tmp_path, ckpt = setup
    monkeypatch.setenv("RANK", "1")
    code = run_train(RL, tmp_path, f"model.path={tmp_path / 'no_ckpt'}", f"data.train={tmp_path / 'shards'}")
    assert code == EXIT_CODE
    assert capsys.readouterr().err == ""


def test_prompt_count_from_manifest_or_tar_headers(tmp_path):
    urls = [str(p) for p in write_shards(problems(6), tmp_path, shard_size=4)]
    assert count_problems(urls) == 6
    (tmp_path / "shards.json").unlink()
    assert count_problems(urls) == 6


def test_eval_flags_are_named(tmp_path):
    with pytest.raises(PreflightError, match=r"flag '--model': no such checkpoint directory"):
        check_eval(str(tmp_path / "none"), "data.parquet", None)


def test_eval_engine_vllm_needs_the_package(tiny_checkpoint, tmp_path):
    import importlib.util

    data = tmp_path / "testmini.jsonl"
    data.write_text("")
    if importlib.util.find_spec("vllm") is None:  # the base virtualenv: named before the model is loaded
        with pytest.raises(PreflightError, match=r"flag '--engine': --engine is vllm, but the 'vllm' package"):
            check_eval(str(tiny_checkpoint), str(data), None, "vllm")
    else:
        check_eval(str(tiny_checkpoint), str(data), None, "vllm")
    check_eval(str(tiny_checkpoint), str(data), None, "hf")
