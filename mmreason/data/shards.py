"""Problems in webdataset shards: write them, find them, stream them back.

A shard is a plain tar file; one `Problem` is one sample in it
(`<pid>.json`, `<pid>.images.tar` holding 0.png, 1.png, ...; older shards `<pid>.0.png`, ...; see
`Problem.to_sample`).

Reading splits the work among the readers: one per rank x DataLoader worker, a
"consumer" (`current_consumer`). Every consumer orders the shard list alike,
shuffled with the same (seed, epoch) when shuffling (`shuffle_buffer > 0`), else as
listed, so all of them agree on one order per pass, and then either

- **shard split**: consumer ``c`` of ``n`` reads only the shards at positions
  ``i % n == c`` of that order (without shuffling, positions ``(i + epoch) % n == c``,
  so ownership rotates from pass to pass). Each consumer reads only its own
  shards' bytes: with remote shards (`pipe:`, `s3://`) the data is downloaded once
  per pass in total, not once per consumer. A consumer's share is whole shards, so
  shares differ by up to a shard's worth of samples; or
- **sample split**: every consumer walks all shards in that order and keeps the
  samples whose global index ``i`` satisfies ``i % n == c``. Shares differ by at
  most one sample and it works with fewer shards than consumers, but every
  consumer reads every shard's bytes (only its own samples are decoded).

Either way each sample is seen exactly once per pass over all consumers. The
choice (`split`, config key `data.split`, `choose_split`):

- ``"auto"`` (default): the shard split when there are at least as many shards as
  consumers and, for a single pass (not `resampled`), the shards divide evenly
  among them (``num_shards % consumers == 0``, so every consumer reads as many
  shards; with equal-sized shards its share is equal too); else the sample split.
  Resampled streams need no even division: they are endless and a rank's length
  is set by its caller (SFT takes `train.batch_size / ranks` samples per step,
  `ProblemStream` takes `epoch_length` per rank), so unequal shares only move where
  a consumer's passes begin. Since ownership changes every pass (random with
  shuffling, on average; rotating without, exactly over every n passes), every
  shard goes to every consumer equally often and each sample appears in each
  consumer's stream at the same rate, so no sample is favoured over a run.
- ``"shard"``: the shard split, a ValueError when there are fewer shards than consumers.
- ``"sample"``: the sample split (the behaviour before the shard split existed).

The choice depends only on the number of shards, the number of consumers and
whether the stream is resampled, so a resumed run (same shards, same ranks and
workers) always gets the split it started with, and `skip` means the same samples.

Corrupt samples (malformed JSON, truncated or undecodable images) are skipped,
logged with `logging.warning` naming the shard and the sample key, and counted
in a `SkipCounter`. A shard that cannot be opened or is not a tar file raises
`ShardError` naming it. A local shard read to its end is checked for the tar
end-of-archive marker and against the sample count `write_shards` recorded in
`shards.json`: a shard cut short (even exactly at a tar block boundary, which
reads as a valid shorter archive) is logged with the number of samples lost
and recorded in `SkipCounter.truncated`.
"""

from __future__ import annotations

import glob
import itertools
import json
import logging
import os
import random
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import braceexpand
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info
from webdataset.gopen import gopen
from webdataset.tariterators import base_plus_ext, group_by_keys, tar_file_expander
from webdataset.writer import TarWriter

from mmreason.problem import Problem, ProblemError

logger = logging.getLogger(__name__)

SHARD_SUFFIX = ".tar"
SHARD_MANIFEST = "shards.json"
"""Written by `write_shards` beside the shards: the sample count of each, checked by the readers."""
MAX_SKIP_RECORDS = 100
"""A SkipCounter remembers this many (shard, key, reason) records; `count` keeps counting past it."""


class ShardError(RuntimeError):
    """A shard that does not exist, cannot be opened, or is not a readable tar file."""


# ---------------------------------------------------------------- writing


def write_shards(
    problems: Iterable[Problem], out_dir: str | Path, shard_size: int = 1000, prefix: str = "shard"
) -> list[Path]:
    """Write problems to `out_dir/{prefix}-000000.tar`, ... with `shard_size` samples per shard.

    The writer owns its shards in `out_dir`: they are written into a staging directory beside them, and only
    when every problem is written are the previous `{prefix}-*.tar` files removed and the new ones moved in.
    So a rerun never leaves stale shards of an earlier run, and a failed one (a bad record, a full disk)
    leaves the previous shards as they were and no partial ones. The sample count of each shard goes to
    `out_dir/shards.json` (SHARD_MANIFEST), which readers check to report samples lost to truncation.
    Entries carry mtime 0, so the same problems always give byte-identical shards.
    Returns the shard paths in order (empty when there were no problems).
    Raises ValueError on a repeated pid (webdataset would merge the two samples).
    """
    if shard_size < 1:
        raise ValueError(f"write_shards: shard_size must be >= 1, got {shard_size}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{prefix}-writing-", dir=out_dir))
    counts: list[int] = []
    seen_pids: set[str] = set()
    writer: TarWriter | None = None
    file = None
    try:
        for problem in problems:
            if problem.pid in seen_pids:
                raise ValueError(f"write_shards: pid {problem.pid!r} appears twice; pids must be unique")
            seen_pids.add(problem.pid)
            sample = problem.to_sample()  # validates first, so a bad record names itself
            if writer is None:
                file = open(staging / f"{prefix}-{len(counts):06d}{SHARD_SUFFIX}", "wb")
                writer = TarWriter(file, encoder=False, mtime=0)
                counts.append(0)
            writer.write(sample)
            counts[-1] += 1
            if counts[-1] == shard_size:
                writer.close()
                file.close()
                writer = None
        if writer is not None:
            writer.close()
            file.close()
            writer = None
        names = [f"{prefix}-{i:06d}{SHARD_SUFFIX}" for i in range(len(counts))]
        for stale in out_dir.glob(f"{glob.escape(prefix)}-*{SHARD_SUFFIX}"):
            stale.unlink()
        for name in names:
            os.replace(staging / name, out_dir / name)
        _update_manifest(out_dir, prefix, dict(zip(names, counts)))
    finally:
        if writer is not None:  # an error mid-shard
            writer.close()
            file.close()
        shutil.rmtree(staging, ignore_errors=True)
    return [out_dir / name for name in names]


def _update_manifest(out_dir: Path, prefix: str, counts: dict[str, int]) -> None:
    """Replace this prefix's entries of out_dir/shards.json (other prefixes' entries stay)."""
    path = out_dir / SHARD_MANIFEST
    samples = read_manifest(out_dir)
    samples = {name: n for name, n in samples.items()
               if not name.startswith(f"{prefix}-") and (out_dir / name).is_file()}
    samples.update(counts)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"samples": dict(sorted(samples.items()))}, indent=1) + "\n")
    os.replace(tmp, path)


def read_manifest(shard_dir: str | Path) -> dict[str, int]:
    """{shard file name: sample count} from shard_dir/shards.json ({} when there is none or it is unreadable)."""
    path = Path(shard_dir) / SHARD_MANIFEST
    try:
        return {str(k): int(v) for k, v in json.loads(path.read_text())["samples"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


# ---------------------------------------------------------------- finding


def _is_remote(url: str) -> bool:
    """URLs that webdataset's gopen opens itself (pipe:, http://, s3:// ...): not checked on disk."""
    return url.startswith("pipe:") or "://" in url


def resolve_urls(spec: str | Path | Sequence[str | Path]) -> list[str]:
    """Turn a shard spec into a list of shard paths.

    Accepts a directory (every `*.tar` in it, sorted), a brace pattern
    (`data/shard-{000000..000003}.tar`), a comma-separated string of paths, or a
    list of paths (each may itself be a brace pattern). Local paths must exist;
    the error names the first missing one. Remote URLs (`pipe:...`, `scheme://...`)
    pass through unchecked.
    """
    if isinstance(spec, (str, Path)):
        text = str(spec)
        if not text.strip():
            raise ValueError("resolve_urls: empty shard spec")
        if Path(text).is_dir():
            urls = sorted(str(p) for p in Path(text).glob(f"*{SHARD_SUFFIX}"))
            if not urls:
                raise FileNotFoundError(f"shard directory {text} contains no *{SHARD_SUFFIX} files")
            return urls
        parts = [part.strip() for part in text.split(",") if part.strip()]
    else:
        parts = [str(part) for part in spec]
        if not parts:
            raise ValueError("resolve_urls: empty list of shards")
    urls: list[str] = []
    for part in parts:
        urls.extend(braceexpand.braceexpand(part))
    for url in urls:
        if not _is_remote(url) and not Path(url).is_file():
            raise FileNotFoundError(f"shard {url} does not exist")
    return urls


# ---------------------------------------------------------------- reading


@dataclass
class SkipCounter:
    """Counts the samples a stream skipped because they could not be decoded.

    Pass one to `stream_problems(..., skipped=counter)`, or read `ProblemStream.skipped`.
    With DataLoader workers each worker process counts its own skips (the copy
    in the main process stays at zero); the warnings are logged either way.
    """

    count: int = 0
    records: list[tuple[str, str, str]] = field(default_factory=list)
    """(shard url, sample key, reason) of the first MAX_SKIP_RECORDS skips."""
    truncated: dict[str, int | None] = field(default_factory=dict)
    """Shards found truncated or short -> samples lost from each (None: unknown, the shard has no manifest).
    Lost samples were never read, so they are not in `count` (which counts samples read and skipped)."""

    def add(self, url: str, key: str, reason: str) -> None:
        self.count += 1
        if len(self.records) < MAX_SKIP_RECORDS:
            self.records.append((url, key, reason))

    @property
    def lost(self) -> int:
        """Samples known lost to truncated shards (each shard counted once, however often it is read)."""
        return sum(n for n in self.truncated.values() if n)


@dataclass(frozen=True)
class Consumer:
    """One reader's slot: it keeps the samples whose global index % count == index."""

    index: int
    count: int

    def owns(self, global_index: int) -> bool:
        return global_index % self.count == self.index

    def share(self, num_samples: int) -> int:
        """How many of `num_samples` samples (global indices 0..n-1) this consumer owns."""
        return max(0, (num_samples - self.index + self.count - 1) // self.count)


def distributed_rank_and_world_size(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """The given rank/world size, else torch.distributed's when initialised, else (0, 1)."""
    if rank is None or world_size is None:
        initialised = dist.is_available() and dist.is_initialized()
        if rank is None:
            rank = dist.get_rank() if initialised else 0
        if world_size is None:
            world_size = dist.get_world_size() if initialised else 1
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    return rank, world_size


def current_consumer(rank: int | None = None, world_size: int | None = None) -> Consumer:
    """This process's slot among world_size x DataLoader workers (worker info read at call time)."""
    rank, world_size = distributed_rank_and_world_size(rank, world_size)
    worker = get_worker_info()
    worker_id, num_workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
    return Consumer(index=rank * num_workers + worker_id, count=world_size * num_workers)


SPLITS = ("auto", "shard", "sample")
"""How readers divide the shards (config key `data.split`; see the module docstring)."""


def choose_split(split: str, num_shards: int, consumers: int, *, resampled: bool) -> str:
    """The split a stream of `num_shards` shards read by `consumers` readers uses: "shard" or "sample".

    "auto": "shard" when num_shards >= consumers and (resampled or num_shards % consumers == 0), else "sample".
    "shard" with fewer shards than consumers raises ValueError (some consumer would get nothing).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    if split == "sample":
        return "sample"
    if num_shards < consumers:
        if split == "shard":
            raise ValueError(f"split='shard': {num_shards} shard(s) cannot feed {consumers} consumers (ranks x "
                             "DataLoader workers) one shard each; use split='auto' or 'sample'")
        return "sample"
    if split == "shard" or resampled or num_shards % consumers == 0:
        return "shard"
    return "sample"


def pass_shards(urls: Sequence[str], consumer: Consumer, *, split: str, shuffle: bool, seed: int, epoch: int) -> list[str]:
    """The shards `consumer` reads in pass `epoch`, in reading order.

    Every consumer orders the shards alike: shuffled with (seed, epoch) when `shuffle`, else as listed. Under
    the sample split each reads them all; under the shard split it reads the ones at positions
    i % count == index (without shuffling (i + epoch) % count == index, so ownership rotates each pass).
    """
    ordered = list(urls)
    if shuffle:
        _pass_rng(seed, epoch, "shard-order").shuffle(ordered)
    if split == "sample":
        return ordered
    offset = 0 if shuffle else epoch
    return [url for i, url in enumerate(ordered) if (i + offset) % consumer.count == consumer.index]


def _pass_rng(seed: int, epoch: int, purpose: str) -> random.Random:
    # String seeds are hashed with SHA-512 by `random`, so they are stable across
    # processes (unlike hash()), and (seed, epoch, purpose) never collide.
    return random.Random(f"mmreason-shards:{seed}:{epoch}:{purpose}")


def shuffled(items: Iterable[Any], buffer_size: int, rng: random.Random) -> Iterator[Any]:
    """Shuffle a stream through a buffer of `buffer_size` items (<= 1 keeps the order)."""
    if buffer_size <= 1:
        yield from items
        return
    buffer: list[Any] = []
    for item in items:
        if len(buffer) < buffer_size:
            buffer.append(item)
            continue
        slot = rng.randrange(buffer_size)
        buffer[slot], item = item, buffer[slot]
        yield item
    rng.shuffle(buffer)
    yield from buffer


def read_raw_samples(url: str, skipped: SkipCounter | None = None) -> Iterator[dict[str, Any]]:
    """Raw samples (`__key__`, `__url__`, `json` bytes, `0.png` bytes ...) of one shard, in order.

    Raises ShardError naming the shard when it cannot be opened or read as a tar. A local shard read to its
    end is checked (`check_shard_end`): a missing end-of-archive marker or fewer samples than shards.json
    records is logged with the number of samples lost and recorded in `skipped.truncated`.
    """
    try:
        stream = gopen(url, "rb")
    except OSError as err:
        raise ShardError(f"cannot open shard {url}: {err}") from err
    read = 0
    try:
        files = tar_file_expander([{"url": url, "stream": stream}])
        for sample in group_by_keys(files):
            read += 1
            yield sample
    except (tarfile.TarError, OSError, ValueError, EOFError) as err:
        raise ShardError(f"cannot read shard {url} as a tar file: {err}") from err
    finally:
        stream.close()
    if not _is_remote(url):
        check_shard_end(url, read, skipped)


_reported_truncations: set[str] = set()


def tar_is_complete(path: str | Path) -> bool:
    """Whether a tar file ends with its end-of-archive marker (a zero block right after the last member).

    A tar cut at a block boundary reads as a shorter, valid archive (tarfile stops at the end of the file
    as it would at the marker); only the marker tells the two apart.
    """
    with open(path, "rb") as file:
        try:
            with tarfile.open(fileobj=file, mode="r:") as tar:
                for _ in tar:
                    pass
                end = tar.offset
        except tarfile.TarError:
            return False
        file.seek(end)
        block = file.read(tarfile.BLOCKSIZE)
    return len(block) == tarfile.BLOCKSIZE and not block.strip(b"\0")


def check_shard_end(url: str, samples_read: int, skipped: SkipCounter | None = None) -> int | None:
    """After a local shard was read to its end: samples lost (0 when complete; None when it is truncated and
    has no shards.json entry saying how many it held). Logs a warning once per shard and process."""
    expected = read_manifest(Path(url).parent).get(Path(url).name)
    complete = tar_is_complete(url)
    if complete and (expected is None or samples_read >= expected):
        return 0
    lost = None if expected is None else max(0, expected - samples_read)
    if skipped is not None:
        skipped.truncated[url] = lost
    if url not in _reported_truncations:
        _reported_truncations.add(url)
        how = "has no end-of-archive marker (truncated)" if not complete else "is short"
        if lost is None:
            logger.warning("shard %s %s after %d samples; how many were lost is unknown (no %s entry)",
                           url, how, samples_read, SHARD_MANIFEST)
        else:
            logger.warning("shard %s %s: %d of the %d samples in %s were read, %d lost",
                           url, how, samples_read, expected, SHARD_MANIFEST, lost)
    return lost


def count_samples(urls: Sequence[str]) -> int:
    """Number of samples in the shards (reads tar headers only; image bytes are skipped)."""
    total = 0
    for url in urls:
        if _is_remote(url):
            total += sum(1 for _ in read_raw_samples(url))
            continue
        try:
            with tarfile.open(url, "r:") as tar:
                keys = [base_plus_ext(member.name)[0] for member in tar if member.isreg()]
        except (tarfile.TarError, OSError) as err:
            raise ShardError(f"cannot read shard {url} as a tar file: {err}") from err
        # webdataset groups consecutive files with the same key into one sample
        total += sum(1 for key, _ in itertools.groupby(keys) if key is not None)
    return total


def owned_raw_samples(
    urls: Sequence[str], consumer: Consumer, *, shuffle_buffer: int, seed: int, epoch: int,
    skipped: SkipCounter | None = None, split: str = "sample",
) -> Iterator[dict[str, Any]]:
    """One pass: this consumer's raw samples, shuffled when shuffle_buffer > 0.

    `split` is "shard" or "sample" (already chosen, see `choose_split`). The shard order is shuffled with the
    same (seed, epoch) in every consumer, so all consumers agree on which shards (shard split) or which
    global sample indices (sample split) are whose; the buffer shuffle of the consumer's own share is also
    seeded, so a pass is fully deterministic. Under the shard split only the consumer's own shards are opened.
    """
    if split not in ("shard", "sample"):
        raise ValueError(f"owned_raw_samples: split must be 'shard' or 'sample' (see choose_split), got {split!r}")
    shards = pass_shards(urls, consumer, split=split, shuffle=shuffle_buffer > 0, seed=seed, epoch=epoch)
    everything = itertools.chain.from_iterable(read_raw_samples(url, skipped) for url in shards)
    if split == "shard":
        mine: Iterator[dict[str, Any]] = everything
    else:
        mine = (sample for index, sample in enumerate(everything) if consumer.owns(index))
    return shuffled(mine, shuffle_buffer, _pass_rng(seed, epoch, f"buffer-{consumer.index}"))


def decode_sample(sample: dict[str, Any], skipped: SkipCounter | None = None) -> Problem | None:
    """The Problem in a raw sample, or None (logged and counted) when the sample is corrupt."""
    try:
        return Problem.from_sample(sample)
    except ProblemError as err:
        url, key = sample.get("__url__", "?"), sample.get("__key__", "?")
        logger.warning("skipping corrupt sample %r in shard %s: %s", key, url, err)
        if skipped is not None:
            skipped.add(url, key, str(err))
        return None


def _decoded(raw: Iterable[dict[str, Any]], skipped: SkipCounter | None) -> Iterator[Problem]:
    for sample in raw:
        problem = decode_sample(sample, skipped)
        if problem is not None:
            yield problem


def _endless_raw_samples(
    urls: Sequence[str], consumer: Consumer, *, shuffle_buffer: int, seed: int, first_epoch: int, skip: int = 0,
    skipped: SkipCounter | None = None, split: str = "sample",
) -> Iterator[dict[str, Any]]:
    """Passes first_epoch, first_epoch + 1, ... back to back, without the first `skip` samples.

    Raises ValueError when this consumer gets nothing (under the sample split: one empty pass, as there are
    fewer samples than consumers; under the shard split: `consumer.count` empty passes in a row, its shards
    holding no samples), which would otherwise loop forever.
    """
    empty_passes = 0
    for epoch in itertools.count(first_epoch):
        yielded = 0
        for sample in owned_raw_samples(urls, consumer, shuffle_buffer=shuffle_buffer, seed=seed, epoch=epoch,
                                        skipped=skipped, split=split):
            yielded += 1
            if skip > 0:
                skip -= 1
                continue
            yield sample
        empty_passes = empty_passes + 1 if yielded == 0 else 0
        if empty_passes >= (consumer.count if split == "shard" else 1):
            raise ValueError(
                f"consumer {consumer.index} of {consumer.count} (rank x worker) got no samples from "
                f"{len(urls)} shard(s) ({split} split): there are fewer samples than ranks x workers"
            )


def stream_problems(
    urls: str | Path | Sequence[str],
    *,
    shuffle_buffer: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
    resampled: bool = False,
    seed: int = 0,
    epoch: int = 0,
    skipped: SkipCounter | None = None,
    skip: int = 0,
    split: str = "auto",
) -> Iterator[Problem]:
    """Yield this consumer's Problems from the shards.

    urls: anything `resolve_urls` accepts.
    shuffle_buffer: 0 keeps shard and sample order; > 0 shuffles the shard order
        and then the samples through a buffer of this size, seeded by (seed, epoch).
    rank, world_size: default to torch.distributed's when initialised, else 0 / 1.
        Inside a DataLoader worker the rank's share is further split among its workers.
    resampled: run forever, one pass per epoch (epoch, epoch + 1, ...) each with
        its own shuffle; every pass still shows each sample exactly once over all consumers.
    skipped: receives a count of corrupt samples that were skipped (and the shards found truncated).
    skip: start after this many of this consumer's samples (to resume), without
        decoding them. It counts samples, not yielded Problems: corrupt samples
        among the first `skip` count too. Skipped samples are still read (their
        shards' bytes), so a resumed stream continues exactly where the first stopped.
    split: "auto", "shard" or "sample" (see the module docstring and `choose_split`).
    """
    url_list = resolve_urls(urls)
    consumer = current_consumer(rank, world_size)
    if skip < 0:
        raise ValueError(f"stream_problems: skip must be >= 0, got {skip}")
    chosen = choose_split(split, len(url_list), consumer.count, resampled=resampled)
    if consumer.count > 1:
        logger.info("consumer %d of %d reads %d shard(s) by the %s split (split=%s)", consumer.index, consumer.count,
                    len(url_list), chosen, split)
    if resampled:
        raw = _endless_raw_samples(
            url_list, consumer, shuffle_buffer=shuffle_buffer, seed=seed, first_epoch=epoch, skip=skip,
            skipped=skipped, split=chosen,
        )
    else:
        raw = itertools.islice(
            owned_raw_samples(url_list, consumer, shuffle_buffer=shuffle_buffer, seed=seed, epoch=epoch,
                              skipped=skipped, split=chosen), skip, None
        )
    return _decoded(raw, skipped)


def worker_share(total: int, worker_id: int, num_workers: int) -> int:
    """How many of `total` items worker `worker_id` of `num_workers` produces (spread evenly)."""
    return total // num_workers + (1 if worker_id < total % num_workers else 0)


class ProblemStream(IterableDataset):
    """A `torch.utils.data.IterableDataset` of Problems for a DataLoader.

    Use `collate_fn=collate_problems` so batches stay lists of Problems::

        stream = ProblemStream("data/train", shuffle_buffer=1000, resampled=True, epoch_length=4096)
        loader = DataLoader(stream, batch_size=8, num_workers=2, collate_fn=collate_problems)
        for epoch in range(3):
            stream.set_epoch(epoch)
            for problems in loader: ...

    Not resampled: one iteration is one pass (pass `epoch` of the shuffle); call
    `set_epoch` before each to reshuffle. Resampled: the stream is endless and one
    iteration is `epoch_length` problems **per rank** (split evenly over its
    workers, so `len(stream) == epoch_length` and every rank yields the same
    number); iteration `e` (set by `set_epoch(e)`) continues where iteration
    `e - 1` stopped, running through passes with new shuffles. A corrupt sample is
    replaced by the next one, so it shifts the following iteration by one sample.

    Each DataLoader worker batches its own share, so with workers `len(loader)`
    can undercount the batches by up to num_workers - 1 (partial last batches);
    an epoch_length divisible by num_workers x batch_size keeps it exact.

    `skipped` counts corrupt samples skipped in this process (num_workers=0);
    with workers, each worker counts its own and only the log warnings show them.

    `split` ("auto", "shard", "sample"; module docstring) is chosen in each worker from the number of shards
    and of consumers (ranks x workers). Resampled, the stream counts each shard's samples once at
    construction (tar headers of local shards; remote ones are read) to find where iteration `e` begins:
    under the shard split a consumer's share changes from pass to pass.
    """

    def __init__(
        self,
        urls: str | Path | Sequence[str],
        *,
        shuffle_buffer: int = 0,
        resampled: bool = False,
        epoch_length: int | None = None,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        split: str = "auto",
    ):
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"ProblemStream: split must be one of {list(SPLITS)}, got {split!r}")
        if resampled and (epoch_length is None or epoch_length < 1):
            raise ValueError(f"ProblemStream: resampled=True needs epoch_length >= 1, got {epoch_length}")
        if not resampled and epoch_length is not None:
            raise ValueError("ProblemStream: epoch_length only applies with resampled=True")
        self.urls = resolve_urls(urls)
        self.shuffle_buffer = shuffle_buffer
        self.resampled = resampled
        self.epoch_length = epoch_length
        self.seed = seed
        self.split = split
        self.rank, self.world_size = distributed_rank_and_world_size(rank, world_size)
        self.epoch = 0
        self.skipped = SkipCounter()
        # Resampled iterations start mid-stream; the pass lengths need the sample counts.
        self._shard_samples = {url: count_samples([url]) for url in self.urls} if resampled else None
        self._num_samples = sum(self._shard_samples.values()) if self._shard_samples is not None else None

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffle (and, resampled, the stretch of the endless stream) of the next iteration."""
        self.epoch = epoch

    def __len__(self) -> int:
        if self.epoch_length is None:
            raise TypeError("ProblemStream has a length only in resampled mode (epoch_length)")
        return self.epoch_length

    def __iter__(self) -> Iterator[Problem]:
        consumer = current_consumer(self.rank, self.world_size)
        split = choose_split(self.split, len(self.urls), consumer.count, resampled=self.resampled)
        if not self.resampled:
            raw = owned_raw_samples(
                self.urls, consumer, shuffle_buffer=self.shuffle_buffer, seed=self.seed, epoch=self.epoch,
                skipped=self.skipped, split=split,
            )
            return _decoded(raw, self.skipped)
        worker = get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        length = worker_share(self.epoch_length, worker_id, num_workers)
        first_epoch, skip = self._position(consumer, split, self.epoch * length)
        raw = _endless_raw_samples(
            self.urls,
            consumer,
            shuffle_buffer=self.shuffle_buffer,
            seed=self.seed,
            first_epoch=first_epoch,
            skip=skip,
            skipped=self.skipped,
            split=split,
        )
        return itertools.islice(_decoded(raw, self.skipped), length)

    def _position(self, consumer: Consumer, split: str, start: int) -> tuple[int, int]:
        """(pass, samples into it) where sample `start` of this consumer's endless stream lies."""
        assert self._shard_samples is not None and self._num_samples is not None
        if split == "sample":  # the same share every pass
            per_pass = consumer.share(self._num_samples)
            if per_pass == 0:
                raise ValueError(f"ProblemStream: {self._num_samples} samples cannot feed {consumer.count} consumers "
                                 "(ranks x workers)")
            return start // per_pass, start % per_pass
        if self._num_samples == 0:
            raise ValueError(f"ProblemStream: the {len(self.urls)} shard(s) hold no samples")
        epoch = 0
        while True:  # the shard split gives this consumer other shards, so another share, in every pass
            shards = pass_shards(self.urls, consumer, split=split, shuffle=self.shuffle_buffer > 0, seed=self.seed,
                                 epoch=epoch)
            share = sum(self._shard_samples[url] for url in shards)
            if start < share:
                return epoch, start
            start -= share
            epoch += 1


def collate_problems(batch: list[Problem]) -> list[Problem]:
    """DataLoader collate_fn that keeps a batch as a plain list of Problems."""
    return list(batch)


__all__ = [
    "ShardError",
    "SkipCounter",
    "Consumer",
    "ProblemStream",
    "collate_problems",
    "check_shard_end",
    "choose_split",
    "pass_shards",
    "SPLITS",
    "count_samples",
    "read_manifest",
    "current_consumer",
    "resolve_urls",
    "stream_problems",
    "write_shards",
]
