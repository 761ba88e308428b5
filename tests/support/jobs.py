"""Jobs the tests dispatch. Each execution is recorded by the job itself, in files under
``$ICTQ_TEST_OUT`` (one line per execution, appended atomically), never read from logs."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import ictq


def _append(name: str, line: str) -> None:
    path = Path(os.environ["ICTQ_TEST_OUT"]) / name
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


@ictq.job("test.record")
def record(n: int) -> None:
    _append("record", str(n))


@ictq.job("test.slow", timeout=0)
def slow(n: int, seconds: float) -> None:
    _append("started", str(n))
    time.sleep(seconds)
    _append("record", str(n))


@ictq.job("test.hang_once", tries=3, timeout=0)
def hang_once(n: int) -> None:
    """Its first attempt hangs (until its worker is killed); a later one finishes at once."""
    context = ictq.current_job()
    assert context is not None
    _append("started", str(n))
    if context.attempt == 1:
        time.sleep(600)
    _append("record", str(n))


@ictq.job("test.flaky", tries=3, backoff=[2, 5])
def flaky(n: int, failures: int) -> None:
    """Raises on its first ``failures`` attempts."""
    context = ictq.current_job()
    assert context is not None
    _append("attempts", f"{n}:{context.attempt}")
    if context.attempt <= failures:
        raise RuntimeError(f"flaky failure {context.attempt} of job {n}")
    _append("record", str(n))


@ictq.job("test.boom", tries=1)
def boom(message: str) -> None:
    raise ValueError(message)


@ictq.job("test.sleepy", timeout=1, tries=2)
def sleepy(n: int, seconds: float) -> None:
    _append("started", str(n))
    time.sleep(seconds)
    _append("record", str(n))


@ictq.job("test.stubborn", timeout=1, tries=1)
def stubborn(n: int) -> None:
    """Swallows the timeout and keeps going: only the hard deadline stops it."""
    _append("started", str(n))
    end = time.monotonic() + 60
    while time.monotonic() < end:
        with contextlib.suppress(BaseException):  # swallowing the timeout is the point of this job
            time.sleep(0.1)


_hoard: list[bytes] = []


@ictq.job("test.hog")
def hog(mb: int) -> None:
    _hoard.append(b"x" * (mb * 1024 * 1024))
    _append("record", f"hog{mb}")


@ictq.job("test.exit")
def exit_process(code: int) -> None:
    raise SystemExit(code)


@ictq.job("test.release", tries=0)
def release(n: int, times: int) -> None:
    context = ictq.current_job()
    assert context is not None
    if context.attempt <= times:
        raise ictq.Release(delay=0, reason=f"not yet ({context.attempt})")
    _append("record", str(n))


# -- jobs for the fault tests (tests/chaos) ---------------------------------------------------


@ictq.job("test.mark", tries=0)
def mark(n: int, seconds: float = 0.0) -> None:
    """Records ``n:pid``: which process ran it (a duplicate must come from a killed worker)."""
    if seconds:
        time.sleep(seconds)
    _append("marks", f"{n}:{os.getpid()}")


@ictq.job("test.mark_once", tries=1)
def mark_once(n: int, seconds: float = 0.0) -> None:
    """``test.mark`` with Laravel's default of one try, marked when done."""
    mark(n=n, seconds=seconds)


@ictq.job("test.hard_exit", tries=1)
def hard_exit(code: int) -> None:
    """Ends the worker process itself, mid-job, as a crashing C extension or os._exit would."""
    _append("started", f"hard_exit:{os.getpid()}")
    os._exit(code)


@ictq.job("test.leaky", tries=1)
def leaky(key: str) -> None:
    """Fails with a configured secret in its message (the worker must mask it)."""
    context = ictq.current_job()
    assert context is not None
    secret = context.settings.get(key)
    raise RuntimeError(f"login to the partner API failed with {key}={secret}")


class _Undeserialisable:
    """A handler whose signature cannot be read: the worker fails while decoding its arguments."""

    __name__ = __qualname__ = "undeserialisable"

    @property
    def __signature__(self) -> object:
        raise RuntimeError("cannot deserialise the arguments of this job")

    def __call__(self, **data: object) -> None:
        _append("record", "undeserialisable-ran")


ictq.job("test.undeserialisable", tries=1)(_Undeserialisable())


@ictq.job("test.killer")
def killer(n: int, kill_at: int) -> None:
    """Job ``kill_at`` kills its own worker (as the OOM killer or a segfault would)."""
    _append("started", str(n))
    if n == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    _append("record", str(n))


# -- mixed fleets (tests/integration/test_mixed_fleet.py) -------------------------------------
def _broken() -> bool:
    return (Path(os.environ["ICTQ_TEST_OUT"]) / "broken").exists()


@ictq.job("test.gate", tries=1)
def gate(**data: object) -> None:
    """Fails while ``out/broken`` exists; else records ``gate <tag> <type of meta>`` (what a
    handler receives after PHP re-encoded the payload)."""
    if _broken():
        raise RuntimeError("broken")
    _append("gate", f"{data.get('tag', '-')}:{type(data.get('meta')).__name__}")


@ictq.job("test.deadline", tries=1, retry_until=2)
def deadline(tag: str) -> None:
    """``retryUntil`` two seconds after dispatch; fails while ``out/broken`` exists."""
    if _broken():
        raise RuntimeError("broken")
    _append("deadline", tag)


@ictq.job("test.doomed", tries=1)
def doomed(n: int, kill_at: int) -> None:
    """Fails (one try); job ``kill_at`` kills its own worker instead, while the failures of the
    jobs before it in the batch wait to be written."""
    _append("started", str(n))
    if n == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    raise RuntimeError(f"doomed job {n}")
