import json

import pytest
import webdataset as wds
from PIL import Image

from mmreason.problem import Problem, ProblemError, pack_images, unpack_images


def make_problem(**changes):
    base = dict(
        pid="p1", question="<image>How many red dots?", answer="3", answer_type="integer",
        images=[Image.new("RGB", (32, 24), (200, 10, 10))], solution="Plan: count.", meta={"family": "count"},
    )
    base.update(changes)
    return Problem(**base)


def test_round_trip_through_real_shard(tmp_path):
    rgba = Image.new("RGBA", (20, 30), (1, 2, 3, 128))
    problems = [
        make_problem(),
        make_problem(pid="p2", question="<image> vs <image>: which is larger?", question_type="multi_choice",
                     answer_type="text", answer="left", choices=["left", "right"],
                     images=[rgba, Image.new("L", (9, 9), 77)]),
        make_problem(pid="p3", question="What is 2 + 2?", answer="4", images=[]),  # text-only is allowed
        make_problem(pid="p4", answer="1.25", answer_type="float", precision=2, unit="m"),
    ]
    path = tmp_path / "shard-000000.tar"
    with wds.TarWriter(str(path)) as writer:
        for problem in problems:
            writer.write(problem.to_sample())
    loaded = [Problem.from_sample(s) for s in wds.WebDataset(str(path), shardshuffle=False)]
    assert [p.pid for p in loaded] == ["p1", "p2", "p3", "p4"]
    for before, after in zip(problems, loaded):
        assert after.to_json() == before.to_json()
        assert len(after.images) == len(before.images)
        for a, b in zip(before.images, after.images):
            assert (a.mode, a.size, a.tobytes()) == (b.mode, b.size, b.tobytes())


@pytest.mark.parametrize(
    "changes, field",
    [
        (dict(answer_type="number"), "answer_type"),
        (dict(question_type="multi_choice", choices=None), "choices"),
        (dict(question_type="multi_choice", choices=["1", "2"]), "answer"),
        (dict(pid="a.b"), "pid"),
        (dict(question_type="essay"), "question_type"),
        (dict(answer=3), "answer"),
        (dict(question="<image><image>two?"), "question"),
    ],
)
def test_validation_names_pid_and_field(changes, field):
    pid = changes.get("pid", "p1")
    with pytest.raises(ProblemError) as err:
        make_problem(**changes).validate()
    assert repr(pid) in str(err.value) and repr(field) in str(err.value)


def test_undecodable_image_names_pid():
    sample = make_problem().to_sample()
    sample["images.tar"] = pack_images([unpack_images(sample["images.tar"])[0][:40]])  # truncated PNG
    with pytest.raises(ProblemError, match=r"'p1'.*0\.png"):
        Problem.from_sample(sample)


def test_samples_of_the_earlier_layout_still_read():
    """Shards written before images.tar hold one `<i>.png` field per image."""
    problem = make_problem()
    sample = problem.to_sample()
    for i, png in enumerate(unpack_images(sample.pop("images.tar"))):
        sample[f"{i}.png"] = png
    back = Problem.from_sample(sample)
    assert back.pid == problem.pid and len(back.images) == len(problem.images)
    del sample["0.png"]
    with pytest.raises(ProblemError, match=r"'p1'.*0\.png missing"):
        Problem.from_sample(sample)


def test_malformed_json_names_key():
    with pytest.raises(ProblemError, match="'k9'.*json"):
        Problem.from_sample({"__key__": "k9", "json": b"{not json"})


def test_precision_stored_as_float_becomes_int():
    record = make_problem(question="What is 3 / 2?", images=[]).to_json() | {"precision": 1.0, "answer": "1.5", "answer_type": "float"}
    assert Problem.from_json(json.loads(json.dumps(record))).precision == 1
