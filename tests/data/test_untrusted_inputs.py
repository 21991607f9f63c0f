"""Inputs from elsewhere stay bounded: an image pixel cap, image paths confined to the input directory, prompt
templates in a sandbox (issue 26)."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from mmreason.data.convert import ConvertError, convert
from mmreason.data.prompts import TemplateError, load_template, render_prompt
from mmreason.data.shards import SkipCounter, stream_problems, write_shards
from mmreason.problem import Problem, ProblemError, decode_image, set_max_image_pixels


@pytest.fixture
def cap():
    """Set the process's pixel cap for one test and put the default back afterwards."""
    from mmreason.problem import DEFAULT_MAX_IMAGE_PIXELS

    yield set_max_image_pixels
    set_max_image_pixels(DEFAULT_MAX_IMAGE_PIXELS)


def png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_small_file_declaring_a_huge_image_is_refused_before_decoding():
    bomb = png((12_000, 12_000), mode="1")  # tens of KB on disk, 144 M pixels decoded
    assert len(bomb) < 100_000
    started = time.perf_counter()
    with pytest.raises(ProblemError, match=r"12000 x 12000 = 144000000 pixels is over the cap.*data.max_image_pixels"):
        decode_image(bomb, "bomb.png")
    assert time.perf_counter() - started < 1.0


def test_images_over_the_configured_cap_are_skipped_and_counted(tmp_path, cap):
    problems = [Problem(pid=f"p{i}", question="?", answer="1", images=[Image.new("RGB", size)])
                for i, size in enumerate([(10, 10), (40, 40), (20, 20)])]
    write_shards(problems, tmp_path)
    cap(20 * 20)
    skipped = SkipCounter()
    assert [p.pid for p in stream_problems(tmp_path, skipped=skipped)] == ["p0", "p2"]
    assert skipped.count == 1 and "over the cap of 400" in skipped.records[0][2]


def jsonl_with_image(directory: Path, image_value: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "p.jsonl"
    path.write_text(json.dumps({"image": image_value, "question": "q", "answer": "1"}) + "\n")
    return path


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_image_paths_are_confined_to_the_input_directory(tmp_path, how):
    outside = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(outside)
    data = tmp_path / "data"
    data.mkdir()
    if how == "symlink":
        os.symlink(outside, data / "link.png")
    value = {"dotdot": "../secret.png", "absolute": str(outside), "symlink": "link.png"}[how]
    path = jsonl_with_image(data, value)
    with pytest.raises(ConvertError, match="outside the input directory.*--allow-outside-paths"):
        list(convert("jsonl", path))
    assert len(list(convert("jsonl", path, allow_outside_paths=True))) == 1


def test_image_paths_inside_the_input_directory_still_load(tmp_path):
    (tmp_path / "data" / "img").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "data" / "img" / "a.png")
    assert len(list(convert("jsonl", jsonl_with_image(tmp_path / "data", "img/../img/a.png")))) == 1


@pytest.mark.parametrize("body", ["{{ question.__class__.__mro__ }}", "{{ meta.clear() }}{{ question }}",
                                  "{{ ''.__class__.__base__.__subclasses__() }}"])
def test_prompt_templates_render_in_a_sandbox(tmp_path, body):
    template = tmp_path / f"t{abs(hash(body))}.jinja"
    template.write_text(body)
    load_template.cache_clear()
    problem = Problem(pid="p", question="What?", answer="1", meta={"keep": 1})
    with pytest.raises(TemplateError):
        render_prompt(problem, str(template))
    assert problem.meta == {"keep": 1}
