"""Fixtures for the engine tests (run in the vLLM virtualenv: `pytest -m vllm tests/engines`)."""

import subprocess
import sys
from pathlib import Path

import pytest
from engine_helpers import dots

from mmreason.problem import Problem


@pytest.fixture(scope="session")
def engine_problems() -> dict[str, list[Problem]]:
    """Single-image, multi-image (two sizes, so two different token counts) and text-only prompts."""
    return {
        "single_image": [Problem(pid=f"s{n}", question="How many dots?", answer=str(n), answer_type="integer",
                                 images=[dots(n)]) for n in (1, 2, 3)],
        "multi_image": [Problem(pid="m0", question="<image> left, <image> right: how many dots in all?", answer="5",
                                answer_type="integer", images=[dots(2), dots(3, size=224)])],
        "text_only": [Problem(pid="t0", question="What is 2 + 3?", answer="5", answer_type="integer", images=[]),
                      Problem(pid="t1", question="Name a prime number larger than 10.", answer="11", answer_type="integer",
                              images=[])],
    }


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory, repo_root) -> Path:
    """train/ (64 synthetic problems) and heldout/ (8), built by the real command line."""
    root = tmp_path_factory.mktemp("engine_corpus")
    for split, num, seed in (("train", 64, 1), ("heldout", 8, 2)):
        subprocess.run([sys.executable, "data_prep/synth_visual_math.py", "--out", str(root / split), "--num", str(num),
                        "--seed", str(seed), "--levels", "1"], cwd=repo_root, check=True, capture_output=True)
    return root
