"""Build hook: the wheel carries configs/ (prompt templates, example configs, DeepSpeed JSONs), data_prep/ and
the quickstart's scripts as package data in mmreason/_shipped/, so a non-editable install finds them
(mmreason/resources.py). Everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("configs", "data_prep", "scripts/make_tiny_model.py", "scripts/eval_mathvista.py")  # = mmreason.resources.SHIPPED


class BuildWithShippedFiles(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "mmreason" / "_shipped"
        for relative in SHIPPED:
            source, dest = ROOT / relative, target / relative
            if not source.exists():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, dest, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(source, dest)


setup(cmdclass={"build_py": BuildWithShippedFiles})
