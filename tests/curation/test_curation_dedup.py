from curation_builders import draw_figure, jpeg_copy, make_problem, resized_copy

from mmreason.curation.config import DedupConfig
from mmreason.curation.dedup import deduplicate
from mmreason.curation.signatures import image_hash


def test_exact_and_near_duplicates_are_removed_naming_the_first_seen():
    figure = draw_figure(1)
    problems = [
        make_problem("p0", images=[figure]),
        make_problem("p1", question="What is the area of the shaded region?", images=[figure.copy()]),
        make_problem("p2", question="what is the AREA of the shaded region", images=[jpeg_copy(figure)]),
        make_problem("p3", images=[resized_copy(figure)]),
    ]
    kept, removed = deduplicate(problems, DedupConfig())
    assert [p.pid for p in kept] == ["p0"]
    assert [(r.pid, r.kind, r.related) for r in removed] == [
        ("p1", "exact_duplicate", "p0"),
        ("p2", "near_duplicate", "p0"),
        ("p3", "near_duplicate", "p0"),
    ]
    assert removed[0].reason == "exact duplicate of p0"
    assert removed[1].reason.startswith("near-duplicate of p0 (image hash distance ")


def test_same_text_with_another_figure_or_same_figure_with_another_question_is_kept():
    problems = [
        make_problem("a", images=[draw_figure(1)]),
        make_problem("b", images=[draw_figure(2)]),  # same text, other figure
        make_problem("c", question="What is the perimeter of the shaded region?", images=[draw_figure(1)]),
        make_problem("d", images=[draw_figure(1), draw_figure(2)], question="<image> <image> What is the area?"),
        make_problem("e", images=[draw_figure(1), draw_figure(3)], question="<image> <image> What is the area?"),
    ]
    kept, removed = deduplicate(problems, DedupConfig())
    assert [p.pid for p in kept] == ["a", "b", "c", "d", "e"]
    assert removed == []


def test_multi_image_duplicate_needs_every_image_close():
    one, two = draw_figure(4), draw_figure(5)
    question = "<image> <image> Which is larger?"
    problems = [
        make_problem("first", question=question, images=[one, two]),
        make_problem("copy", question=question, images=[jpeg_copy(one), jpeg_copy(two)]),
        make_problem("half", question=question, images=[one, draw_figure(6)]),
    ]
    kept, removed = deduplicate(problems, DedupConfig())
    assert [p.pid for p in kept] == ["first", "half"]
    assert [(r.pid, r.related) for r in removed] == [("copy", "first")]


def test_text_only_problems_match_on_text_and_answer():
    problems = [
        make_problem("t1", question="What is 7 + 5?", answer="12"),
        make_problem("t2", question="what is 7+5", answer="12"),  # '+' spacing differs: not equal text
        make_problem("t3", question="What is 7 + 5", answer="12.0", answer_type="float"),
        make_problem("t4", question="What is 7 + 5", answer="13"),  # another answer: another problem
    ]
    kept, removed = deduplicate(problems, DedupConfig())
    assert [p.pid for p in kept] == ["t1", "t2", "t4"]
    assert [(r.pid, r.kind, r.related) for r in removed] == [("t3", "exact_duplicate", "t1")]


def test_without_the_answer_rule_a_conflicting_copy_is_removed_and_flagged():
    figure = draw_figure(8)
    problems = [make_problem("first", images=[figure], answer="3"), make_problem("second", images=[figure], answer="4")]
    assert deduplicate(problems, DedupConfig()).removed == []
    kept, removed = deduplicate(problems, DedupConfig(require_same_answer=False))
    assert [p.pid for p in kept] == ["first"]
    assert removed[0].reason == "exact duplicate of first; answers differ ('4' here, '3' kept)"


def test_threshold_is_configurable():
    figure = draw_figure(7)
    # Resized too: a same-size q30 JPEG copy now hashes 0 bits away (its border is trimmed identically).
    copy = jpeg_copy(resized_copy(figure, 3, 3), quality=30)
    distance = (image_hash(figure, 16) ^ image_hash(copy, 16)).bit_count()
    assert distance > 0
    problems = [make_problem("x", images=[figure]), make_problem("y", images=[copy])]
    assert [r.pid for r in deduplicate(problems, DedupConfig(hash_size=16, max_distance=distance)).removed] == ["y"]
    assert deduplicate(problems, DedupConfig(hash_size=16, max_distance=distance - 1)).removed == []
