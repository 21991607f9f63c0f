"""Two "nodes" on this machine (two torchrun launchers, node ranks 0 and 1, meeting on 127.0.0.1) run RL steps;
the run then resumes on one rank: DeepSpeed's universal checkpoint re-partitions the ZeRO-2 optimizer state, and
the Adam moments and the sampler position come back as the two ranks saved them."""

import json
import subprocess
import sys

from mmreason.ports import free_port
from mmreason.metrics import read_metrics
from test_train_rl import rl_command


def node_launcher(node_rank: int, port: int) -> tuple[str, ...]:
    """torchrun as on a cluster node: 2 nodes, 1 process each, rendezvous at the master's address."""
    return (sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(node_rank),
            "--nproc_per_node", "1", "--master_addr", "127.0.0.1", "--master_port", str(port))


ARGS = ["algo.dynamic_sampling=false", "train.zero_stage=2", "train.save_every=2", "data.eval=null",
        "reward.length_penalty_weight=0.2", "rollout.max_new_tokens=12", "train.micro_batch_size=8"]


def test_two_nodes_then_resume_on_one_rank(corpus, tiny_checkpoint, tmp_path, repo_root):
    out = tmp_path / "run"
    port = free_port()
    commands = [rl_command(corpus, tiny_checkpoint, out, *ARGS, "train.max_steps=2", launcher=node_launcher(r, port))
                for r in (1, 0)]
    worker = subprocess.Popen(commands[0], cwd=repo_root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    master = subprocess.run(commands[1], cwd=repo_root, capture_output=True, text=True)
    worker_log = worker.communicate(timeout=120)[0]
    assert master.returncode == 0 and worker.returncode == 0, master.stderr[-3000:] + worker_log[-2000:]
    assert [m["step"] for m in read_metrics(out / "metrics.jsonl")] == [1, 2]
    assert read_metrics(out / "metrics.jsonl")[-1]["ranks/weight_max_diff"] == 0.0
    step2 = out / "checkpoints" / "step-2"
    assert sorted(p.name for p in step2.glob("rng_rank*.pt")) == ["rng_rank0.pt", "rng_rank1.pt"]

    # One rank loads what two saved, as the recipe does: moments equal to the two shards, sampler where it was.
    probe = subprocess.run([sys.executable, "tests/e2e/resume_probe.py", str(out)], cwd=repo_root, capture_output=True,
                           text=True)
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(next(line for line in probe.stdout.splitlines() if line.startswith("PROBE "))[6:])
    assert found["step"] == 2 and found["shards"] == 2 and found["adam_step"] == 2.0
    assert found["sampler"]["draws"] == 2 * 4  # 2 steps x rollout.prompts_per_step
    for key in ("exp_avg", "exp_avg_sq"):
        assert found[key]["numel"][0] == found[key]["numel"][1], found[key]
        assert found[key]["max_abs"] > 0 and found[key]["max_diff"] == 0.0, found[key]
    assert (step2 / "universal" / "zero").is_dir()  # converted once, pruned with its checkpoint

    # And the recipe itself continues on one rank.
    resumed = subprocess.run(rl_command(corpus, tiny_checkpoint, out, *ARGS, "train.max_steps=3"), cwd=repo_root,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "saved by 2 ranks, resuming on 1" in resumed.stderr
    assert [m["step"] for m in read_metrics(out / "metrics.jsonl")] == [1, 2, 3]
