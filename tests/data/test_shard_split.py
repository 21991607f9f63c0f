"""Shard split vs sample split (issue 27): each consumer reads only its own shards when there are enough of them,
every sample still once per pass, resume exact, the sample split as the fallback."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image
from torch.utils.data import DataLoader

import mmreason.data.shards as shards_module
from mmreason.data.shards import (
    Consumer,
    ProblemStream,
    SkipCounter,
    choose_split,
    collate_problems,
    pass_shards,
    resolve_urls,
    stream_problems,
    write_shards,
)
from mmreason.problem import Problem, pack_images, unpack_images


def tiny(index: int) -> Problem:
    return Problem(pid=f"q{index:03d}", question=f"{index} + 1?", answer=str(index + 1), answer_type="integer",
                   images=[Image.new("RGB", (8, 8), (index * 7 % 256, index % 3 * 80, 0))])


def pids(stream) -> list[str]:
    return [p.pid for p in stream]


@pytest.fixture
def eight_shards(tmp_path: Path) -> Path:
    """23 problems in 8 shards of 3, 3, 3, 3, 3, 3, 3, 2: unequal shares under the shard split."""
    write_shards([tiny(i) for i in range(23)], tmp_path / "eight", shard_size=3)
    return tmp_path / "eight"


ALL_23 = sorted(f"q{i:03d}" for i in range(23))


class OpenLog:
    """Wraps the opener `read_raw_samples` uses (webdataset's gopen): records each opened url and the bytes read
    from it, per process (one line per closed stream in a file, so DataLoader workers report too)."""

    def __init__(self, path: Path):
        self.path = path
        self.real = shards_module.gopen

    def __call__(self, url, mode="rb", **kwargs):
        return CountingStream(self.real(url, mode, **kwargs), url, self.path)

    def entries(self) -> list[tuple[int, int, str]]:
        if not self.path.exists():
            return []
        rows = [line.split(" ", 2) for line in self.path.read_text().splitlines()]
        return [(int(pid), int(n), url) for pid, n, url in rows]

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class CountingStream:
    """A file object that counts the bytes read through it and logs them when closed."""

    def __init__(self, stream, url: str, log: Path):
        self.stream, self.url, self.log, self.bytes_read = stream, url, log, 0

    def read(self, *args):
        data = self.stream.read(*args)
        self.bytes_read += len(data)
        return data

    def close(self):
        with open(self.log, "a") as file:
            file.write(f"{os.getpid()} {self.bytes_read} {self.url}\n")
        self.stream.close()

    def __getattr__(self, name):
        return getattr(self.stream, name)


@pytest.fixture
def open_log(tmp_path: Path, monkeypatch) -> OpenLog:
    log = OpenLog(tmp_path / "opened.log")
    monkeypatch.setattr(shards_module, "gopen", log)
    return log


# ---------------------------------------------------------------- the rule


@pytest.mark.parametrize("split,shards,consumers,resampled,chosen", [
    ("auto", 8, 4, False, "shard"), ("auto", 8, 4, True, "shard"),
    ("auto", 8, 3, False, "sample"),   # one pass: 8 shards do not divide among 3 readers
    ("auto", 8, 3, True, "shard"),     # endless: uneven shares only move where passes begin
    ("auto", 3, 4, True, "sample"), ("auto", 3, 4, False, "sample"),  # fewer shards than readers
    ("auto", 1, 1, False, "shard"),
    ("shard", 8, 3, False, "shard"), ("sample", 8, 4, True, "sample"),
])
def test_choose_split(split, shards, consumers, resampled, chosen):
    assert choose_split(split, shards, consumers, resampled=resampled) == chosen


def test_explicit_shard_split_with_too_few_shards_is_an_error(eight_shards: Path):
    with pytest.raises(ValueError, match="8 shard.*9 consumers"):
        choose_split("shard", 8, 9, resampled=True)
    with pytest.raises(ValueError, match="split must be one of"):
        choose_split("rows", 8, 2, resampled=True)
    with pytest.raises(ValueError, match="cannot feed"):
        list(stream_problems(eight_shards, rank=0, world_size=9, split="shard"))


def test_shard_assignment_changes_with_the_epoch_and_partitions_every_pass(eight_shards: Path):
    urls = resolve_urls(eight_shards)
    for shuffle in (True, False):
        by_epoch = []
        for epoch in range(4):
            owned = [pass_shards(urls, Consumer(c, 3), split="shard", shuffle=shuffle, seed=1, epoch=epoch)
                     for c in range(3)]
            assert sorted(sum(owned, [])) == urls  # each shard read by exactly one consumer in every pass
            by_epoch.append(owned[0])
        assert len({tuple(o) for o in by_epoch}) > 1  # consumer 0 reads other shards in other passes


# ---------------------------------------------------------------- bytes: only own shards


def test_shard_split_opens_only_own_shards_and_reads_the_data_once(eight_shards: Path, open_log: OpenLog):
    urls = resolve_urls(eight_shards)
    total_bytes = sum(Path(u).stat().st_size for u in urls)
    read = {}
    for split in ("shard", "sample"):
        opened: list[list[str]] = []
        seen: list[str] = []
        for rank in range(4):
            open_log.clear()
            seen += pids(stream_problems(eight_shards, rank=rank, world_size=4, shuffle_buffer=5, seed=2, split=split))
            opened.append([url for _, _, url in open_log.entries()])
        assert sorted(seen) == ALL_23
        read[split] = opened
    # shard split: 2 shards each, disjoint, all 8 together; sample split: every rank opens all 8
    assert [len(o) for o in read["shard"]] == [2, 2, 2, 2]
    assert sorted(sum(read["shard"], [])) == urls
    assert all(sorted(o) == urls for o in read["sample"])
    # and auto picks the shard split here (8 shards, 4 readers, 8 % 4 == 0)
    open_log.clear()
    list(stream_problems(eight_shards, rank=1, world_size=4, shuffle_buffer=5, seed=2))
    assert [url for _, _, url in open_log.entries()] == read["shard"][1]
    # bytes: the shard split reads each shard's bytes once in total, the sample split once per rank
    open_log.clear()
    for rank in range(4):
        list(stream_problems(eight_shards, rank=rank, world_size=4, split="shard"))
    shard_bytes = sum(n for _, n, _ in open_log.entries())
    open_log.clear()
    for rank in range(4):
        list(stream_problems(eight_shards, rank=rank, world_size=4, split="sample"))
    sample_bytes = sum(n for _, n, _ in open_log.entries())
    assert total_bytes * 0.9 < shard_bytes <= total_bytes
    assert sample_bytes == 4 * shard_bytes


# ---------------------------------------------------------------- exactly once per pass, ranks x workers


def run_ranks_with_workers(urls, world_size: int, num_workers: int, **kwargs) -> list[str]:
    seen = []
    for rank in range(world_size):
        stream = ProblemStream(urls, rank=rank, world_size=world_size, **kwargs)
        loader = DataLoader(stream, batch_size=2, num_workers=num_workers, collate_fn=collate_problems)
        seen += [p.pid for batch in loader for p in batch]
    return seen


def test_two_ranks_times_two_workers_shard_split_once_per_pass(eight_shards: Path, open_log: OpenLog):
    for epoch in (0, 1):  # other shards per worker in the next pass, still each sample once
        open_log.clear()
        seen = []
        for rank in range(2):
            stream = ProblemStream(eight_shards, rank=rank, world_size=2, shuffle_buffer=4, seed=3)
            stream.set_epoch(epoch)
            loader = DataLoader(stream, batch_size=2, num_workers=2, collate_fn=collate_problems)
            seen += [p.pid for batch in loader for p in batch]
        assert Counter(seen) == Counter(ALL_23)
        per_worker: dict[int, list[str]] = {}
        for pid, _, url in open_log.entries():
            per_worker.setdefault(pid, []).append(url)
        assert sorted(len(urls) for urls in per_worker.values()) == [2, 2, 2, 2]  # 4 worker processes, 2 shards each
        assert sorted(sum(per_worker.values(), [])) == resolve_urls(eight_shards)


def test_fallback_to_sample_split_with_fewer_shards_than_consumers(tmp_path: Path, open_log: OpenLog):
    write_shards([tiny(i) for i in range(11)], tmp_path / "three", shard_size=4)  # 3 shards, 4 readers
    seen = run_ranks_with_workers(tmp_path / "three", 2, 2, shuffle_buffer=3, seed=1)
    assert Counter(seen) == Counter(f"q{i:03d}" for i in range(11))
    per_worker: dict[int, list[str]] = {}
    for pid, _, url in open_log.entries():
        per_worker.setdefault(pid, []).append(url)
    assert len(per_worker) == 4 and all(sorted(urls) == resolve_urls(tmp_path / "three") for urls in per_worker.values())


def test_one_pass_auto_with_uneven_division_keeps_shares_within_one(eight_shards: Path):
    shares = [pids(stream_problems(eight_shards, rank=r, world_size=3)) for r in range(3)]  # 8 % 3 != 0: sample split
    assert sorted(sum(shares, [])) == ALL_23
    assert sorted(len(s) for s in shares) == [7, 8, 8]


# ---------------------------------------------------------------- resampled streams and resume


def test_resampled_shard_split_runs_its_passes_back_to_back(eight_shards: Path):
    for rank in range(2):
        passes = [pids(stream_problems(eight_shards, rank=rank, world_size=2, shuffle_buffer=4, seed=5, epoch=e,
                                       split="shard")) for e in range(3)]
        endless = stream_problems(eight_shards, rank=rank, world_size=2, shuffle_buffer=4, seed=5, resampled=True)
        assert [next(endless).pid for _ in range(sum(map(len, passes)))] == sum(passes, [])
    for epoch in range(3):  # every pass: the two ranks' shares partition the set
        both = [pids(stream_problems(eight_shards, rank=r, world_size=2, shuffle_buffer=4, seed=5, epoch=epoch,
                                     split="shard")) for r in range(2)]
        assert sorted(both[0] + both[1]) == ALL_23


def test_resume_with_skip_equals_the_uninterrupted_stream_under_the_shard_split(eight_shards: Path, tmp_path: Path):
    # one corrupt sample in a shard: `skip` counts it, as SFT's ExampleStream does
    bad = tiny(99).to_sample()
    bad["images.tar"] = pack_images([unpack_images(bad["images.tar"])[0][:40]])
    from webdataset.writer import TarWriter

    shard = Path(resolve_urls(eight_shards)[3])
    samples = [s for s in shards_module.read_raw_samples(str(shard))]
    with open(shard, "wb") as file, TarWriter(file, encoder=False) as writer:
        for sample in samples[:1] + [bad] + samples[1:]:
            writer.write({k: v for k, v in sample.items() if not k.startswith("__") or k == "__key__"})
    (eight_shards / "shards.json").unlink()  # its count no longer holds; nothing is truncated

    def sft_like(rank: int, consumed: int):
        """(stream, counter) as mmreason/sft/loop.py's ExampleStream opens them."""
        skipped = SkipCounter()
        return stream_problems(eight_shards, rank=rank, world_size=2, resampled=True, shuffle_buffer=6, seed=7,
                               skipped=skipped, skip=consumed), skipped

    for rank in range(2):
        stream, skipped = sft_like(rank, 0)
        consumed, taken = 0, []
        checkpoints = {}
        for step in range(1, 11):  # 10 steps of 5 samples: more than 2 passes of this rank's share
            for _ in range(5):
                before = skipped.count
                taken.append(next(stream).pid)
                consumed += 1 + skipped.count - before
            checkpoints[step] = (consumed, len(taken))
        assert skipped.count >= 1  # the corrupt sample lies in this rank's shards in some pass (1 of 2 each pass)
        for step in (1, 4, 7):
            consumed_at, taken_at = checkpoints[step]
            resumed, _ = sft_like(rank, consumed_at)
            assert [next(resumed).pid for _ in range(len(taken) - taken_at)] == taken[taken_at:]


def test_resampled_problem_stream_continues_across_epochs_under_the_shard_split(eight_shards: Path):
    for rank in range(2):
        stream = ProblemStream(eight_shards, resampled=True, epoch_length=7, shuffle_buffer=4, seed=2, rank=rank,
                               world_size=2)
        iterations = []
        for epoch in range(6):  # 42 samples: several passes of unequal length
            stream.set_epoch(epoch)
            iterations.append(pids(stream))
        assert [len(it) for it in iterations] == [7] * 6
        endless = stream_problems(eight_shards, resampled=True, shuffle_buffer=4, seed=2, rank=rank, world_size=2,
                                  split="shard")
        assert sum(iterations, []) == [next(endless).pid for _ in range(42)]
        # out of order too: iteration 4 alone is the same stretch (resume of a ProblemStream by epoch)
        fresh = ProblemStream(eight_shards, resampled=True, epoch_length=7, shuffle_buffer=4, seed=2, rank=rank,
                              world_size=2)
        fresh.set_epoch(4)
        assert pids(fresh) == iterations[4]


# ---------------------------------------------------------------- corrupt samples


def test_corrupt_sample_is_counted_once_by_the_consumer_owning_its_shard(tmp_path: Path):
    good = [tiny(i).to_sample() for i in range(8)]
    bad = tiny(50).to_sample()
    bad["__key__"] = "bad_json"
    bad["json"] = b'{"pid": "bad_json", '
    from webdataset.writer import TarWriter

    out = tmp_path / "four"
    out.mkdir()
    for k in range(4):
        with open(out / f"s-{k}.tar", "wb") as file, TarWriter(file, encoder=False) as writer:
            for sample in good[2 * k : 2 * k + 2] + ([bad] if k == 2 else []):
                writer.write(sample)
    counters = [SkipCounter() for _ in range(4)]
    seen = []
    for rank in range(4):
        seen += pids(stream_problems(out, rank=rank, world_size=4, skipped=counters[rank], split="shard"))
    assert sorted(seen) == [f"q{i:03d}" for i in range(8)]
    assert sorted(c.count for c in counters) == [0, 0, 0, 1]
    [owner] = [c for c in counters if c.count]
    assert owner.records[0][:2] == (str(out / "s-2.tar"), "bad_json")


# ---------------------------------------------------------------- the config key


def test_data_split_config_key_is_checked(tmp_path: Path):
    import yaml

    from mmreason.config import ConfigError, load_config

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"stage": "sft", "model": {"path": "/ckpt"}, "data": {"train": "/shards"},
                                    "train": {"output_dir": "/run"}}))
    assert load_config(path).data.split == "auto"
    assert load_config(path, ["data.split=shard"]).data.split == "shard"
    with pytest.raises(ConfigError, match="'data.split'.*'rows'.*auto.*shard.*sample"):
        load_config(path, ["data.split=rows"])
    with pytest.raises(ConfigError, match="'data.image_cache_size'"):
        load_config(path, ["data.image_cache_size=-1"])
