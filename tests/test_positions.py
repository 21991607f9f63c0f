"""Image tokens get Qwen2.5-VL's multimodal (3-D) rope positions in every forward and in hf generation, as the
processor's own `mm_token_type_ids` give them; and generation and the trainer's forward see the same positions
(real tiny model; without the types, transformers silently uses text positions and the logits move ~1e-2)."""

import pytest
import torch
from PIL import Image, ImageDraw

from mmreason.config import ModelConfig
from mmreason.data.batching import encode_prompts
from mmreason.generation import generate
from mmreason.logprobs import mm_token_type_ids, policy_forward
from mmreason.models import load_policy
from mmreason.problem import Problem


def dots(pid: str, n: int, size: tuple[int, int]) -> Problem:
    image = Image.new("RGB", size, "white")
    for i in range(n):
        ImageDraw.Draw(image).ellipse((6 + 20 * i, 20, 20 + 20 * i, 34), fill="black")
    return Problem(pid=pid, question="How many dots?", answer=str(n), answer_type="integer", images=[image])


@pytest.fixture(scope="module")
def policy(tiny_checkpoint):
    model, processor = load_policy(ModelConfig(path=str(tiny_checkpoint)))
    return model.eval(), processor


@pytest.fixture(scope="module")
def batch(policy):
    _, processor = policy
    # two image sizes, so the rows are padded differently and their image grids differ
    return encode_prompts(processor, [dots("a", 2, (112, 84)), dots("b", 3, (84, 140))], "r1_boxed")


def test_derived_types_are_the_processors(policy, batch):
    model, processor = policy
    problem = dots("a", 2, (112, 84))
    from mmreason.data.batching import _prompt_texts, _vision
    from mmreason.data.prompts import build_messages

    messages = [build_messages(problem, "r1_boxed")]
    inputs = processor(text=_prompt_texts(processor, messages), images=_vision(messages), return_tensors="pt")
    assert int(inputs["mm_token_type_ids"].sum()) > 0
    torch.testing.assert_close(mm_token_type_ids(model, inputs["input_ids"]), inputs["mm_token_type_ids"].int())


def test_forward_uses_multimodal_positions(policy, batch):
    model, _ = policy
    with torch.no_grad():
        ours = policy_forward(model, batch.input_ids, batch.attention_mask, batch.pixel_values,
                              batch.image_grid_thw).logits
        text_positions = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                               pixel_values=batch.pixel_values, image_grid_thw=batch.image_grid_thw).logits
        multimodal = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                           pixel_values=batch.pixel_values, image_grid_thw=batch.image_grid_thw,
                           mm_token_type_ids=mm_token_type_ids(model, batch.input_ids)).logits
    real = batch.attention_mask.bool()
    assert (text_positions - multimodal)[real].abs().max() > 1e-4  # the test can tell the two apart
    torch.testing.assert_close(ours[real], multimodal[real], rtol=0, atol=1e-6)


def test_generation_and_trainer_forward_agree(policy, batch):
    """The logits hf generation sampled each token from equal the trainer's forward over prompt + response."""
    model, processor = policy
    step_logits: list[torch.Tensor] = []
    handle = model.register_forward_hook(lambda _m, _a, out: step_logits.append(out.logits[:, -1].float()))
    try:
        out = generate(model, processor, batch, temperature=0.0, max_new_tokens=8, min_new_tokens=8)
    finally:
        handle.remove()
    assert len(step_logits) == 8
    ids = torch.cat([out.prompt_ids, out.response_ids], dim=1)
    mask = torch.cat([out.prompt_mask, out.response_mask], dim=1)
    with torch.no_grad():
        logits = policy_forward(model, ids, mask, batch.pixel_values, batch.image_grid_thw).logits.float()
    P = out.prompt_ids.shape[1]
    for t, sampled_from in enumerate(step_logits):
        torch.testing.assert_close(logits[:, P - 1 + t], sampled_from, rtol=0, atol=2e-5)
