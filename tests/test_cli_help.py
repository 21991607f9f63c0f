"""Every command line answers --help at once (exit 0, torch never imported); config CLIs print their config."""

import subprocess
import sys

import pytest
import yaml

# Runs one CLI's --help in a fresh interpreter and reports whether torch got imported.
CHECK = """
import runpy, sys
target, args = sys.argv[1], sys.argv[2:]
sys.argv = [target, *args]
code = 0
try:
    if target.startswith("-m:"):
        runpy.run_module(target[3:], run_name="__main__", alter_sys=True)
    elif ":" in target:
        module, fn = target.split(":")
        getattr(__import__(module, fromlist=[fn]), fn)()
    else:
        sys.path.insert(0, target.rsplit("/", 1)[0])
        runpy.run_path(target, run_name="__main__")
except SystemExit as stop:
    code = stop.code or 0
print("EXIT", code, "TORCH", "torch" in sys.modules, file=sys.stderr)
"""

CLIS = [
    ("mmreason/train.py",), ("data_prep/curate.py",), ("data_prep/build_warmup.py",), ("data_prep/convert.py",),
    ("data_prep/synth_visual_math.py",), ("data_prep/export_mathvista.py",), ("scripts/make_tiny_model.py",),
    ("scripts/eval_mathvista.py",), ("-m:mmreason.eval.cli",), ("-m:mmreason.eval.cli", "run"),
    ("-m:mmreason.eval.cli", "score"), ("-m:mmreason.launch",), ("mmreason.launch:train",),
]


@pytest.mark.parametrize("cli", CLIS, ids=[" ".join(c) for c in CLIS])
def test_help_exits_0_without_torch(cli, repo_root):
    result = subprocess.run([sys.executable, "-c", CHECK, cli[0], *cli[1:], "--help"], cwd=repo_root,
                            capture_output=True, text=True, timeout=120)
    assert "EXIT 0 TORCH False" in result.stderr, result.stderr[-2000:]
    assert len(result.stdout.strip().splitlines()) >= 3, result.stdout


def test_train_help_names_the_stages_and_how_to_see_the_keys(repo_root):
    out = subprocess.run([sys.executable, "mmreason/train.py", "--config", "x.yaml", "--help"], cwd=repo_root,
                         capture_output=True, text=True).stdout
    for fragment in ("sft", "rl", "--print-config", "docs/config.md"):
        assert fragment in out


def test_print_config_is_the_resolved_config_with_docs_and_defaults(repo_root):
    result = subprocess.run(
        [sys.executable, "mmreason/train.py", "--config", "configs/quickstart/rl_vision.yaml", "model.path=m",
         "data.train=d", "train.output_dir=o", "rollout.group_size=3", "algo.name=dapo", "--print-config"],
        cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)  # the output is itself a config file
    assert resolved["rollout"]["group_size"] == 3
    assert resolved["algo"]["loss_agg"] == "token_mean"  # the dapo preset, resolved
    assert "# Responses sampled per prompt (the G of GRPO). (default: 8)" in result.stdout
    assert "torch" not in result.stderr


@pytest.mark.parametrize("script, config, key", [
    ("data_prep/curate.py", "configs/quickstart/curate.yaml", "dedup"),
    ("data_prep/build_warmup.py", "configs/quickstart/warmup.yaml", "rejection"),
])
def test_print_config_of_the_data_tools(script, config, key, repo_root):
    result = subprocess.run([sys.executable, script, "--config", config, "input=i", "output=o", "--print-config"],
                            cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert key in yaml.safe_load(result.stdout)
    assert "(default: " in result.stdout


def test_print_config_error_names_the_key(repo_root):
    result = subprocess.run([sys.executable, "mmreason/train.py", "--config", "configs/quickstart/rl_vision.yaml",
                             "rollout.group_sise=3", "--print-config"], cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 2
    assert "rollout.group_sise" in result.stderr
