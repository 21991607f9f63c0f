"""Every numeric config key has a range (one table, config.NUMERIC_RANGES) and every config key is read somewhere."""

from __future__ import annotations

import ast
import dataclasses
import math
import typing
from pathlib import Path

import pytest
import yaml

from mmreason.config import NUMERIC_RANGES, Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
BASE = {"stage": "rl", "model": {"path": "/ckpt"}, "data": {"train": "/shards"}, "train": {"output_dir": "/run"}}


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE))
    return path


def leaf_fields() -> list[tuple[str, type]]:
    """(section.name, annotated type) of every leaf key of Config."""
    out = []
    for section in dataclasses.fields(Config):
        section_type = type(section.default_factory()) if section.default_factory is not dataclasses.MISSING else None
        if section_type is None or not dataclasses.is_dataclass(section_type):
            continue
        hints = typing.get_type_hints(section_type)
        out += [(f"{section.name}.{f.name}", hints[f.name]) for f in dataclasses.fields(section_type)]
    return out


def is_numeric(tp: type) -> bool:
    args = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
    return all(a in (int, float) for a in args)


def test_every_numeric_key_has_a_range():
    numeric = {key for key, tp in leaf_fields() if is_numeric(tp)}
    assert numeric - set(NUMERIC_RANGES) == set(), "numeric config keys without an entry in NUMERIC_RANGES"
    assert set(NUMERIC_RANGES) - numeric == set(), "NUMERIC_RANGES names keys that are not numeric fields"


ISSUE_26_BAD_VALUES = [
    ("train.keep_checkpoints", "-1", "[1, inf)"), ("train.keep_checkpoints", "0", "[1, inf)"),
    ("data.shuffle_buffer", "-5", "[0, inf)"), ("eval.num_problems", "0", "[1, inf)"),
    ("eval.num_problems", "-3", "[1, inf)"), ("eval.max_new_tokens", "0", "[1, inf)"),
    ("eval.temperature", "-1", "[0, inf)"), ("algo.max_sampling_rounds", "-2", "[0, inf)"),
    ("algo.reference_refresh_every", "0", "[1, inf)"), ("optim.min_lr_ratio", "-1", "[0, 1]"),
    ("optim.min_lr_ratio", "5", "[0, 1]"), ("optim.lr", "nan", "(0, 1]"), ("algo.beta", "inf", "[0, inf)"),
    ("optim.max_grad_norm", "-1", "[0, inf)"), ("model.max_pixels", "0", "[1, inf)"),
    ("rollout.repetition_ngram", "-4", "[1, inf)"), ("data.max_image_pixels", "0", "[1, inf)"),
    ("train.seed", "-1", "[0, 4.29497e+09]"),
]


@pytest.mark.parametrize("key,value,allowed", ISSUE_26_BAD_VALUES)
def test_bad_value_names_key_and_allowed_range(tmp_path, key, value, allowed):
    with pytest.raises(ConfigError) as err:
        load_config(config_file(tmp_path), [f"{key}={value}"])
    assert repr(key) in str(err.value) and allowed in str(err.value), str(err.value)


@pytest.mark.parametrize("key", sorted(k for k, tp in leaf_fields() if is_numeric(tp) and float in
                                       (typing.get_args(tp) or (tp,))))
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_every_float_key_rejects_nan_and_inf(tmp_path, key, value):
    with pytest.raises(ConfigError, match=f"'{key}'.*not a finite number"):
        load_config(config_file(tmp_path), [f"{key}={value}"])


def test_defaults_and_shipped_configs_are_in_range(tmp_path):
    load_config(config_file(tmp_path))
    for path in sorted((ROOT / "configs").glob("**/*.yaml")):
        if "stage:" in path.read_text():
            load_config(path, ["model.path=/ckpt", "data.train=/shards", "train.output_dir=/run"])
    cfg = load_config(config_file(tmp_path), ["optim.min_lr_ratio=0", "optim.min_lr_ratio=1", "algo.beta=0"])
    assert math.isfinite(cfg.optim.min_lr_ratio)


@pytest.mark.parametrize("given,mode", [("true", "auto"), ("false", "never"), ("auto", "auto"), ("never", "never"),
                                        ("force", "force")])
def test_resume_modes_and_old_booleans(tmp_path, given, mode):
    assert load_config(config_file(tmp_path), [f"train.resume={given}"]).train.resume == mode


def test_resume_rejects_other_values_and_num_workers_is_gone(tmp_path):
    with pytest.raises(ConfigError, match="train.resume.*auto.*never.*force"):
        load_config(config_file(tmp_path), ["train.resume=sometimes"])
    with pytest.raises(ConfigError, match="data.num_workers.*removed"):
        load_config(config_file(tmp_path), ["data.num_workers=2"])


NOT_READ_YET: set[str] = set()
"""Config keys that nothing in mmreason/ reads (beyond validation); each entry needs its reason."""


def attribute_names_read() -> set[str]:
    """Attribute names read anywhere in mmreason/ outside config.py (which defines and validates the keys)."""
    names: set[str] = set()
    for path in (ROOT / "mmreason").rglob("*.py"):
        if path == ROOT / "mmreason" / "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                names.add(node.attr)
    return names


def test_every_config_key_is_read_somewhere():
    read = attribute_names_read()
    unread = {key for key, _ in leaf_fields() if key.split(".")[1] not in read} - NOT_READ_YET
    assert not unread, f"config keys that nothing in mmreason/ reads: {sorted(unread)} (use, remove or allow-list them)"
    assert not {key for key in NOT_READ_YET if key.split(".")[1] in read}, "allow-listed keys now read: drop them"
