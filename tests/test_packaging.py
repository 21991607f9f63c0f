"""A non-editable install (`pip install .` into a fresh virtualenv) runs the quickstart's first stages through
the console entry points, from a directory that is not the clone: templates and configs come from the wheel.

To keep CI from installing torch again (minutes, gigabytes), the fresh virtualenv sees the test environment's
packages through a .pth line (a plain path, so that environment's editable mmreason finder is not loaded), and
mmreason itself is installed with `pip install --no-deps --no-build-isolation .`: the wheel is built from the
clone and installed like any user's. The test checks that `mmreason` is imported from the new virtualenv.
"""

import os
import shutil
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def installed(tmp_path_factory, repo_root):
    root = tmp_path_factory.mktemp("pkg")
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "outer_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    build = root / "build"  # pip builds from a copy of the clone's tracked layout: nothing is written into the tree
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "_shipped")
    for name in ("mmreason", "configs", "data_prep"):
        shutil.copytree(repo_root / name, build / name, ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "scripts/make_tiny_model.py",
                 "scripts/eval_mathvista.py"):
        (build / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo_root / name, build / name)
    result = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                             "-q", str(build)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return env_dir, root


def run(env_dir, cwd, *args, timeout=600):
    env = {**os.environ, "PATH": f"{env_dir / 'bin'}:{os.environ['PATH']}", "PYTHONPATH": ""}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
    return result


def test_quickstart_first_stages_through_the_entry_points(installed):
    env_dir, root = installed
    work = root / "work"  # not the clone: configs/... resolve to the wheel's copies
    work.mkdir()
    where = run(env_dir, work, str(env_dir / "bin" / "python"), "-c", "import mmreason; print(mmreason.__file__)")
    assert str(env_dir) in where.stdout, where.stdout
    bin_ = env_dir / "bin"
    run(env_dir, work, str(bin_ / "mmreason-synth"), "--out", "data/train", "--num", "48", "--seed", "0", "--levels", "1",
        "--families", "shape_count", "--shard-size", "24")
    run(env_dir, work, str(bin_ / "mmreason-synth"), "--out", "data/heldout", "--num", "8", "--seed", "1000",
        "--levels", "1", "--families", "shape_count", "--dup-frac", "0", "--near-dup-frac", "0")
    run(env_dir, work, str(bin_ / "mmreason-curate"), "--config", "configs/quickstart/clean_pool.yaml",
        "input=data/train", "output=data/pool", "eval_sets=[data/heldout]")
    run(env_dir, work, str(bin_ / "mmreason-make-tiny"), "--out", "base", "--corpus", "data/train", "--vocab-size", "512")
    run(env_dir, work, str(bin_ / "mmreason-build-warmup"), "--config", "configs/quickstart/warmup.yaml",
        "input=data/pool", "output=data/warmup")
    printed = run(env_dir, work, str(bin_ / "mmreason-train"), "--config", "configs/quickstart/sft_warmup.yaml",
                  "model.path=base", "data.train=data/warmup", "train.output_dir=runs/sft", "--print-config")
    assert "prompt_template: r1_boxed" in printed.stdout
    trained = run(env_dir, work, str(bin_ / "mmreason-train"), "--num_gpus", "1", "--config",
                  "configs/quickstart/sft_warmup.yaml", "model.path=base", "data.train=data/warmup", "data.eval=null",
                  "train.output_dir=runs/sft", "train.max_steps=1", "train.batch_size=4", "train.micro_batch_size=4")
    assert "--master_port" in trained.stderr  # a free port picked for the single-node run
    assert (work / "runs" / "sft" / "hf" / "latest" / "mmreason_generation.json").is_file()
