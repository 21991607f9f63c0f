"""Converters keep every field the source has (issue 25): Geometry3K units and domain, MathVista image sizes,
MathVerse options in the text or only in the image, MATH-V image markers. Rows written after the real schemas."""

from __future__ import annotations

import json

from PIL import Image

from mmreason.data.convert import convert, split_choices
from mmreason.rewards import verify_answer


def write_rows(tmp_path, rows, n_images=2):
    for i in range(n_images):
        Image.new("RGB", (12, 10), (40 * i, 90, 200)).save(tmp_path / f"img{i}.png")
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_geometry3k_keeps_unit_and_writes_domain_and_subject(tmp_path):
    rows = [
        {"id": 1, "images": ["img0.png"], "problem": "Find the perimeter of the rectangle.", "answer": "12",
         "unit": "cm", "problem_type_goal": ["Length"], "problem_type_graph": ["Rectangle"]},
        {"id": 2, "images": ["img0.png"], "problem": "Find x.", "answer": "B", "choices": ["30", "45", "60", "90"],
         "problem_type_goal": ["Angle"], "problem_type_graph": ["Triangle"]},
        {"id": 3, "images": ["img0.png"], "problem": "Find x.", "answer": "5"},
    ]
    problems = list(convert("geometry3k", write_rows(tmp_path, rows)))
    assert [p.unit for p in problems] == ["cm", None, None]
    assert verify_answer("12 cm", problems[0])  # the unit is what makes "12 cm" verify
    assert [p.meta["domain"] for p in problems] == ["geometry"] * 3
    assert [p.meta.get("subject") for p in problems] == ["area_perimeter", "angles", None]
    assert problems[1].answer == "45" and problems[1].meta["problem_type_goal"] == ["Angle"]


def test_geometry3k_domain_survives_tagging(tmp_path):
    from mmreason.curation.config import TaggingConfig
    from mmreason.curation.tagging import tag_problem, taxonomy_for

    rows = [{"id": 3, "images": ["img0.png"], "problem": "Find x.", "answer": "5"}]
    problem = next(convert("geometry3k", write_rows(tmp_path, rows)))
    cfg = TaggingConfig()
    tagged = tag_problem(problem, cfg, taxonomy_for(cfg))
    assert tagged.meta["domain"] == "geometry"  # was "other": "Find x." has no keyword


def test_mathvista_keeps_image_size(tmp_path):
    row = {"pid": "7", "question": "How many?", "image": "img0.png", "answer": "3", "question_type": "free_form",
           "answer_type": "integer", "choices": None, "unit": None, "precision": None,
           "metadata": {"split": "testmini", "img_width": 12, "img_height": 10, "source": "CLEVR-Math"}}
    problem = next(convert("mathvista", write_rows(tmp_path, [row])))
    assert (problem.meta["img_width"], problem.meta["img_height"]) == (12, 10)


def test_mathv_markers_become_image_order(tmp_path):
    rows = [
        {"id": "12", "question": "Which picture follows? <image2> Compare with <image1>.", "options": [],
         "images": ["img0.png", "img1.png"], "answer": "4", "solution": None, "level": 2,
         "subject": "metric geometry - angle"},
        {"id": "13", "question": "<image1>\nWhich shape has the largest area?", "options": ["A", "B", "C", "D", "E"],
         "image": "img0.png", "answer": "C", "solution": "", "level": 1, "subject": "combinatorics"},
    ]
    first, second = convert("mathv", write_rows(tmp_path, rows))
    assert first.question == "Which picture follows? <image> Compare with <image>."
    assert [im.getpixel((0, 0)) for im in first.images] == [(40, 90, 200), (0, 90, 200)]
    assert first.meta["domain"] == "geometry" and first.meta["subject"] == "angles" and first.meta["level"] == 2
    assert second.question_type == "multi_choice" and second.answer == "C" and second.choices[2] == "C"
    assert second.meta["domain"] == "counting" and "<image1>" not in second.question


def test_mathverse_options_in_text_and_in_image(tmp_path):
    base = {"problem_index": "9", "image": "img0.png", "question_type": "multi-choice",
            "metadata": {"split": "testmini", "source": "GeoQA", "subject": "plane geometry", "subfield": "length"}}
    rows = [
        dict(base, sample_index="1", problem_version="Text Lite", answer="B",
             question="As shown, find AB.\nChoices:\nA:4 cm\nB:5 cm\nC:6 cm\nD:7 cm"),
        dict(base, sample_index="2", problem_version="Vision Only", answer="B", question="According to the image."),
        dict(base, sample_index="3", problem_version="Text Dominant", answer="5", question_type="free-form",
             question="Find AB."),
    ]
    text, vision, free = convert("mathverse", write_rows(tmp_path, rows))
    assert text.question == "As shown, find AB." and text.choices == ["4 cm", "5 cm", "6 cm", "7 cm"]
    assert text.answer == "5 cm" and text.question_type == "multi_choice"
    assert vision.question_type == "free_form" and vision.answer == "B" and vision.meta["choices_in_image"]
    assert free.answer_type == "integer" and free.meta["domain"] == "geometry"
    assert text.meta["problem_version"] == "Text Lite"


def test_split_choices_forms():
    assert split_choices("Find x.\nChoice:\nA.5 cm\nB.5 m") == ("Find x.", ["5 cm", "5 m"])
    assert split_choices("Find x. Choices: (A) 3 (B) 4 (C) 5") == ("Find x.", ["3", "4", "5"])
    assert split_choices("Find x.") == ("Find x.", None)
