"""A free TCP port, for a process group or a launcher that must not collide with other runs on 29500.

Its own module because both the torch-free launcher and `mmreason.distributed` need it (and the launcher
imports the evaluator, which imports `mmreason.distributed`).
"""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it), for a process group or launcher that must not
    collide with other runs on the default 29500."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
