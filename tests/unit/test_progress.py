"""The progress file: what a worker was running, readable after it died; and how a reaper
splits a dead worker's held jobs with it."""

from __future__ import annotations

import os
import uuid

import pytest

from ictq import progress
from ictq.db import Reserved
from ictq.heartbeat import split_held


@pytest.fixture()
def worker_id() -> str:
    return f"host:{os.getpid()}:{uuid.uuid4().hex}:boot"


def test_a_position_written_is_read_back_and_forgotten(worker_id: str) -> None:
    writer = progress.Progress(worker_id)
    assert writer.path is not None and progress.read(worker_id) == progress.Position(0, 0, progress.IDLE)
    writer.set(42, 3, progress.RUNNING)
    assert progress.read(worker_id) == progress.Position(42, 3, progress.RUNNING)
    writer.set(42, 3, progress.FINISHED)
    assert progress.read(worker_id) == progress.Position(42, 3, progress.FINISHED)
    writer.close(remove=False)  # as a killed worker leaves it
    assert progress.read(worker_id) == progress.Position(42, 3, progress.FINISHED)
    progress.forget(worker_id)
    assert progress.read(worker_id) is None


def test_the_file_is_private_to_the_user(worker_id: str) -> None:
    writer = progress.Progress(worker_id)
    assert writer.path is not None
    assert writer.path.stat().st_mode & 0o777 == 0o600
    assert writer.path.parent.stat().st_mode & 0o777 == 0o700
    writer.close()
    assert not writer.path.exists()


@pytest.mark.parametrize("damage", [b"", b"\0" * 32, b"x" * 31])
def test_a_torn_or_foreign_file_reads_as_unknown(worker_id: str, damage: bytes) -> None:
    path = progress.path_for(worker_id)
    assert path is not None
    path.write_bytes(damage)
    try:
        assert progress.read(worker_id) is None
    finally:
        path.unlink()


def test_a_flipped_byte_reads_as_unknown(worker_id: str) -> None:
    writer = progress.Progress(worker_id)
    writer.set(7, 1, progress.RUNNING)
    writer.close(remove=False)
    assert writer.path is not None
    data = bytearray(writer.path.read_bytes())
    data[0] ^= 0x01  # the job id no longer matches its check
    writer.path.write_bytes(bytes(data))
    try:
        assert progress.read(worker_id) is None
    finally:
        progress.forget(worker_id)


def test_without_a_worker_id_nothing_is_written() -> None:
    writer = progress.Progress(None)
    writer.set(1, 1, progress.RUNNING)  # a no-op
    assert writer.path is None
    writer.close()


HELD = [Reserved(10, "", "", 1), Reserved(11, "", "", 1), Reserved(12, "", "", 2)]


def test_only_the_running_job_counts_its_attempt() -> None:
    ran, unstarted = split_held(HELD, progress.Position(11, 1, progress.RUNNING))
    assert ran == [HELD[1]] and unstarted == [HELD[0], HELD[2]]


def test_a_finished_job_and_a_stale_position_count_nothing() -> None:
    assert split_held(HELD, progress.Position(11, 1, progress.FINISHED)) == ([], HELD)
    assert split_held(HELD, progress.Position(12, 1, progress.RUNNING)) == ([], HELD)  # attempts differ


def test_without_a_position_every_attempt_counts() -> None:
    assert split_held(HELD, None) == (HELD, [])


def test_the_largest_job_ids_fit(worker_id: str) -> None:
    writer = progress.Progress(worker_id)
    writer.set(2**63 - 1, 2**31, progress.RUNNING)
    assert progress.read(worker_id) == progress.Position(2**63 - 1, 2**31, progress.RUNNING)
    writer.close()
