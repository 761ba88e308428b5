"""The crash marker: what a worker was running, readable after it died; and how a reaper
splits a dead worker's held jobs with it."""

from __future__ import annotations

import os
import uuid

import pytest

from ictq.db import Reserved
from ictq.worker import crash_marker
from ictq.worker.housekeeping import split_held


@pytest.fixture()
def worker_id() -> str:
    return f"host:{os.getpid()}:{uuid.uuid4().hex}:boot"


def test_a_position_written_is_read_back_and_forgotten(worker_id: str) -> None:
    writer = crash_marker.CrashMarker(worker_id)
    assert writer.path is not None and crash_marker.read(worker_id) == crash_marker.Position(0, 0, crash_marker.IDLE)
    writer.set(42, 3, crash_marker.RUNNING)
    assert crash_marker.read(worker_id) == crash_marker.Position(42, 3, crash_marker.RUNNING)
    writer.set(42, 3, crash_marker.FINISHED)
    assert crash_marker.read(worker_id) == crash_marker.Position(42, 3, crash_marker.FINISHED)
    writer.close(remove=False)  # as a killed worker leaves it
    assert crash_marker.read(worker_id) == crash_marker.Position(42, 3, crash_marker.FINISHED)
    crash_marker.forget(worker_id)
    assert crash_marker.read(worker_id) is None


def test_the_file_is_private_to_the_user(worker_id: str) -> None:
    writer = crash_marker.CrashMarker(worker_id)
    assert writer.path is not None
    assert writer.path.stat().st_mode & 0o777 == 0o600
    assert writer.path.parent.stat().st_mode & 0o777 == 0o700
    writer.close()
    assert not writer.path.exists()


@pytest.mark.parametrize("damage", [b"", b"\0" * 32, b"x" * 31])
def test_a_torn_or_foreign_file_reads_as_unknown(worker_id: str, damage: bytes) -> None:
    path = crash_marker.path_for(worker_id)
    assert path is not None
    path.write_bytes(damage)
    try:
        assert crash_marker.read(worker_id) is None
    finally:
        path.unlink()


def test_a_flipped_byte_reads_as_unknown(worker_id: str) -> None:
    writer = crash_marker.CrashMarker(worker_id)
    writer.set(7, 1, crash_marker.RUNNING)
    writer.close(remove=False)
    assert writer.path is not None
    data = bytearray(writer.path.read_bytes())
    data[0] ^= 0x01  # the job id no longer matches its check
    writer.path.write_bytes(bytes(data))
    try:
        assert crash_marker.read(worker_id) is None
    finally:
        crash_marker.forget(worker_id)


def test_without_a_worker_id_nothing_is_written() -> None:
    writer = crash_marker.CrashMarker(None)
    writer.set(1, 1, crash_marker.RUNNING)  # a no-op
    assert writer.path is None
    writer.close()


HELD = [Reserved(10, "", "", 1), Reserved(11, "", "", 1), Reserved(12, "", "", 2)]


def test_only_the_running_job_counts_its_attempt() -> None:
    ran, unstarted = split_held(HELD, crash_marker.Position(11, 1, crash_marker.RUNNING))
    assert ran == [HELD[1]] and unstarted == [HELD[0], HELD[2]]


def test_a_finished_job_and_a_stale_position_count_nothing() -> None:
    assert split_held(HELD, crash_marker.Position(11, 1, crash_marker.FINISHED)) == ([], HELD)
    assert split_held(HELD, crash_marker.Position(12, 1, crash_marker.RUNNING)) == ([], HELD)  # attempts differ


def test_without_a_position_every_attempt_counts() -> None:
    assert split_held(HELD, None) == (HELD, [])


def test_the_largest_job_ids_fit(worker_id: str) -> None:
    writer = crash_marker.CrashMarker(worker_id)
    writer.set(2**63 - 1, 2**31, crash_marker.RUNNING)
    assert crash_marker.read(worker_id) == crash_marker.Position(2**63 - 1, 2**31, crash_marker.RUNNING)
    writer.close()


def test_finished_jobs_are_listed_until_acknowledged(worker_id: str) -> None:
    writer = crash_marker.CrashMarker(worker_id)
    assert crash_marker.read_finished(worker_id) == []
    writer.finished(10, 1)
    writer.finished(2**63 - 1, 2**31)
    writer.close(remove=False)  # as a killed worker leaves it
    assert crash_marker.read_finished(worker_id) == [(10, 1), (2**63 - 1, 2**31)]
    writer = crash_marker.CrashMarker(worker_id)  # a new worker with the same id starts afresh
    writer.finished(11, 2)
    writer.acknowledged()
    writer.finished(12, 1)
    assert crash_marker.read_finished(worker_id) == [(12, 1)]
    writer.close()
    assert crash_marker.read_finished(worker_id) == []


def test_a_torn_finished_slot_is_left_out_and_a_torn_count_leaves_all_out(worker_id: str) -> None:
    writer = crash_marker.CrashMarker(worker_id)
    for job_id in (1, 2, 3):
        writer.finished(job_id, 1)
    writer.close(remove=False)
    assert writer.path is not None
    data = bytearray(writer.path.read_bytes())
    data[crash_marker._SLOTS_AT + crash_marker._SLOT_SIZE] ^= 0x01  # the second slot is torn
    writer.path.write_bytes(bytes(data))
    assert crash_marker.read_finished(worker_id) == [(1, 1), (3, 1)]
    data[crash_marker._COUNT_AT] ^= 0x04  # the count no longer matches its check
    writer.path.write_bytes(bytes(data))
    try:
        assert crash_marker.read_finished(worker_id) == []
        assert crash_marker.read(worker_id) == crash_marker.Position(0, 0, crash_marker.IDLE)
    finally:
        crash_marker.forget(worker_id)


def test_finished_jobs_past_the_slots_are_not_recorded(worker_id: str) -> None:
    writer = crash_marker.CrashMarker(worker_id)
    for job_id in range(crash_marker.FINISHED_SLOTS + 5):
        writer.finished(job_id, 1)
    found = crash_marker.read_finished(worker_id)
    assert found == [(job_id, 1) for job_id in range(crash_marker.FINISHED_SLOTS)]
    writer.close()


def test_finished_jobs_are_neither_ran_nor_unstarted() -> None:
    position = crash_marker.Position(11, 1, crash_marker.RUNNING)
    assert split_held(HELD, position, {(11, 1), (10, 1)}) == ([], [HELD[2]])
    assert split_held(HELD, None, {(10, 1)}) == (HELD[1:], [])
    assert split_held(HELD, position, {(12, 1)}) == ([HELD[1]], [HELD[0], HELD[2]])  # attempts differ: not that one
