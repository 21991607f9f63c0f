"""Shards load with Hugging Face `datasets` whatever the number of images per problem (0, 1, 2)."""

import datasets
from PIL import Image

from mmreason.data.shards import stream_problems, write_shards
from mmreason.problem import Problem, images_from_field


def problem(i: int, num_images: int) -> Problem:
    images = [Image.new("RGB", (8 + j, 8), (40 * i, 20 * j, 100)) for j in range(num_images)]
    question = "<image> " * num_images + f"What is {i} + 1?"
    return Problem(pid=f"p{i}", question=question, answer=str(i + 1), answer_type="integer", images=images)


def test_datasets_loads_mixed_image_counts(tmp_path):
    # Text-only problems first: the schema datasets infers from the first samples must hold the later ones too.
    problems = [problem(i, n) for i, n in enumerate([0, 0, 0, 0, 0, 0, 1, 2, 1, 0, 2])]
    write_shards(problems, tmp_path / "shards", shard_size=4)
    ds = datasets.load_dataset("webdataset", data_files={"train": str(tmp_path / "shards" / "*.tar")}, split="train",
                               cache_dir=str(tmp_path / "hf_cache"))
    assert len(ds) == len(problems)
    by_pid = {row["__key__"]: row for row in ds}
    for p in problems:
        row = by_pid[p.pid]
        assert row["json"]["answer"] == p.answer and row["json"]["num_images"] == len(p.images)
        images = images_from_field(row["images.tar"])
        assert [im.size for im in images] == [im.size for im in p.images]
    # and our own reader reads the same shards back
    assert [len(p.images) for p in stream_problems(str(tmp_path / "shards"))] == [len(p.images) for p in problems]
