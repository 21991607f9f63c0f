"""Algorithm presets fill what the user left unset, explicit keys win, and the config names a bad choice."""

import pytest
import yaml

from mmreason.config import AlgoConfig, ConfigError, load_config
from mmreason.rl.presets import resolve_algo

BASE = {"stage": "rl", "model": {"path": "/ckpt"}, "data": {"train": "/shards"}, "train": {"output_dir": "/run"},
        "rollout": {"max_new_tokens": 1000}}


def load(tmp_path, *overrides):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE))
    return load_config(path, list(overrides))


@pytest.mark.parametrize("name, advantage, loss, loss_agg, clip_high, dynamic, overlong", [
    ("grpo", "group_norm", "ppo_clip", "seq_mean_token_mean", 0.2, False, 0),
    ("dapo", "group_norm", "ppo_clip", "token_mean", 0.28, True, 200),  # a fifth of 1000 tokens
    ("dr_grpo", "group_center", "ppo_clip", "seq_mean_token_sum_norm", 0.2, False, 0),
    ("k15", "group_center", "mirror_descent", None, 0.2, False, 0),
])
def test_each_preset_fills_its_keys(tmp_path, name, advantage, loss, loss_agg, clip_high, dynamic, overlong):
    cfg = load(tmp_path, f"algo.name={name}")
    algo = cfg.algo
    assert (algo.advantage, algo.loss, algo.loss_agg) == (advantage, loss, loss_agg)
    assert (algo.clip_eps_high, algo.dynamic_sampling, cfg.reward.overlong_buffer) == (clip_high, dynamic, overlong)


def test_explicit_keys_win_over_the_preset(tmp_path):
    cfg = load(tmp_path, "algo.name=dapo", "algo.loss_agg=seq_mean_token_mean", "algo.clip_eps_high=0.2",
               "algo.dynamic_sampling=false", "reward.overlong_buffer=0", "algo.advantage=group_center")
    assert (cfg.algo.loss_agg, cfg.algo.clip_eps_high, cfg.algo.dynamic_sampling) == ("seq_mean_token_mean", 0.2, False)
    assert (cfg.reward.overlong_buffer, cfg.algo.advantage, cfg.algo.loss) == (0, "group_center", "ppo_clip")


def test_the_reference_follows_beta_and_the_k15_iteration():
    assert resolve_algo(AlgoConfig(name="grpo")).reference == "none"
    assert resolve_algo(AlgoConfig(name="grpo", beta=0.04)).reference == "frozen"
    assert resolve_algo(AlgoConfig(name="k15")).reference == "rollout"
    assert resolve_algo(AlgoConfig(name="k15", reference_refresh_every=4)).reference == "snapshot"
    assert resolve_algo(AlgoConfig(name="dapo", reference="snapshot")).reference == "snapshot"


def test_resolving_twice_changes_nothing():
    once = resolve_algo(AlgoConfig(name="dapo"))
    assert resolve_algo(once) == once


def test_ppo_clip_under_the_k15_preset_gets_an_aggregation():
    algo = resolve_algo(AlgoConfig(name="k15", loss="ppo_clip"))
    assert (algo.loss, algo.loss_agg, algo.advantage) == ("ppo_clip", "seq_mean_token_mean", "group_center")


@pytest.mark.parametrize("override, key, message", [
    ("algo.name=grpoo", "algo.name", "expected one of"),
    ("algo.advantage=group_mean", "algo.advantage", "group_center"),
    ("algo.loss=ppo", "algo.loss", "mirror_descent"),
    ("algo.loss_agg=mean", "algo.loss_agg", "seq_mean_token_mean"),
    ("algo.reference=initial", "algo.reference", "snapshot"),
])
def test_a_typo_names_the_key_and_the_valid_choices(tmp_path, override, key, message):
    with pytest.raises(ConfigError, match=f"{key.replace('.', '[.]')}.*{message}"):
        load(tmp_path, override)


def test_inconsistent_choices_fail_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="algo.loss_agg.*no token aggregation"):
        load(tmp_path, "algo.name=k15", "algo.loss_agg=token_mean")
    with pytest.raises(ConfigError, match="algo.reference.*mirror-descent"):
        load(tmp_path, "algo.name=k15", "algo.reference=none")
    with pytest.raises(ConfigError, match="algo.beta.*reference is none"):
        load(tmp_path, "algo.beta=0.1", "algo.reference=none")


def test_a_moved_key_says_where_it_lives_now(tmp_path):
    with pytest.raises(ConfigError, match="algo.overlong_buffer.*moved to 'reward.overlong_buffer'"):
        load(tmp_path, "algo.overlong_buffer=10")
