"""The reward record: every term, its weight and the weighted sum (numbers derived in comments); the user's own
reward function by path; R1's language-consistency term."""

import textwrap

import pytest
import torch

from mmreason.config import ConfigError, RewardConfig, load_config
from mmreason.problem import Problem
from mmreason.rewards import compute_reward
from mmreason.rewards.custom import RewardFunctionError, load_reward_function
from mmreason.rewards.language import chain_of_thought, language_consistency, language_share

INT_12 = Problem(pid="int-12", question="How many?", answer="12", answer_type="integer")
GOOD = "<think>4 rows of 3</think> So the answer is \\boxed{12}."
WRONG = "<think>4 rows of 3 and one more</think> \\boxed{13}"
NO_THINK = "\\boxed{12}"


def record_for(responses, cfg, *, lengths, repetitive=None, step=10, group_size=2, max_new_tokens=10):
    n = len(responses)
    return compute_reward(
        responses, [INT_12] * n, lengths=torch.tensor(lengths), truncated=torch.tensor(lengths) >= max_new_tokens,
        repetitive=torch.tensor(repetitive or [False] * n), group_size=group_size, step=step,
        max_new_tokens=max_new_tokens, cfg=cfg)


def test_every_term_its_weight_and_the_sum():
    cfg = RewardConfig(accuracy_weight=2.0, format_weight=0.5, length_penalty_weight=0.4, length_penalty_start_step=5,
                       overlong_buffer=4, overlong_penalty=1.5, repetition_penalty=-0.25)
    # Two groups of 2. Group 0: GOOD (4 tokens) and WRONG (10 tokens, hit max_new_tokens).
    # Group 1: GOOD (8 tokens, cut for repetition) and NO_THINK (6 tokens).
    record = record_for([GOOD, WRONG, GOOD, NO_THINK], cfg, lengths=[4, 10, 8, 6], repetitive=[False, False, True, False])
    close = lambda name, expected: torch.testing.assert_close(record.terms[name], torch.tensor(expected))  # noqa: E731
    close("accuracy", [1.0, 0.0, 1.0, 1.0])
    close("format", [1.0, 1.0, 1.0, 0.0])
    # k1.5 length: lambda = 0.5 - (len - min) / (max - min). Group 0: min 4, max 10 -> 0.5 (correct) and
    # -0.5 (wrong, min(0, -0.5)). Group 1: min 6, max 8 -> 8 tokens: -0.5, 6 tokens: 0.5 (both correct).
    close("length", [0.5, -0.5, -0.5, 0.5])
    # DAPO overlong, buffer 4 of max 10: starts at 6 tokens; -(len - 6) / 4, capped at -1: 4 -> 0, 10 -> -1,
    # 8 -> -0.5, 6 -> 0
    close("overlong", [0.0, -1.0, -0.5, 0.0])
    close("repetition", [0.0, 0.0, 1.0, 0.0])
    assert record.weights == {"accuracy": 2.0, "format": 0.5, "length": 0.4, "overlong": 1.5, "repetition": -0.25}
    # overall = 2 acc + 0.5 fmt + 0.4 len + 1.5 overlong - 0.25 rep:
    #   row 0: 2 + 0.5 + 0.2 + 0 - 0       = 2.7
    #   row 1: 0 + 0.5 - 0.2 - 1.5 - 0     = -1.2
    #   row 2: 2 + 0.5 - 0.2 - 0.75 - 0.25 = 1.3
    #   row 3: 2 + 0 + 0.2 + 0 - 0         = 2.2
    torch.testing.assert_close(record.overall, torch.tensor([2.7, -1.2, 1.3, 2.2]))
    assert record.extracted == ["12", "13", "12", "12"]
    assert record.reasons == ["correct", "wrong", "correct", "correct"]


def test_length_term_waits_for_its_start_step_and_off_terms_are_zero():
    cfg = RewardConfig(length_penalty_weight=0.4, length_penalty_start_step=5, overlong_buffer=0)
    early = record_for([GOOD, WRONG], cfg, lengths=[4, 10], step=4)
    assert early.terms["length"].tolist() == [0.0, 0.0]
    assert early.terms["overlong"].tolist() == [0.0, 0.0]  # buffer 0: off
    # 1.0 * accuracy + 0.1 * format: 1.1 and 0.1
    torch.testing.assert_close(early.overall, torch.tensor([1.1, 0.1]))
    assert "language" not in early.terms  # weight 0: not computed, not logged


def test_select_and_concat_keep_rows_together():
    cfg = RewardConfig(overlong_buffer=0)
    record = record_for([GOOD, WRONG, NO_THINK, GOOD], cfg, lengths=[3, 4, 5, 6])
    picked = record.select(torch.tensor([2, 3]))
    assert picked.extracted == ["12", "12"] and picked.terms["format"].tolist() == [0.0, 1.0]
    joined = type(record).concat([record.select(torch.tensor([0, 1])), picked])
    torch.testing.assert_close(joined.overall, record.overall[[0, 1, 2, 3]])


def test_bad_shapes_name_the_argument():
    with pytest.raises(ValueError, match=r"lengths must have shape \(2,\)"):
        compute_reward([GOOD, GOOD], [INT_12] * 2, lengths=torch.tensor([1]), truncated=torch.zeros(2, dtype=torch.bool),
                       repetitive=torch.zeros(2, dtype=torch.bool), group_size=2, step=1, max_new_tokens=8,
                       cfg=RewardConfig())
    with pytest.raises(ValueError, match="groups of 2"):
        record_for([GOOD, GOOD, GOOD], RewardConfig(), lengths=[1, 2, 3])


# ---- the user's own term --------------------------------------------------------------------------


def write_reward_file(tmp_path, body):
    path = tmp_path / "my_reward.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_user_function_by_path_is_a_weighted_named_term(tmp_path):
    path = write_reward_file(tmp_path, """
        def brevity(responses, problems, *, lengths, truncated, step):
            return [1.0 if n <= 5 else 0.0 for n in lengths.tolist()]
    """)
    cfg = RewardConfig(overlong_buffer=0, function=f"{path}:brevity", function_weight=0.5)
    record = record_for([GOOD, WRONG], cfg, lengths=[4, 9])
    assert record.terms["brevity"].tolist() == [1.0, 0.0]
    assert record.weights["brevity"] == 0.5
    # 1.1 + 0.5 * 1 and 0.1 + 0
    torch.testing.assert_close(record.overall, torch.tensor([1.6, 0.1]))


def test_the_shipped_example_by_path_and_by_module():
    by_path = load_reward_function("examples/reward_function/unit_mentioned.py:unit_mentioned")
    with_unit = Problem(pid="u", question="How long?", answer="5", answer_type="integer", unit="cm")
    values = by_path(["<think>cm</think> \\boxed{5} cm", "<think>cm</think> \\boxed{5}", "\\boxed{5} cm"],
                     [with_unit, with_unit, INT_12], lengths=torch.tensor([3, 3, 3]),
                     truncated=torch.zeros(3, dtype=torch.bool), step=1)
    # unit named after the reasoning; only inside the reasoning; a problem without a unit
    assert values == [1.0, 0.0, 0.0]


def test_a_function_by_module_name(tmp_path, monkeypatch):
    package = tmp_path / "my_rewards"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "terms.py").write_text("def always_one(responses, problems, *, lengths, truncated, step):\n"
                                      "    return [1.0] * len(responses)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fn = load_reward_function("my_rewards.terms:always_one")
    assert fn(["a", "b"], [INT_12, INT_12], lengths=torch.tensor([1, 2]), truncated=torch.zeros(2, dtype=torch.bool),
              step=3) == [1.0, 1.0]


@pytest.mark.parametrize("spec, message", [
    ("no_colon", "expected 'path/to/file.py:function'"),
    ("missing.py:fn", "does not exist"),
    ("not_a_module_xyz:fn", "cannot import module"),
    ("examples/reward_function/unit_mentioned.py:nope", "has no function 'nope'"),
    ("mmreason.rewards.language:language_share", "does not accept"),
])
def test_bad_reward_functions_are_rejected_with_the_reason(spec, message):
    with pytest.raises(RewardFunctionError, match=message):
        load_reward_function(spec)


def test_a_built_in_name_or_a_wrong_return_is_rejected(tmp_path):
    path = write_reward_file(tmp_path, """
        def accuracy(responses, problems, *, lengths, truncated, step):
            return [0.0] * len(responses)

        def too_few(responses, problems, *, lengths, truncated, step):
            return [0.0]
    """)
    with pytest.raises(RewardFunctionError, match="built-in term"):
        load_reward_function(f"{path}:accuracy")
    cfg = RewardConfig(overlong_buffer=0, function=f"{path}:too_few")
    with pytest.raises(RewardFunctionError, match="returned 1 values for 2 responses"):
        record_for([GOOD, WRONG], cfg, lengths=[4, 9])


def test_config_checks_the_function_before_any_work(tmp_path):
    base = tmp_path / "c.yaml"
    base.write_text("stage: rl\nmodel: {path: /ckpt}\ndata: {train: /shards}\ntrain: {output_dir: /run}\n")
    with pytest.raises(ConfigError, match="reward.function.*does not exist"):
        load_config(base, ["reward.function=nowhere.py:fn"])
    cfg = load_config(base, ["reward.function=examples/reward_function/unit_mentioned.py:unit_mentioned"])
    assert cfg.reward.function.endswith(":unit_mentioned")
    with pytest.raises(ConfigError, match="reward.language.*'xx'"):
        load_config(base, ["reward.language_consistency_weight=0.1", "reward.language=xx"])


# ---- R1's language consistency ------------------------------------------------------------------


def test_language_share_in_english_and_chinese():
    english = "First count the red dots, then add the blue ones."
    chinese = "先数红点，再加上蓝点。"
    assert language_share(english, "en") == 1.0
    assert language_share(english, "zh") == 0.0
    assert language_share(chinese, "zh") == 1.0
    assert language_share(chinese, "en") == 0.0


def test_mixed_text_scores_its_share_of_target_words():
    # 4 English words + 4 Han characters: half of the 8 units are English
    mixed = "count the red dots 然后相加"
    assert language_share(mixed, "en") == pytest.approx(0.5)
    assert language_share(mixed, "zh") == pytest.approx(0.5)
    # 6 English words and 2 Han characters: 6 / 8 English
    assert language_share("so the area is half of 总和", "en") == pytest.approx(6 / 8)


def test_math_and_markup_are_not_words():
    # \frac, $x^2$, digits and <think> tags would otherwise count as English words
    text = "<think>面积 $x^2 + \\frac{1}{2}$ 等于 12</think>"
    assert language_share(chain_of_thought(text), "zh") == 1.0
    assert language_share("$$a+b$$ 42", "en") == 1.0  # no words at all: nothing is mixed


def test_language_consistency_reads_the_chain_of_thought_only():
    # The reasoning is Chinese; the English final sentence after </think> does not count.
    response = "<think>先数点的个数</think> The answer is \\boxed{3}."
    assert language_consistency(response, "zh") == 1.0
    assert language_consistency(response, "en") == 0.0
    cfg = RewardConfig(overlong_buffer=0, language_consistency_weight=0.5, language="en")
    record = record_for(["<think>count 点</think> \\boxed{12}", GOOD], cfg, lengths=[3, 3])
    # row 0: 1 of 2 units English -> 0.5; row 1: all English -> 1.0
    assert record.terms["language"].tolist() == [0.5, 1.0]
    assert record.weights["language"] == 0.5
