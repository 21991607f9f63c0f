"""Checkpoints: RNG state loads without unpickling code, a full disk says so and leaves no partial checkpoint,
pruning never removes the newest complete checkpoint (issue 26)."""

from __future__ import annotations

import errno
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from mmreason import engine as engine_module
from mmreason.engine import CheckpointWriteError, load_rng_file, rng_state, save_checkpoint, set_rng_state


def draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_rng_state_round_trips_through_a_weights_only_load(tmp_path):
    torch.save(rng_state(), tmp_path / "rng.pt")
    expected = draws()
    torch.load(tmp_path / "rng.pt", weights_only=True)  # plain tensors and numbers: no code to run
    set_rng_state(load_rng_file(tmp_path / "rng.pt"))
    assert draws() == expected


def test_rng_files_of_older_checkpoints_still_load(tmp_path):
    old = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    torch.save(old, tmp_path / "rng.pt")
    expected = draws()
    set_rng_state(load_rng_file(tmp_path / "rng.pt"))
    assert draws() == expected


class FakeEngine:
    """Writes a DeepSpeed-like checkpoint; `fail` raises midway, after a first file is written."""

    def __init__(self, fail: Exception | None = None):
        self.fail = fail

    def save_checkpoint(self, root: str, tag: str, client_state: dict) -> None:
        (Path(root) / tag / "mp_rank_00_model_states.pt").write_bytes(b"x" * 10)
        if self.fail is not None:
            raise self.fail
        (Path(root) / "latest").write_text(tag)


def test_disk_full_names_the_disk_and_removes_the_partial_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(FakeEngine(), tmp_path, 2, {}, keep=2)
    # torch.save reports ENOSPC as a bare iostream error: the free space decides
    error = RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos; basic_ios::clear: iostream error")
    monkeypatch.setattr(engine_module.shutil, "disk_usage", lambda path: type("U", (), {"free": 1024})())
    with pytest.raises(CheckpointWriteError) as err:
        save_checkpoint(FakeEngine(fail=error), tmp_path, 4, {}, keep=2)
    message = str(err.value)
    assert "is full" in message and "step-4 was removed" in message and "(step-2) is intact" in message
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", "step-2"]


def test_an_enospc_anywhere_in_the_chain_is_a_full_disk(tmp_path):
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("PytorchStreamWriter failed writing file") from inner
    except RuntimeError as err:
        assert engine_module.disk_full(err, tmp_path)[0]
    assert not engine_module.disk_full(RuntimeError("other"), tmp_path)[0]


def test_pruning_keeps_the_new_checkpoint_even_beside_a_newer_partial_one(tmp_path):
    (tmp_path / "checkpoints" / "step-8").mkdir(parents=True)  # left by a run killed mid-save
    for step in (2, 4, 6):
        save_checkpoint(FakeEngine(), tmp_path, step, {}, keep=1)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*")) == ["step-6", "step-8"]
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step-6"


class Payload:
    """Unpickling this would run code (here: touch a file)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_deepspeed_checkpoint_files_load_without_running_code(tmp_path):
    import pickle

    marker = tmp_path / "code-ran"
    torch.save({"module": {"w": torch.ones(2)}, "evil": Payload(marker)}, tmp_path / "mp_rank_00_model_states.pt")
    fake = type("E", (), {})()
    fake.checkpoint_engine = type("C", (), {})()
    engine_module.load_without_code(fake)
    with pytest.raises(pickle.UnpicklingError):
        fake.checkpoint_engine.load(str(tmp_path / "mp_rank_00_model_states.pt"))
    assert not marker.exists()
    torch.save({"module": {"w": torch.ones(2)}}, tmp_path / "plain.pt")
    assert torch.equal(fake.checkpoint_engine.load(str(tmp_path / "plain.pt"))["module"]["w"], torch.ones(2))
