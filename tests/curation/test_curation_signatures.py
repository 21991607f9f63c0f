import itertools
import random

import pytest
from curation_builders import draw_figure, jpeg_copy, make_problem, resized_copy, write_mathvista_parquet
from PIL import Image, ImageDraw

from mmreason.curation import signatures
from mmreason.curation.config import DecontamConfig, DedupConfig
from mmreason.curation.decontam import EvalMatcher
from mmreason.curation.dedup import Deduplicator
from mmreason.curation.signatures import (
    Signature,
    SignatureIndex,
    image_hash,
    max_image_distance,
    normalize_answer,
    normalize_text,
    signature_of,
)


@pytest.mark.parametrize(
    "a, b",
    [
        ("What is  the area?", "what is the area"),
        ("What\u2019s the value of x, in cm?", "What's the value of x in cm"),
        ("Find x \u2013 1.", "find x - 1"),
        ("How many\nobjects are there ?", "how many objects are there"),
    ],
)
def test_normalize_text_equates_typographic_variants(a, b):
    assert normalize_text(a) == normalize_text(b)


@pytest.mark.parametrize(
    "a, b",
    [("x = 1.5", "x = 15"), ("What is 3 + 4?", "What is 3 - 4?"), ("Find the area of the circle.", "Find the area of the square.")],
)
def test_normalize_text_keeps_what_changes_the_question(a, b):
    assert normalize_text(a) != normalize_text(b)


def distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def test_perceptual_hash_survives_reencoding_and_resizing_but_separates_figures():
    for seed in range(20):
        image = draw_figure(seed)
        original = image_hash(image, 16)
        assert 0 <= original < 2**256
        for copy in (jpeg_copy(image), resized_copy(image), resized_copy(image, -1, 0), jpeg_copy(resized_copy(image))):
            assert distance(image_hash(copy, 16), original) <= 12
    hashes = [image_hash(draw_figure(seed), 16) for seed in range(20)]
    closest = min(distance(a, b) for a, b in itertools.combinations(hashes, 2))
    assert closest > 48


def test_centred_symmetric_figure_hash_is_stable():
    # Without padding before hashing, a centred regular polygon has half its DCT
    # coefficients at the median, and one changed pixel flips dozens of bits.
    image = Image.new("RGB", (112, 112), "white")
    ImageDraw.Draw(image).regular_polygon((56, 56, 40), 6, rotation=0, fill=(220, 20, 20))
    nudged = image.copy()
    nudged.putpixel((10, 10), (245, 245, 245))
    assert distance(image_hash(image, 16), image_hash(nudged, 16)) <= 8
    assert distance(image_hash(image, 16), image_hash(jpeg_copy(image), 16)) <= 8


def test_transparent_image_hashes_like_its_flattened_copy():
    rgba = Image.new("RGBA", (120, 120), (0, 0, 0, 0))
    rgba.paste(draw_figure(3, size=60).convert("RGBA"), (30, 30))
    flattened = Image.new("RGB", rgba.size, "white")
    flattened.paste(rgba, mask=rgba.split()[3])
    assert distance(image_hash(rgba, 16), image_hash(jpeg_copy(flattened), 16)) <= 12


@pytest.mark.parametrize("a, b", [("1.50", "1.5"), ("12", "12.0"), ("1,000", "1000"), ("  Two  Cats. ", "two cats"), (".5", "0.5")])
def test_normalize_answer_equates_spellings_of_one_answer(a, b):
    assert normalize_answer(a) == normalize_answer(b)


@pytest.mark.parametrize("a, b", [("1.5", "15"), ("1,5", "15"), ("[2, 3]", "[3, 2]"), ("-3", "3")])
def test_normalize_answer_keeps_different_answers_apart(a, b):
    assert normalize_answer(a) != normalize_answer(b)


def _random_signature(rng: random.Random, text: str, bits: int, answer: str = "7") -> Signature:
    return Signature(text, answer, (rng.getrandbits(bits),))


def test_index_finds_exactly_what_brute_force_finds():
    # Multi-index hashing must never miss a pair within max_distance (the pigeonhole argument).
    rng = random.Random(0)
    bits, max_distance = 64, 6
    stored = [_random_signature(rng, "q", bits) for _ in range(60)]
    index: SignatureIndex[int] = SignatureIndex(hash_size=8, max_distance=max_distance)
    for number, sig in enumerate(stored):
        index.add(sig, number)
    queries = []
    for sig in stored[:30]:  # near copies: flip 0..max_distance+2 random bits
        flipped = sig.hashes[0]
        for position in rng.sample(range(bits), rng.randint(0, max_distance + 2)):
            flipped ^= 1 << position
        queries.append(Signature("q", "7", (flipped,)))
    found_some = 0
    for query in queries:
        expected = next((n for n, s in enumerate(stored) if max_image_distance(query, s) <= max_distance), None)
        found = index.find(query)
        assert (found.key if found else None) == expected
        found_some += expected is not None
    assert 10 <= found_some < 30  # both outcomes were exercised


def test_index_requires_equal_text_answer_and_image_count():
    rng = random.Random(1)
    sig = _random_signature(rng, "what is x", 64, answer="3")
    index: SignatureIndex[str] = SignatureIndex(hash_size=8, max_distance=4)
    index.add(sig, "a")
    assert index.find(Signature("what is y", "3", sig.hashes)) is None
    assert index.find(Signature("what is x", "4", sig.hashes)) is None
    assert index.find(Signature("what is x", "3", sig.hashes * 2)) is None
    assert index.find(Signature("what is x", "3", sig.hashes)).key == "a"
    index.add(Signature("text only", "5", ()), "t")
    assert index.find(Signature("text only", "5", ())).key == "t"
    assert index.find(Signature("text only", "5", sig.hashes)) is None


def test_signature_without_answer_matches_any_answer():
    image = draw_figure(9)
    index: SignatureIndex[str] = SignatureIndex(hash_size=16, max_distance=24)
    index.add(signature_of("What is x?", None, [image], 16), "eval-without-answer")
    assert index.find(signature_of("what is x", "42", [jpeg_copy(image)], 16)).key == "eval-without-answer"
    assert index.find(signature_of("what is x", "42", [draw_figure(10)], 16)) is None


def test_index_rejects_distance_beyond_hash_bits():
    with pytest.raises(ValueError, match="max_distance must be in"):
        SignatureIndex(hash_size=8, max_distance=64)


def test_dedup_then_decontam_hash_each_image_of_a_problem_once(tmp_path, monkeypatch):
    """The stream's two cleaning steps sign the same problem object in turn; the perceptual hash (the expensive
    part) is computed once for both, and again for another problem object or another hash size."""
    eval_file = write_mathvista_parquet(tmp_path / "testmini.parquet", seeds=[10])
    dedup, decontam = Deduplicator(DedupConfig()), EvalMatcher(DecontamConfig(), [eval_file])
    hashed: list[int] = []

    def counting_image_hash(image, hash_size):
        hashed.append(hash_size)
        return image_hash(image, hash_size)

    monkeypatch.setattr(signatures, "image_hash", counting_image_hash)
    problem = make_problem("p1", images=[draw_figure(1), draw_figure(2)])
    assert decontam(dedup(problem)) is problem
    assert hashed == [16, 16]
    # An equal problem in another object is a new stream item, and it is hashed (and found as a duplicate).
    again = make_problem("p2", images=list(problem.images))
    assert dedup(again).kind == "exact_duplicate"
    assert hashed == [16] * 4
    # Another hash size does not reuse hashes made at 16.
    assert signatures.signature(again, 8, with_answer=True).hashes != signatures.signature(again, 16, with_answer=True).hashes
    assert hashed == [16] * 4 + [8, 8, 16, 16]
