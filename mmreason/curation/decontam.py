"""Step 2: remove training problems that copy a problem of an evaluation set.

A training problem is contaminated when it matches an eval problem by the
dedup signature: equal normalised question text, every image within
`max_distance` bits of perceptual hash and (with `require_same_answer`) equal
answers, where an eval record without an answer matches any. Perceptual
hashes make a copy whose image was re-encoded (JPEG) or resized still match,
while other problems with the same question text ("What is the value of x?")
and another figure do not.

Evaluation sets are read from:
- MathVista parquet files in the Hugging Face schema (`pid`, `question`,
  `answer`, `decoded_image` {bytes, path}),
- jsonl files with the same fields (`decoded_image.bytes` base64-encoded, or
  `decoded_image.path` / `image` a path relative to the jsonl file),
- our shard directories (or a directory holding parquet/jsonl files).
Only question, answer and image are read, one record at a time (each image is
hashed and dropped), so any set with those fields works; `mmreason.eval.load.
load_mathvista` wants the full scoring schema and returns every image at once.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from PIL import Image

from mmreason.curation.config import CurationError, DecontamConfig
from mmreason.curation.removal import Removal, StepResult, apply_check
from mmreason.curation.signatures import SignatureIndex, signature, signature_of
from mmreason.problem import Problem, ProblemError, decode_image
from mmreason.jsonl import iter_json_objects

log = logging.getLogger(__name__)

STEP = "decontam"


class EvalSetError(CurationError):
    """An evaluation set that cannot be read; the message names the file and the record."""


@dataclass
class EvalItem:
    """What decontamination needs of an eval problem."""

    ref: str
    """`<file name>:<pid>`, written into removal reasons."""
    question: str
    answer: str | None
    """None when the record has no answer (it then matches any answer)."""
    images: list[Image.Image]


def _record_images(record: dict[str, Any], base_dir: Path, where: str) -> list[Image.Image]:
    """The image of a MathVista-schema record: decoded_image bytes (raw or base64) or a path."""
    decoded = record.get("decoded_image")
    if isinstance(decoded, dict) and decoded.get("bytes"):
        data = decoded["bytes"]
        if isinstance(data, str):
            try:
                data = base64.b64decode(data, validate=True)
            except ValueError as err:
                raise EvalSetError(f"{where}: decoded_image.bytes is a string but not base64 ({err})") from err
        return [decode_image(data, where)]
    path = (decoded or {}).get("path") if isinstance(decoded, dict) else None
    path = path or record.get("image")
    if path:
        file = base_dir / path
        if not file.is_file():
            raise EvalSetError(f"{where}: image file {str(file)!r} does not exist")
        return [decode_image(file.read_bytes(), where)]
    return []  # a text-only eval problem still matches on text


def _item(record: dict[str, Any], source: Path, row: int) -> EvalItem:
    pid = record.get("pid", row)
    where = f"eval set {str(source)!r} record {pid!r}"
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise EvalSetError(f"{where}: field 'question' missing or empty (expected MathVista's schema)")
    try:
        images = _record_images(record, source.parent, where)
    except ProblemError as err:
        raise EvalSetError(str(err)) from err
    answer = record.get("answer")
    answer = str(answer) if answer is not None else None
    return EvalItem(ref=f"{source.name}:{pid}", question=question, answer=answer, images=images)


def _parquet_items(path: Path) -> Iterator[EvalItem]:
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ... for a bad file
        raise EvalSetError(f"eval set {str(path)!r}: cannot read as parquet ({err})") from err
    columns = [c for c in ("pid", "question", "answer", "decoded_image", "image") if c in table.schema_arrow.names]
    row = 0
    for batch in table.iter_batches(batch_size=64, columns=columns):
        for record in batch.to_pylist():
            yield _item(record, path, row)
            row += 1


def _jsonl_items(path: Path) -> Iterator[EvalItem]:
    for record, number, _ in iter_json_objects(path, EvalSetError):
        yield _item(record, path, number - 1)


def _shard_items(directory: Path) -> Iterator[EvalItem]:
    from mmreason.data.shards import stream_problems

    # rank/world_size given explicitly: every rank must see the whole eval set.
    for problem in stream_problems(str(directory), rank=0, world_size=1):
        ref = f"{directory.name}:{problem.pid}"
        yield EvalItem(ref=ref, question=problem.question, answer=problem.answer, images=problem.images)


def load_eval_items(path: str | Path) -> Iterator[EvalItem]:
    """The problems of one evaluation set (file or directory), see the module docstring."""
    path = Path(path)
    if path.is_dir():
        if any(path.glob("*.tar")):
            yield from _shard_items(path)
            return
        files = sorted(list(path.glob("*.parquet")) + list(path.glob("*.jsonl")))
        if not files:
            raise EvalSetError(f"eval set directory {str(path)!r} holds no *.tar, *.parquet or *.jsonl files")
        for file in files:
            yield from load_eval_items(file)
        return
    if path.suffix == ".parquet":
        yield from _parquet_items(path)
    elif path.suffix == ".jsonl":
        yield from _jsonl_items(path)
    elif not path.exists():
        raise EvalSetError(f"eval set {str(path)!r} does not exist")
    else:
        raise EvalSetError(f"eval set {str(path)!r}: expected a .parquet or .jsonl file or a shard directory")


def build_eval_index(eval_sets: Sequence[str | Path], cfg: DecontamConfig) -> SignatureIndex[str]:
    """Signatures of every eval problem, keyed by its `file:pid` reference."""
    index: SignatureIndex[str] = SignatureIndex(cfg.hash_size, cfg.max_distance)
    for eval_set in eval_sets:
        before = len(index)
        for item in load_eval_items(eval_set):
            answer = item.answer if cfg.require_same_answer else None
            index.add(signature_of(item.question, answer, item.images, cfg.hash_size), item.ref)
        log.info("decontam: %d problems from eval set %s", len(index) - before, eval_set)
    return index


class EvalMatcher:
    """Per-problem decontamination against the evaluation sets (their index is built once, up front)."""

    def __init__(self, cfg: DecontamConfig, eval_sets: Sequence[str | Path]):
        self.cfg = cfg
        self.index = build_eval_index(eval_sets, cfg)

    def __call__(self, problem: Problem) -> Problem | Removal:
        if not len(self.index):
            return problem
        match = self.index.find(signature(problem, self.cfg.hash_size, self.cfg.require_same_answer))
        if match is None:
            return problem
        reason = f"matches eval problem {match.key} (image hash distance {match.distance})"
        return Removal(problem.pid, STEP, "eval_match", reason, related=match.key)


def decontaminate(problems: Iterable[Problem], cfg: DecontamConfig, eval_sets: Sequence[str | Path]) -> StepResult:
    """Remove every problem that matches an eval problem (naming it); keep the rest in order."""
    return apply_check(problems, EvalMatcher(cfg, eval_sets))
