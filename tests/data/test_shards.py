"""Shards: write -> read round trip, sample-level splitting across ranks and workers, corrupt samples."""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torch.utils.data import DataLoader
from webdataset.writer import TarWriter

from mmreason.data.shards import (
    ProblemStream,
    ShardError,
    SkipCounter,
    collate_problems,
    count_samples,
    resolve_urls,
    stream_problems,
    write_shards,
)
from mmreason.problem import Problem, pack_images, unpack_images


def noise_image(seed: int, mode: str = "RGB", size: tuple[int, int] = (24, 16)) -> Image.Image:
    """A random image: any re-encoding loss or channel mix-up changes its bytes."""
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)


def make_problem(index: int) -> Problem:
    modes = ["RGB", "RGBA", "L"]
    num_images = 2 if index % 5 == 0 else 1
    images = [noise_image(index * 10 + k, modes[(index + k) % 3]) for k in range(num_images)]
    multi = index % 3 == 0
    return Problem(
        pid=f"p{index:04d}",
        question=f"What is {index} + 1?" if not multi else f"Pick the successor of {index}.",
        answer=str(index + 1),
        answer_type="integer",
        question_type="multi_choice" if multi else "free_form",
        images=images,
        choices=[str(index), str(index + 1)] if multi else None,
        solution="Plan: add one.\nConclude: " + str(index + 1),
        meta={"source": "test", "difficulty": index % 3 + 1, "tags": ["a", "b"]},
    )


@pytest.fixture
def problems() -> list[Problem]:
    return [make_problem(i) for i in range(23)]


@pytest.fixture
def shard_dir(tmp_path: Path, problems: list[Problem]) -> Path:
    write_shards(problems, tmp_path / "shards", shard_size=10)
    return tmp_path / "shards"


def pids_of(stream) -> list[str]:
    return [p.pid for p in stream]


# ---------------------------------------------------------------- writing and round trip


def test_write_shards_names_and_sizes(tmp_path: Path, problems: list[Problem]) -> None:
    paths = write_shards(problems, tmp_path / "out", shard_size=10, prefix="train")
    assert [p.name for p in paths] == ["train-000000.tar", "train-000001.tar", "train-000002.tar"]
    assert [count_samples([str(p)]) for p in paths] == [10, 10, 3]
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_write_shards_is_byte_reproducible(tmp_path: Path, problems: list[Problem]) -> None:
    first = write_shards(problems, tmp_path / "a", shard_size=50)
    second = write_shards(problems, tmp_path / "b", shard_size=50)
    assert first[0].read_bytes() == second[0].read_bytes()


def test_write_shards_rejects_a_repeated_pid(tmp_path: Path) -> None:
    twice = [make_problem(1), make_problem(1)]
    with pytest.raises(ValueError, match="p0001"):
        write_shards(twice, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*"))  # the partial shard was removed


def test_round_trip_keeps_records_and_pixels(shard_dir: Path, problems: list[Problem]) -> None:
    read = list(stream_problems(shard_dir))
    assert [p.pid for p in read] == [p.pid for p in problems]
    for original, copy in zip(problems, read):
        assert copy.to_json() == original.to_json()
        assert len(copy.images) == len(original.images)
        for a, b in zip(original.images, copy.images):
            assert (b.mode, b.size) == (a.mode, a.size)
            assert b.tobytes() == a.tobytes()


# ---------------------------------------------------------------- finding shards


def test_resolve_urls_accepts_directory_brace_comma_and_list(shard_dir: Path) -> None:
    expected = [str(shard_dir / f"shard-{i:06d}.tar") for i in range(3)]
    assert resolve_urls(shard_dir) == expected
    assert resolve_urls(str(shard_dir / "shard-{000000..000002}.tar")) == expected
    assert resolve_urls(",".join(expected)) == expected
    assert resolve_urls(expected) == expected
    assert pids_of(stream_problems(expected[:2])) == [f"p{i:04d}" for i in range(20)]


def test_missing_shard_error_names_the_path(shard_dir: Path) -> None:
    missing = shard_dir / "shard-000009.tar"
    with pytest.raises(FileNotFoundError, match="shard-000009.tar"):
        resolve_urls([str(shard_dir / "shard-000000.tar"), str(missing)])
    with pytest.raises(FileNotFoundError, match="shard-000003.tar"):  # the first missing one
        stream_problems(str(shard_dir / "shard-{000000..000009}.tar"))
    empty = shard_dir.parent / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="contains no"):
        resolve_urls(empty)


def test_a_file_that_is_not_a_tar_raises_naming_it(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar"
    bogus.write_bytes(b"this is not a tar file at all" * 40)
    with pytest.raises(ShardError, match="bogus.tar"):
        list(stream_problems([str(bogus)]))


# ---------------------------------------------------------------- splitting across consumers


def test_two_ranks_are_disjoint_and_cover_everything(shard_dir: Path, problems: list[Problem]) -> None:
    per_rank = [
        pids_of(stream_problems(shard_dir, rank=r, world_size=2, shuffle_buffer=6, seed=3)) for r in range(2)
    ]
    assert not set(per_rank[0]) & set(per_rank[1])
    assert sorted(per_rank[0] + per_rank[1]) == sorted(p.pid for p in problems)
    assert sorted(len(share) for share in per_rank) == [11, 12]


def test_more_ranks_than_shards_still_splits_samples(tmp_path: Path) -> None:
    write_shards([make_problem(i) for i in range(7)], tmp_path / "one", shard_size=100)
    shares = [pids_of(stream_problems(tmp_path / "one", rank=r, world_size=3)) for r in range(3)]
    assert shares == [["p0000", "p0003", "p0006"], ["p0001", "p0004"], ["p0002", "p0005"]]


def collect_with_workers(stream: ProblemStream, num_workers: int = 2, batch_size: int = 3) -> list[str]:
    loader = DataLoader(stream, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_problems)
    batches = list(loader)
    assert all(isinstance(batch, list) and all(isinstance(p, Problem) for p in batch) for batch in batches)
    return [p.pid for batch in batches for p in batch]


def test_two_ranks_times_two_workers_see_each_sample_once(shard_dir: Path, problems: list[Problem]) -> None:
    seen: list[str] = []
    for rank in range(2):
        stream = ProblemStream(shard_dir, shuffle_buffer=5, seed=1, rank=rank, world_size=2)
        seen += collect_with_workers(stream)
    assert Counter(seen) == Counter(p.pid for p in problems)


def test_shuffle_is_seeded_and_changes_with_epoch(shard_dir: Path) -> None:
    epoch0 = pids_of(stream_problems(shard_dir, shuffle_buffer=8, seed=5, epoch=0))
    again = pids_of(stream_problems(shard_dir, shuffle_buffer=8, seed=5, epoch=0))
    epoch1 = pids_of(stream_problems(shard_dir, shuffle_buffer=8, seed=5, epoch=1))
    assert epoch0 == again
    assert epoch0 != epoch1
    assert sorted(epoch0) == sorted(epoch1)
    assert epoch0 != sorted(epoch0)


# ---------------------------------------------------------------- resampled mode


def test_resampled_stream_cycles_passes_each_exactly_once(shard_dir: Path, problems: list[Problem]) -> None:
    stream = stream_problems(shard_dir, resampled=True, shuffle_buffer=8, seed=2)
    n = len(problems)
    taken = [next(stream).pid for _ in range(3 * n)]
    passes = [taken[i * n : (i + 1) * n] for i in range(3)]
    for one_pass in passes:
        assert sorted(one_pass) == sorted(p.pid for p in problems)
    assert passes[0] != passes[1]


def test_skip_resumes_where_a_stream_stopped(shard_dir: Path) -> None:
    endless = stream_problems(shard_dir, resampled=True, shuffle_buffer=8, seed=4)
    first_60 = [next(endless).pid for _ in range(60)]
    resumed = stream_problems(shard_dir, resampled=True, shuffle_buffer=8, seed=4, skip=37)
    assert [next(resumed).pid for _ in range(23)] == first_60[37:]
    one_pass = pids_of(stream_problems(shard_dir, shuffle_buffer=8, seed=4))
    assert pids_of(stream_problems(shard_dir, shuffle_buffer=8, seed=4, skip=20)) == one_pass[20:]


def test_resampled_problem_stream_has_epoch_length_and_continues(shard_dir: Path) -> None:
    stream = ProblemStream(shard_dir, resampled=True, epoch_length=9, shuffle_buffer=8, seed=2)
    assert len(stream) == 9
    iterations = []
    for epoch in range(4):
        stream.set_epoch(epoch)
        iterations.append(pids_of(stream))
    assert [len(it) for it in iterations] == [9, 9, 9, 9]
    endless = stream_problems(shard_dir, resampled=True, shuffle_buffer=8, seed=2)
    assert sum(iterations, []) == [next(endless).pid for _ in range(36)]


def test_resampled_problem_stream_with_workers_yields_epoch_length(shard_dir: Path) -> None:
    stream = ProblemStream(shard_dir, resampled=True, epoch_length=11, shuffle_buffer=4, rank=1, world_size=2)
    assert len(stream) == 11
    seen = collect_with_workers(stream, batch_size=4)
    assert len(seen) == 11
    assert len(set(seen)) == 11  # rank 1's two workers own 6 samples each per pass: no repeats yet


def test_resampled_stream_without_length_is_an_error(shard_dir: Path) -> None:
    with pytest.raises(ValueError, match="epoch_length"):
        ProblemStream(shard_dir, resampled=True)


# ---------------------------------------------------------------- corrupt samples


def write_raw_shard(path: Path, samples: list[dict]) -> None:
    with open(path, "wb") as file, TarWriter(file, encoder=False) as writer:
        for sample in samples:
            writer.write(sample)


def test_corrupt_samples_are_skipped_counted_and_warned(tmp_path: Path, caplog) -> None:
    good = [make_problem(i).to_sample() for i in range(1, 5)]
    truncated = make_problem(7).to_sample()
    truncated["__key__"] = "bad_png"
    truncated["images.tar"] = pack_images([unpack_images(truncated["images.tar"])[0][:60]])
    bad_json = make_problem(8).to_sample()
    bad_json["__key__"] = "bad_json"
    bad_json["json"] = b'{"pid": "bad_json", "question": '
    shard = tmp_path / "mixed.tar"
    write_raw_shard(shard, [good[0], truncated, good[1], bad_json, good[2], good[3]])

    skipped = SkipCounter()
    with caplog.at_level(logging.WARNING, logger="mmreason.data.shards"):
        read = pids_of(stream_problems([str(shard)], skipped=skipped))

    assert read == ["p0001", "p0002", "p0003", "p0004"]
    assert skipped.count == 2
    assert [key for _, key, _ in skipped.records] == ["bad_png", "bad_json"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all(str(shard) in w for w in warnings)
    assert "bad_png" in warnings[0] and "bad_json" in warnings[1]


def test_problem_stream_counts_skips_in_process(tmp_path: Path) -> None:
    bad = make_problem(3).to_sample()
    bad["json"] = json.dumps(["not", "an", "object"]).encode()
    write_raw_shard(tmp_path / "s.tar", [make_problem(1).to_sample(), bad, make_problem(2).to_sample()])
    stream = ProblemStream(str(tmp_path / "s.tar"))
    assert pids_of(stream) == ["p0001", "p0002"]
    assert stream.skipped.count == 1


def test_png_in_a_sample_is_really_png(shard_dir: Path) -> None:
    """Guards the format others rely on: images travel as PNG, never re-encoded lossy."""
    import tarfile

    with tarfile.open(shard_dir / "shard-000000.tar") as tar:
        member = next(m for m in tar if m.name.endswith(".images.tar"))
        data = unpack_images(tar.extractfile(member).read())[0]
    assert Image.open(io.BytesIO(data)).format == "PNG"
