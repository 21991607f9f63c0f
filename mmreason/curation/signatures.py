"""Problem signatures (normalised text, answer, perceptual image hashes) and an index to match them.

Shared by dedup (a corpus against itself) and decontam (a corpus against
evaluation sets). Two problems match when their normalised question texts are
equal, every image pair (same position, same count) is within `max_distance`
bits of perceptual hash, and, when asked (`require_same_answer`), their
normalised answers agree; text-only problems match on text (and answer).

Perceptual hashes (imagehash.phash: the signs of the low DCT frequencies of
the grey image shrunk to a small square, against their median) survive
re-encoding and small resizes, which byte hashes do not. One catch: a figure
centred on a plain background and symmetric (a regular polygon) has about
half of its DCT coefficients at zero, the median among them, so their signs
are noise and one changed pixel flips ~70 of 256 bits. Padding every image on
the right and bottom with white (a quarter of its size) puts the figure off
centre and the coefficients away from zero. Measured on the synthetic corpus
(112 px drawings, hash_size 16 = 256 bits): JPEG q90, 1 px resize and
one-pixel-edit copies are within 16 bits; different drawings are 80+ bits
apart. (64-bit hashes, hash_size 8, separate simple drawings poorly.)

What hashes cannot see is a changed digit: two resistor diagrams with the same
question and other numbers written on them hash a few bits apart. So the
answer takes part in the match by default: the same question on a
near-identical picture with another answer is another problem, not a copy.
(With the same answer they still match: near-identical problems, which costs
a little diversity, not correctness.) An eval record without an answer
(MathVista's test split withholds them) matches any answer.

The index is not O(n^2): problems are bucketed by normalised text, answer and
image count, and inside a bucket candidates are found by the pigeonhole trick
of multi-index hashing: split the first image's hash into max_distance + 1
bands; two hashes within max_distance bits agree exactly on at least one band,
so only problems sharing a band are compared bit by bit.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Generic, Iterator, Sequence, TypeVar

import imagehash
import numpy as np
from PIL import Image, ImageChops

from mmreason.problem import Problem

# Typographic variants of the same character: the same question copied from a
# PDF, a web page and a LaTeX source differs only in these.
_CHARACTER_VARIANTS = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
        "\u00d7": "*", "\u22c5": "*", "\u00b7": "*",
        "\u00a0": " ",
    }
)
# Sentence punctuation carries no meaning for matching. A '.' or ',' between
# digits is a decimal point or thousands separator and is kept ("1.5" != "15").
# Likewise a ':' between digits is a ratio or a time. Quotes vanish ("what's" ==
# "whats"); other marks become spaces ("a,b" == "a, b").
_SENTENCE_PUNCTUATION = re.compile(r"[.,:](?!\d)|(?<!\d)[.,:]|[;!?]")
_QUOTES = re.compile(r"['\"`]")
_WHITESPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lowercase, unify typographic variants, drop sentence punctuation, collapse whitespace.

    Math symbols, brackets, digits and `<image>` markers are kept: they change
    what is asked. Examples: "What is  the area?" and "what is the area" are
    equal; "x = 1.5" and "x = 15" are not.
    """
    text = unicodedata.normalize("NFKC", text).translate(_CHARACTER_VARIANTS).lower()
    text = _QUOTES.sub("", text)
    text = _SENTENCE_PUNCTUATION.sub(" ", text)
    return _WHITESPACE.sub(" ", text).strip()


HASH_PADDING = 0.25
"""White margin added right and bottom before hashing, as a fraction of the image size (see above)."""


BORDER_TOLERANCE = 40
"""Grey levels a pixel may differ from the border colour and still count as border (JPEG noise)."""


def _flatten(image: Image.Image) -> Image.Image:
    """Grey copy; transparent pixels composited on white first (an RGBA drawing hashes like its JPEG copy)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("L")


def trim_border(grey: Image.Image) -> Image.Image:
    """The image without its uniform border: the bounding box of pixels unlike the border colour.

    The border colour is the most common of the four corner pixels. A re-cropped or re-padded copy of a
    diagram differs from the original mostly in its margins; trimmed, the two differ only in scale, which
    the perceptual hash ignores. An image that is all border is returned as is.
    """
    corners = [grey.getpixel(xy) for xy in ((0, 0), (grey.width - 1, 0), (0, grey.height - 1),
                                            (grey.width - 1, grey.height - 1))]
    background = max(set(corners), key=corners.count)
    diff = ImageChops.difference(grey, Image.new("L", grey.size, background))
    box = diff.point(lambda v: 255 if v > BORDER_TOLERANCE else 0).getbbox()
    if box is None or (box[2] - box[0]) < 4 or (box[3] - box[1]) < 4:
        return grey
    return grey.crop(box)


def _phash_padded(grey: Image.Image, hash_size: int) -> int:
    margin = (int(grey.width * HASH_PADDING), int(grey.height * HASH_PADDING))
    padded = Image.new("L", (grey.width + margin[0], grey.height + margin[1]), 255)
    padded.paste(grey, (0, 0))
    bits = imagehash.phash(padded, hash_size=hash_size).hash.flatten()
    return int.from_bytes(np.packbits(bits).tobytes(), "big") >> (-len(bits) % 8)


def image_hash(image: Image.Image, hash_size: int) -> int:
    """Perceptual hash of one image as an int of hash_size**2 bits (Hamming distance: `(a ^ b).bit_count()`).

    Transparent pixels are composited on white, the uniform border is trimmed (`trim_border`: re-cropped
    and re-padded copies of a diagram then hash alike), and the rest is padded right and bottom before
    the DCT hash (see the module docstring).
    """
    return _phash_padded(trim_border(_flatten(image)), hash_size)


def image_hash_untrimmed(image: Image.Image, hash_size: int) -> int:
    """The hash without border trimming (what dedup used before; kept for scripts/bench_near_duplicates.py)."""
    return _phash_padded(_flatten(image), hash_size)


_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?")


def normalize_answer(answer: str) -> str:
    """Answer text for matching: lowercased, whitespace collapsed, a final period and thousands commas
    dropped, and a plain number written canonically ("1.50" == "1.5", "1,000" == "1000")."""
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", answer)).strip().lower().rstrip(".")
    plain = text.replace(",", "") if re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?", text) else text
    if _NUMBER.fullmatch(plain):
        return repr(float(plain)).removesuffix(".0")
    return text


ANY_ANSWER = ""
"""The answer key of a signature made without an answer: it matches every answer."""


@dataclass(frozen=True)
class Signature:
    """What two problems are compared on."""

    text: str
    """normalize_text(question)."""
    answer: str
    """normalize_answer(answer), or ANY_ANSWER when answers do not take part (or are unknown)."""
    hashes: tuple[int, ...]
    """One perceptual hash per image, in image order."""


def signature_of(
    question: str, answer: str | None, images: Sequence[Image.Image], hash_size: int
) -> Signature:
    """answer None (or empty) makes a signature that matches any answer."""
    return _signature(question, answer, tuple(image_hash(image, hash_size) for image in images))


def _signature(question: str, answer: str | None, hashes: tuple[int, ...]) -> Signature:
    return Signature(
        text=normalize_text(question),
        answer=normalize_answer(answer) if answer and answer.strip() else ANY_ANSWER,
        hashes=hashes,
    )


class _LastProblemHashes:
    """The image hashes of the problem signed last. Dedup and then decontamination sign the same problem
    object one after the other on the curation stream, and the perceptual hash is the expensive part of a
    signature: the second step reuses the first one's hashes instead of hashing every image again."""

    def __init__(self) -> None:
        self.problem: Problem | None = None
        self.hash_size = 0
        self.hashes: tuple[int, ...] = ()

    def __call__(self, problem: Problem, hash_size: int) -> tuple[int, ...]:
        if problem is not self.problem or hash_size != self.hash_size:
            self.hashes = tuple(image_hash(image, hash_size) for image in problem.images)
            self.problem, self.hash_size = problem, hash_size
        return self.hashes


_problem_hashes = _LastProblemHashes()


def signature(problem: Problem, hash_size: int, with_answer: bool) -> Signature:
    return _signature(problem.question, problem.answer if with_answer else None, _problem_hashes(problem, hash_size))


def max_image_distance(a: Signature, b: Signature) -> int | None:
    """Largest Hamming distance over the image pairs, 0 for text-only pairs, None when image counts differ."""
    if len(a.hashes) != len(b.hashes):
        return None
    return max(((x ^ y).bit_count() for x, y in zip(a.hashes, b.hashes)), default=0)


def _band_masks(bits: int, bands: int) -> list[tuple[int, int]]:
    """(shift, mask) of `bands` contiguous, nearly equal bit ranges covering `bits` bits."""
    edges = [round(i * bits / bands) for i in range(bands + 1)]
    return [(lo, (1 << (hi - lo)) - 1) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]


K = TypeVar("K")


@dataclass(frozen=True)
class Match(Generic[K]):
    key: K
    """Whatever the caller stored with the matching signature (a pid, an eval-set reference)."""
    distance: int
    """Largest image-hash distance of the pair (0 for text-only problems)."""


class SignatureIndex(Generic[K]):
    """Signatures added one by one; `find` returns the first stored one within `max_distance`."""

    def __init__(self, hash_size: int, max_distance: int):
        bits = hash_size * hash_size
        if not 0 <= max_distance < bits:
            raise ValueError(f"max_distance must be in [0, {bits}) for hash_size {hash_size}, got {max_distance}")
        self.hash_size = hash_size
        self.max_distance = max_distance
        self._bands = _band_masks(bits, max_distance + 1)
        # (normalised text, answer, number of images, band number, band value) -> entry numbers
        self._buckets: dict[tuple[str, str, int, int, int], list[int]] = {}
        self._entries: list[tuple[Signature, K]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def _bucket_keys(self, sig: Signature, answer: str) -> Iterator[tuple[str, str, int, int, int]]:
        if not sig.hashes:
            yield (sig.text, answer, 0, 0, 0)
            return
        first = sig.hashes[0]
        for number, (shift, mask) in enumerate(self._bands):
            yield (sig.text, answer, len(sig.hashes), number, (first >> shift) & mask)

    def add(self, sig: Signature, key: K) -> None:
        entry = len(self._entries)
        self._entries.append((sig, key))
        for bucket in self._bucket_keys(sig, sig.answer):
            self._buckets.setdefault(bucket, []).append(entry)

    def find(self, sig: Signature) -> Match[K] | None:
        """The earliest-added signature matching `sig`, or None.

        Stored signatures with the same answer, and those made without one, are candidates.
        """
        candidates: set[int] = set()
        for answer in {sig.answer, ANY_ANSWER}:
            for bucket in self._bucket_keys(sig, answer):
                candidates.update(self._buckets.get(bucket, ()))
        for entry in sorted(candidates):  # earliest first: "keep the first seen" is stable
            stored, key = self._entries[entry]
            distance = max_image_distance(sig, stored)
            if distance is not None and distance <= self.max_distance:
                return Match(key, distance)
        return None
