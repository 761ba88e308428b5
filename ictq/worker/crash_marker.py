"""The crash marker: which claimed job a worker is running, kept where it outlives the
worker (a tiny memory-mapped file on this machine), so the worker that reaps it after a crash
knows which job killed it.

A batch claim reserves several jobs, and each claim counts an attempt for all of them; the
worker then runs them one by one. When a worker is killed (``kill -9``, the OOM killer), the
worker that reaps it must tell the one job that was running (its attempt counts, so a job
that kills its worker still runs out of tries, as in Laravel) from the jobs that never started
or had finished (their attempt is taken back, so with ``--tries=1`` they are not failed for an
attempt they never had). Writing that to the database would cost a commit per job; a store into
a shared mapping costs no system call and survives the process. Only a reaper on the same
machine (same kernel boot) can read it; everywhere else, or when the file is missing or torn,
the reaper falls back to counting the attempt of every held job, as an expired lease does.

The marker also carries the jobs that finished and whose acknowledgement (a batched delete,
see :mod:`ictq.worker.claims`) is not committed yet: a list of ``(id, attempts)`` slots and a
count. :meth:`CrashMarker.finished` stores one slot, then the count (two stores into the
mapping, no system call); :meth:`CrashMarker.acknowledged` sets the count back to 0 once the
delete is committed. The reaper deletes those jobs (fenced by id and attempts) instead of
handing them back, so a ``kill -9`` re-runs at most the job that was running. Every slot and the
count carry a check: a slot torn by the kill is left out (that job runs again, as before); a
torn count leaves the whole list out. Past :data:`FINISHED_SLOTS` unacknowledged jobs (a long
outage) the rest are not recorded, and run again.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import stat
import struct
import tempfile
from pathlib import Path
from typing import NamedTuple

_RECORD = struct.Struct("<qqqq")  # job id, attempts, state, check
_pack_into = _RECORD.pack_into
_COUNT = struct.Struct("<qq")  # how many finished slots are in use, check
_SLOT = struct.Struct("<qqq")  # a finished job: id, attempts, check
_pack_count = _COUNT.pack_into
_pack_slot = _SLOT.pack_into
_MAGIC = 0x1C7A_5EED  # small ints keep the per-job arithmetic cheap
_COUNT_MAGIC = 0x5EED_C0DE
_SLOT_MAGIC = 0xF1_A15E
_MASK = (1 << 63) - 1  # the check fits the record's signed 64 bits whatever the job id
IDLE, RUNNING, FINISHED = 0, 1, 2
# Finished jobs not yet acknowledged, at most: a worker deletes them past 2 x its largest batch
# (1024), and the jobs of one more batch may finish while the database is down.
FINISHED_SLOTS = 4096
_COUNT_AT = _RECORD.size
_SLOTS_AT = _COUNT_AT + _COUNT.size
_SLOT_SIZE = _SLOT.size
_SIZE = _SLOTS_AT + FINISHED_SLOTS * _SLOT_SIZE


class Position(NamedTuple):
    job_id: int
    attempts: int
    state: int  # IDLE, RUNNING or FINISHED


def directory() -> Path | None:
    """This user's directory for crash markers (``/dev/shm`` when there is one), or None
    when it cannot be made private (then there is no file and reaping stays conservative)."""
    base = Path("/dev/shm") if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    path = (base or Path(tempfile.gettempdir())) / f"ictq-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError:
        return None
    private = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077
    return path if private else None


def path_for(worker_id: str) -> Path | None:
    folder = directory()
    return None if folder is None else folder / re.sub(r"[^A-Za-z0-9._-]", "_", worker_id)


def _check(job_id: int, attempts: int, state: int) -> int:
    """A torn record (a worker killed in the middle of writing it) does not match this."""
    return ((job_id * 1_000_003 + attempts * 7_919 + state) ^ _MAGIC) & _MASK


def _slot_check(job_id: int, attempts: int) -> int:
    return ((job_id * 1_000_003 + attempts * 7_919) ^ _SLOT_MAGIC) & _MASK


def _count_check(count: int) -> int:
    return ((count * 1_000_003) ^ _COUNT_MAGIC) & _MASK


class CrashMarker:
    """The writing side, owned by one worker. Without a usable file (or without a worker id)
    every call is a no-op."""

    def __init__(self, worker_id: str | None) -> None:
        self.path = None if worker_id is None else path_for(worker_id)
        self._map: mmap.mmap | None = None
        self._finished = 0
        if self.path is None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        except OSError:
            self.path = None
            return
        try:
            os.ftruncate(fd, _SIZE)
            self._map = mmap.mmap(fd, _SIZE)
        except OSError:
            self.path = None
        finally:
            os.close(fd)
        self.set(0, 0, IDLE)
        self.acknowledged()

    def set(self, job_id: int, attempts: int, state: int) -> None:
        """Record the job this worker is at (one store into the mapping; twice per job, so
        :func:`_check` is written out here)."""
        if self._map is not None:
            check = ((job_id * 1_000_003 + attempts * 7_919 + state) ^ _MAGIC) & _MASK
            _pack_into(self._map, 0, job_id, attempts, state, check)

    def finished(self, job_id: int, attempts: int) -> None:
        """``(job_id, attempts)`` finished; its acknowledgement is not committed yet. The slot
        is written before the count that makes it count. (Once per job: written out here.)"""
        count = self._finished
        if self._map is not None and count < FINISHED_SLOTS:
            _pack_slot(self._map, _SLOTS_AT + count * _SLOT_SIZE, job_id, attempts,
                       ((job_id * 1_000_003 + attempts * 7_919) ^ _SLOT_MAGIC) & _MASK)
            count += 1
            _pack_count(self._map, _COUNT_AT, count, ((count * 1_000_003) ^ _COUNT_MAGIC) & _MASK)
            self._finished = count

    def acknowledged(self) -> None:
        """Every finished job recorded so far is deleted (committed): forget them."""
        self._finished = 0
        if self._map is not None:
            _pack_count(self._map, _COUNT_AT, 0, _count_check(0))

    def close(self, remove: bool = True) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if remove and self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()


def read(worker_id: str) -> Position | None:
    """Where a (dead) worker of this machine was; None when unknown or unreadable."""
    path = path_for(worker_id)
    if path is None:
        return None
    data = _read(path)
    if data is None or len(data) < _RECORD.size:
        return None
    job_id, attempts, state, check = _RECORD.unpack_from(data)
    if check != _check(job_id, attempts, state) or state not in (IDLE, RUNNING, FINISHED):
        return None  # torn or foreign
    return Position(job_id, attempts, state)


def read_finished(worker_id: str) -> list[tuple[int, int]]:
    """The ``(id, attempts)`` of the jobs a (dead) worker of this machine had finished and not
    yet acknowledged; empty when unknown. A torn slot is left out."""
    path = path_for(worker_id)
    data = None if path is None else _read(path)
    if data is None or len(data) != _SIZE:
        return []
    count, check = _COUNT.unpack_from(data, _COUNT_AT)
    if check != _count_check(count) or not 0 <= count <= FINISHED_SLOTS:
        return []  # torn or foreign
    slots = (_SLOT.unpack_from(data, _SLOTS_AT + index * _SLOT.size) for index in range(count))
    return [(job_id, attempts) for job_id, attempts, check in slots if check == _slot_check(job_id, attempts)]


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def forget(worker_id: str) -> None:
    """Remove a reaped worker's marker."""
    path = path_for(worker_id)
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()
