"""Answer skew: the (question, answer) classes that dedup and decontamination nearly emptied are named."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from curation_builders import draw_figure, make_problem

from mmreason.config import load_config
from mmreason.curation.config import CurateConfig
from mmreason.curation.pipeline import run_curation
from mmreason.curation.skew import AnswerClassTally, class_key, skewed_classes
from mmreason.data.shards import write_shards

QUESTION = "How many bars are in the chart?"


def test_class_key_uses_the_normalised_question_and_answer() -> None:
    a = make_problem("a", question="How many bars are in the chart?", answer="2")
    b = make_problem("b", question="how many  bars are in the chart", answer="2.0")
    c = make_problem("c", question="How many bars are in the chart?", answer="3")
    assert class_key(a) == class_key(b) != class_key(c)


def test_a_class_is_skewed_below_the_ratio_of_the_overall_kept_share() -> None:
    # 100 in, 35 removed overall: kept share 0.65. With ratio 0.5 a class must keep at least 0.325 of itself.
    inputs = Counter({b"two": 40, b"three": 40, b"small": 20})
    removed = {b"two": Counter(dedup=20, decontam=10), b"small": Counter(dedup=5)}
    labels = {b"two": ("q", "2"), b"three": ("q", "3"), b"small": ("q", "1")}
    rows = skewed_classes(inputs, removed, labels, 0.5, ("dedup", "decontam"))
    assert [(r.answer, r.input, r.kept, r.removed_by) for r in rows] == [("2", 40, 10, {"dedup": 20, "decontam": 10})]
    assert skewed_classes(inputs, removed, labels, 0.2, ("dedup", "decontam")) == []  # 10 >= 0.2 * 0.65 * 40
    assert skewed_classes(inputs, removed, labels, 0.0, ("dedup", "decontam")) == []  # the warning is off


def test_only_classes_of_min_problems_are_labelled() -> None:
    tally = AnswerClassTally(min_problems=3, steps=["dedup"])
    for i in range(3):
        tally.remove(tally.add(make_problem(f"big{i}", question=QUESTION, answer="2")), "dedup")
    for i in range(2):
        tally.remove(tally.add(make_problem(f"few{i}", question=QUESTION, answer="9")), "dedup")
    tally.add(make_problem("kept", question=QUESTION, answer="4"))
    assert [(r.answer, r.input, r.kept) for r in tally.skewed(0.5)] == [("2", 3, 0)]


def test_the_pipeline_reports_and_logs_an_answer_that_dedup_collapsed(tmp_path: Path, caplog) -> None:
    """30 two-bar problems on one drawing (the hash sees no difference) and 30 four-bar ones on distinct drawings:
    dedup keeps 1 of the first and all of the second; the report names the first class only."""
    same = draw_figure(1)
    corpus = [make_problem(f"two{i}", question=QUESTION, answer="2", images=[same.copy()]) for i in range(30)]
    corpus += [make_problem(f"four{i}", question=QUESTION, answer="4", images=[draw_figure(100 + i)])
               for i in range(30)]
    write_shards(corpus, tmp_path / "input", shard_size=20)
    steps_off = [f"{step}.enabled=false" for step in ("decontam", "tagging", "evaluability", "hackable", "blind",
                                                      "difficulty", "balance")]
    cfg = load_config(None, [f"input={tmp_path / 'input'}", f"output={tmp_path / 'out'}", *steps_off],
                      schema=CurateConfig)
    with caplog.at_level("WARNING"):
        report = run_curation(cfg)
    assert report.output == 31
    assert report.skewed_classes == [{"question": "how many bars are in the chart", "answer": "2", "input": 30,
                                      "kept": 1, "removed_by": {"dedup": 29}}]
    assert "removed 29 of 30 problems of question 'how many bars are in the chart' with answer '2'" in caplog.text
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "## Answer skew" in markdown and "| how many bars are in the chart | 2 | 30 | 1 | dedup 29 |" in markdown
    assert json.loads((tmp_path / "out" / "report.json").read_text())["skewed_classes"] == report.skewed_classes
