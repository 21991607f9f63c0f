"""k1.5's long2short data rules on hand-made samples: shortest correct reply, and the 1.5x rule for DPO negatives."""

from mmreason.long2short.pairs import PairIndices, build_pairs, negatives, pair_records, shortest_correct, shortest_record
from mmreason.problem import Problem
from mmreason.warmup.rejection import Trace


def trace(tokens, correct=True, fmt=True):
    return Trace(text=f"reply of {tokens} tokens", num_tokens=tokens, accuracy=1.0 if correct else 0.0,
                 format=1.0 if fmt else 0.0, reason="correct" if correct else "wrong")


SAMPLES = [
    trace(30),                          # 0: correct, 30 <= 1.5 x 20: kept out of the negatives
    trace(20),                          # 1: the shortest correct reply
    trace(31),                          # 2: correct, 31 > 30 = 1.5 x 20: a negative
    trace(12, correct=False),           # 3: wrong (shorter than the shortest correct): a negative
    trace(20),                          # 4: ties with 1 in length: the earlier sample wins
    trace(15, correct=True, fmt=False), # 5: right answer, broken format: not accepted, a negative
    trace(45),                          # 6: correct, 45 > 30: a negative
]


def test_shortest_correct_reply_ties_to_the_earlier_sample():
    assert shortest_correct(SAMPLES) == 1
    assert shortest_correct([trace(5, correct=False)]) is None


def test_negatives_follow_the_1_5x_rule():
    # exactly 1.5x (30 tokens) is not "more than 1.5x longer"; 31 is
    assert negatives(SAMPLES) == [2, 3, 5, 6]
    assert negatives(SAMPLES, length_ratio=2.0) == [3, 5, 6]  # longer than 40 tokens: only 45


def test_pairs_and_records():
    assert build_pairs(SAMPLES) == [PairIndices(1, 2), PairIndices(1, 3), PairIndices(1, 5), PairIndices(1, 6)]
    assert build_pairs(SAMPLES, max_pairs=2) == [PairIndices(1, 2), PairIndices(1, 3)]
    assert build_pairs([trace(9, correct=False), trace(7, correct=False)]) == []  # nothing correct: no pair
    assert build_pairs([trace(10), trace(14)]) == []  # all correct and within 1.5x: no negative
    problem = Problem(pid="p1", images=[], question="q", answer="3")
    records = pair_records(problem, SAMPLES, teacher="long")
    assert [r.pid for r in records] == ["p1-pair1x2", "p1-pair1x3", "p1-pair1x5", "p1-pair1x6"]
    assert all(r.solution == "reply of 20 tokens" for r in records)
    assert records[1].meta["rejected"] == "reply of 12 tokens" and records[1].meta["rejected_correct"] is False
    assert records[0].meta["rejected_tokens"] == 31 and records[0].meta["chosen_tokens"] == 20
    short = shortest_record(problem, SAMPLES, teacher="long")
    assert short.pid == "p1-short1" and short.solution == "reply of 20 tokens" and short.meta["trace_tokens"] == 20
