"""The RL prompt set as an index (issue 27): records and encoded images in memory, pixels decoded when a prompt is
drawn, an LRU cache of decoded problems, corrupt images skipped and counted at load (or, if only decoding finds
them, replaced when drawn), never fatal."""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from webdataset.writer import TarWriter

import mmreason.data.prompt_index as prompt_index
from mmreason.data.prompt_index import PromptIndex, build_prompt_index, check_image
from mmreason.data.shards import SkipCounter, write_shards
from mmreason.problem import Problem, ProblemError, encode_png, pack_images, unpack_images


def noisy(index: int, size: tuple[int, int] = (12, 10)) -> Image.Image:
    pixels = np.random.default_rng(index).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def problem(index: int, images: int = 1) -> Problem:
    return Problem(pid=f"r{index:03d}", question=f"{index} + 1?", answer=str(index + 1), answer_type="integer",
                   images=[noisy(index * 10 + k) for k in range(images)], meta={"difficulty": index % 3 + 1})


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        chunks.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


def png_from_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in chunks:
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return out


def damaged_but_well_formed(data: bytes) -> bytes:
    """A PNG whose compressed pixels are cut in half but whose chunks (lengths, CRCs, IEND) are all valid:
    the cheap check passes it, only decoding finds the damage."""
    return png_from_chunks([(kind, body[: len(body) // 2] if kind == b"IDAT" else body)
                            for kind, body in png_chunks(data)])


def with_image(sample: dict, data: bytes, key: str) -> dict:
    sample = dict(sample)
    sample["__key__"] = key
    sample["images.tar"] = pack_images([data])
    return sample


def write_raw_shard(path: Path, samples: list[dict]) -> None:
    with open(path, "wb") as file, TarWriter(file, encoder=False) as writer:
        for sample in samples:
            writer.write(sample)


@pytest.fixture
def decode_calls(monkeypatch) -> list[str]:
    """Every full image decode the index makes (the pixels, not the header check)."""
    calls: list[str] = []
    real = prompt_index.decode_image

    def counting(data, where):
        calls.append(where)
        return real(data, where)

    monkeypatch.setattr(prompt_index, "decode_image", counting)
    return calls


def test_index_holds_records_and_bytes_and_decodes_only_when_drawn(tmp_path: Path, decode_calls: list[str]):
    originals = [problem(i, images=2 if i % 4 == 0 else 1) for i in range(10)]
    write_shards(originals, tmp_path / "s", shard_size=4)
    index = build_prompt_index(tmp_path / "s", cache_size=4)
    assert len(index) == 10 and decode_calls == [] and index.decodes == 0  # nothing decoded at load
    assert [r.pid for r in index.records] == [p.pid for p in originals]
    assert all(r.images == [] for r in index.records)
    assert [r.meta for r in index.records] == [p.meta for p in originals]
    assert index.encoded_bytes() == sum(len(encode_png(im)) for p in originals for im in p.images)

    drawn = index[4]
    assert drawn.pid == "r004" and len(decode_calls) == 2 and index.decodes == 1  # its two images, now
    assert [im.tobytes() for im in drawn.images] == [im.tobytes() for im in originals[4].images]
    assert drawn.to_json() == originals[4].to_json()
    assert index.records[4].images == []  # the record itself stays image-free
    assert index[4] is drawn and index.hits == 1 and len(decode_calls) == 2  # second draw: from the cache
    assert index[-1].pid == "r009"
    with pytest.raises(IndexError):
        index[10]


def test_lru_cache_keeps_at_most_cache_size_most_recently_drawn(tmp_path: Path, decode_calls: list[str]):
    write_shards([problem(i) for i in range(10)], tmp_path / "s", shard_size=10)
    index = build_prompt_index(tmp_path / "s", cache_size=3)
    for i in range(5):
        index[i]
    assert index.cached == 3 and index.decodes == 5
    index[2]  # a hit: 2 becomes the most recent, so 3 is now the least recent
    assert (index.hits, index.decodes) == (1, 5)
    index[5]  # evicts 3
    assert index.cached == 3 and index.decodes == 6
    index[4], index[2]
    assert (index.hits, index.decodes) == (3, 6)  # both still cached
    index[3]
    assert index.decodes == 7  # 3 was evicted, decoded again
    for i in range(10):
        index[i]
        assert index.cached <= 3

    uncached = build_prompt_index(tmp_path / "s", cache_size=0)
    uncached[1], uncached[1]
    assert (uncached.decodes, uncached.hits, uncached.cached) == (2, 0, 0)
    with pytest.raises(ValueError, match="cache_size"):
        PromptIndex([], cache_size=-1)


def test_corrupt_images_are_skipped_and_counted_at_index_time_without_decoding(tmp_path: Path, monkeypatch, caplog,
                                                                               decode_calls: list[str]):
    good = [problem(i).to_sample() for i in range(4)]
    png = unpack_images(good[0]["images.tar"])[0]
    truncated = with_image(good[0], png[: len(png) // 2], "cut_png")
    flipped = bytearray(png)
    flipped[len(png) // 2] ^= 0xFF  # a bit flip inside IDAT: the chunk CRC no longer matches
    bit_flip = with_image(good[0], bytes(flipped), "flipped_png")
    not_an_image = with_image(good[0], b"GIF89a this is no image", "garbage")
    big = with_image(good[0], encode_png(Image.new("RGB", (300, 200))), "too_big")  # 60,000 pixels
    write_raw_shard(tmp_path / "mixed.tar", [good[1], truncated, good[2], bit_flip, not_an_image, big, good[3]])

    monkeypatch.setattr("mmreason.problem._max_image_pixels", 50_000)
    skipped = SkipCounter()
    with caplog.at_level(logging.WARNING, logger="mmreason.data.prompt_index"):
        index = build_prompt_index(str(tmp_path / "mixed.tar"), skipped=skipped)
    assert [r.pid for r in index.records] == ["r001", "r002", "r003"]
    assert skipped.count == 4
    assert [key for _, key, _ in skipped.records] == ["cut_png", "flipped_png", "garbage", "too_big"]
    assert "data.max_image_pixels" in skipped.records[3][2]
    assert decode_calls == []  # all of it from headers and chunk checks
    assert sum("skipping corrupt sample" in r.getMessage() for r in caplog.records) == 4


def test_check_image_accepts_good_and_rejects_cut_or_flipped_pngs():
    png = encode_png(noisy(3))
    assert check_image(png, "x") == (12, 10)
    with pytest.raises(ProblemError, match="cannot decode"):
        check_image(png[:-20], "x")  # no IEND
    assert check_image(damaged_but_well_formed(png), "x") == (12, 10)  # what only a decode can find


def test_damage_found_only_when_drawn_is_counted_and_replaced_not_fatal(tmp_path: Path, caplog):
    samples = [problem(i).to_sample() for i in range(4)]
    png = unpack_images(samples[1]["images.tar"])[0]
    samples[1] = with_image(samples[1], damaged_but_well_formed(png), "r001")
    write_raw_shard(tmp_path / "s.tar", samples)
    skipped = SkipCounter()
    index = build_prompt_index(str(tmp_path / "s.tar"), skipped=skipped)
    assert len(index) == 4 and skipped.count == 0  # passes the load-time check
    with caplog.at_level(logging.WARNING, logger="mmreason.data.prompt_index"):
        replacement = index[1]
    assert replacement.pid == "r002"  # the next prompt: the same on every rank
    assert skipped.count == 1 and skipped.records[0][1] == "r001"
    assert "replaced by the next prompt" in caplog.text
    assert index[1].pid == "r002" and skipped.count == 1  # remembered: counted once
    assert [index[i].pid for i in (0, 2, 3)] == ["r000", "r002", "r003"]


def test_rl_load_prompt_set_is_an_index_and_the_sampler_reads_records(tmp_path: Path, decode_calls: list[str]):
    from mmreason.config import SamplerConfig
    from mmreason.rl.loop import load_prompt_set
    from mmreason.rl.sampler import PromptSampler, sample_item

    write_shards([problem(i) for i in range(6)], tmp_path / "s", shard_size=3)
    prompts = load_prompt_set(str(tmp_path / "s"), cache_size=2)
    assert isinstance(prompts, PromptIndex) and prompts.cache_size == 2 and decode_calls == []
    sampler = PromptSampler([sample_item(p.pid, p.meta, SamplerConfig()) for p in prompts.records], SamplerConfig(), 0)
    drawn = sampler.sample(1, 3)
    problems = [prompts[i] for i in drawn]  # what collect_rollout does
    assert [p.pid for p in problems] == [f"r{i:03d}" for i in drawn] and all(p.images for p in problems)
    assert len(decode_calls) == 3

    bad = problem(7)
    bad.answer = "seven"  # not an integer: an unverifiable ground truth still fails at load
    write_shards([bad], tmp_path / "bad", shard_size=3)
    with pytest.raises(ProblemError, match="r007"):
        load_prompt_set(str(tmp_path / "bad"))


def test_partial_rollouts_take_the_index(tmp_path: Path):
    """rl/partial.py looks prompts up as problems[g.index]: the index serves it like the dict it got before."""
    from mmreason.rl.partial import new_groups

    write_shards([problem(i) for i in range(5)], tmp_path / "s", shard_size=5)
    index = build_prompt_index(tmp_path / "s", cache_size=2)
    groups = new_groups([3, 0], 2, step=1)
    assert [index[g.index].pid for g in groups] == ["r003", "r000"]


def test_index_reads_old_one_field_per_image_shards(tmp_path: Path):
    sample = problem(2).to_sample()
    old = {"__key__": sample["__key__"], "json": sample["json"], "0.png": unpack_images(sample["images.tar"])[0]}
    write_raw_shard(tmp_path / "old.tar", [old])
    index = build_prompt_index(str(tmp_path / "old.tar"))
    assert index[0].images[0].tobytes() == problem(2).images[0].tobytes()
