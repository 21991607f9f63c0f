"""docs/config.md is the output of scripts/config_reference.py: regenerate it when a config field changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_docs_config_md_is_up_to_date() -> None:
    generated = subprocess.run([sys.executable, str(ROOT / "scripts" / "config_reference.py")], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout
    current = (ROOT / "docs" / "config.md").read_text() if (ROOT / "docs" / "config.md").is_file() else ""
    assert current == generated, "docs/config.md is stale: run `python scripts/config_reference.py > docs/config.md`"


def test_every_config_field_has_a_docstring() -> None:
    generated = subprocess.run([sys.executable, str(ROOT / "scripts" / "config_reference.py")], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout
    undocumented = [line.split("|")[1].strip() for line in generated.splitlines()
                    if line.startswith("| `") and line.rstrip().endswith("|  |")]
    assert not undocumented, f"config fields without a docstring (a string literal after the field): {undocumented}"
