"""Loading MathVista-schema benchmark data: HF parquet / jsonl rows and our webdataset shards -> Problems.

`load_mathvista(path)` reads a .parquet or .jsonl file with the HF
`AI4Math/MathVista` columns, a directory of them, or our shards; images are
decoded only when asked (scoring does not need them). Bad rows and duplicate
pids are a `MathVistaError` naming the file and row.
"""

from __future__ import annotations

import base64
import json
import math
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from mmreason.jsonl import iter_json_objects
from mmreason.problem import Problem, ProblemError, decode_image


class MathVistaError(ValueError):
    """Bad benchmark data or predictions; the message names the file, line or pid."""



_PLACEHOLDER = Image.new("L", (1, 1))


def _check(problem: Problem, num_images: int) -> Problem:
    """Problem.validate, also for records loaded without their images (placeholders stand in)."""
    if problem.images or not num_images:
        return problem.validate()
    problem.copy(images=[_PLACEHOLDER] * num_images).validate()
    return problem


def _precision(value: Any, where: str) -> int | None:
    """MathVista stores precision as a float (1.0), NaN or None when absent."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as err:
        raise MathVistaError(f"{where}: field 'precision': expected a number or null, got {value!r}") from err


def _record_image(record: dict[str, Any], where: str) -> list[Image.Image]:
    decoded = record.get("decoded_image")
    data = decoded.get("bytes") if isinstance(decoded, dict) else None
    if not data:
        return []
    if isinstance(data, str):
        try:
            data = base64.b64decode(data, validate=True)
        except ValueError as err:
            raise MathVistaError(f"{where}: field 'decoded_image.bytes' is a string but not base64 ({err})") from err
    return [decode_image(data, where)]


def problem_from_mathvista(record: dict[str, Any], where: str, with_images: bool = False) -> Problem:
    """A Problem from one row in the HF `AI4Math/MathVista` schema (images decoded only when asked)."""
    for key in ("pid", "question", "answer", "question_type", "answer_type"):
        if record.get(key) is None:
            raise MathVistaError(f"{where}: field {key!r} missing (expected the MathVista schema)")
    pid = str(record["pid"])
    where = f"{where} (pid {pid!r})"
    choices = record.get("choices")
    if choices is not None:
        if not isinstance(choices, (list, tuple)):
            raise MathVistaError(f"{where}: field 'choices': expected a list or null, got {type(choices).__name__}")
        choices = [str(choice) for choice in choices] or None
    unit = record.get("unit") or None
    meta: dict[str, Any] = {}
    if isinstance(record.get("metadata"), dict):
        meta["metadata"] = record["metadata"]
    for key in ("query", "image"):
        if record.get(key) is not None:
            meta[key] = record[key]
    images = _record_image(record, where) if with_images else []
    problem = Problem(
        pid=pid,
        question=str(record["question"]),
        answer=str(record["answer"]),
        answer_type=str(record["answer_type"]),
        question_type=str(record["question_type"]),
        images=images,
        choices=choices,
        precision=_precision(record.get("precision"), where),
        unit=str(unit) if unit is not None else None,
        meta=meta,
    )
    has_image = bool(images) or bool(record.get("image")) or isinstance(record.get("decoded_image"), dict)
    try:
        return _check(problem, 1 if has_image and not images else 0)
    except ProblemError as err:
        raise MathVistaError(f"{where}: {err}") from err


def _parquet_records(path: Path, with_images: bool) -> Iterator[tuple[dict[str, Any], str]]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ... for a bad file
        raise MathVistaError(f"{path}: cannot read as parquet ({err})") from err
    skip = set() if with_images else {"decoded_image"}  # image bytes are the bulk of the file
    columns = [name for name in file.schema_arrow.names if name not in skip]
    row = 0
    for batch in file.iter_batches(batch_size=256, columns=columns):
        for record in batch.to_pylist():
            yield record, f"{path} row {row}"
            row += 1


def _shard_problems(spec: str, with_images: bool) -> Iterator[Problem]:
    """Problems from our webdataset shards; without images only the json members are parsed."""
    from mmreason.data.shards import read_raw_samples, resolve_urls

    for url in resolve_urls(spec):
        if with_images:
            for sample in read_raw_samples(url):
                try:
                    yield Problem.from_sample(sample)
                except ProblemError as err:  # a benchmark must not silently lose problems
                    raise MathVistaError(f"shard {url}: {err}") from err
            continue
        try:
            tar = tarfile.open(url, "r:")
        except (tarfile.TarError, OSError) as err:
            raise MathVistaError(f"shard {url}: cannot read as a tar file ({err})") from err
        with tar:
            for member in tar:
                if not (member.isreg() and member.name.endswith(".json")):
                    continue
                where = f"shard {url} member {member.name}"
                try:
                    record = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
                    num_images = int(record.pop("num_images", 0))
                    problem = Problem(**record)
                except (ValueError, TypeError, AttributeError) as err:
                    raise MathVistaError(f"{where}: not a Problem record ({err})") from err
                if isinstance(problem.precision, float):
                    problem.precision = _precision(problem.precision, where)
                try:
                    yield _check(problem, num_images)
                except ProblemError as err:
                    raise MathVistaError(f"{where}: {err}") from err


def load_mathvista(path: str | Path, with_images: bool = False) -> list[Problem]:
    """The problems of a MathVista-schema file or our shards.

    path: a .parquet or .jsonl file with the HF `AI4Math/MathVista` columns, a
    directory of *.tar shards or of *.parquet / *.jsonl files, or a shard
    pattern (`dir/shard-{000000..000003}.tar`, comma-separated tars).
    with_images: decode the images too (scoring does not need them).
    Raises MathVistaError naming the file and row for bad records and on duplicate pids.
    """
    text = str(path)
    path = Path(path)
    problems: list[Problem] = []
    if path.is_dir() and not any(path.glob("*.tar")):
        files = sorted(list(path.glob("*.parquet")) + list(path.glob("*.jsonl")))
        if not files:
            raise MathVistaError(f"{path}: directory holds no *.tar, *.parquet or *.jsonl files")
        for file in files:
            problems.extend(load_mathvista(file, with_images))
    elif path.is_file() and path.suffix == ".parquet":
        problems = [problem_from_mathvista(r, where, with_images) for r, where in _parquet_records(path, with_images)]
    elif path.is_file() and path.suffix == ".jsonl":
        problems = [problem_from_mathvista(r, where, with_images) for r, _, where in iter_json_objects(path, MathVistaError)]
    elif path.is_dir() or ".tar" in text:
        problems = list(_shard_problems(text, with_images))
    elif not path.exists():
        raise MathVistaError(f"{text}: no such file or directory")
    else:
        raise MathVistaError(f"{text}: expected a .parquet or .jsonl file, or shards (*.tar)")
    seen: set[str] = set()
    for problem in problems:
        if problem.pid in seen:
            raise MathVistaError(f"{text}: pid {problem.pid!r} appears more than once")
        seen.add(problem.pid)
    return problems
