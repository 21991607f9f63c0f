#!/usr/bin/env bash
# GPU smoke test: a random-initialised model with Qwen2.5-VL-3B's exact architecture (dimensions written in
# scripts/gpu_smoke.py, nothing downloaded), 3 RL steps (GRPO with a KL to a frozen reference) with bf16,
# flash-attention-2 when installed (else sdpa), ZeRO-3 and gradient checkpointing, 4,096 new tokens per response,
# once with each rollout engine (hf; vllm when installed). Prints peak memory, step time and tokens/s per engine.
#
#   bash scripts/gpu_smoke.sh [--out DIR] [--engines "hf vllm"] [--small]
#
# THIS SCRIPT HAS NEVER RUN ON A GPU. It was written on a CPU-only machine; `--small` (tiny dimensions, 32 new
# tokens, fp32 on CPU) runs in the test suite (tests/e2e/test_gpu_smoke.py), so the script itself is known to work,
# but the 3B configuration's memory, speed and the vllm path on a GPU are unmeasured. Target: under 8 minutes on
# one 80 GB GPU. The 3B checkpoint is written to DIR/ckpt (about 7.5 GB in bf16); checkpoints and HF exports of the
# RL run are skipped.
set -euo pipefail

OUT=runs/gpu_smoke
ENGINES="hf vllm"
SMALL=0
USAGE='usage: bash scripts/gpu_smoke.sh [--out DIR] [--engines "hf vllm"] [--small]'
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --engines) ENGINES="$2"; shift 2 ;;
    --small) SMALL=1; shift ;;
    *) echo "$USAGE" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
DS="$(dirname "$(command -v "$PY")")/deepspeed"
[[ -x "$DS" ]] || DS=deepspeed
mkdir -p "$OUT"
START=$(date +%s)

if [[ $SMALL == 1 ]]; then
  BUILD_FLAGS=(--small)
  SIZE=(rollout.max_new_tokens=32 model.dtype=float32 rollout.prompts_per_step=2 rollout.group_size=2
        train.micro_batch_size=2 rollout.vllm_max_model_len=2048)
else
  BUILD_FLAGS=()
  SIZE=(rollout.max_new_tokens=4096 model.dtype=bfloat16 rollout.prompts_per_step=2 rollout.group_size=4
        train.micro_batch_size=1 rollout.vllm_max_model_len=8192)
fi

echo "=== [$(( $(date +%s) - START ))s] build the checkpoint"
[[ -f "$OUT/ckpt/config.json" ]] || $PY scripts/gpu_smoke.py build --out "$OUT/ckpt" "${BUILD_FLAGS[@]}"
echo "=== [$(( $(date +%s) - START ))s] prompts"
[[ -d "$OUT/data" ]] || $PY data_prep/synth_visual_math.py --out "$OUT/data" --num 32 --seed 0 --levels 1 \
    --families shape_count,geometry,bar_chart --shard-size 32 > /dev/null

for ENGINE in $ENGINES; do
  if [[ $ENGINE == vllm ]] && ! $PY -c "import vllm" 2> /dev/null; then
    echo "=== vllm: skipped (not installed in this environment: pip install -e '.[vllm]')"
    continue
  fi
  echo "=== [$(( $(date +%s) - START ))s] 3 RL steps with rollout.engine=$ENGINE"
  rm -rf "$OUT/run-$ENGINE"
  PORT=$($PY -c "from mmreason.ports import free_port; print(free_port())")
  $DS --num_gpus 1 --master_port "$PORT" scripts/gpu_smoke.py run --label "$ENGINE" -- \
      --config configs/quickstart/rl_vision.yaml model.path="$OUT/ckpt" data.train="$OUT/data" data.eval=null \
      train.output_dir="$OUT/run-$ENGINE" rollout.engine="$ENGINE" train.max_steps=3 train.zero_stage=3 \
      model.attn_implementation=auto model.gradient_checkpointing=true model.freeze_vision=true \
      algo.dynamic_sampling=false algo.beta=0.04 rollout.repetition_count=0 rollout.generation_batch_size=8 \
      "${SIZE[@]}" 2>&1 | tee "$OUT/run-$ENGINE.log" | grep -E "^\[$ENGINE\]|^SMOKE|Error|error:" || true
  grep -q "^SMOKE" "$OUT/run-$ENGINE.log" || { echo "rollout.engine=$ENGINE failed: see $OUT/run-$ENGINE.log" >&2; exit 1; }
done
echo "=== gpu smoke finished in $(( $(date +%s) - START ))s"
