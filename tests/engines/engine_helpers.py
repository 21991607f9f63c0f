"""Helpers for the engine tests: the launcher of their two-rank runs and their images."""

import sys
from pathlib import Path

from PIL import Image, ImageDraw

from mmreason.ports import free_port


def deepspeed_launcher(num_ranks: int = 2) -> tuple[str, ...]:
    """The virtualenv's own launcher on a free port (concurrent launches must not collide on 29500)."""
    return (str(Path(sys.executable).with_name("deepspeed")), "--num_gpus", str(num_ranks),
            "--master_port", str(free_port()))


def dots(n: int, size: int = 112) -> Image.Image:
    """A white image with `n` black dots in a row."""
    image = Image.new("RGB", (size, size), "white")
    for i in range(n):
        ImageDraw.Draw(image).ellipse((10 + 25 * i, 40, 28 + 25 * i, 58), fill="black")
    return image
