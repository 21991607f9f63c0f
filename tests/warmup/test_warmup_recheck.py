"""template.recheck_max: 0-N restated checks per reply (seeded per pid), every reply still verified."""

from collections import Counter

from mmreason.data.synth import FAMILIES, generate_problems
from mmreason.warmup.config import TemplateConfig
from mmreason.warmup.template import RECHECK, template_reply


def test_rechecks_vary_in_number_and_leave_replies_verified():
    problems = generate_problems(60, seed=3, families=list(FAMILIES), levels=[1])
    counts = Counter()
    for problem in problems:
        plain = template_reply(problem, TemplateConfig(), seed=0)
        long = template_reply(problem, TemplateConfig(recheck_max=3), seed=0)
        if plain.reply is None:
            continue
        assert long.reply is not None and long.reason == "ok"  # checked by the reward's verifier as ever
        n = long.reply.count(RECHECK.split("{")[0])
        counts[n] += 1
        if n == 0:
            assert long.reply == plain.reply  # no recheck drawn: the reply is the plain one
        else:
            assert len(long.reply) > len(plain.reply)
    assert set(counts) == {0, 1, 2, 3}, counts
