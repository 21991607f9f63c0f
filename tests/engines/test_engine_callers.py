"""Every caller that generates picks its engine by a key or flag: MathVista `run --engine`, the warmup rejection
sampler (`rejection.engine`; long2short's `sampling.engine` is the same object) and curation's model steps
(`generation.engine`). With vllm each builds its own engine from the checkpoint, samples, and its greedy output
equals hf's on the same weights (tiny checkpoint; needs vLLM: `pytest -m vllm` in the engine's virtualenv)."""

import json
import subprocess
import sys

import pytest

from mmreason.config import ModelConfig
from mmreason.curation.config import GenerationConfig
from mmreason.curation.pipeline import ModelGenerators
from mmreason.warmup.config import RejectionConfig
from mmreason.warmup.rejection import Teacher

pytestmark = pytest.mark.vllm


def mixed_problems(engine_problems):
    return engine_problems["single_image"] + engine_problems["multi_image"] + engine_problems["text_only"]


def test_mathvista_run_with_the_vllm_engine(small_corpus, tiny_checkpoint, tmp_path, repo_root):
    predictions = {}
    for engine in ("hf", "vllm"):
        out = tmp_path / engine
        cmd = [sys.executable, "-m", "mmreason.eval.cli", "run", "--model", str(tiny_checkpoint),
               "--data", str(small_corpus / "heldout"), "--out", str(out), "--max-new-tokens", "12",
               "--template", "r1_boxed", "--engine", engine, "--dtype", "float32"]
        result = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-4000:]
        assert json.loads((out / "generation.json").read_text())["engine"] == engine
        predictions[engine] = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions["vllm"]) == 8
    assert [p["response"] for p in predictions["vllm"]] == [p["response"] for p in predictions["hf"]]


def test_rejection_teacher_samples_through_vllm(tiny_checkpoint, engine_problems):
    problems = mixed_problems(engine_problems)
    greedy = {}
    for engine in ("hf", "vllm"):
        cfg = RejectionConfig(model=ModelConfig(path=str(tiny_checkpoint), dtype="float32"), engine=engine,
                              num_samples=1, temperature=0.0, max_new_tokens=10, batch_size=8)
        teacher = Teacher(cfg, seed=0)
        try:
            greedy[engine] = [[(s.text, s.num_tokens) for s in samples] for samples in teacher.sample(problems)]
            if engine == "vllm":
                assert teacher._engine is not None and teacher._engine.name == "vllm"
                teacher.cfg = RejectionConfig(model=cfg.model, engine="vllm", num_samples=3, temperature=1.0,
                                              max_new_tokens=10, batch_size=8)
                sampled = teacher.sample(problems)
                assert [len(s) for s in sampled] == [3] * len(problems)
                assert all(1 <= s.num_tokens <= 10 for samples in sampled for s in samples)
        finally:
            teacher.close()
    assert greedy["vllm"] == greedy["hf"]


def test_curation_model_steps_sample_through_vllm(tiny_checkpoint, engine_problems):
    problems = mixed_problems(engine_problems)
    texts = {}
    for engine in ("hf", "vllm"):
        generators = ModelGenerators(ModelConfig(path=str(tiny_checkpoint), dtype="float32"),
                                     GenerationConfig(engine=engine, batch_size=8))
        try:
            # the hackable step's shape: an answer with its thinking pre-filled as empty
            generate = generators.generate_fn("r1_boxed", 10, response_prefix="<think>\n</think>\n")
            texts[engine] = generate(problems, 1, 0.0)
            if engine == "vllm":
                assert generators._engine is not None and generators._engine.name == "vllm"
        finally:
            generators.close()
    assert all(t[0].startswith("<think>\n</think>\n") for t in texts["vllm"])
    assert texts["vllm"] == texts["hf"]
