"""`Problem`: the one record every stage reads and writes.

Field names follow MathVista so that its files load without renaming. In a
webdataset shard a problem is one sample::

    {"__key__": pid, "json": <record without images>, "images.tar": <a tar of 0.png, 1.png, ...>}

Every sample has the same two fields whatever its number of images (0, 1, 2, ...), which
`datasets.load_dataset("webdataset", data_files=...)` needs: it infers one schema from the first samples
(columns `json`: the record, `images.tar`: bytes; `images_from_field` opens them). Shards written before
this layout hold one `<i>.png` field per image; readers accept both.
"""

from __future__ import annotations

import io
import json
import tarfile
import warnings
from dataclasses import dataclass, field, fields
from typing import Any

from PIL import Image

ANSWER_TYPES = ("integer", "float", "text", "list")
QUESTION_TYPES = ("free_form", "multi_choice")


class ProblemError(ValueError):
    """A record that breaks the Problem contract; the message names pid and field."""


@dataclass
class Problem:
    pid: str
    """Unique id. No dots: webdataset splits sample keys at the first dot."""
    question: str
    """Question text; `<image>` marks where an image goes, else images come first."""
    answer: str
    """Ground truth, always a string ("12", "1.25", "[2, 3]", or the choice text)."""
    answer_type: str = "text"
    """One of integer / float / text / list."""
    question_type: str = "free_form"
    """free_form or multi_choice."""
    images: list[Image.Image] = field(default_factory=list)
    """Decoded images, in the order their `<image>` markers appear."""
    choices: list[str] | None = None
    """Option texts for multi_choice (in letter order A, B, ...); None otherwise."""
    precision: int | None = None
    """Decimal places a float answer is compared at (MathVista); None when absent."""
    unit: str | None = None
    """Unit of the answer, if any (informational, as in MathVista)."""
    solution: str | None = None
    """Reference chain of thought, when one exists (warmup SFT)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Source, domain/subject tags, difficulty, pass rate, split, anything else."""

    def validate(self) -> "Problem":
        """Raise ProblemError naming the pid and field when the record is unusable."""

        def fail(field_name: str, what: str) -> None:
            raise ProblemError(f"problem {self.pid!r}: field {field_name!r}: {what}")

        if not isinstance(self.pid, str) or not self.pid:
            fail("pid", "must be a non-empty string")
        if "." in self.pid:
            fail("pid", "must not contain '.' (webdataset splits keys at the first dot)")
        if not isinstance(self.question, str) or not self.question.strip():
            fail("question", "must be a non-empty string")
        if not isinstance(self.answer, str):
            fail("answer", f"must be a string, got {type(self.answer).__name__}")
        if self.answer_type not in ANSWER_TYPES:
            fail("answer_type", f"unknown value {self.answer_type!r}; expected one of {list(ANSWER_TYPES)}")
        if self.question_type not in QUESTION_TYPES:
            fail("question_type", f"unknown value {self.question_type!r}; expected one of {list(QUESTION_TYPES)}")
        if self.question_type == "multi_choice":
            if not self.choices:
                fail("choices", "multi_choice question without choices")
            if self.answer not in self.choices:
                fail("answer", f"{self.answer!r} is not among the choices {self.choices}")
        if self.precision is not None and (not isinstance(self.precision, int) or self.precision < 0):
            fail("precision", f"must be a non-negative integer or None, got {self.precision!r}")
        for i, image in enumerate(self.images):
            if not isinstance(image, Image.Image):
                fail("images", f"image {i} is a {type(image).__name__}, expected a PIL image")
        n_markers = self.question.count("<image>")
        if n_markers and n_markers != len(self.images):
            fail("question", f"has {n_markers} <image> markers but the problem has {len(self.images)} images")
        return self

    # ---- serialisation -------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The record without its images (what goes in a sample's `json`)."""
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "images"}
        record["num_images"] = len(self.images)
        return json.loads(json.dumps(record))  # deep copy; fails early on non-JSON meta

    @classmethod
    def from_json(cls, record: dict[str, Any], images: list[Image.Image] | None = None) -> "Problem":
        record = dict(record)
        record.pop("num_images", None)
        known = {f.name for f in fields(cls)} - {"images"}
        unknown = set(record) - known
        if unknown:
            raise ProblemError(f"problem {record.get('pid')!r}: unknown fields {sorted(unknown)}")
        precision = record.get("precision")
        if isinstance(precision, float):  # MathVista's HF copy stores precision as a float
            record["precision"] = int(precision)
        return cls(images=list(images or []), **record).validate()

    def to_sample(self) -> dict[str, Any]:
        """A webdataset sample: `__key__`, `json` bytes and `images.tar` (the PNGs 0.png, 1.png, ... in one tar)."""
        self.validate()
        return {
            "__key__": self.pid,
            "json": json.dumps(self.to_json(), ensure_ascii=False).encode("utf-8"),
            IMAGES_FIELD: pack_images([encode_png(image) for image in self.images]),
        }

    @classmethod
    def from_sample(cls, sample: dict[str, Any]) -> "Problem":
        """Inverse of `to_sample`; raises ProblemError naming the key on bad JSON or images."""
        record, encoded, where = sample_parts(sample)
        return cls.from_json(record, [decode_image(data, f"{where}: image {i}.png") for i, data in enumerate(encoded)])

    def copy(self, **changes: Any) -> "Problem":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["meta"] = dict(self.meta)
        values.update(changes)
        return Problem(**values)


def sample_parts(sample: dict[str, Any]) -> tuple[dict[str, Any], list[bytes], str]:
    """A raw webdataset sample -> (its JSON record, its images' encoded bytes in order, "problem '<pid>'" for
    messages). Reads today's layout (the i-th member of `images.tar`) and older shards' (an `<i>.png` field each).
    Raises ProblemError naming the key or pid for bad JSON, a bad image count or a missing image."""
    key = sample.get("__key__", "?")
    try:
        record = json.loads(sample["json"])
    except (KeyError, ValueError, TypeError) as err:
        raise ProblemError(f"sample {key!r}: field 'json': cannot decode ({err})") from err
    if not isinstance(record, dict):
        raise ProblemError(f"sample {key!r}: field 'json': expected an object")
    try:
        n = int(record.get("num_images", 0))
    except (TypeError, ValueError) as err:
        raise ProblemError(f"sample {key!r}: field 'num_images': not a count ({err})") from err
    where = f"problem {record.get('pid', key)!r}"
    packed = unpack_images(sample[IMAGES_FIELD], where) if IMAGES_FIELD in sample else None
    images = []
    for i in range(n):
        data = (packed[i] if i < len(packed) else None) if packed is not None else sample.get(f"{i}.png")
        if data is None:
            raise ProblemError(f"{where}: field 'images': image {i}.png missing")
        images.append(bytes(data))
    return record, images, where


IMAGES_FIELD = "images.tar"
"""The sample field holding a problem's images: one uncompressed tar of 0.png, 1.png, ... (empty for none)."""


def pack_images(pngs: list[bytes]) -> bytes:
    """PNG bytes -> one tar (members 0.png, 1.png, ... in order, mtime 0 so equal images give equal bytes)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for i, data in enumerate(pngs):
            info = tarfile.TarInfo(f"{i}.png")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def unpack_images(packed: bytes, where: str = "sample") -> list[bytes]:
    """The PNG bytes in an `images.tar` field, in member order; ProblemError when it is not a readable tar."""
    try:
        with tarfile.open(fileobj=io.BytesIO(packed), mode="r:") as tar:
            members = [m for m in tar.getmembers() if m.isreg()]
            members.sort(key=lambda m: int(m.name.split(".")[0]) if m.name.split(".")[0].isdigit() else 1 << 30)
            return [tar.extractfile(m).read() for m in members]  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, ValueError) as err:
        raise ProblemError(f"{where}: field {IMAGES_FIELD!r}: not a readable tar of images ({err})") from err


def images_from_field(packed: bytes | None) -> list[Image.Image]:
    """PIL images from an `images.tar` value, e.g. a row of `datasets.load_dataset("webdataset", ...)`."""
    return [Image.open(io.BytesIO(data)) for data in unpack_images(packed or pack_images([]))]


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


DEFAULT_MAX_IMAGE_PIXELS = 6000 * 6000
"""Default of `data.max_image_pixels`: 36 M pixels (about 108 MB as RGB). Bigger images are refused before
their pixels are decoded (a 17 KB PNG can declare 12,000 x 12,000 pixels: 10 s and 765 MB to decode)."""
_max_image_pixels = DEFAULT_MAX_IMAGE_PIXELS


def set_max_image_pixels(limit: int) -> None:
    """The pixel cap every `decode_image` in this process applies (train.py sets it from data.max_image_pixels)."""
    global _max_image_pixels
    if limit < 1:
        raise ValueError(f"max_image_pixels must be >= 1, got {limit}")
    _max_image_pixels = int(limit)


def max_image_pixels() -> int:
    return _max_image_pixels


def open_image(data: bytes, where: str) -> Image.Image:
    """Open image bytes (the header only; pixels not decoded yet), refusing an image over `max_image_pixels()`.

    Raises ProblemError naming `where` for bytes PIL cannot identify or an image over the cap.
    """
    try:
        with warnings.catch_warnings():  # the cap below is the guard; PIL's bomb warning would only add noise
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Exception as err:  # PIL raises several unrelated types for bad data (and DecompressionBombError)
        raise ProblemError(f"{where}: field 'images': cannot decode image ({err})") from err
    width, height = image.size
    if width * height > _max_image_pixels:
        raise ProblemError(f"{where}: field 'images': image of {width} x {height} = {width * height} pixels is over "
                           f"the cap of {_max_image_pixels} (data.max_image_pixels)")
    return image


def decode_image(data: bytes, where: str) -> Image.Image:
    """Decode image bytes fully (a truncated file fails here, not later in a batch).

    An image whose header declares more than `max_image_pixels()` pixels is refused before its pixels are
    decoded; like an undecodable image it raises ProblemError, so stream readers skip and count the sample.
    """
    image = open_image(data, where)
    try:
        image.load()
    except Exception as err:
        raise ProblemError(f"{where}: field 'images': cannot decode image ({err})") from err
    return image


__all__ = ["Problem", "ProblemError", "ANSWER_TYPES", "QUESTION_TYPES", "DEFAULT_MAX_IMAGE_PIXELS", "encode_png",
           "decode_image", "open_image", "sample_parts", "max_image_pixels", "set_max_image_pixels"]
