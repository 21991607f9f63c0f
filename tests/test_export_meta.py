"""How an export was prompted in training becomes the default of evaluation, curation and rejection sampling."""

import json
import subprocess
import sys

from mmreason.curation.config import CurateConfig
from mmreason.config import load_config
from mmreason.export_meta import GENERATION_FILE, apply_checkpoint_defaults, explicit_keys, keep_step_export, read_generation

MAPPING = {"blind.template": "template", "difficulty.template": "template", "model.max_pixels": "max_pixels"}


def checkpoint(tmp_path, **record):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / GENERATION_FILE).write_text(json.dumps(record))
    (ckpt / "config.json").write_text("{}")
    return ckpt


def test_curation_takes_the_trained_prompt_unless_set(tmp_path, capsys):
    ckpt = checkpoint(tmp_path, template="answer_only", max_pixels=12544)
    overrides = ["input=i", "output=o", f"model.path={ckpt}", "difficulty.template=r1_boxed", "balance.total=10"]
    cfg = load_config(None, overrides, schema=CurateConfig)
    taken = apply_checkpoint_defaults(cfg, str(ckpt), MAPPING, explicit_keys(None, overrides), "curate")
    assert cfg.blind.template == "answer_only" and cfg.model.max_pixels == 12544
    assert cfg.difficulty.template == "r1_boxed"  # the command line wins
    assert "difficulty.template" not in taken
    assert "blind.template='answer_only'" in capsys.readouterr().err


def test_a_template_missing_here_falls_back_to_the_exports_copy(tmp_path):
    ckpt = checkpoint(tmp_path, template="/elsewhere/mine.jinja")
    (ckpt / "mmreason_prompt.jinja").write_text("{{ question }}")
    assert read_generation(str(ckpt))["template"] == str(ckpt / "mmreason_prompt.jinja")
    assert read_generation(str(tmp_path / "none")) == {}


def test_keep_step_export(tmp_path):
    (tmp_path / "hf" / "latest").mkdir(parents=True)
    (tmp_path / "hf" / "latest" / "config.json").write_text("{}")
    assert keep_step_export(tmp_path, 5, 10) is None
    assert keep_step_export(tmp_path, 10, 0) is None
    assert (keep_step_export(tmp_path, 10, 10) / "config.json").is_file()


def test_eval_run_prints_what_it_took_from_the_checkpoint(tmp_path, repo_root):
    ckpt = checkpoint(tmp_path, template="r1_boxed", max_new_tokens=160)
    result = subprocess.run([sys.executable, "-m", "mmreason.eval.cli", "run", "--model", str(ckpt), "--data",
                             str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "out"), "--max-pixels", "4096"],
                            cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 2  # the data file does not exist: stopped before any model is loaded
    assert "template='r1_boxed' (mmreason_generation.json)" in result.stderr
    assert "max_new_tokens=160 (mmreason_generation.json)" in result.stderr
    assert "max_pixels=4096 (flag)" in result.stderr
    assert "flag '--data'" in result.stderr
