"""The RL prompt set held as an index: records and encoded image bytes in memory, pixels decoded when drawn.

The RL sampler draws prompts by global index from the whole set on every rank, so every rank needs random
access to every prompt. Decoding all images up front (what `load_prompt_set` used to do) holds the whole set's
pixels on every rank before step 1; `PromptIndex` keeps each problem's record (a `Problem` without images) and
its images as the bytes stored in the shard (PNG), and decodes a problem's images when it is drawn
(`index[i]`), keeping the `cache_size` most recently drawn problems decoded (an LRU cache).

Indexing checks every image cheaply, without decoding its pixels: PIL reads the header (size, mode), the size
is held against `data.max_image_pixels` (`mmreason.problem.max_image_pixels`), and `Image.verify()` walks the
file's chunks (for PNG, the format every shard writer stores: each chunk's CRC, up to the end chunk), which
catches truncated and bit-flipped images. So a corrupt sample is skipped and counted at load time, as
before. An image that passes the check and still fails to decode when drawn (possible only for damage the
checksums do not see, e.g. a compressed stream rewritten with fresh CRCs) is logged, counted in the index's
`skipped` and replaced by the next prompt that decodes (the same one on every rank, all ranks holding the same
bytes), so a run never stops on it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from PIL import Image

from mmreason.problem import Problem, ProblemError, decode_image, open_image, sample_parts

logger = logging.getLogger(__name__)

DEFAULT_CACHE_SIZE = 128
"""Default of `data.image_cache_size`: decoded problems an index keeps (about 1 MB each at 600 x 600 RGB)."""

_PLACEHOLDER = Image.new("L", (1, 1))  # stands in for images while a record is validated without its pixels


def check_image(data: bytes, where: str) -> tuple[int, int]:
    """(width, height) of encoded image bytes, read and checked without decoding the pixels.

    Raises ProblemError (as `decode_image` would) for bytes PIL cannot identify, an image over the pixel cap
    (`max_image_pixels()`), or a file whose structure `Image.verify()` rejects (for PNG: a bad chunk CRC, a
    missing end chunk).
    """
    image = open_image(data, where)
    try:
        image.verify()
    except Exception as err:
        raise ProblemError(f"{where}: field 'images': cannot decode image ({err})") from err
    return image.size


@dataclass
class IndexedProblem:
    """One prompt of the index: its record (no images), its images' encoded bytes and where it came from."""

    record: Problem
    images: list[bytes]
    url: str
    key: str


def index_sample(sample: dict[str, Any]) -> IndexedProblem:
    """A raw webdataset sample -> its record and image bytes, validated like `Problem.from_sample` but with
    the images checked by `check_image` instead of decoded. Raises ProblemError naming the key."""
    record, images, where = sample_parts(sample)
    for i, data in enumerate(images):
        check_image(data, f"{where}: image {i}.png")
    problem = Problem.from_json(record, [_PLACEHOLDER] * len(images))  # checks the record (and its <image> markers)
    problem.images = []
    return IndexedProblem(problem, images, str(sample.get("__url__", "?")), str(sample.get("__key__", "?")))


class PromptIndex(Sequence[Problem]):
    """The prompt set: `index[i]` is prompt i with its images decoded; `records[i]` is it without images.

    `cache_size` decoded problems are kept, least recently drawn dropped first (0: decode on every draw).
    `decodes` counts problems decoded, `hits` draws served from the cache; `skipped` (a SkipCounter, shared
    with the loader) counts corrupt samples, including any found only when drawn (see the module docstring).
    Iterating decodes every problem in turn; use `records` for what needs no pixels.
    """

    def __init__(self, entries: list[IndexedProblem], cache_size: int = DEFAULT_CACHE_SIZE, skipped: Any = None):
        if cache_size < 0:
            raise ValueError(f"PromptIndex: cache_size must be >= 0, got {cache_size}")
        from mmreason.data.shards import SkipCounter  # imports torch: not needed to define the class

        self.entries = entries
        self.cache_size = cache_size
        self.skipped = skipped if skipped is not None else SkipCounter()
        self.decodes = 0
        self.hits = 0
        self._cache: OrderedDict[int, Problem] = OrderedDict()
        self._bad: set[int] = set()

    @property
    def records(self) -> list[Problem]:
        """Every prompt without its images (pid, question, answer, meta ...), in index order."""
        return [entry.record for entry in self.entries]

    def encoded_bytes(self) -> int:
        """Bytes of encoded images the index holds."""
        return sum(len(data) for entry in self.entries for data in entry.images)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Problem]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, i: int) -> Problem:  # type: ignore[override]
        if not isinstance(i, int):
            raise TypeError(f"PromptIndex indices are integers, got {type(i).__name__}")
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"prompt index {i} out of range for {len(self)} prompts")
        for offset in range(len(self)):
            j = (i + offset) % len(self)
            if j in self._bad:
                continue
            problem = self._decoded(j)
            if problem is not None:
                return problem
        raise ProblemError(f"none of the {len(self)} prompts can be decoded")

    def _decoded(self, i: int) -> Problem | None:
        """Prompt i decoded (from the cache when there), or None (logged, counted, remembered) if it fails."""
        cached = self._cache.get(i)
        if cached is not None:
            self._cache.move_to_end(i)
            self.hits += 1
            return cached
        entry = self.entries[i]
        try:
            images = [decode_image(data, f"problem {entry.record.pid!r}: image {k}.png")
                      for k, data in enumerate(entry.images)]
        except ProblemError as err:
            logger.warning("prompt %d (%r in shard %s) cannot be decoded and is replaced by the next prompt: %s",
                           i, entry.key, entry.url, err)
            self.skipped.add(entry.url, entry.key, str(err))
            self._bad.add(i)
            return None
        problem = entry.record.copy(images=images)
        self.decodes += 1
        if self.cache_size > 0:
            self._cache[i] = problem
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return problem

    @property
    def cached(self) -> int:
        """Problems held decoded right now (at most cache_size)."""
        return len(self._cache)


def build_prompt_index(urls: str | Path | Sequence[str], *, cache_size: int = DEFAULT_CACHE_SIZE,
                       skipped: Any = None) -> PromptIndex:
    """Index every sample of the shards (all of them, in order: every rank holds the whole set).

    Corrupt samples (bad JSON or record, unreadable or over-cap images) are skipped, logged with the shard and
    key and counted in `skipped`, as are samples lost to truncated shards (`skipped.truncated`).
    """
    from mmreason.data.shards import SkipCounter, read_raw_samples, resolve_urls

    skipped = skipped if skipped is not None else SkipCounter()
    entries: list[IndexedProblem] = []
    for url in resolve_urls(urls):
        for sample in read_raw_samples(url, skipped):
            try:
                entries.append(index_sample(sample))
            except ProblemError as err:
                key = sample.get("__key__", "?")
                logger.warning("skipping corrupt sample %r in shard %s: %s", key, url, err)
                skipped.add(url, key, str(err))
    return PromptIndex(entries, cache_size=cache_size, skipped=skipped)


__all__ = ["DEFAULT_CACHE_SIZE", "IndexedProblem", "PromptIndex", "build_prompt_index", "check_image", "index_sample"]
