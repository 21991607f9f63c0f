"""Convert public datasets and plain jsonl files into Problems (then shards, via `write_shards`).

Formats (`convert(fmt, path)`; `path` is a file or a directory of such files):

- ``mathvista``: the AI4Math/MathVista Hugging Face schema, as parquet
  (`decoded_image` holds the PNG bytes), jsonl, or the original json (a dict
  keyed by pid, `image` a path relative to the file). `query` and the flattened
  `metadata` (task, skills, grade, language, source, context, category, split)
  go to `meta`; missing values (None or pandas/NaN) become None.
- ``geometry3k``: jsonl or parquet rows with `images` (paths relative to the
  file, or {bytes, path} dicts in parquet), `problem` text with `<image>`
  placeholders, `answer` (a number, an expression, or a choice letter when
  `choices` is given). The answer type is inferred from the answer. `unit` is
  kept; meta gets domain "geometry" and, from the original annotation's
  problem_type_goal / problem_type_graph (kept in meta), the subject
  (angles, area_perimeter, circles, triangles).
- ``mathverse``: AI4Math/MathVerse rows; multiple-choice options are read from
  the question text ("Choices:\nA:5 cm\nB:5 m"), and when they are only in the
  image (Vision Only) the problem stays free-form with meta choices_in_image.
- ``mathv``: MATH-V (MathLLMs/MathVision) rows; `<image1>`-style markers become
  `<image>` with the images in marker order; letter answers become option texts.
  MathVerse and MATH-V subjects set meta domain/subject where they imply one.
- ``jsonl``: one problem per line: `question`, `answer`, `image` or `images`
  (paths relative to the file), optional `pid` (default "<file stem>-<line>"),
  `answer_type` (default inferred), `question_type`, `choices`, `precision`,
  `unit`, `solution`, `meta`.

Images are converted to RGB; transparent ones (RGBA, LA, P with transparency)
are composited on white first, which is how viewers show them. Any bad record
raises ConvertError naming the file, the line or row, and what was expected.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow.parquet as pq
from PIL import Image

from mmreason.problem import ANSWER_TYPES, Problem, ProblemError, decode_image
from mmreason.jsonl import iter_json_objects

FORMATS = ("mathvista", "geometry3k", "mathverse", "mathv", "jsonl")
ROW_SUFFIXES = (".parquet", ".jsonl", ".json")
MATHVISTA_METADATA_KEYS = ("task", "skills", "grade", "language", "source", "context", "category", "split",
                           "img_width", "img_height")
JSONL_KEYS = {"pid", "image", "images", "question", "answer", "answer_type", "question_type", "choices",
              "precision", "unit", "solution", "meta"}


class ConvertError(ValueError):
    """A record that cannot be converted; the message names file, line/row and the problem."""


# ---------------------------------------------------------------- reading rows


class Row(dict):
    """One input record plus where it came from (for error messages).

    `root` is the input directory image paths must stay inside (None: no confinement), unless `allow_outside`.
    """

    root: Path | None = None
    allow_outside: bool = False

    def __init__(self, values: dict[str, Any], path: Path, where: str, number: int):
        super().__init__(values)
        self.path, self.where, self.number = path, where, number

    def fail(self, what: str) -> ConvertError:
        return ConvertError(f"{self.where}: {what}")


def input_files(path: str | Path) -> list[Path]:
    """The file itself, or every .parquet/.jsonl/.json file in a directory (sorted)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in ROW_SUFFIXES)
        if not files:
            raise ConvertError(f"directory {path} has no {'/'.join(ROW_SUFFIXES)} files")
        return files
    if not path.is_file():
        raise ConvertError(f"input {path} does not exist")
    if path.suffix not in ROW_SUFFIXES:
        raise ConvertError(f"input {path}: expected a {'/'.join(ROW_SUFFIXES)} file")
    return [path]


def read_rows(path: Path) -> Iterator[Row]:
    """Records of one file: parquet rows, jsonl lines, or a json list / dict-of-records."""
    if path.suffix == ".parquet":
        number = 0
        try:
            batches = pq.ParquetFile(path).iter_batches(batch_size=64)
            for batch in batches:
                for values in batch.to_pylist():
                    yield Row(values, path, f"{path} row {number}", number)
                    number += 1
        except (OSError, ValueError) as err:  # pyarrow.ArrowInvalid is a ValueError
            raise ConvertError(f"{path}: cannot read as parquet ({err})") from err
    elif path.suffix == ".jsonl":
        for values, line_number, where in iter_json_objects(path, ConvertError):
            yield Row(values, path, where, line_number)
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise ConvertError(f"{path}: not valid JSON ({err})") from err
        records = list(data.items()) if isinstance(data, dict) else list(enumerate(data))
        for number, (key, values) in enumerate(records):
            where = f"{path} record {key}"
            if not isinstance(values, dict):
                raise ConvertError(f"{where}: expected a JSON object, got {type(values).__name__}")
            yield Row(values, path, where, number)


# ---------------------------------------------------------------- field helpers


def is_missing(value: Any) -> bool:
    """None, or a float NaN (what pandas writes for a missing value)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def optional_text(value: Any) -> str | None:
    return None if is_missing(value) or value == "" else str(value)


def optional_precision(row: Row, value: Any) -> int | None:
    """MathVista stores precision as a float (1.0) or NaN; Problem wants an int or None."""
    if is_missing(value):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != int(value):
        raise row.fail(f"field 'precision': expected a non-negative whole number or null, got {value!r}")
    return int(value)


def optional_choices(row: Row, value: Any) -> list[str] | None:
    if is_missing(value):
        return None
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise row.fail(f"field 'choices': expected a list of strings or null, got {value!r}")
    return [str(choice) for choice in value]


def answer_text(row: Row, value: Any) -> str:
    if isinstance(value, bool) or is_missing(value):
        raise row.fail(f"field 'answer': expected a string or number, got {value!r}")
    if isinstance(value, (int, float, str)):
        return str(value)
    raise row.fail(f"field 'answer': expected a string or number, got {type(value).__name__}")


def infer_answer_type(answer: str) -> tuple[str, int | None]:
    """(answer_type, precision): "12" integer, "1.25" float with precision 2, "[1, 2]" list, else text."""
    text = answer.strip()
    if re.fullmatch(r"[-+]?\d+", text):
        return "integer", None
    decimals = re.fullmatch(r"[-+]?\d*\.(\d+)", text)
    if decimals:
        return "float", len(decimals.group(1))
    if text.startswith("[") and text.endswith("]"):
        return "list", None
    return "text", None


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB copy; transparent pixels become white (RGBA/LA/PA, or P/L/RGB with a transparency key)."""
    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def load_image(row: Row, value: Any, field_name: str) -> Image.Image:
    """An image from a {bytes, path} dict, raw bytes, or a path relative to the row's file."""
    where = f"{row.where}: field {field_name!r}"
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        if data is None and path is None:
            raise row.fail(f"field {field_name!r}: image dict has neither 'bytes' nor 'path'")
        value = data if data is not None else path
    if isinstance(value, (bytes, bytearray)):
        try:
            return to_rgb(decode_image(bytes(value), where))
        except ProblemError as err:
            raise ConvertError(str(err)) from err
    if isinstance(value, str) and value:
        path = Path(value)
        if not path.is_absolute():
            path = row.path.parent / path
        if row.root is not None and not row.allow_outside and not path.resolve().is_relative_to(row.root.resolve()):
            raise row.fail(f"field {field_name!r}: image path {value!r} leads outside the input directory {row.root} "
                           f"(to {path.resolve()}); pass --allow-outside-paths to read it anyway")
        if not path.is_file():
            raise row.fail(f"field {field_name!r}: image file {path} not found")
        try:
            return to_rgb(decode_image(path.read_bytes(), f"{where} ({path})"))
        except ProblemError as err:
            raise ConvertError(str(err)) from err
    raise row.fail(f"field {field_name!r}: expected an image path, bytes or a {{bytes, path}} dict, got {value!r}")


def default_pid(row: Row) -> str:
    """"<file stem>-<line or row number>", with dots replaced (webdataset keys stop at a dot)."""
    return f"{row.path.stem}-{row.number}".replace(".", "_")


def build(row: Row, **fields: Any) -> Problem:
    """Construct and validate, turning a ProblemError into a ConvertError that names the row."""
    try:
        return Problem(**fields).validate()
    except ProblemError as err:
        raise row.fail(str(err)) from err


def require(row: Row, key: str) -> Any:
    if key not in row or is_missing(row[key]):
        raise row.fail(f"missing required field {key!r}")
    return row[key]


# ---------------------------------------------------------------- formats


def mathvista_problem(row: Row) -> Problem:
    pid = str(require(row, "pid"))
    image_value = row.get("decoded_image")
    if is_missing(image_value) or (isinstance(image_value, dict) and image_value.get("bytes") is None
                                   and not image_value.get("path")):
        image_value, field_name = require(row, "image"), "image"
    else:
        field_name = "decoded_image"
    metadata = row.get("metadata")
    if is_missing(metadata):
        metadata = {}
    if not isinstance(metadata, dict):
        raise row.fail(f"field 'metadata': expected an object, got {type(metadata).__name__}")
    meta: dict[str, Any] = {"dataset": "mathvista", "query": optional_text(row.get("query"))}
    for key in MATHVISTA_METADATA_KEYS:
        value = metadata.get(key)
        meta[key] = None if is_missing(value) else (list(value) if key == "skills" and value is not None else value)
    return build(
        row,
        pid=pid,
        question=str(require(row, "question")),
        answer=answer_text(row, require(row, "answer")),
        answer_type=str(require(row, "answer_type")),
        question_type=str(require(row, "question_type")),
        images=[load_image(row, image_value, field_name)],
        choices=optional_choices(row, row.get("choices")),
        precision=optional_precision(row, row.get("precision")),
        unit=optional_text(row.get("unit")),
        meta=meta,
    )


def geometry3k_problem(row: Row) -> Problem:
    if "images" in row and not is_missing(row["images"]):
        image_values = row["images"]
        if isinstance(image_values, (str, bytes, dict)):
            image_values = [image_values]
    else:
        image_values = [require(row, "image")]
    images = [load_image(row, value, f"images[{i}]") for i, value in enumerate(image_values)]
    answer = answer_text(row, require(row, "answer")).strip()
    choices = optional_choices(row, row.get("choices"))
    if choices and answer not in choices and re.fullmatch(r"[A-Z]", answer):
        index = ord(answer) - ord("A")  # the original Geometry3K answers with the option letter
        if index >= len(choices):
            raise row.fail(f"field 'answer': letter {answer} but only {len(choices)} choices")
        answer = choices[index]
    answer_type, precision = infer_answer_type(answer)
    pid = row.get("pid", row.get("id"))
    meta: dict[str, Any] = {"dataset": "geometry3k", "source": "geometry3k", "domain": "geometry"}
    for key in GEOMETRY3K_META_KEYS:
        if not is_missing(row.get(key)):
            value = row[key]
            meta[key] = list(value) if isinstance(value, (list, tuple)) else value
    subject = geometry3k_subject(meta.get("problem_type_goal"), meta.get("problem_type_graph"))
    if subject is not None:
        meta["subject"] = subject  # else tagging picks the subject within geometry from the question text
    return build(
        row,
        pid=default_pid(row) if is_missing(pid) else str(pid),
        question=str(require(row, "problem")),
        answer=answer,
        answer_type=answer_type,
        question_type="multi_choice" if choices else "free_form",
        images=images,
        choices=choices,
        precision=precision,
        unit=optional_text(row.get("unit")),
        meta=meta,
    )


GEOMETRY3K_META_KEYS = ("problem_type_graph", "problem_type_goal", "precise_value", "rough_value")
"""Fields of the original Geometry3K annotation kept in meta when a row has them."""


def geometry3k_subject(goals: Any, graphs: Any) -> str | None:
    """The tagging subject implied by Geometry3K's problem_type_goal / problem_type_graph, or None."""
    goals = {str(g).lower() for g in (goals if isinstance(goals, list) else [goals] if goals else [])}
    graphs = {str(g).lower() for g in (graphs if isinstance(graphs, list) else [graphs] if graphs else [])}
    if "angle" in goals:
        return "angles"
    if "area" in goals:
        return "area_perimeter"
    if "circle" in graphs:
        return "circles"
    if "triangle" in graphs:
        return "triangles"
    if graphs & {"quadrilateral", "polygon", "rectangle", "parallelogram", "trapezoid"}:
        return "area_perimeter"
    return None


# Subject names of MathVerse and MATH-V -> (meta domain, meta subject) in the tagging taxonomy's terms;
# the first key contained in the lowercased source subject wins.
SUBJECT_DOMAINS: tuple[tuple[str, tuple[str, str | None]], ...] = (
    ("angle", ("geometry", "angles")),
    ("area", ("geometry", "area_perimeter")),
    ("length", ("geometry", None)),
    ("solid geometry", ("geometry", "solids")),
    ("geometry", ("geometry", None)),
    ("function", ("algebra", "functions")),
    ("algebra", ("algebra", None)),
    ("statistic", ("statistics", None)),
    ("counting", ("counting", None)),
    ("combinatorics", ("counting", None)),
    ("arithmetic", ("arithmetic", None)),
)


def subject_tags(*names: Any) -> dict[str, str]:
    """meta domain (and subject when implied) from a source's subject / subfield names ({} when none applies)."""
    for name in names:
        text = "" if is_missing(name) else str(name).lower()
        for key, (domain, subject) in SUBJECT_DOMAINS:
            if key in text:
                return {"domain": domain, **({"subject": subject} if subject else {})}
    return {}


_IMAGE_MARKER = re.compile(r"<image(\d+)>")


def ordered_images(row: Row, question: str, image_values: list[Any]) -> tuple[str, list[Image.Image]]:
    """MATH-V-style `<image1>` markers -> `<image>` markers, the images in marker order (unmarked: images first)."""
    markers = [int(m.group(1)) for m in _IMAGE_MARKER.finditer(question)]
    if not markers:
        return question, [load_image(row, v, f"images[{i}]") for i, v in enumerate(image_values)]
    loaded: dict[int, Image.Image] = {}
    for number in markers:
        if not 1 <= number <= len(image_values):
            raise row.fail(f"field 'question': marker <image{number}> but the row has {len(image_values)} image(s)")
        if number not in loaded:
            loaded[number] = load_image(row, image_values[number - 1], f"images[{number - 1}]")
    return _IMAGE_MARKER.sub("<image>", question), [loaded[number] for number in markers]


def letter_to_choice(row: Row, answer: str, choices: list[str] | None) -> str:
    """An option-letter answer ("B") as its choice text; other answers unchanged."""
    if choices and answer not in choices and re.fullmatch(r"\(?[A-Z]\)?", answer):
        index = ord(answer.strip("()")) - ord("A")
        if index >= len(choices):
            raise row.fail(f"field 'answer': letter {answer} but only {len(choices)} choices")
        return choices[index]
    return answer


def mathv_problem(row: Row) -> Problem:
    """MATH-V (MathLLMs/MathVision): id, question with <imageN> markers, options, image / decoded_image,
    answer (an option letter when there are options), solution, level, subject."""
    decoded = row.get("decoded_image")
    has_bytes = isinstance(decoded, dict) and decoded.get("bytes") is not None
    if "images" in row and not is_missing(row["images"]):
        image_values = list(row["images"]) if not isinstance(row["images"], (str, bytes, dict)) else [row["images"]]
    else:
        image_values = [decoded if has_bytes else require(row, "image")]
    question, images = ordered_images(row, str(require(row, "question")), image_values)
    options = optional_choices(row, row.get("options"))
    choices = options or None
    answer = letter_to_choice(row, answer_text(row, require(row, "answer")).strip(), choices)
    answer_type, precision = infer_answer_type(answer)
    meta: dict[str, Any] = {"dataset": "mathv", "source": "mathv"}
    for key in ("level", "subject"):
        if not is_missing(row.get(key)):
            meta[key if key != "subject" else "source_subject"] = row[key]
    meta.update(subject_tags(row.get("subject")))
    pid = row.get("id", row.get("pid"))
    return build(
        row,
        pid=f"mathv-{pid}" if not is_missing(pid) else default_pid(row),
        question=question,
        answer=answer,
        answer_type=answer_type,
        question_type="multi_choice" if choices else "free_form",
        images=images,
        choices=choices,
        precision=precision,
        solution=optional_text(row.get("solution")),
        meta=meta,
    )


# "Choices:\nA:5 cm\nB:5 m" / "Choice:\nA.5 cm" / "Choices: (A) 5 (B) 6" at the end of a MathVerse question.
_CHOICE_BLOCK = re.compile(r"\n?\s*Choices?\s*:\s*\n?(.*)$", re.IGNORECASE | re.DOTALL)
_CHOICE_ITEM = re.compile(r"(?:^|\n|\s)\(?([A-H])\s*[:.)]\s*(.*?)(?=\n\s*\(?[A-H]\s*[:.)]|\s\([A-H]\)|$)", re.DOTALL)


def split_choices(question: str) -> tuple[str, list[str] | None]:
    """(question without its choice list, the choice texts in letter order) or (question, None)."""
    block = _CHOICE_BLOCK.search(question)
    if not block:
        return question, None
    items = _CHOICE_ITEM.findall(block.group(1))
    letters = [letter for letter, _ in items]
    if len(items) < 2 or letters != [chr(ord("A") + i) for i in range(len(items))]:
        return question, None
    return question[: block.start()].rstrip(), [text.strip() for _, text in items]


def mathverse_problem(row: Row) -> Problem:
    """MathVerse (AI4Math/MathVerse): sample_index, problem_index, problem_version, question, image, answer,
    question_type (multi-choice / free-form), metadata {split, source, subject, subfield}, query_wo, query_cot.

    Multiple choice reads its options from the question text; when the options are only in the image
    (the Vision Only versions) the problem stays free-form with the letter as its answer and
    meta choices_in_image=True (curation's evaluability drops it)."""
    decoded = row.get("decoded_image")
    image_value = decoded if isinstance(decoded, dict) and decoded.get("bytes") is not None else require(row, "image")
    question = str(require(row, "question"))
    answer = answer_text(row, require(row, "answer")).strip()
    metadata = row.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    meta: dict[str, Any] = {"dataset": "mathverse", "source": metadata.get("source") or "mathverse"}
    for key in ("problem_version", "problem_index", "query_wo", "query_cot", "question_for_eval"):
        if not is_missing(row.get(key)):
            meta[key] = row[key]
    for key in ("split", "subject", "subfield"):
        if not is_missing(metadata.get(key)):
            meta[f"source_{key}" if key != "split" else key] = metadata[key]
    meta.update(subject_tags(metadata.get("subfield"), metadata.get("subject")))
    choices = None
    if str(row.get("question_type", "")).replace("-", "_").startswith("multi"):
        stem, choices = split_choices(question)
        if choices:
            question = stem
            answer = letter_to_choice(row, answer, choices)
        else:
            meta["choices_in_image"] = True
    answer_type, precision = infer_answer_type(answer)
    pid = row.get("sample_index", row.get("pid"))
    return build(
        row,
        pid=f"mathverse-{pid}" if not is_missing(pid) else default_pid(row),
        question=question,
        answer=answer,
        answer_type=answer_type,
        question_type="multi_choice" if choices else "free_form",
        images=[load_image(row, image_value, "image")],
        choices=choices,
        precision=precision,
        meta=meta,
    )


def jsonl_problem(row: Row) -> Problem:
    unknown = set(row) - JSONL_KEYS
    if unknown:
        raise row.fail(f"unknown fields {sorted(unknown)}; expected some of {sorted(JSONL_KEYS)}")
    if ("image" in row) == ("images" in row):
        raise row.fail("expected exactly one of 'image' (a path) or 'images' (a list of paths)")
    image_values = [row["image"]] if "image" in row else row["images"]
    if not isinstance(image_values, list):
        raise row.fail(f"field 'images': expected a list of paths, got {type(image_values).__name__}")
    images = [load_image(row, value, f"images[{i}]") for i, value in enumerate(image_values)]
    answer = answer_text(row, require(row, "answer"))
    inferred_type, inferred_precision = infer_answer_type(answer)
    answer_type = row.get("answer_type") or inferred_type
    if answer_type not in ANSWER_TYPES:
        raise row.fail(f"field 'answer_type': {answer_type!r} is not one of {list(ANSWER_TYPES)}")
    precision = optional_precision(row, row.get("precision"))
    if precision is None and answer_type == "float":
        precision = inferred_precision
    choices = optional_choices(row, row.get("choices"))
    meta = row.get("meta", {})
    if not isinstance(meta, dict):
        raise row.fail(f"field 'meta': expected an object, got {type(meta).__name__}")
    pid = row.get("pid")
    return build(
        row,
        pid=default_pid(row) if is_missing(pid) else str(pid),
        question=str(require(row, "question")),
        answer=answer,
        answer_type=answer_type,
        question_type=row.get("question_type") or ("multi_choice" if choices else "free_form"),
        images=images,
        choices=choices,
        precision=precision,
        unit=optional_text(row.get("unit")),
        solution=optional_text(row.get("solution")),
        meta=dict(meta),
    )


CONVERTERS: dict[str, Callable[[Row], Problem]] = {
    "mathvista": mathvista_problem,
    "geometry3k": geometry3k_problem,
    "mathverse": mathverse_problem,
    "mathv": mathv_problem,
    "jsonl": jsonl_problem,
}


def convert(fmt: str, input_path: str | Path, allow_outside_paths: bool = False) -> Iterator[Problem]:
    """Problems from `input_path` (a file or a directory of files) in format `fmt` (see FORMATS).

    Image paths in the rows must lead (after `..` and symlinks) inside the input directory (`input_path`, or
    the directory of an input file) unless `allow_outside_paths`: a shared dataset file cannot make the
    conversion embed /etc/passwd-like files it happens to find.
    """
    if fmt not in CONVERTERS:
        raise ConvertError(f"unknown format {fmt!r}; expected one of {list(CONVERTERS)}")
    files = input_files(input_path)
    if fmt == "jsonl" and any(f.suffix != ".jsonl" for f in files):
        raise ConvertError(f"format jsonl reads .jsonl files, got {[str(f) for f in files if f.suffix != '.jsonl']}")
    to_problem = CONVERTERS[fmt]
    root = Path(input_path) if Path(input_path).is_dir() else Path(input_path).parent

    def confined(rows: Iterator[Row]) -> Iterator[Row]:
        for row in rows:
            row.root, row.allow_outside = root, allow_outside_paths
            yield row

    return (to_problem(row) for path in files for row in confined(read_rows(path)))


__all__ = ["ConvertError", "FORMATS", "convert", "infer_answer_type", "to_rgb"]
