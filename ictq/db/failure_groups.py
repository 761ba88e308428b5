"""ictq's side tables of ``ictq failed --group`` and ``ictq metrics``: the failure signature of
every row of failed_jobs, so that grouping a million failed jobs is an aggregate in the database,
not a million signatures computed at each read.

``ictq_<failed_jobs>_groups`` holds one row per group (its id, job name and signature);
``ictq_<failed_jobs>_members`` one row per failed job (its id, group, queue and failure time).
They are a cache of failed_jobs, never the truth: PHP workers, ``php artisan queue:forget`` and
``queue:flush`` insert and delete failed rows without telling ictq. :mod:`ictq.triage` reconciles
them before each read (:meth:`FailureGroupsRepository.fingerprints` says whether anything changed;
:meth:`~FailureGroupsRepository.unsigned` and :meth:`~FailureGroupsRepository.orphans` say what).
The signatures themselves are computed above this layer (:func:`ictq.triage.signature`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ictq.db.base import Storage, fitted
from ictq.db.failed_jobs import ALL_QUEUES, FailedJob, failed_rows

QUEUE_CHARS = 255  # the members' queue column: longer names are cut (see :func:`fitted`)


@dataclass(frozen=True)
class Fingerprint:
    """What a table of failed ids sums to: rows, highest id, sum of ids. Two equal fingerprints
    of failed_jobs and of the members mean (short of a contrived coincidence) the same ids."""

    rows: int
    highest: int
    total: int


@dataclass(frozen=True)
class Signed:
    """A failed job with its group: what :meth:`FailureGroupsRepository.put` stores."""

    failed_id: int
    group_id: str
    job: str
    signature: str
    queue: str
    failed_at: str


@dataclass(frozen=True)
class GroupText:
    group_id: str
    job: str
    signature: str


@dataclass(frozen=True)
class GroupCount:
    """The members of one group on one queue."""

    group_id: str
    queue: str
    count: int
    first_seen: str
    last_seen: str
    example_id: int


def member_queue(queue: str) -> str:
    """A queue name as the members table holds it (and as a filter on it must be written)."""
    return fitted(queue, QUEUE_CHARS)


class FailureGroupsRepository:
    """The signature side tables, through one :class:`Storage`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def fingerprints(self) -> tuple[Fingerprint, Fingerprint]:
        """``(failed_jobs, members)``: equal when every failed job has its member row and no more."""
        found = []
        for name in ("triage_fingerprint_failed", "triage_fingerprint_members"):
            ((rows, highest, total),) = self.storage.fetch(name)
            found.append(Fingerprint(int(rows), int(highest), int(total)))
        return found[0], found[1]

    def unsigned(self, after: int, upto: int, limit: int) -> list[FailedJob]:
        """Up to ``limit`` failed jobs with ids in ``(after, upto]`` that have no member row, in id
        order (a window of ids keeps each call's cost bounded)."""
        return failed_rows(self.storage, "triage_unsigned", {"after": after, "upto": upto, "limit": limit})

    def orphans(self, after: int, upto: int, limit: int) -> list[int]:
        """Up to ``limit`` member ids in ``(after, upto]`` whose failed job has gone, in order."""
        rows = self.storage.fetch("triage_orphans", {"after": after, "upto": upto, "limit": limit})
        return [int(failed_id) for (failed_id,) in rows]

    def forget(self, ids: Sequence[int]) -> int:
        """Delete these members, then the groups left without any; return how many members went."""
        if not ids:
            return 0
        with self.storage.transaction():
            gone = self.storage.run("triage_forget", {"ids": self.storage.param_ids(ids)})
            self.storage.run("triage_forget_empty_groups")
        return gone

    def put(self, signed: Sequence[Signed]) -> None:
        """Store members and their groups (one transaction; rows already there are kept)."""
        if not signed:
            return
        with self.storage.transaction():
            groups = {row.group_id: row for row in signed}
            self.storage.run_many("triage_put_group", [
                {"group_id": gid, "job": fitted(row.job, 255), "signature": fitted(row.signature, 1000)}
                for gid, row in sorted(groups.items())])
            self.storage.run_many("triage_put_member", [
                {"failed_id": row.failed_id, "group_id": row.group_id, "queue": member_queue(row.queue),
                 "failed_at": row.failed_at[:19]} for row in signed])

    def texts(self) -> dict[str, GroupText]:
        """Every group's job name and signature, by group id."""
        return {str(gid): GroupText(str(gid), str(job), str(sig))
                for gid, job, sig in self.storage.fetch("triage_all_groups")}

    def counts(self, queue: str = ALL_QUEUES) -> list[GroupCount]:
        """Per group and queue (of ``queue``; all by default): members, first and last failure, lowest id."""
        params = {"queue": member_queue(queue) if queue else ALL_QUEUES}
        return [GroupCount(str(gid), str(name), int(count), str(first), str(last), int(example))
                for gid, name, count, first, last, example in self.storage.fetch("triage_counts", params)]

    def members(self, group_id: str, after: int, limit: int, queue: str = ALL_QUEUES) -> list[FailedJob]:
        """Up to ``limit`` failed jobs of the group with ids above ``after`` (of ``queue``), in id order."""
        params = {"group_id": group_id, "after": after, "limit": limit,
                  "queue": member_queue(queue) if queue else ALL_QUEUES}
        return failed_rows(self.storage, "triage_group_rows", params)


__all__ = ["FailureGroupsRepository", "Fingerprint", "GroupCount", "GroupText", "Signed", "member_queue"]
