"""scripts/gpu_smoke.sh --small: the GPU smoke script's whole path (build, prompts, 3 RL steps under ZeRO-3, the
report) on CPU with tiny dimensions, so the script is known to run before anyone has a GPU for it."""

import json
import os
import subprocess
import sys
from pathlib import Path


def test_gpu_smoke_script_runs_small_on_cpu(tmp_path, repo_root):
    env = {**os.environ, "PYTHON": sys.executable, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    result = subprocess.run(["bash", "scripts/gpu_smoke.sh", "--small", "--out", str(tmp_path), "--engines", "hf"],
                            cwd=repo_root, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("SMOKE "))[6:])
    assert summary["label"] == "hf" and summary["steps"] == 3
    assert len(summary["step_time_s"]) == 3 and all(t > 0 for t in summary["step_time_s"])
    assert all(rate > 0 for rate in summary["tokens_per_s"]) and summary["peak_rss_gib"] > 0
    assert summary["response_length_mean"] == [32.0, 32.0, 32.0]  # a random model never stops early
    assert "[hf] step 3:" in result.stdout
    assert "zero_stage: 3" in (tmp_path / "run-hf" / "config.yaml").read_text()
    assert (tmp_path / "ckpt" / "config.json").is_file() and not (tmp_path / "run-hf" / "checkpoints").exists()
