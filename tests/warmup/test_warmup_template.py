"""The template source: reference solutions rendered as <think> replies that the reward accepts."""

import random
import re
from collections import Counter

import pytest

from mmreason.config import RewardConfig
from mmreason.data.synth import FAMILIES, generate_problems
from mmreason.problem import Problem
from mmreason.rewards import format_reward, score
from mmreason.warmup.config import TemplateConfig
from mmreason.warmup.template import (
    REFLECTION,
    parse_reference,
    plan_slip,
    render_reply,
    stated_answer,
    template_reply,
    wrong_value,
)

WAIT = "Wait, that is wrong:"


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    # 7 families take turns by index; raised choice fractions so every family shows up in every kind.
    return generate_problems(140, seed=11, mc_frac=0.3, tf_frac=0.2)


def test_sample_covers_every_family_and_kind(problems):
    assert {p.meta["family"] for p in problems} == set(FAMILIES)
    kinds = Counter(p.meta["kind"] for p in problems)
    assert set(kinds) == {"free_form", "multi_choice", "true_false"} and min(kinds.values()) >= 10


@pytest.mark.parametrize("reflection_prob", [0.0, 1.0])
@pytest.mark.parametrize("choice_answer", ["text", "letter"])
def test_every_reply_earns_format_and_accuracy_one(problems, reflection_prob, choice_answer):
    cfg = TemplateConfig(reflection_prob=reflection_prob, choice_answer=choice_answer)
    for problem in problems:
        result = template_reply(problem, cfg, seed=0)
        assert result.reason == "ok", (problem.pid, result.reason)
        reply = result.reply
        assert format_reward(reply) == 1.0, reply
        scores = score(reply, problem, RewardConfig())
        assert scores.accuracy == 1.0, (problem.pid, scores.reason, reply)
        assert reply.startswith("<think>\nPlan: ")
        assert re.search(r"\nConclude: the answer is [^\n]+\n</think>\n\\boxed\{[^\n]+\}$", reply), reply


def test_multiple_choice_boxes_letter_or_text_as_configured(problems):
    multi = [p for p in problems if p.question_type == "multi_choice"]
    for problem in multi:
        letter = template_reply(problem, TemplateConfig(choice_answer="letter"), 0).reply
        text = template_reply(problem, TemplateConfig(choice_answer="text"), 0).reply
        expected_letter = "ABCDEFGH"[problem.choices.index(problem.answer)]
        assert letter.endswith(f"\\boxed{{{expected_letter}}}")
        assert text.endswith(f"\\boxed{{{problem.answer}}}")


def test_reflection_inserts_a_slip_and_its_correction(problems):
    reflected = 0
    for problem in problems:
        result = template_reply(problem, TemplateConfig(reflection_prob=1.0), 0)
        plain = template_reply(problem, TemplateConfig(reflection_prob=0.0), 0).reply
        lines, plain_lines = result.reply.split("\n"), plain.split("\n")
        waits = [i for i, line in enumerate(lines) if line.startswith(WAIT)]
        has_numeric_step = any(text.startswith("Step:") and re.search(r"\d", text) for text in plain_lines)
        assert len(waits) == (1 if has_numeric_step else 0) and result.reflected == has_numeric_step
        if not waits:
            continue
        reflected += 1
        i = waits[0]
        # The slipped step sits where the original step was, followed by the revision line; nothing else changes.
        assert lines[:i - 1] + lines[i + 1:] == plain_lines[:i - 1] + plain_lines[i:]
        original, slipped = plain_lines[i - 1], lines[i - 1]
        assert original.startswith("Step: ") and slipped != original
        match = re.fullmatch(r"Wait, that is wrong: (\S+) should be (\S+), so (.+)", lines[i])
        assert match, lines[i]
        wrong, right, corrected = match.groups()
        assert wrong != right and corrected == original[len("Step: "):]
        assert slipped.rpartition(wrong)[0] == original.rpartition(right)[0]  # only the last number differs
    assert reflected >= 0.9 * len(problems)  # the synthetic steps nearly all carry a number


def test_rendering_is_deterministic_per_seed_and_pid(problems):
    cfg = TemplateConfig(reflection_prob=0.3)
    first = [template_reply(p, cfg, seed=4) for p in problems]
    again = [template_reply(p, cfg, seed=4) for p in reversed(problems)][::-1]  # order does not matter
    assert [r.reply for r in first] == [r.reply for r in again]
    share = sum(r.reflected for r in first) / len(first)
    assert 0.15 <= share <= 0.45  # about reflection_prob of them
    other_seed = [template_reply(p, cfg, seed=5).reflected for p in problems]
    assert other_seed != [r.reflected for r in first]


def test_problems_without_a_usable_solution_are_dropped_with_a_reason(problems):
    base = next(p for p in problems if p.question_type == "free_form" and p.answer_type == "integer")
    cfg = TemplateConfig()
    assert template_reply(base.copy(solution=None), cfg, 0).reason == "no_solution"
    assert template_reply(base.copy(solution="  \n"), cfg, 0).reason == "no_solution"
    no_answer = "Plan: look.\nStep: I see it."
    assert template_reply(base.copy(solution=no_answer), cfg, 0).reason == "no_stated_answer"
    wrong = base.solution.rpartition("the answer is ")[0] + f"the answer is {int(base.answer) + 1}"
    dropped = template_reply(base.copy(solution=wrong), cfg, 0)
    assert dropped.reply is None and dropped.reason == "not_verified:wrong"
    with_tags = base.solution.replace("Check:", "</think> Check:")  # a stray tag breaks the format
    assert template_reply(base.copy(solution=with_tags), cfg, 0).reason == "bad_format"


def test_multiple_choice_letter_mode_drops_an_answer_that_is_no_option(problems):
    problem = next(p for p in problems if p.meta["kind"] == "multi_choice")
    off_menu = "Plan: read it.\nStep: it says 1000.\nConclude: the answer is 1000"
    result = template_reply(problem.copy(solution=off_menu), TemplateConfig(choice_answer="letter"), 0)
    assert result.reason == "not_a_choice"


def test_free_text_solutions_keep_their_lines():
    problem = Problem(pid="free-1", question="What is 3 + 4?", answer="7", answer_type="integer",
                      solution="First add the numbers: 3 + 4 = 7.\nSo the answer is 7.")
    result = template_reply(problem, TemplateConfig(), 0)
    assert result.reply == "<think>\nFirst add the numbers: 3 + 4 = 7.\nSo the answer is 7.\n</think>\n\\boxed{7}"
    boxed = problem.copy(solution="We get \\boxed{\\frac{14}{2}} in the end.")
    assert template_reply(boxed, TemplateConfig(), 0).reply.endswith("\\boxed{\\frac{14}{2}}")


def test_stated_answer_reads_the_last_statement():
    assert stated_answer("Check: the statement says 2, but the answer is 1.\nConclude: the answer is False") == "False"
    assert stated_answer("Step: 2.5 + 1 = 3.5.\nConclude: the answer is 3.5") == "3.5"
    assert stated_answer("Step: no conclusion here.") is None


@pytest.mark.parametrize(
    "number, allowed",
    [("7", {"6", "8"}), ("0", {"1"}), ("3.88", {"3.87", "3.89"}), ("0.0", {"0.1"}), ("10", {"9", "11"})],
)
def test_wrong_value_is_one_unit_off_in_the_same_format(number, allowed):
    seen = {wrong_value(number, random.Random(seed)) for seed in range(40)}
    assert seen == allowed


def test_render_without_slip_is_the_reference_in_think_tags():
    lines = parse_reference("Plan: add.\nStep: 2 + 2 = 4.\nCheck: 4 - 2 = 2.\nConclude: the answer is 4")
    assert [line.kind for line in lines] == ["plan", "step", "check", "conclude"]
    assert render_reply(lines, "4") == (
        "<think>\nPlan: add.\nStep: 2 + 2 = 4.\nCheck: 4 - 2 = 2.\nConclude: the answer is 4\n</think>\n\\boxed{4}"
    )
    assert REFLECTION.startswith(WAIT)


def test_a_slip_changes_a_standalone_number_never_a_name_or_a_thousands_group():
    lines = parse_reference("Plan: add.\nStep: R1 = 6 and the total is 1,000 in all.\nStep: R1 and x2 only.")
    slip = plan_slip(lines, random.Random(0))
    assert (slip.line_index, slip.right) == (1, "6") and slip.wrong in {"5", "7"}
    assert plan_slip(parse_reference("Step: R1 and x2 only.\nStep: 1,000 in all."), random.Random(0)) is None
