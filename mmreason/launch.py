"""Launch helpers and the console entry points.

    mmreason-train [--num_gpus N] --config configs/rl_vision.yaml [key=value ...]
    python -m mmreason.launch [deepspeed flags] SCRIPT.py [script args ...]     (any script, e.g. the evaluator)

Both run `deepspeed` with a free master port when the run is on this node only (no --hostfile, --num_nodes
at most 1, no --master_port given), so two launches on one machine never collide on port 29500. Everything
before `--config` (mmreason-train) or before the script (python -m mmreason.launch) goes to deepspeed
unchanged: --num_gpus, --include, --hostfile, --master_addr, --master_port, ... For several nodes pass
--hostfile and a --master_port every node can reach (docs/training.md).

The other entry points run the shipped scripts (mmreason/resources.py): mmreason-synth, mmreason-convert,
mmreason-curate, mmreason-build-warmup, mmreason-make-tiny, mmreason-export-mathvista, mmreason-eval.
Nothing here imports torch.
"""

from __future__ import annotations

import os
import runpy
import shutil
import sys
from pathlib import Path
from typing import NoReturn, Sequence

from mmreason.ports import free_port
from mmreason.resources import shipped_path

TRAIN_SCRIPT = Path(__file__).resolve().parent / "train.py"


def _flag_value(args: Sequence[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def single_node(launcher_args: Sequence[str]) -> bool:
    """No hostfile and at most one node: this machine alone (then a free local port is safe to pick)."""
    if any(a == "--hostfile" or a.startswith("--hostfile=") for a in launcher_args):
        return False
    nodes = _flag_value(launcher_args, "--num_nodes")
    return nodes is None or nodes == "1"


def with_master_port(launcher_args: Sequence[str]) -> list[str]:
    """The deepspeed flags, plus `--master_port <free port>` for a single-node run that names none."""
    args = list(launcher_args)
    if _flag_value(args, "--master_port") is None and single_node(args):
        args += ["--master_port", str(free_port())]
    return args


def deepspeed_command(launcher_args: Sequence[str], script: str | Path, script_args: Sequence[str]) -> list[str]:
    launcher = shutil.which("deepspeed") or "deepspeed"
    return [launcher, *with_master_port(launcher_args), str(script), *script_args]


def _exec(cmd: list[str]) -> NoReturn:
    print("launch: " + " ".join(cmd), file=sys.stderr, flush=True)
    os.execvp(cmd[0], cmd)


def split_at_config(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(deepspeed flags, train.py arguments): the train arguments start at --config (or at the first key=value)."""
    for i, arg in enumerate(argv):
        if arg == "--config" or arg.startswith("--config=") or arg == "--print-config" or ("=" in arg and not arg.startswith("-")):
            return list(argv[:i]), list(argv[i:])
    return list(argv), []


TRAIN_USAGE = """usage: mmreason-train [deepspeed flags] --config CONFIG.yaml [key=value ...]

Runs `deepspeed [flags] --master_port <free port> mmreason/train.py --config ...` (a free port when the run is
on this node and no --master_port is given). Common flags: --num_gpus N, --include localhost:0,1,
--hostfile FILE --master_addr HOST --master_port PORT (several nodes; see docs/training.md).
--print-config prints the resolved config (with each key's docstring and default) without launching.
"""


def train(argv: Sequence[str] | None = None) -> None:
    """Console entry `mmreason-train`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(TRAIN_USAGE)
        from mmreason.train import __doc__ as train_doc

        print(train_doc)
        raise SystemExit(0)
    launcher_args, train_args = split_at_config(argv)
    if "--print-config" in train_args:  # nothing to launch: answer in this process
        from mmreason.train import main as train_main

        train_main(train_args)
        raise SystemExit(0)
    if not train_args:
        print(TRAIN_USAGE, file=sys.stderr)
        raise SystemExit(2)
    _exec(deepspeed_command(launcher_args, TRAIN_SCRIPT, train_args))


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m mmreason.launch [deepspeed flags] SCRIPT [args]`: deepspeed on a free port."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if argv else 2)
    for i, arg in enumerate(argv):
        if not arg.startswith("-") and (arg.endswith(".py") or Path(arg).is_file()):
            if i > 0 and argv[i - 1] in _VALUE_FLAGS:
                continue
            _exec(deepspeed_command(argv[:i], argv[i], argv[i + 1:]))
    print("launch: no script given (expected [deepspeed flags] SCRIPT.py [args])", file=sys.stderr)
    raise SystemExit(2)


_VALUE_FLAGS = {"--num_gpus", "--num_nodes", "--hostfile", "--master_addr", "--master_port", "--include", "--exclude",
                "--launcher", "--node_rank", "--module"}


# ---------------------------------------------------------------- the shipped scripts as console entries


def _run_shipped(relative: str) -> None:
    path = shipped_path(relative)
    sys.argv[0] = str(path)
    sys.path.insert(0, str(path.parent))
    runpy.run_path(str(path), run_name="__main__")


def synth() -> None:
    _run_shipped("data_prep/synth_visual_math.py")


def convert() -> None:
    _run_shipped("data_prep/convert.py")


def curate() -> None:
    _run_shipped("data_prep/curate.py")


def build_warmup() -> None:
    _run_shipped("data_prep/build_warmup.py")


def export_mathvista() -> None:
    _run_shipped("data_prep/export_mathvista.py")


def make_tiny() -> None:
    _run_shipped("scripts/make_tiny_model.py")


def evaluate() -> None:
    from mmreason.eval.cli import main as eval_main

    raise SystemExit(eval_main())


if __name__ == "__main__":
    main()
