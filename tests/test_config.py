import pytest
import yaml

from mmreason.config import Config, ConfigError, load_config, parse_cli, save_config, validate_for_world


def write(tmp_path, data, name="c.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


BASE = {"stage": "rl", "model": {"path": "/ckpt"}, "data": {"train": "/shards"}, "train": {"output_dir": "/run"}}


def test_yaml_and_overrides_merge(tmp_path):
    path = write(tmp_path, {**BASE, "algo": {"name": "dapo", "clip_eps_high": 0.28}})
    cfg = load_config(path, ["train.max_steps=7", "algo.beta=0.04", "reward.answer_sources=[boxed,answer_is]"])
    assert isinstance(cfg, Config)
    assert cfg.algo.name == "dapo" and cfg.algo.clip_eps_high == 0.28
    assert cfg.train.max_steps == 7 and cfg.algo.beta == 0.04
    assert cfg.reward.answer_sources == ["boxed", "answer_is"]
    assert cfg.rollout.group_size == 8  # untouched default


def test_unknown_key_names_key_and_valid_keys(tmp_path):
    path = write(tmp_path, {**BASE, "algo": {"nmae": "grpo"}})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "algo.nmae" in str(err.value) and "clip_eps_low" in str(err.value)
    with pytest.raises(ConfigError, match="train.max_stpes"):
        load_config(write(tmp_path, BASE), ["train.max_stpes=3"])


def test_wrong_type_names_key_value_and_type(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, BASE), ["train.max_steps=many"])
    message = str(err.value)
    assert "train.max_steps" in message and "many" in message and "int" in message


def test_missing_required_and_bad_override(tmp_path):
    with pytest.raises(ConfigError, match="model.path"):
        load_config(write(tmp_path, {k: v for k, v in BASE.items() if k != "model"}))
    with pytest.raises(ConfigError, match="key=value"):
        load_config(write(tmp_path, BASE), ["train.max_steps"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "override, key",
    [
        ("algo.name=ppo", "algo.name"),
        ("stage=pretrain", "stage"),
        ("rollout.group_size=1", "rollout.group_size"),
        ("rollout.temperature=0", "rollout.temperature"),
        ("algo.clip_eps_low=1.5", "algo.clip_eps_low"),
        ("reward.answer_sources=[boxed,guess]", "reward.answer_sources"),
        ("reward.overlong_buffer=5000", "reward.overlong_buffer"),
        ("train.micro_batch_size=0", "train.micro_batch_size"),
        ("optim.vision_lr_scale=0", "optim.vision_lr_scale"),
    ],
)
def test_cross_field_rules(tmp_path, override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(write(tmp_path, BASE), [override])


def test_batch_rules_depend_on_world_size(tmp_path):
    cfg = load_config(write(tmp_path, BASE), ["rollout.prompts_per_step=4", "rollout.group_size=4", "train.micro_batch_size=8"])
    validate_for_world(cfg, 2)  # 2 prompts x 4 samples = 8 per rank
    with pytest.raises(ConfigError, match="rollout.prompts_per_step"):
        validate_for_world(cfg, 3)
    with pytest.raises(ConfigError, match="train.micro_batch_size"):
        validate_for_world(cfg, 4)  # 1 prompt x 4 = 4 sequences, micro 8
    sft = load_config(write(tmp_path, {**BASE, "stage": "sft"}), ["train.batch_size=12", "train.micro_batch_size=4"])
    validate_for_world(sft, 1)
    with pytest.raises(ConfigError, match="train.micro_batch_size"):
        validate_for_world(sft, 2)


def test_resolved_config_written_and_reloads(tmp_path):
    cfg = load_config(write(tmp_path, BASE), ["train.seed=5"])
    out = save_config(cfg, tmp_path / "run")
    again = load_config(out)
    assert again == cfg


def test_parse_cli_ignores_launcher_local_rank():
    assert parse_cli(["--local_rank=0", "--config", "a.yaml", "x.y=1"]) == ("a.yaml", ["x.y=1"])
    assert parse_cli(["--config=a.yaml", "--local_rank", "1"]) == ("a.yaml", [])
