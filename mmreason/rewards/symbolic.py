"""The sympy / math_verify part of verification, run under a hard time limit in a helper process.

Everything here that can be slow (math_verify's LaTeX parser, sympy evaluation,
math_verify's equivalence check) is an *operation* (`OPS`): a pure function of
strings and numbers returning a bool, a number or None. `call(op, *args)` runs
one in a helper process and waits at most until the current deadline
(`time_limit(seconds)`, set per answer by `verify.judge_answer`); when it
expires the helper is killed (a fresh one is started in the background) and
`VerificationTimeout` is raised, which the verifier turns into reason
``timeout``.

Why a process and not a signal or a thread: `signal.alarm` (what math_verify's
own `timeout_seconds` / `parsing_timeout` use) only works in the main thread,
so math_verify raises ValueError in DataLoader worker threads and thread pools,
and a signal cannot interrupt a long computation inside a C extension (gmpy
arithmetic on a 10-million-digit integer) anyway. A thread cannot be killed at
all. A child process can always be killed, from any thread, any DataLoader
worker process and any DeepSpeed rank. The helper is started with
`subprocess` running this file by path, so it imports only sympy and
math_verify (not torch, not the caller's CUDA state: nothing is forked), and
a daemonic DataLoader worker may start it (multiprocessing would refuse).

Cost: one helper per process (created on first use, ~0.5 s to import), one
pipe round trip per operation; results are cached in the caller, so the G
identical answers of a group cost one round trip. Answers that need no sympy
(plain numbers, text, choices) never reach the helper. Before anything is
evaluated, expressions are still screened by `is_tame` (power towers, huge
factorials, sums and integrals are refused outright), so the time limit is
the last line of defence, not the first.

With `time_limit(None)` operations run in the calling process without a limit
(inside the helper itself, and for callers that accept the risk).
"""

from __future__ import annotations

import atexit
import functools
import math
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from fractions import Fraction
from typing import Any, Callable, Iterator

import sympy
from math_verify import parse as mv_parse
from math_verify import verify as mv_verify

MAX_LATEX_CHARS = 200
"""Longer LaTeX is not parsed at all (mirrors verify.MAX_ANSWER_CHARS)."""
MAX_EXPONENT = 10_000
"""Largest exponent an answer may raise a number to."""
MAX_DIGITS = 10_000
"""Largest number of decimal digits a power in an answer may have."""
MAX_FACTORIAL = 1_000
"""Largest n whose factorial an answer may contain."""
DEFAULT_TIME_LIMIT = 1.0
"""Seconds one answer's verification may spend in sympy / math_verify (see `time_limit`)."""
HELPER_CPU_LIMIT = 60
"""CPU seconds one operation may use inside the helper before the kernel kills it (SIGXCPU). The caller kills
the helper long before (at the answer's deadline); this bounds a helper orphaned by a caller killed mid-operation."""
STARTUP_LIMIT = 120.0
"""Seconds the helper process may take to start (import sympy and math_verify) before it is an error."""

Number = Fraction | float


class VerificationTimeout(Exception):
    """The answer's time limit ran out inside a sympy / math_verify operation."""


# ---------------------------------------------------------------- the operations (pure, may be slow)

_SLOW_NODES = (sympy.Sum, sympy.Product, sympy.Integral, sympy.Limit, sympy.Derivative)


def _magnitude(value: sympy.Basic) -> float:
    """|value| as a float, inf when it does not fit (value is already known to be bounded)."""
    try:
        return abs(complex(sympy.N(value, 15)))
    except (TypeError, ValueError, OverflowError):
        return math.inf


def is_tame(expr: Any) -> bool:
    """True when evaluating `expr` is cheap: no power towers, huge powers or factorials, sums or integrals.

    Checks the tree bottom-up, so each exponent is known to be small before its value is computed.
    Binomials are refused when their top argument is huge (``\\binom{10^7}{5 \\cdot 10^6}``).
    """
    if not isinstance(expr, sympy.Basic):
        return True
    for node in sympy.postorder_traversal(expr):
        if isinstance(node, _SLOW_NODES):
            return False
        if isinstance(node, sympy.Pow) and not node.exp.free_symbols:
            exponent = _magnitude(node.exp)
            if exponent > MAX_EXPONENT:
                return False
            if not node.base.free_symbols:
                base = _magnitude(node.base)
                if base > 1 and exponent * math.log10(base) > MAX_DIGITS:
                    return False
        if isinstance(node, (sympy.factorial, sympy.factorial2, sympy.gamma, sympy.binomial)):
            argument = node.args[0]
            if not argument.free_symbols and _magnitude(argument) > MAX_FACTORIAL:
                return False
    return True


def _parse(latex: str) -> tuple[Any, ...]:
    # No signal-based timeout (it fails outside the main thread): the helper process is the time limit.
    if len(latex) > MAX_LATEX_CHARS:
        return ()
    return tuple(mv_parse(f"${latex}$", parsing_timeout=None))


def _number_of(expr: Any) -> Number | None:
    """A finite real number from a sympy expression without symbols, or None."""
    if not isinstance(expr, sympy.Expr) or expr.free_symbols or not is_tame(expr):
        return None
    try:
        value = expr.doit()
        if value.is_Rational:
            return Fraction(int(value.p), int(value.q))
        number = complex(sympy.N(value, 30))
    except (TypeError, ValueError, OverflowError, ZeroDivisionError, AttributeError):
        return None
    if abs(number.imag) > 1e-12 * max(1.0, abs(number.real)) or not math.isfinite(number.real):
        return None
    return number.real


def number(latex: str) -> Number | None:
    """The number a LaTeX expression without symbols evaluates to ("\\sqrt{2}", "2^{10}"), or None."""
    parsed = _parse(latex)
    return _number_of(parsed[0]) if parsed and isinstance(parsed[0], sympy.Basic) else None


def equivalent(gold: str, pred: str) -> bool:
    """math_verify equivalence of two (cleaned) LaTeX answers, after screening both with `is_tame`."""
    gold_parsed, pred_parsed = _parse(gold), _parse(pred)
    if not gold_parsed or not pred_parsed:
        return False
    if not all(is_tame(item) for item in gold_parsed + pred_parsed):
        return False
    return bool(mv_verify(list(gold_parsed), list(pred_parsed), timeout_seconds=None))


def _to_sympy(value: Number) -> sympy.Expr:
    if isinstance(value, Fraction):
        return sympy.Rational(value.numerator, value.denominator)
    return sympy.Float(value)


def numbers_match(gold: Number, pred: Number) -> bool:
    """math_verify's numeric comparison (its relative tolerance) of two numbers."""
    return bool(mv_verify(_to_sympy(gold), _to_sympy(pred), timeout_seconds=None))


def sleep(seconds: float) -> bool:
    """Test operation: a computation that takes `seconds`."""
    time.sleep(seconds)
    return True


OPS: dict[str, Callable[..., Any]] = {
    "number": number, "equivalent": equivalent, "numbers_match": numbers_match, "sleep": sleep,
}


# ---------------------------------------------------------------- the deadline


_state = threading.local()


def current_deadline() -> float | None:
    """time.monotonic() by which the current answer must be done; None: no limit (run in this process)."""
    return getattr(_state, "deadline", None)


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Operations in this block (this thread) share one deadline `seconds` from now; None runs them in-process.

    Nested blocks keep the earlier deadline.
    """
    previous = getattr(_state, "deadline", None)
    previous_set = hasattr(_state, "deadline")
    if seconds is None:
        _state.deadline = None
    else:
        deadline = time.monotonic() + seconds
        _state.deadline = deadline if previous is None or not previous_set else min(previous, deadline)
    try:
        yield
    finally:
        if previous_set:
            _state.deadline = previous
        else:
            del _state.deadline


# ---------------------------------------------------------------- the helper process

_HEADER = struct.Struct("!I")


def _write(stream: Any, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes:
    chunks, remaining = [], size
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise VerificationTimeout()
        chunk = os.read(fd, remaining)
        if not chunk:
            raise EOFError("verification helper exited")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read(fd: int, deadline: float | None) -> Any:
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size, deadline))
    return pickle.loads(_read_exactly(fd, size, deadline))


class _Helper:
    """One helper process owned by one process (a forked child starts its own)."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.process = subprocess.Popen(
            [sys.executable, "-u", os.path.abspath(__file__), "--serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, close_fds=True,
        )
        self.ready = False

    def wait_ready(self) -> None:
        if not self.ready:
            assert self.process.stdout is not None
            hello = _read(self.process.stdout.fileno(), time.monotonic() + STARTUP_LIMIT)
            if hello != "ready":
                raise RuntimeError(f"verification helper sent {hello!r} instead of 'ready'")
            self.ready = True

    def run(self, op: str, args: tuple[Any, ...], deadline: float) -> Any:
        self.wait_ready()  # not counted against the answer: starting up is not the answer's fault
        assert self.process.stdin is not None and self.process.stdout is not None
        _write(self.process.stdin, (op, args))
        status, value = _read(self.process.stdout.fileno(), deadline)
        if status == "error":
            raise RuntimeError(f"verification helper: {op} failed: {value}")
        return value

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


_lock = threading.Lock()
_helper: _Helper | None = None
stats = {"calls": 0, "timeouts": 0, "helper_starts": 0}
"""Counters for this process (tests and benchmarks read them)."""


def _get_helper() -> _Helper:
    global _helper
    if _helper is None or _helper.owner != os.getpid():
        _helper = _Helper()  # a forked child never touches its parent's helper
        stats["helper_starts"] += 1
    return _helper


def _shutdown() -> None:
    global _helper
    if _helper is not None and _helper.owner == os.getpid():
        _helper.kill()
    _helper = None


atexit.register(_shutdown)


def _run_limited(op: str, args: tuple[Any, ...], deadline: float) -> Any:
    global _helper
    with _lock:
        stats["calls"] += 1
        helper = _get_helper()
        try:
            return helper.run(op, args, deadline)
        except VerificationTimeout:
            stats["timeouts"] += 1
            helper.kill()
            _helper = _Helper()  # start the replacement now: it imports while the caller moves on
            stats["helper_starts"] += 1
            raise
        except (EOFError, OSError, pickle.UnpicklingError):
            helper.kill()  # crashed (out of memory, ...): the answer fails, the next one gets a new helper
            _helper = None
            raise VerificationTimeout() from None


@functools.lru_cache(maxsize=65536)
def _in_process(op: str, args: tuple[Any, ...]) -> Any:
    return OPS[op](*args)


_CACHE_SIZE = 65536
_limited_cache: dict[tuple[str, tuple[Any, ...]], tuple[bool, Any]] = {}
"""(op, args) -> (timed_out, value) of operations run in the helper."""


def call(op: str, *args: Any) -> Any:
    """Run operation `op` under the current deadline (in this process when there is none).

    Results are cached per process. Raises VerificationTimeout when the deadline passes first; a timeout
    is cached too (the same answer would time out again) when the operation had at least half of
    DEFAULT_TIME_LIMIT to itself.
    """
    deadline = current_deadline()
    if deadline is None:
        return _in_process(op, args)
    key = (op, args)
    if key in _limited_cache:
        timed_out, value = _limited_cache[key]
        if timed_out:
            raise VerificationTimeout()
        return value
    allotted = deadline - time.monotonic()
    if allotted <= 0:
        raise VerificationTimeout()
    if len(_limited_cache) >= _CACHE_SIZE:
        _limited_cache.clear()
    try:
        value = _run_limited(op, args, deadline)
    except VerificationTimeout:
        if allotted >= DEFAULT_TIME_LIMIT / 2:
            _limited_cache[key] = (True, None)
        raise
    _limited_cache[key] = (False, value)
    return value


def clear_cache() -> None:
    """Forget cached results (tests that count helper calls start from here)."""
    _in_process.cache_clear()
    _limited_cache.clear()


# ---------------------------------------------------------------- helper main loop


def serve() -> None:
    """The helper: read (op, args) requests on stdin, answer (status, value) on stdout, until EOF."""
    import logging
    import resource

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # "timeout is disabled": this process is the timeout
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints must not corrupt the protocol
    _write(stdout, "ready")
    stdin_fd = stdin.fileno()
    while True:
        try:
            op, args = _read(stdin_fd, None)
        except EOFError:
            return
        used = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(used.ru_utime + used.ru_stime) + HELPER_CPU_LIMIT
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))
        try:
            _write(stdout, ("ok", OPS[op](*args)))
        except Exception as err:  # reported to the caller, which raises it
            _write(stdout, ("error", f"{type(err).__name__}: {err}"))


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    serve()
