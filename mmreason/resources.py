"""Files shipped with mmreason: prompt templates, example configs, DeepSpeed JSONs and the data_prep scripts.

In a clone (editable install) they live in the repository (`configs/`, `data_prep/`, `scripts/`); a wheel
carries a copy as package data in `mmreason/_shipped/` (setup.py copies them at build time). `shipped_path`
finds whichever exists, and `resolve_config_path` lets `--config configs/quickstart/rl_vision.yaml` (the
paths the docs show) work from any directory after a `pip install`.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_COPY = Path(__file__).resolve().parent / "_shipped"
REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("configs", "data_prep", "scripts/make_tiny_model.py", "scripts/eval_mathvista.py")
"""What a wheel carries under mmreason/_shipped/ (paths relative to the repository root)."""


def shipped_path(relative: str) -> Path:
    """`relative` (e.g. "configs/prompts") in the wheel's copy when installed from one, else in the clone."""
    packaged = PACKAGE_COPY / relative
    return packaged if packaged.exists() else REPO_ROOT / relative


def configs_dir() -> Path:
    """The shipped configs directory: the package copy when installed from a wheel, else the clone's."""
    return shipped_path("configs")


def resolve_config_path(path: str | Path) -> Path:
    """`path` itself when it exists; else, for `configs/...` (or a path relative to configs/), the shipped file."""
    given = Path(path)
    if given.exists() or given.is_absolute():
        return given
    parts = given.parts
    relative = Path(*parts[1:]) if parts and parts[0] == "configs" and len(parts) > 1 else given
    shipped = configs_dir() / relative
    return shipped if shipped.exists() else given
