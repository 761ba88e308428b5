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

Two more side tables keep the reads flat at a million failures: ``ictq_<failed_jobs>_tally``
counts the members per group and queue (with the lowest id), and ``ictq_<failed_jobs>_signed``
holds the members' :class:`Fingerprint`. Both change in the transaction that changes the
members (:meth:`~FailureGroupsRepository.put`, :meth:`~FailureGroupsRepository.forget`), after
taking the ``signed`` row's lock, so two reconciliations at once (two scrapes, a scrape and an
``ictq failed --group``) count each member once. After an upgrade the ``signed`` row says
"not counted yet" (members -1), and the first change counts the tally and fingerprint from the
members themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

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
        """``(failed_jobs, members)``: equal when every failed job has its member row and no more.
        The first counts failed_jobs (its smallest index); the second is kept with the members."""
        failed = self._counted("triage_fingerprint_failed")
        kept = self._kept("triage_fingerprint_members")
        return failed, kept or self._counted("triage_scan_members")  # not kept since the upgrade: counted

    def highest_failed(self) -> int:
        """The newest failed job's id (one probe of the primary key; 0 when there is none)."""
        ((highest,),) = self.storage.fetch("triage_highest_failed")
        return int(highest)

    def kept(self) -> Fingerprint | None:
        """The members' fingerprint as kept (None when not kept since an upgrade)."""
        return self._kept("triage_fingerprint_members")

    def _counted(self, statement: str) -> Fingerprint:
        """An aggregate's fingerprint (one row, always)."""
        ((rows, highest, total),) = self.storage.fetch(statement)
        return Fingerprint(int(rows), int(highest), int(total))

    def _kept(self, statement: str) -> Fingerprint | None:
        """The members' fingerprint kept in the ``signed`` row; None when there is none yet."""
        found = self.storage.fetch(statement)
        kept = Fingerprint(*(int(value) for value in found[0])) if found else None
        return kept if kept is not None and kept.rows >= 0 else None

    def _lock(self) -> Fingerprint:
        """Take the side tables' lock (inside a transaction); return the members' fingerprint,
        counted first (with the tally) when the upgrade left it uncounted."""
        kept = self._kept("triage_lock")
        if kept is not None:
            return kept
        self.storage.run("triage_tally_clear")
        self.storage.run("triage_tally_rebuild")
        return self._counted("triage_scan_members")

    def _set(self, fingerprint: Fingerprint) -> None:
        self.storage.run("triage_set_fingerprint", {"members": fingerprint.rows, "highest": fingerprint.highest,
                                                     "total": fingerprint.total})

    def unsigned(self, after: int, upto: int, limit: int) -> list[FailedJob]:
        """Up to ``limit`` failed jobs with ids in ``(after, upto]`` that have no member row, in id
        order (a window of ids keeps each call's cost bounded)."""
        return failed_rows(self.storage, "triage_unsigned", {"after": after, "upto": upto, "limit": limit})

    def orphans(self, after: int, upto: int, limit: int) -> list[int]:
        """Up to ``limit`` member ids in ``(after, upto]`` whose failed job has gone, in order."""
        rows = self.storage.fetch("triage_orphans", {"after": after, "upto": upto, "limit": limit})
        return [int(failed_id) for (failed_id,) in rows]

    def forget(self, ids: Sequence[int]) -> int:
        """Delete these members (and their counts), then the groups left without any; return
        how many members went."""
        if not ids:
            return 0
        with self.storage.transaction():
            kept = self._lock()
            found = self.storage.fetch("triage_members_of", {"ids": self.storage.param_ids(ids)})
            if not found:
                return 0
            gone_ids = [int(failed_id) for failed_id, _, _ in found]
            self.storage.run("triage_forget", {"ids": self.storage.param_ids(gone_ids)})
            per_pair: dict[tuple[str, str], list[int]] = {}
            for failed_id, gid, queue in found:
                per_pair.setdefault((str(gid), str(queue)), []).append(int(failed_id))
            for (gid, queue), pair_ids in sorted(per_pair.items()):
                self.storage.run("triage_tally_sub", {"group_id": gid, "queue": queue, "failures": len(pair_ids),
                                                      "lowest": min(pair_ids)})
            self.storage.run("triage_tally_drop_empty")
            self.storage.run("triage_forget_empty_groups")
            highest = kept.highest
            if highest in gone_ids:
                ((highest,),) = self.storage.fetch("triage_highest_member")
            self._set(Fingerprint(kept.rows - len(gone_ids), int(highest), kept.total - sum(gone_ids)))
        return len(gone_ids)

    def put(self, signed: Sequence[Signed]) -> None:
        """Store members and their groups, and count them (one transaction; a member already
        there is kept as it is and not counted again)."""
        if not signed:
            return
        with self.storage.transaction():
            kept = self._lock()
            known = {int(failed_id) for failed_id, _, _ in self.storage.fetch(
                "triage_members_of", {"ids": self.storage.param_ids([row.failed_id for row in signed])})}
            fresh: dict[int, Signed] = {}
            for row in signed:
                if row.failed_id not in known:
                    fresh.setdefault(row.failed_id, row)
            if not fresh:
                return
            groups = {row.group_id: row for row in fresh.values()}
            self.storage.run_many("triage_put_group", [
                {"group_id": gid, "job": fitted(row.job, 255), "signature": fitted(row.signature, 1000)}
                for gid, row in sorted(groups.items())])
            self.storage.run_many("triage_put_member", [
                {"failed_id": row.failed_id, "group_id": row.group_id, "queue": member_queue(row.queue),
                 "failed_at": row.failed_at[:19]} for row in fresh.values()])
            tally: dict[tuple[str, str], list[int]] = {}
            for row in fresh.values():
                tally.setdefault((row.group_id, member_queue(row.queue)), []).append(row.failed_id)
            self.storage.run_many("triage_tally_add", [
                {"group_id": gid, "queue": queue, "failures": len(pair_ids), "first_id": min(pair_ids)}
                for (gid, queue), pair_ids in sorted(tally.items())])
            self._set(Fingerprint(kept.rows + len(fresh), max(kept.highest, *fresh), kept.total + sum(fresh)))

    def texts(self) -> dict[str, GroupText]:
        """Every group's job name and signature, by group id."""
        return {str(gid): GroupText(str(gid), str(job), str(sig))
                for gid, job, sig in self.storage.fetch("triage_all_groups")}

    def counts(self, queue: str = ALL_QUEUES) -> list[GroupCount]:
        """Per group and queue (of ``queue``; all by default): members, first and last failure, lowest id."""
        params = {"queue": member_queue(queue) if queue else ALL_QUEUES}
        return [GroupCount(str(gid), str(name), int(count), str(first), str(last), int(example))
                for gid, name, count, first, last, example in self.storage.fetch("triage_counts", params)
                if first is not None]  # (a tally a concurrent change emptied: gone at its commit)

    def queue_totals(self) -> dict[str, int]:
        """Members per queue (as the members table holds the queue name), from the tally."""
        return {str(queue): int(total) for queue, total in self.storage.fetch("triage_queue_totals")}

    def recent_totals(self, since: datetime) -> dict[str, int]:
        """Members per queue that failed at or after ``since`` (a range of the members' failed_at index)."""
        params = {"since": since.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")}
        return {str(queue): int(total) for queue, total in self.storage.fetch("triage_recent_totals", params)}

    def members(self, group_id: str, after: int, limit: int, queue: str = ALL_QUEUES) -> list[FailedJob]:
        """Up to ``limit`` failed jobs of the group with ids above ``after`` (of ``queue``), in id order."""
        params = {"group_id": group_id, "after": after, "limit": limit,
                  "queue": member_queue(queue) if queue else ALL_QUEUES}
        return failed_rows(self.storage, "triage_group_rows", params)


__all__ = ["FailureGroupsRepository", "Fingerprint", "GroupCount", "GroupText", "Signed", "member_queue"]
