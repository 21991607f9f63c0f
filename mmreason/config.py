"""Typed configs for every stage.

A YAML file sets values, `a.b=c` arguments override them, and OmegaConf's
structured configs do the merging and type checking. Unknown keys and wrong
types are errors that name the key; cross-field rules are checked by
`validate` before any work starts. Each component receives only its own
section (`cfg.rollout`, `cfg.algo`, ...), never the whole tree.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, TypeVar

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from mmreason.rl.presets import PRESETS  # imports nothing of mmreason at module level: no cycle
from mmreason.rundir import RESUME_MODES  # imports nothing of mmreason: no cycle

STAGES = ("sft", "rl", "dpo")
ALGORITHMS = tuple(PRESETS)
"""The algo.name presets (mmreason/rl/presets.py)."""
ANSWER_SOURCES = ("boxed", "answer_tag", "answer_is")
ENGINES = ("hf", "vllm")


MOVED_KEYS = {
    "algo.overlong_buffer": "reward.overlong_buffer",
    "algo.overlong_penalty": "reward.overlong_penalty",
}
"""Keys of older configs and where they live now (named in the unknown-key error)."""
REMOVED_KEYS = {
    "data.num_workers": "it was never read: shards are decoded in each rank's own process",
}
"""Keys of older configs that no longer exist, and why (named in the unknown-key error)."""


class ConfigError(ValueError):
    """A config that cannot run; the message names the key and what was expected."""


def check_engine(key: str, name: str | None) -> None:
    """A generation-engine key names one of ENGINES (None where the key has a fallback); every config family uses it."""
    if name is not None and name not in ENGINES:
        raise ConfigError(f"config key {key!r}: {name!r} is not a generation engine; expected one of {list(ENGINES)}")


@dataclass
class ModelConfig:
    path: str = MISSING
    """Checkpoint directory or hub id (e.g. Qwen/Qwen2.5-VL-7B-Instruct) loaded by AutoModelForImageTextToText."""
    dtype: str = "auto"
    """auto (bf16 on a GPU with bf16 support, fp32 on CPU), float32, bfloat16 or float16."""
    attn_implementation: str = "auto"
    """auto (flash_attention_2 on GPU when installed, else sdpa), sdpa, eager or flash_attention_2."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward to save memory (real-scale runs turn this on)."""
    freeze_vision: bool = True
    """Freeze the vision tower's transformer blocks (k1.5 and most VLM RL recipes keep it fixed)."""
    freeze_merger: bool = False
    """Also freeze the patch merger that projects vision features into the language model."""
    min_pixels: Optional[int] = None
    """Override the processor's min_pixels (images are resized to at least this many pixels)."""
    max_pixels: Optional[int] = None
    """Override the processor's max_pixels (bounds image tokens per image: pixels / (28*28))."""
    lora: bool = False
    """Train LoRA adapters (peft) instead of the weights: every base weight is frozen (freeze_vision/freeze_merger then
    do nothing), the reference policy is the base with adapters disabled, exports merge them (mmreason/lora.py)."""
    lora_rank: int = 16
    """LoRA rank r of each adapter (B @ A with A [r, in], B [out, r])."""
    lora_alpha: float = 32.0
    """LoRA scaling numerator: the update is B @ A * alpha / r."""
    lora_dropout: float = 0.0
    """Dropout on the adapters' input while training (0 keeps the training forward equal to the sampler's)."""
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    """Language-model linear layers that get an adapter, by last name part (the output head and embeddings never do)."""
    lora_vision: bool = False
    """Also put adapters on every linear layer of the vision tower (blocks and patch merger); false leaves it frozen."""
    image_feature_cache_mib: int = 1024
    """RL: MiB of CPU memory for the frozen vision tower's image features, each image encoded once and reused by its G
    samples, every forward and later steps (least recently used evicted; mmreason/vision_cache.py); only the merger
    runs per forward. Used when the tower is frozen (freeze_vision, no LoRA on it); 0 encodes images in every forward."""


@dataclass
class DataConfig:
    train: str = MISSING
    """Training shards: a directory, a brace pattern (shard-{000000..000009}.tar) or comma-separated tar paths."""
    eval: Optional[str] = None
    """Held-out shards for the periodic validation pass; None disables it."""
    prompt_template: str = "r1_boxed"
    """Prompt template: a name under configs/prompts/ (without .jinja) or a path to a jinja file."""
    system_prompt: Optional[str] = None
    """Optional system message placed before the user turn."""
    shuffle_buffer: int = 1000
    """Samples held in webdataset's shuffle buffer (0 keeps shard order)."""
    max_image_pixels: int = 36_000_000
    """Largest image (width x height) any stage decodes; a bigger one is skipped and counted like a corrupt sample
    (its header is read, its pixels never are). Default 36 M pixels (mmreason.problem.DEFAULT_MAX_IMAGE_PIXELS)."""
    max_length: int = 2048
    """SFT: longest tokenized example (prompt + answer) in tokens; longer ones are dropped and counted."""
    split: str = "auto"
    """SFT's training stream: how ranks (x DataLoader workers) divide the shards. shard: each reads only its own shards
    (remote shards are downloaded once per pass, not once per rank); sample: each reads every shard and keeps every
    n-th sample (works with fewer shards than ranks); auto: shard when there are at least as many shards as readers,
    else sample. Exactly once per pass either way (mmreason/data/shards.py). RL and DPO read the whole set on
    every rank."""
    image_cache_size: int = 128
    """RL: prompts kept with their images decoded (least recently drawn dropped first); the prompt set itself is held
    as records and encoded image bytes, each prompt decoded when drawn (mmreason/data/prompt_index.py). 0 decodes on
    every draw."""


@dataclass
class RolloutConfig:
    group_size: int = 8
    """Responses sampled per prompt (the G of GRPO)."""
    prompts_per_step: int = 64
    """Prompts per RL step over all ranks (split evenly between them)."""
    temperature: float = 1.0
    """Sampling temperature."""
    top_p: float = 1.0
    """Nucleus sampling threshold."""
    max_new_tokens: int = 1024
    """Longest response in tokens; longer ones are cut (and shaped by DAPO's overlong penalty)."""
    generation_batch_size: int = 64
    """Sequences generated together in one `generate` call per rank."""
    repetition_ngram: int = 8
    """n for degenerate-repetition detection: a response whose last n-gram repeats `repetition_count` times is cut there."""
    repetition_count: int = 6
    """Consecutive repeats of the trailing n-gram that count as degenerate (0 disables detection)."""
    partial_enabled: bool = False
    """Kimi k1.5 partial rollouts: each generation round adds at most partial_segment_tokens to a trajectory; groups
    not finished wait in a replay buffer and are continued by a later policy (mmreason/rl/partial.py)."""
    partial_segment_tokens: int = 1024
    """Partial rollouts: the token budget of one segment (one generation round) per trajectory."""
    partial_max_segments: int = 8
    """Partial rollouts: a trajectory still unfinished after this many segments is truncated (scored as truncated)."""
    partial_buffer_share: float = 0.5
    """Partial rollouts: share of a step's groups the first generation round may take from the buffer of unfinished
    groups (later rounds of a step that still lacks finished groups continue buffered ones first)."""
    partial_train_old_segments: bool = True
    """Partial rollouts: train tokens sampled in earlier steps too, each against its behaviour log-prob (clipped);
    false masks them out of the loss."""
    engine: str = "hf"
    """Generation engine: hf (transformers generate, on the live policy) or vllm (a vLLM engine per rank, weights synced after every update; see docs/engines.md)."""
    vllm_gpu_memory_utilization: float = 0.35
    """vllm on GPU: share of the GPU's memory the colocated engine may take (weights + KV cache); the trainer keeps the rest."""
    vllm_tensor_parallel_size: int = 1
    """vllm on GPU: GPUs one engine is sharded over (must divide the ranks on a node). 1 runs each rank's engine in
    the rank's own process with weights synced in memory; more gives the engine a process of its own, synced through
    a safetensors folder on disk (docs/engines.md)."""
    vllm_own_process: bool = False
    """vllm under a distributed trainer: run each rank's engine in a process of its own even with one device per
    engine (keeps the engine's threads, memory and crashes apart from the trainer; weights then go through disk)."""
    vllm_sleep_during_update: bool = True
    """vllm on GPU: free the engine's KV cache and offload its weights while the policy updates (vLLM sleep mode); no effect on CPU."""
    vllm_cpu_kv_cache_gib: int = 1
    """vllm on CPU: KV-cache size per engine in whole GiB (VLLM_CPU_KVCACHE_SPACE)."""
    vllm_cpu_threads_bind: str = "auto"
    """vllm on CPU: cores the engine's threads are pinned to (VLLM_CPU_OMP_THREADS_BIND, e.g. 0-1); auto splits this machine's cores between local ranks."""
    vllm_max_model_len: Optional[int] = None
    """vllm: longest prompt + response the engine accepts; None uses the checkpoint's max_position_embeddings."""
    vllm_max_images_per_prompt: int = 4
    """vllm: most images one prompt may carry (the engine reserves encoder memory for this many)."""


@dataclass
class AlgoConfig:
    """How the policy is optimised. `name` is a preset; the keys it fills (None here) can each be set explicitly,
    and an explicit value wins over the preset (see mmreason/rl/presets.py for what each preset fills)."""

    name: str = "grpo"
    """Preset: grpo (DeepSeekMath), dapo (DAPO), dr_grpo (Dr. GRPO), k15 (Kimi k1.5 mirror descent)."""
    advantage: Optional[str] = None
    """Advantage estimator: group_norm ((r - mean) / std over the group, GRPO/DAPO) or group_center (r - mean,
    Dr. GRPO/k1.5). None takes the preset's."""
    loss: Optional[str] = None
    """Policy loss: ppo_clip (clipped ratio, + beta * k3 KL) or mirror_descent (Kimi k1.5's squared surrogate,
    one term per sequence). None takes the preset's."""
    loss_agg: Optional[str] = None
    """How ppo_clip's per-token losses become one number: token_mean (every token of the batch weighs the same,
    DAPO), seq_mean_token_mean (mean per sequence, then over sequences, GRPO) or seq_mean_token_sum_norm (token
    sum per sequence / length_normalizer, then mean over sequences, Dr. GRPO). None takes the preset's; the
    mirror-descent loss is a square per sequence, averaged over sequences, and takes no aggregation."""
    reference: Optional[str] = None
    """Reference policy of the KL / mirror-descent term: none, frozen (the starting policy), snapshot (the policy
    at the start of each k1.5 iteration of reference_refresh_every steps) or rollout (the policy that sampled the
    step). None: frozen when beta > 0 else none; for k15, snapshot when reference_refresh_every > 1 else rollout."""
    reference_placement: str = "replicated"
    """Where a frozen or snapshot reference model lives: replicated (a whole copy per rank), partitioned (split across
    ranks by ZeRO-3, gathered module by module) or offloaded (partitioned and held in CPU memory)."""
    clip_eps_low: float = 0.2
    """Lower clip range: ratio is clipped at 1 - eps_low (PPO/GRPO)."""
    clip_eps_high: Optional[float] = None
    """Upper clip range: ratio is clipped at 1 + eps_high. None takes the preset's (0.2; DAPO's clip-higher 0.28)."""
    beta: float = 0.0
    """Weight of the k3 KL penalty to the reference policy (GRPO); 0 loads no frozen reference."""
    ppo_epochs: int = 1
    """Policy updates per rollout batch; ratios are taken against the rollout policy."""
    dynamic_sampling: Optional[bool] = None
    """DAPO: drop groups whose accuracies are all equal and draw more prompts until the batch is full.
    None takes the preset's (on for dapo only)."""
    max_sampling_rounds: int = 4
    """DAPO dynamic sampling: most extra rollout rounds per step before training on what was kept."""
    length_normalizer: Optional[int] = None
    """seq_mean_token_sum_norm (Dr. GRPO): constant the token sum is divided by; None means rollout.max_new_tokens."""
    tau: float = 0.1
    """Kimi k1.5: weight of the log(pi/pi_ref) term in the mirror-descent surrogate."""
    reset_optimizer_each_iteration: bool = False
    """Kimi k1.5: reset the optimizer state whenever a new iteration starts (reference snapshot or rollout)."""
    reference_refresh_every: int = 1
    """Kimi k1.5: steps per mirror-descent iteration (the snapshot reference is the policy at each iteration's start)."""


@dataclass
class RewardConfig:
    """The whole reward (mmreason/rewards/reward.py): a weighted sum of named terms, each logged as reward/<term>."""

    accuracy_weight: float = 1.0
    """Weight of answer correctness (1 if the extracted answer verifies, else 0)."""
    format_weight: float = 0.1
    """Weight of the format reward: reasoning inside <think>...</think>, then one boxed answer."""
    answer_sources: list[str] = field(default_factory=lambda: ["boxed"])
    """Where a final answer may be read from, in priority order: boxed, answer_tag, answer_is."""
    length_penalty_weight: float = 0.0
    """Kimi k1.5 length reward weight (0 = off): within a group, +0.5 for the shortest correct response down to -0.5
    for the longest; wrong responses are only penalised."""
    length_penalty_start_step: int = 0
    """Step at which the length reward switches on (k1.5 warms up without it)."""
    overlong_buffer: Optional[int] = None
    """DAPO soft overlong punishment: responses within this many tokens of rollout.max_new_tokens are penalised
    linearly (0 = off). None takes the algo preset's (dapo: a fifth of max_new_tokens, as in the DAPO paper; others 0)."""
    overlong_penalty: float = 1.0
    """DAPO: penalty at exactly rollout.max_new_tokens (scales linearly inside the buffer)."""
    repetition_penalty: float = 0.0
    """Reward added (use a negative value) to responses cut for degenerate repetition (rollout.repetition_*)."""
    language_consistency_weight: float = 0.0
    """DeepSeek-R1 language-consistency reward weight (0 = off): the share of the chain of thought's words that are
    in `language`, so a model is rewarded for not mixing languages."""
    language: str = "en"
    """Target language of the language-consistency reward: en (Latin-script words) or zh (Han characters); also
    ja, ko, ru and other Latin-script codes (see mmreason/rewards/language.py)."""
    function: Optional[str] = None
    """A reward term of your own: "path/to/file.py:fn" or "package.module:fn", called as fn(responses, problems, *,
    lengths, truncated, step) -> one number per response; checked at start-up, logged as reward/<fn>."""
    function_weight: float = 1.0
    """Weight of `function`'s term in the reward."""


@dataclass
class OptimConfig:
    lr: float = 1e-6
    """Peak learning rate of AdamW."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay."""
    beta1: float = 0.9
    """AdamW beta1."""
    beta2: float = 0.999
    """AdamW beta2."""
    eps: float = 1e-8
    """AdamW epsilon."""
    warmup_steps: int = 0
    """Linear warmup steps from 0 to lr."""
    schedule: str = "cosine"
    """After warmup: cosine (decay to min_lr_ratio * lr at max_steps) or constant."""
    min_lr_ratio: float = 0.1
    """Final learning rate as a fraction of lr (cosine schedule)."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip (0 disables clipping)."""
    vision_lr_scale: float = 1.0
    """Learning rate of the vision tower (`visual`: blocks and patch merger) as a multiple of lr, under the same
    schedule; 1 = one lr for all. Below 1 protects a pretrained tower; above 1 lets a young one learn to see
    faster than the language model drifts."""


@dataclass
class TrainConfig:
    output_dir: str = MISSING
    """Run directory: config.yaml, metrics.jsonl, checkpoints/, hf/latest/."""
    max_steps: int = 100
    """Optimizer steps to run (RL: one step per rollout batch and ppo epoch group)."""
    seed: int = 0
    """Seed for data order, sampling and initialisation."""
    batch_size: int = 32
    """SFT: sequences (DPO: preference pairs) per optimizer step over all ranks. (RL uses rollout.prompts_per_step x group_size.)"""
    micro_batch_size: int = 4
    """Sequences per forward/backward on one rank; the rest is gradient accumulation."""
    save_every: int = 50
    """Steps between checkpoints (DeepSpeed state for resume + HF export to hf/latest); 0 saves only at the end."""
    keep_checkpoints: int = 2
    """DeepSpeed checkpoints kept on disk (older ones are deleted)."""
    resume: str = "auto"
    """auto: continue the run in output_dir when its recorded config (run.json) matches, fail naming the keys
    that differ when not; never: fail if output_dir holds checkpoints; force: continue from the newest checkpoint
    whatever the config. Older configs' true/false mean auto/never. See mmreason/rundir.py."""
    eval_every: int = 0
    """Steps between validation passes on data.eval (0 = only at the end when data.eval is set)."""
    log_every: int = 1
    """Steps between console lines (one plain line with the main metrics, also the last step); metrics.jsonl
    gets every step."""
    log_samples_every: int = 10
    """RL: steps between writes of a few generated responses (prompt, response, reward terms, extracted answer) to
    samples.jsonl in output_dir, and as text to TensorBoard / W&B when on; 0 = never."""
    keep_hf_every: int = 0
    """Keep the HF export of every step divisible by this as hf/step-N/ beside hf/latest/ (exports happen every
    save_every steps and at the end, so make it a multiple of save_every); 0 keeps only hf/latest."""
    zero_stage: int = 0
    """DeepSpeed ZeRO stage (0, 1, 2, 3) used when `deepspeed_config` is not given."""
    deepspeed_config: Optional[str] = None
    """Path to a DeepSpeed JSON (configs/deepspeed/); batch sizes and optimizer are filled in from this config."""
    micro_batch_tokens: int = 0
    """RL: when > 0, micro-batches are cut by a token budget instead of micro_batch_size rows: rows of similar length
    packed while rows x (longest prompt + longest response) fits; the loss normalisation is unchanged."""
    logit_chunk_tokens: int = 512
    """RL: response positions whose logits exist at once when computing log-probs and entropy (the output head runs
    chunk by chunk and is recomputed in backward); bounds that memory to about chunk x vocabulary x 4 bytes."""
    group_by_length: bool = True
    """SFT: sort each window of examples by length before cutting micro-batches, to keep padding low."""
    tensorboard: bool = False
    """Also write metrics as tensorboard events under output_dir/tensorboard."""
    wandb_project: Optional[str] = None
    """Also log to this Weights & Biases project (needs the `wandb` extra)."""


@dataclass
class EvalConfig:
    num_problems: int = 64
    """Held-out problems scored by the validation hook (taken from the start of data.eval)."""
    batch_size: int = 16
    """Prompts generated together during validation."""
    max_new_tokens: int = 512
    """Longest validation response in tokens."""
    temperature: float = 0.0
    """0 = greedy decoding."""
    engine: Optional[str] = None
    """Engine for validation during training: hf (the live policy) or vllm (in RL the rollout engine when it is vllm; otherwise a vLLM engine of its own, built from rollout.vllm_*, asleep between validations). None: rollout.engine in RL, hf in SFT and DPO."""


SAMPLER_STRATEGIES = ("uniform", "curriculum", "prioritized")
DIFFICULTY_SOURCES = ("difficulty", "pass_rate")


@dataclass
class SamplerConfig:
    strategy: str = "uniform"
    """RL prompt sampling: uniform, curriculum (Kimi k1.5: easy problems first) or prioritized (k1.5: weight 1 - success rate)."""
    difficulty_from: str = "pass_rate"
    """Where a problem's difficulty comes from: pass_rate (1 - meta["pass_rate"], as curation measures it) or difficulty (meta["difficulty"]: a number, higher is harder, or easy/medium/hard = 1/2/3)."""
    curriculum_switch_step: int = 0
    """curriculum: steps drawn only from the easy set; from this step on, all problems are drawn."""
    curriculum_easy_fraction: float = 0.5
    """curriculum: share of problems (the least difficult ones) that form the easy set."""
    prior_success: float = 0.5
    """prioritized: success rate assumed for a problem whose meta has no pass_rate."""
    prior_weight: float = 1.0
    """prioritized: pseudo-attempts the initial success rate counts as against observed attempts."""
    min_weight: float = 0.05
    """prioritized: floor on the weight 1 - success rate, so solved problems are still drawn now and then."""


DPO_REFERENCES = ("frozen", "precomputed")
DPO_LOSSES = ("sigmoid",)


@dataclass
class DPOConfig:
    """Direct preference optimisation (stage dpo, mmreason/dpo/loop.py), as Kimi k1.5's long2short uses it: each
    record of data.train is a pair, `solution` the chosen reply and meta["rejected"] the rejected one (written by
    data_prep/build_long2short.py); train.batch_size counts pairs."""

    beta: float = 0.1
    """DPO's beta (Rafailov et al. 2023): scale of the implicit reward beta * log(pi / pi_ref); larger keeps the
    policy closer to the reference."""
    reference: str = "frozen"
    """Reference policy: frozen (a frozen copy of the starting checkpoint scores every micro-batch) or precomputed
    (the starting checkpoint scores every pair once before training, then is freed: no second model in memory)."""
    loss_type: str = "sigmoid"
    """Loss on the reward margin m: sigmoid (-log sigmoid(m), the DPO paper's)."""
    sft_weight: float = 0.0
    """Weight of the chosen reply's mean token negative log-likelihood added to the loss (RPO; 0 = plain DPO)."""


@dataclass
class Config:
    stage: str = MISSING
    """Training stage run by mmreason/train.py: sft (warmup), rl or dpo (long2short preference pairs)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    dpo: DPOConfig = field(default_factory=DPOConfig)


T = TypeVar("T")


def load_config(path: str | Path | None, overrides: Sequence[str] = (), schema: type[T] = Config) -> T:
    """YAML file + `a.b=c` overrides -> a validated, typed config object of `schema`.

    Raises ConfigError naming the offending key (and the valid keys of its
    section) for unknown keys, the key, value and expected type for wrong
    types, and the rule broken for cross-field problems.
    """
    base = OmegaConf.structured(schema)
    layers = []
    if path is not None:
        from mmreason.resources import resolve_config_path  # configs/... also finds the copy shipped in the package

        path = resolve_config_path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            layers.append(OmegaConf.load(path))
        except Exception as err:
            raise ConfigError(f"config file {str(path)!r}: cannot parse YAML ({err})") from err
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value (e.g. train.max_steps=20)")
    if overrides:
        try:
            layers.append(OmegaConf.from_dotlist(list(overrides)))
        except OmegaConfBaseException as err:
            raise ConfigError(f"overrides {list(overrides)}: {err}") from err
    merged = base
    for layer in layers:
        try:
            merged = OmegaConf.merge(merged, layer)
        except (ConfigKeyError, ValidationError, OmegaConfBaseException) as err:
            raise ConfigError(_explain(err, schema, path)) from err
    missing = sorted(OmegaConf.missing_keys(merged))
    if missing:
        raise ConfigError(f"config {str(path)!r}: required keys not set: {missing}")
    cfg = OmegaConf.to_object(merged)
    validator = _VALIDATORS.get(schema)
    if validator is not None:
        validator(cfg)
    return cfg  # type: ignore[return-value]


def _explain(err: OmegaConfBaseException, schema: type, path: Any) -> str:
    key = getattr(err, "full_key", None) or "?"
    where = f"config {str(path)!r}" if path else "config"
    if isinstance(err, ConfigKeyError) or "Key '" in str(err) and "not in" in str(err):
        section = _section_type(schema, key.rsplit(".", 1)[0] if "." in key else "")
        valid = [f.name for f in dataclasses.fields(section)] if section else []
        moved = f" (it moved to {MOVED_KEYS[key]!r})" if key in MOVED_KEYS else ""
        moved = f" (removed: {REMOVED_KEYS[key]})" if key in REMOVED_KEYS else moved
        return f"{where}: unknown key {key!r}{moved}; valid keys here: {valid}"
    if isinstance(err, ValidationError):
        value = getattr(err, "value", None) if hasattr(err, "value") else None
        expected = _field_type(schema, key)
        msg = str(err).splitlines()[0]
        return f"{where}: key {key!r}: value {value!r} is not a valid {expected} ({msg})"
    return f"{where}: key {key!r}: {str(err).splitlines()[0]}"


def _section_type(schema: type, dotted: str) -> type | None:
    current: type | None = schema
    for part in [p for p in dotted.split(".") if p]:
        if current is None or not dataclasses.is_dataclass(current):
            return None
        match = {f.name: f for f in dataclasses.fields(current)}.get(part)
        if match is None:
            return None
        current = _field_class(current, match)
    return current if current is not None and dataclasses.is_dataclass(current) else None


def _field_class(owner: type, f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
        if dataclasses.is_dataclass(value):
            return type(value)
    return None


def _field_type(schema: type, key: str) -> str:
    section_path, _, name = key.rpartition(".")
    section = _section_type(schema, section_path) if section_path else schema
    if section is None:
        return "value"
    for f in dataclasses.fields(section):
        if f.name == name:
            return str(f.type)
    return "value"


@dataclass(frozen=True)
class Range:
    """Allowed values of a numeric key: low/high bounds (None = unbounded), each closed unless *_open."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{'(' if self.low_open or self.low is None else '['}{low}, {high}{')' if self.high_open or self.high is None else ']'}"


AT_LEAST_0, AT_LEAST_1, POSITIVE = Range(0), Range(1), Range(0, low_open=True)
FRACTION, FRACTION_ABOVE_0, ANY = Range(0, 1), Range(0, 1, low_open=True), Range()
NUMERIC_RANGES: dict[str, Range] = {
    "model.min_pixels": AT_LEAST_1,
    "model.max_pixels": AT_LEAST_1,
    "model.lora_rank": AT_LEAST_1,
    "model.lora_alpha": POSITIVE,
    "model.lora_dropout": Range(0, 1, high_open=True),
    "model.image_feature_cache_mib": AT_LEAST_0,  # 0 = off
    "data.shuffle_buffer": AT_LEAST_0,
    "data.max_image_pixels": AT_LEAST_1,
    "data.max_length": AT_LEAST_1,
    "data.image_cache_size": AT_LEAST_0,       # 0 = decode on every draw
    "rollout.group_size": AT_LEAST_1,          # RL needs >= 2 (checked with the stage)
    "rollout.prompts_per_step": AT_LEAST_1,
    "rollout.temperature": AT_LEAST_0,         # RL needs > 0 (checked with the stage)
    "rollout.top_p": FRACTION_ABOVE_0,
    "rollout.max_new_tokens": AT_LEAST_1,
    "rollout.generation_batch_size": AT_LEAST_1,
    "rollout.repetition_ngram": AT_LEAST_1,
    "rollout.repetition_count": AT_LEAST_0,    # 0 disables detection
    "rollout.vllm_gpu_memory_utilization": FRACTION_ABOVE_0,
    "rollout.vllm_tensor_parallel_size": AT_LEAST_1,
    "rollout.vllm_cpu_kv_cache_gib": AT_LEAST_1,
    "rollout.vllm_max_model_len": AT_LEAST_1,  # and > rollout.max_new_tokens (cross-field)
    "rollout.vllm_max_images_per_prompt": AT_LEAST_1,
    "algo.clip_eps_low": Range(0, 1, high_open=True),
    "algo.clip_eps_high": AT_LEAST_0,
    "algo.beta": AT_LEAST_0,
    "algo.ppo_epochs": AT_LEAST_1,
    "algo.max_sampling_rounds": AT_LEAST_0,
    "algo.length_normalizer": AT_LEAST_1,
    "algo.tau": AT_LEAST_0,                    # the mirror-descent loss needs > 0 (cross-field)
    "algo.reference_refresh_every": AT_LEAST_1,
    "reward.accuracy_weight": AT_LEAST_0,
    "reward.format_weight": AT_LEAST_0,
    "reward.length_penalty_weight": AT_LEAST_0,
    "reward.length_penalty_start_step": AT_LEAST_0,
    "reward.overlong_buffer": AT_LEAST_0,      # and < rollout.max_new_tokens (cross-field)
    "reward.overlong_penalty": AT_LEAST_0,
    "reward.repetition_penalty": Range(None, 0),  # a penalty: added to the reward, so <= 0
    "reward.language_consistency_weight": AT_LEAST_0,
    "reward.function_weight": ANY,             # the user's own term: either sign, finite
    "optim.lr": Range(0, 1, low_open=True),
    "optim.weight_decay": AT_LEAST_0,
    "optim.beta1": Range(0, 1, high_open=True),
    "optim.beta2": Range(0, 1, high_open=True),
    "optim.eps": POSITIVE,
    "optim.warmup_steps": AT_LEAST_0,
    "optim.min_lr_ratio": FRACTION,
    "optim.max_grad_norm": AT_LEAST_0,         # 0 disables clipping
    "optim.vision_lr_scale": POSITIVE,
    "train.max_steps": AT_LEAST_1,
    "train.seed": Range(0, 2**32 - 1),         # numpy's seed range
    "train.batch_size": AT_LEAST_1,
    "train.micro_batch_size": AT_LEAST_1,
    "train.logit_chunk_tokens": AT_LEAST_1,
    "train.micro_batch_tokens": AT_LEAST_0,
    "rollout.partial_segment_tokens": AT_LEAST_1,
    "rollout.partial_max_segments": AT_LEAST_1,
    "rollout.partial_buffer_share": FRACTION,
    "train.save_every": AT_LEAST_0,            # 0 saves only at the end
    "train.keep_checkpoints": AT_LEAST_1,
    "train.eval_every": AT_LEAST_0,            # 0 validates only at the end
    "train.log_every": AT_LEAST_1,
    "train.log_samples_every": AT_LEAST_0,     # 0 = never
    "train.keep_hf_every": AT_LEAST_0,         # 0 = only hf/latest
    "train.zero_stage": Range(0, 3),
    "eval.num_problems": AT_LEAST_1,
    "eval.batch_size": AT_LEAST_1,
    "eval.max_new_tokens": AT_LEAST_1,
    "eval.temperature": AT_LEAST_0,            # 0 = greedy
    "sampler.curriculum_switch_step": AT_LEAST_0,
    "sampler.curriculum_easy_fraction": FRACTION_ABOVE_0,
    "sampler.prior_success": FRACTION,
    "sampler.prior_weight": POSITIVE,
    "sampler.min_weight": FRACTION_ABOVE_0,    # every problem keeps some chance
    "dpo.beta": POSITIVE,
    "dpo.sft_weight": AT_LEAST_0,
}
"""The allowed range of every numeric key of `Config` (None, where a key allows it, is always accepted);
floats must also be finite. tests/test_config_ranges.py checks that every numeric field has an entry."""


def check_ranges(cfg: Any, ranges: dict[str, Range] = NUMERIC_RANGES) -> None:
    """Raise ConfigError naming the first key whose value is outside its range (or NaN / infinite)."""
    for key, allowed in ranges.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"config key {key!r}: {value} is not a finite number; allowed range {allowed}")
        if value not in allowed:
            raise ConfigError(f"config key {key!r}: {value} is outside the allowed range {allowed}")


def validate(cfg: Config) -> Config:
    """Cross-field rules for the training configs; raises ConfigError naming the key."""

    def fail(key: str, what: str) -> None:
        raise ConfigError(f"config key {key!r}: {what}")

    if cfg.stage not in STAGES:
        fail("stage", f"{cfg.stage!r} is not a stage; expected one of {list(STAGES)}")
    if cfg.algo.name not in ALGORITHMS:
        fail("algo.name", f"{cfg.algo.name!r} is not an algorithm; expected one of {list(ALGORITHMS)}")
    legacy_resume = {"true": "auto", "false": "never"}.get(str(cfg.train.resume).lower())
    if legacy_resume is not None:  # configs from before train.resume took a mode
        logging.getLogger(__name__).warning("train.resume=%s is read as train.resume=%s", cfg.train.resume, legacy_resume)
        cfg.train.resume = legacy_resume
    if cfg.train.resume not in RESUME_MODES:
        fail("train.resume", f"{cfg.train.resume!r}; expected one of {list(RESUME_MODES)} (or true / false: auto / never)")
    check_ranges(cfg)
    _resolve_presets(cfg, fail)
    _check_reward(cfg.reward, fail)
    for source in cfg.reward.answer_sources:
        if source not in ANSWER_SOURCES:
            fail("reward.answer_sources", f"{source!r} is unknown; expected some of {list(ANSWER_SOURCES)}")
    from mmreason.data.shards import SPLITS

    if cfg.data.split not in SPLITS:
        fail("data.split", f"{cfg.data.split!r} is not a split; expected one of {list(SPLITS)}")
    if cfg.model.dtype not in ("auto", "float32", "bfloat16", "float16"):
        fail("model.dtype", f"{cfg.model.dtype!r}; expected auto, float32, bfloat16 or float16")
    if cfg.model.attn_implementation not in ("auto", "sdpa", "eager", "flash_attention_2"):
        fail("model.attn_implementation", f"{cfg.model.attn_implementation!r}; expected auto, sdpa, eager or flash_attention_2")
    # Ranges of single keys are in NUMERIC_RANGES (checked above); what follows relates keys to each other.
    if cfg.rollout.partial_enabled and cfg.algo.dynamic_sampling:
        fail("rollout.partial_enabled", "partial rollouts and DAPO dynamic sampling (algo.dynamic_sampling) do not combine "
             "yet; set algo.dynamic_sampling=false")
    if cfg.algo.loss == "mirror_descent" and cfg.algo.tau <= 0:
        fail("algo.tau", "the k1.5 mirror-descent surrogate needs tau > 0")
    if cfg.reward.overlong_buffer >= cfg.rollout.max_new_tokens:
        fail("reward.overlong_buffer", f"must be smaller than rollout.max_new_tokens ({cfg.rollout.max_new_tokens})")
    check_engine("rollout.engine", cfg.rollout.engine)
    check_engine("eval.engine", cfg.eval.engine)
    if cfg.rollout.vllm_max_model_len is not None and cfg.rollout.vllm_max_model_len <= cfg.rollout.max_new_tokens:
        fail("rollout.vllm_max_model_len", f"must exceed rollout.max_new_tokens ({cfg.rollout.max_new_tokens}) to leave room for the prompt")
    if cfg.stage == "rl":
        if cfg.rollout.temperature <= 0:
            fail("rollout.temperature", "RL samples a group per prompt: temperature must be > 0")
        if cfg.rollout.group_size < 2:
            fail("rollout.group_size", "group-relative advantages need at least 2 responses per prompt")
    if cfg.sampler.strategy not in SAMPLER_STRATEGIES:
        fail("sampler.strategy", f"{cfg.sampler.strategy!r} is not a strategy; expected one of {list(SAMPLER_STRATEGIES)}")
    if cfg.sampler.difficulty_from not in DIFFICULTY_SOURCES:
        fail("sampler.difficulty_from", f"{cfg.sampler.difficulty_from!r}; expected one of {list(DIFFICULTY_SOURCES)}")
    if cfg.dpo.reference not in DPO_REFERENCES:
        fail("dpo.reference", f"{cfg.dpo.reference!r}; expected one of {list(DPO_REFERENCES)}")
    if cfg.dpo.loss_type not in DPO_LOSSES:
        fail("dpo.loss_type", f"{cfg.dpo.loss_type!r}; expected one of {list(DPO_LOSSES)}")
    if cfg.optim.schedule not in ("cosine", "constant"):
        fail("optim.schedule", f"{cfg.optim.schedule!r}; expected cosine or constant")
    if cfg.train.deepspeed_config is not None:  # configs/deepspeed/... also names the copy shipped in the package
        from mmreason.resources import resolve_config_path

        if not resolve_config_path(cfg.train.deepspeed_config).is_file():
            fail("train.deepspeed_config", f"file {cfg.train.deepspeed_config!r} does not exist")
        cfg.train.deepspeed_config = str(resolve_config_path(cfg.train.deepspeed_config))
    return cfg


def _resolve_presets(cfg: Config, fail: Any) -> None:
    """Fill the keys the `algo.name` preset sets and the user left unset; check every named choice."""
    from mmreason.rl.advantages import ADVANTAGE_ESTIMATORS
    from mmreason.rl.losses import LOSS_AGGREGATIONS, POLICY_LOSSES
    from mmreason.rl.presets import REFERENCE_KINDS, REFERENCE_PLACEMENTS, default_overlong_buffer, resolve_algo

    explicit_agg = cfg.algo.loss_agg is not None
    cfg.algo = resolve_algo(cfg.algo)
    for key, value, valid in (("algo.advantage", cfg.algo.advantage, ADVANTAGE_ESTIMATORS),
                              ("algo.loss", cfg.algo.loss, POLICY_LOSSES),
                              ("algo.reference", cfg.algo.reference, REFERENCE_KINDS),
                              ("algo.reference_placement", cfg.algo.reference_placement, REFERENCE_PLACEMENTS)):
        if value not in valid:
            fail(key, f"{value!r} is unknown; expected one of {sorted(valid)}")
    if cfg.algo.loss == "mirror_descent":
        if explicit_agg:
            fail("algo.loss_agg", "the mirror-descent loss is one square per sequence, averaged over sequences; "
                 "it takes no token aggregation (leave algo.loss_agg unset)")
        if cfg.algo.reference == "none":
            fail("algo.reference", "the mirror-descent loss compares against a reference policy; expected frozen, snapshot or rollout")
    elif cfg.algo.loss_agg not in LOSS_AGGREGATIONS:
        fail("algo.loss_agg", f"{cfg.algo.loss_agg!r} is unknown; expected one of {sorted(LOSS_AGGREGATIONS)}")
    if cfg.algo.beta > 0 and cfg.algo.reference == "none":
        fail("algo.beta", f"{cfg.algo.beta} > 0 adds a KL to the reference policy, but algo.reference is none")
    if cfg.reward.overlong_buffer is None:
        cfg.reward.overlong_buffer = default_overlong_buffer(cfg.algo.name, cfg.rollout.max_new_tokens)


def _check_reward(reward: RewardConfig, fail: Any) -> None:
    """Reward keys that name things: the target language and the user's reward function (imported here, so a
    wrong path fails before any model is loaded)."""
    from mmreason.rewards.custom import RewardFunctionError, load_reward_function
    from mmreason.rewards.language import check_language

    if reward.language_consistency_weight:
        try:
            check_language(reward.language)
        except ValueError as err:
            fail("reward.language", str(err))
    if reward.function:
        try:
            load_reward_function(reward.function)
        except RewardFunctionError as err:
            fail("reward.function", str(err))


def validate_for_world(cfg: Config, world_size: int) -> None:
    """Batch-size rules that depend on the number of ranks (checked before any work)."""

    def fail(key: str, what: str) -> None:
        raise ConfigError(f"config key {key!r}: {what}")

    micro = cfg.train.micro_batch_size
    if cfg.stage in ("sft", "dpo"):  # dpo: train.batch_size and micro_batch_size count pairs
        if cfg.train.batch_size % world_size:
            fail("train.batch_size", f"{cfg.train.batch_size} is not divisible by the {world_size} ranks")
        per_rank = cfg.train.batch_size // world_size
        if per_rank % micro:
            fail("train.micro_batch_size", f"{micro} does not divide the {per_rank} sequences per rank (train.batch_size / ranks)")
    else:
        if cfg.rollout.prompts_per_step % world_size:
            fail("rollout.prompts_per_step", f"{cfg.rollout.prompts_per_step} is not divisible by the {world_size} ranks")
        per_rank = cfg.rollout.prompts_per_step // world_size * cfg.rollout.group_size
        if per_rank % micro:
            fail("train.micro_batch_size", f"{micro} does not divide the {per_rank} sequences per rank "
                 "(rollout.prompts_per_step / ranks x rollout.group_size)")


_VALIDATORS: dict[type, Any] = {Config: validate}


def register_validator(schema: type, fn: Any) -> None:
    """Let other stage configs (curation, warmup data) plug their own cross-field checks in."""
    _VALIDATORS[schema] = fn


def to_yaml(cfg: Any) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def save_config(cfg: Any, run_dir: str | Path) -> Path:
    """Write the resolved config to run_dir/config.yaml."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    out = run_dir / "config.yaml"
    out.write_text(to_yaml(cfg))
    return out


def parse_cli(argv: Sequence[str]) -> tuple[Optional[str], list[str]]:
    """`--config PATH key=value ...` -> (path, overrides). Used by every entry point."""
    path = None
    overrides: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--config":
            path = next(it, None)
            if path is None:
                raise ConfigError("--config needs a path")
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        elif arg.startswith("--local_rank") or arg.startswith("--local-rank"):
            if "=" not in arg:
                next(it, None)  # the deepspeed launcher passes --local_rank N
        else:
            overrides.append(arg)
    return path, overrides
