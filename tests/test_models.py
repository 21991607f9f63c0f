import json
import subprocess
import sys

import pytest
import torch
from PIL import Image, ImageDraw

from mmreason.config import ModelConfig
from mmreason.data.batching import encode_prompts
from mmreason.models import CheckpointError, load_policy, vision_tower
from mmreason.problem import Problem
from mmreason.tiny import SPECIAL_TOKENS

FRESH_PROCESS_LOAD = """
import sys
from transformers import AutoModelForImageTextToText, AutoProcessor
model = AutoModelForImageTextToText.from_pretrained(sys.argv[1])
processor = AutoProcessor.from_pretrained(sys.argv[1])
print(type(model).__name__, type(processor).__name__, sum(p.numel() for p in model.parameters()))
"""


def test_tiny_checkpoint_loads_in_fresh_process(tiny_checkpoint):
    out = subprocess.run([sys.executable, "-c", FRESH_PROCESS_LOAD, str(tiny_checkpoint)], check=True,
                         capture_output=True, text=True).stdout.split()
    assert out[0] == "Qwen2_5_VLForConditionalGeneration" and out[1] == "Qwen2_5_VLProcessor"
    assert 1_000_000 <= int(out[2]) <= 5_000_000


def test_special_tokens_round_trip(tiny_checkpoint):
    model, processor = load_policy(ModelConfig(path=str(tiny_checkpoint)))
    tokenizer = processor.tokenizer
    for token in SPECIAL_TOKENS:
        ids = tokenizer(token, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, token
        assert tokenizer.decode(ids, skip_special_tokens=False) == token
    text = "<think>\nPlan: 12 + 30 = 42\n</think>\n\\boxed{42}<|im_end|>"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=False) == text
    assert tokenizer.convert_ids_to_tokens(tokenizer("407", add_special_tokens=False)["input_ids"]) == ["4", "0", "7"]


def test_chat_template_image_message_generates(tiny_checkpoint):
    model, processor = load_policy(ModelConfig(path=str(tiny_checkpoint)))
    image = Image.new("RGB", (112, 112), "white")
    ImageDraw.Draw(image).ellipse((30, 30, 60, 60), fill="red")
    problem = Problem(pid="q", question="How many circles?", answer="1", answer_type="integer", images=[image])
    batch = encode_prompts(processor, [problem], "r1_boxed")
    text = processor.tokenizer.decode(batch.input_ids[0], skip_special_tokens=False)
    assert text.startswith("<|im_start|>user\n<|vision_start|><|image_pad|>")
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    # A 112x112 image is an 8x8 patch grid: 16 image tokens after the 2x2 merge.
    assert batch.image_grid_thw.tolist() == [[1, 8, 8]]
    assert int((batch.input_ids == model.config.image_token_id).sum()) == 16
    out = model.generate(**batch._asdict(), max_new_tokens=5, do_sample=False)
    assert out.shape == (1, batch.input_ids.shape[1] + 5) or out.shape[1] <= batch.input_ids.shape[1] + 5


def test_vision_tower_frozen_language_model_trainable(tiny_checkpoint):
    model, _ = load_policy(ModelConfig(path=str(tiny_checkpoint), freeze_vision=True, freeze_merger=False))
    visual = vision_tower(model)
    blocks = [p for n, p in visual.named_parameters() if not n.startswith("merger")]
    merger = list(visual.merger.parameters())
    assert blocks and all(not p.requires_grad for p in blocks)
    assert merger and all(p.requires_grad for p in merger)
    language = list(model.model.language_model.parameters())
    assert language and all(p.requires_grad for p in language)
    model, _ = load_policy(ModelConfig(path=str(tiny_checkpoint), freeze_vision=True, freeze_merger=True))
    assert all(not p.requires_grad for p in vision_tower(model).parameters())
    assert model.dtype == torch.float32  # CPU default


def test_bad_paths_name_the_path(tmp_path, tiny_checkpoint):
    with pytest.raises(CheckpointError, match="no such checkpoint directory"):
        load_policy(ModelConfig(path=str(tmp_path / "missing")))
    with pytest.raises(CheckpointError, match="no config.json"):
        load_policy(ModelConfig(path=str(tmp_path)))
    text_only = tmp_path / "gpt2"
    text_only.mkdir()
    (text_only / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(CheckpointError, match=r"gpt2.*not an image-text-to-text"):
        load_policy(ModelConfig(path=str(text_only)))


def test_vision_lr_scale_puts_the_tower_in_its_own_group_under_the_same_schedule(tiny_checkpoint):
    from mmreason.config import OptimConfig
    from mmreason.engine import lr_lambda, parameter_groups

    model, _ = load_policy(ModelConfig(path=str(tiny_checkpoint), freeze_vision=False, freeze_merger=False))
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert parameter_groups(model, 1e-3, 1.0) == trainable  # the default keeps one flat list
    language, tower = parameter_groups(model, 1e-3, 10.0)
    assert {id(p) for p in tower["params"]} == {id(p) for p in vision_tower(model).parameters()}
    assert len(language["params"]) + len(tower["params"]) == len(trainable) and "lr" not in language
    cfg = OptimConfig(lr=1e-3, vision_lr_scale=10.0, warmup_steps=2, schedule="constant")
    optimizer = torch.optim.AdamW([language, tower], lr=cfg.lr)  # what DeepSpeed builds from these groups
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_lambda(s, cfg, 10))
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.5e-3, 0.5e-2])  # warmup step 1 of 2
    optimizer.step()
    schedule.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-3, 1e-2])
    # Without trainable vision parameters there is nothing to scale: one group.
    frozen, _ = load_policy(ModelConfig(path=str(tiny_checkpoint), freeze_vision=True, freeze_merger=True))
    assert [len(g["params"]) for g in parameter_groups(frozen, 1e-3, 10.0)] == [len(
        [p for p in frozen.parameters() if p.requires_grad])]

