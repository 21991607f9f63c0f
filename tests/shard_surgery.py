"""Damaging shards on purpose, as a crashed writer or a broken copy would (shared by the data and e2e tests)."""

import tarfile
from pathlib import Path


def sample_keys(members: list[tarfile.TarInfo]) -> list[str]:
    """The shard's sample keys in order (a sample is the run of members sharing the name before the first dot)."""
    keys: list[str] = []
    for member in members:
        key = member.name.split(".", 1)[0]
        if key not in keys:
            keys.append(key)
    return keys


def sample_count(shard: Path) -> int:
    with tarfile.open(shard) as tar:
        return len(sample_keys(tar.getmembers()))


def cut_after_sample(shard: Path, samples_kept: int) -> None:
    """Truncate a shard at the tar block boundary right after its `samples_kept`-th sample."""
    with tarfile.open(shard) as tar:
        members = tar.getmembers()
    keys = sample_keys(members)
    last = [m for m in members if m.name.split(".", 1)[0] == keys[samples_kept - 1]][-1]
    end = last.offset_data + (last.size + tarfile.BLOCKSIZE - 1) // tarfile.BLOCKSIZE * tarfile.BLOCKSIZE
    data = shard.read_bytes()
    shard.write_bytes(data[:end])
