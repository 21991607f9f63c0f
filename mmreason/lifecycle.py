"""How a training rank lives and dies with its launcher.

`deepspeed` starts a runner, the runner starts `deepspeed.launcher.launch`, and that starts the ranks. On one
node the runner forwards no signal: `kill RUNNER`, `timeout ... deepspeed ...` or a scheduler that signals
the main process ends the runner and leaves the launch process and the ranks training, writing checkpoints
into a directory the next run will share. So every rank ties itself to the processes that launched it:

- the kernel sends it SIGTERM when its parent (the launch process) dies (Linux `PR_SET_PDEATHSIG`);
- a daemon thread watches the rest of the launcher chain (the runner, torchrun's agent) and sends the rank
  SIGTERM when one of them is gone (checked by pid and start time, so a reused pid does not count);
- SIGTERM and SIGINT stop the rank: the handler logs, raises `RunStopped` (a SystemExit, so `finally`
  blocks run and the exit status is 128 + signal) and arms a hard exit after `GRACE_SECONDS`, for a rank
  stuck in a collective whose peer is gone.

A checkpoint interrupted by the stop is never the one resumed: `checkpoints/latest` is written only after
every file of a checkpoint (see engine.save_checkpoint), and the partial directory is removed at the next
start. Nothing here runs without a launcher-started rank (plain `python mmreason/train.py` keeps Python's
own Ctrl-C behaviour apart from the clean exit status).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

GRACE_SECONDS = 5.0
"""After a stop signal, a rank that has not exited by then is ended with os._exit."""
POLL_SECONDS = 0.5
"""How often the watcher thread checks that the launcher chain is alive."""
LAUNCHER_MARKERS = ("deepspeed.launcher", "bin/deepspeed", "torch.distributed.run", "torchrun",
                    "torch.distributed.launch")
"""Command-line fragments of the processes that launch ranks (their chain is what a rank watches)."""
PR_SET_PDEATHSIG = 1


class RunStopped(SystemExit):
    """Raised in the main thread of a rank that received SIGTERM / SIGINT (exit status 128 + signal)."""


def _proc_stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time in clock ticks) of a live process, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return int(fields[1]), fields[0], int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def launcher_chain(pid: int | None = None) -> list[tuple[int, int]]:
    """(pid, start time) of the launcher processes above `pid` (default: this process), nearest first.

    Walks up the parents while their command line is a launcher's (LAUNCHER_MARKERS); empty without /proc.
    """
    chain: list[tuple[int, int]] = []
    stat = _proc_stat(os.getpid() if pid is None else pid)
    while stat is not None and stat[0] > 1:
        parent = stat[0]
        if not any(marker in _cmdline(parent) for marker in LAUNCHER_MARKERS):
            break
        parent_stat = _proc_stat(parent)
        if parent_stat is None:
            break
        chain.append((parent, parent_stat[2]))
        stat = parent_stat
    return chain


def chain_alive(chain: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The first process of `chain` that is gone (exited, a zombie, or its pid reused), else None."""
    for pid, started in chain:
        stat = _proc_stat(pid)
        if stat is None or stat[1] in ("Z", "X") or stat[2] != started:
            return pid, started
    return None


def _hard_exit_later(code: int, seconds: float) -> None:
    def run() -> None:
        time.sleep(seconds)
        log.error("rank did not stop within %.0f s of the stop signal: exiting now", seconds)
        logging.shutdown()
        os._exit(code)

    threading.Thread(target=run, name="mmreason-hard-exit", daemon=True).start()


_stopping = threading.Event()


def _on_signal(signum: int, frame) -> None:
    code = 128 + signum
    if _stopping.is_set():
        return  # already unwinding; the hard exit is armed
    _stopping.set()
    log.warning("received %s: stopping this rank (the last complete checkpoint is kept; start the same "
                "command again to resume)", signal.Signals(signum).name)
    _hard_exit_later(code, GRACE_SECONDS)
    raise RunStopped(code)


def _watch(chain: list[tuple[int, int]]) -> None:
    while True:
        gone = chain_alive(chain)
        if gone is not None:
            log.error("launcher process %d is gone: stopping this rank", gone[0])
            os.kill(os.getpid(), signal.SIGTERM)
            _hard_exit_later(128 + signal.SIGTERM, GRACE_SECONDS + 1)
            return
        time.sleep(POLL_SECONDS)


def set_parent_death_signal(signum: int = signal.SIGTERM) -> bool:
    """Ask Linux to send `signum` to this process when its parent exits; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def tie_rank_to_launcher() -> list[tuple[int, int]]:
    """Install the stop handlers; under a launcher also the parent-death signal and the chain watcher.

    Call once, first thing in a rank's main thread. Returns the launcher chain being watched.
    """
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if "LOCAL_RANK" not in os.environ:
        return []
    parent = os.getppid()
    set_parent_death_signal(signal.SIGTERM)
    chain = launcher_chain()
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os.kill(os.getpid(), signal.SIGTERM)
    if chain:
        threading.Thread(target=_watch, args=(chain,), name="mmreason-launcher-watch", daemon=True).start()
    return chain


__all__ = ["RunStopped", "launcher_chain", "chain_alive", "set_parent_death_signal", "tie_rank_to_launcher"]
