"""Failed-job triage: group ``failed_jobs`` by job and error signature.

A signature is the exception class and its message with the parts that vary from one failure
to the next replaced by placeholders, so a thousand "connection to 10.0.0.7:5432 refused
after 3.2s" failures are one line, not a thousand:

- the first line of ``failed_jobs.exception`` is used (ictq writes ``module.Class: message``;
  Laravel writes ``Namespace\\Class: message in /path/File.php:123``, and the ``in /path:line``
  tail is dropped);
- UUIDs become ``<uuid>``, e-mail addresses ``<email>``, URLs ``<url>``, IPv4/IPv6 addresses
  (with any port) ``<ip>``, memory addresses (``0x7f3a...``) ``<addr>``, file paths ``<path>``,
  long hex strings (hashes, tokens, ids; 8+ hex digits with a digit in them) ``<hex>``, and
  every other number (integers, decimals, ``#123``, ``5.1.1``) ``<n>``;
- whitespace is collapsed and the result cut at :data:`MAX_SIGNATURE` characters.

A group's id is a short hash of the job name and the signature: stable between runs and
machines, so ``ictq failed --group`` can be read on one host and ``ictq retry --group ID`` typed
on another.

Each failed job's signature is computed once and kept in ictq's side tables
(:mod:`ictq.db.failure_groups`), so that grouping is an aggregate in the database whatever the
size of failed_jobs. The side tables are a cache, reconciled before each read
(:func:`reconcile`): PHP workers and ``php artisan queue:forget`` write failed_jobs without
telling ictq. When nothing changed this costs two index aggregates; new failures cost their own
signatures (a tail read past the highest known id), and rows deleted or inserted out of order
behind ictq's back one walk of both id indexes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ictq import display, ops
from ictq.db import Storage
from ictq.db.failed_jobs import ALL_QUEUES, FailedCounts
from ictq.db.failure_groups import QUEUE_CHARS, FailureGroupsRepository, GroupCount, Signed
from ictq.errors import DatabaseError, DatabaseUnavailable, GroupNotFound, first_line

MAX_SIGNATURE = 240
# Only the start of a message is normalised: the signature keeps 240 characters, and some rules
# (an e-mail address in a long run of word characters) cost the square of the text's length.
NORMALISED_PART = 1000
GROUP_ID_LENGTH = 10
MIN_PREFIX = 4
SIZES_BUDGET = 2_000  # new failures ``size`` and ``health`` sign before counting from the tally
SIGN_BATCH = 500  # failed jobs signed, or members checked, per round trip of a reconciliation
WINDOW = 20_000  # ids per step when a reconciliation walks both tables

# Laravel's first line ends with " in /path/to/File.php:123".
_PHP_LOCATION = re.compile(r"\s+in\s+\S+(?::\d+|\(\d+\))$")
_CLASS_NAME = re.compile(r"[A-Za-z_]\w*(?:[.\\][A-Za-z_]\w*)*")
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE), "<url>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<addr>"),
    (re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?(?![\w.])"), "<ip>"),
    (re.compile(r"(?<![\w:])\[?(?=[0-9a-fA-F:]*\d)(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{1,4}\]?(?::\d+)?(?![\w:])"),
     "<ip>"),
    (re.compile(r"(?<![\w<>])(?:/[\w.@%+~-]+){2,}/?"), "<path>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"(?<![\w<])[-+]?\d+(?:[.,]\d+)*"), "<n>"),
)


def split_first_line(exception: str) -> tuple[str, str]:
    """``(exception class, message)`` from the first line of ``failed_jobs.exception``."""
    text = exception.strip()
    first = _PHP_LOCATION.sub("", " ".join(first_line(text).split())) if text else ""
    head, sep, rest = first.partition(": ")
    if sep and _looks_like_class(head):
        return head, rest.strip()
    candidate = first.rstrip(":")
    if _looks_like_class(candidate):
        return candidate, ""
    return "", first


def _looks_like_class(token: str) -> bool:
    """``module.Class``, ``Namespace\\Class`` or a capitalised ``Name``."""
    if not _CLASS_NAME.fullmatch(token):
        return False
    return "." in token or "\\" in token or token[0].isupper()


def normalise(message: str) -> str:
    """The message with numbers, ids and addresses replaced by placeholders."""
    text = " ".join(message[:NORMALISED_PART].split())
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return text if len(text) <= MAX_SIGNATURE else text[: MAX_SIGNATURE - 3] + "..."


def signature(exception: str) -> str:
    """``Class: normalised message`` for the first line of ``failed_jobs.exception``, secrets
    masked first (normalised, a secret would no longer be recognised)."""
    cls, message = split_first_line(display.mask(exception))
    normalised = normalise(message)
    if cls and normalised:
        return f"{cls}: {normalised}"
    return cls or normalised or "(no exception text)"


def group_id(job: str, sig: str) -> str:
    return hashlib.sha1(f"{job}\n{sig}".encode("utf-8", "backslashreplace")).hexdigest()[:GROUP_ID_LENGTH]


@dataclass
class Group:
    """Failed jobs of one job name with one error signature."""

    id: str
    job: str
    signature: str
    count: int = 0
    first_seen: str = ""
    last_seen: str = ""
    queues: set[str] = field(default_factory=set)
    example_id: int = 0

    def add(self, row: ops.FailedRow) -> None:
        self.count += 1
        self.first_seen = min(self.first_seen or row.failed_at, row.failed_at)
        self.last_seen = max(self.last_seen, row.failed_at)
        self.queues.add(row.queue)
        self.example_id = self.example_id or row.id

    def merge(self, counted: GroupCount) -> None:
        """Add the members of this group on one queue, as the side tables count them."""
        self.count += counted.count
        self.first_seen = min(self.first_seen or counted.first_seen, counted.first_seen)
        self.last_seen = max(self.last_seen, counted.last_seen)
        self.queues.add(counted.queue)
        self.example_id = min(self.example_id or counted.example_id, counted.example_id)

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.id, "job": self.job, "signature": self.signature, "count": self.count,
                "first_seen": self.first_seen, "last_seen": self.last_seen, "queues": sorted(self.queues),
                "example_id": self.example_id}


def key_of(row: ops.FailedRow) -> tuple[str, str, str]:
    """``(group id, job, signature)`` of one failed job."""
    sig = signature(row.exception)
    return group_id(row.name, sig), row.name, sig


def group_rows(rows: Iterable[ops.FailedRow]) -> list[Group]:
    """Groups, the biggest first (then the most recent)."""
    groups: dict[str, Group] = {}
    for row in rows:
        gid, job, sig = key_of(row)
        groups.setdefault(gid, Group(gid, job, sig)).add(row)
    return _ordered(groups.values())


def _ordered(found: Iterable[Group]) -> list[Group]:
    by_recent = sorted(found, key=lambda g: g.last_seen, reverse=True)
    return sorted(by_recent, key=lambda g: g.count, reverse=True)


def signed(row: ops.FailedRow) -> Signed:
    """A failed job with its group, as the side tables keep it."""
    gid, job, sig = key_of(row)
    return Signed(row.id, gid, job, sig, row.queue, row.failed_at)


def reconcile(storage: Storage) -> int:
    """Bring the side tables in line with failed_jobs now; return how many members changed.

    First the cheap checks: equal fingerprints (row count, highest id, sum of ids) of both
    tables mean nothing to do. Then the new tail (failed jobs above the highest signed id, the
    usual case: jobs failed since the last read). Only when the fingerprints still differ (rows
    deleted, or committed out of id order, behind ictq's back) are both id indexes walked, a
    window of :data:`WINDOW` ids at a time.
    """
    repository = FailureGroupsRepository(storage)
    failed, members = repository.fingerprints()
    if failed == members:
        return 0
    changed = _sign(repository, members.highest, failed.highest)
    failed, members = repository.fingerprints()
    if failed == members:
        return changed
    top = max(failed.highest, members.highest)
    for low in range(0, top, WINDOW):
        high = min(low + WINDOW, top)
        after = low
        while orphans := repository.orphans(after, high, SIGN_BATCH):
            changed += repository.forget(orphans)
            after = orphans[-1]
        changed += _sign(repository, low, high)
    return changed


def in_step(storage: Storage, budget: int | None = None) -> bool:
    """Whether the side tables match failed_jobs, after signing the new tail if it holds at most
    ``budget`` failures (:data:`SIZES_BUDGET` by default: a cheap reconciliation for the counts of
    ``size``, ``status`` and ``health``; a bigger gap, or rows deleted behind ictq's back, leave it
    to :func:`reconcile`)."""
    budget = SIZES_BUDGET if budget is None else budget
    repository = FailureGroupsRepository(storage)
    failed, members = repository.fingerprints()
    if failed == members:
        return True
    if failed.rows - members.rows > budget or failed.highest <= members.highest:
        return False
    try:
        _sign(repository, members.highest, failed.highest)
    except DatabaseUnavailable:
        raise
    except DatabaseError:  # a database user that may only read: count in failed_jobs
        return False
    failed, members = repository.fingerprints()
    return failed == members


def sign_new(storage: Storage, budget: int | None = None) -> bool:
    """Sign the failures newer than the highest signed one, when at most ``budget`` ids
    (:data:`SIZES_BUDGET`) lie between; whether there were none or they are signed now. Two probes
    when nothing is new: no count of failed_jobs, so rows deleted behind ictq's back go unseen
    until the next :func:`reconcile` (the dashboard runs one in the background)."""
    budget = SIZES_BUDGET if budget is None else budget
    repository = FailureGroupsRepository(storage)
    kept = repository.kept()
    if kept is None:  # nothing signed yet (or not kept since an upgrade): the fingerprints decide
        return in_step(storage, budget)
    highest = repository.highest_failed()
    if highest <= kept.highest:
        return True
    if highest - kept.highest > budget:
        return False
    try:
        _sign(repository, kept.highest, highest)
    except DatabaseUnavailable:
        raise
    except DatabaseError:  # a database user that may only read
        return False
    return True


def unsigned_count(storage: Storage) -> int:
    """How far the side tables are from failed_jobs: 0 when in step, else the difference of
    their row counts (at least 1). Counts failed_jobs' smallest index."""
    failed, members = FailureGroupsRepository(storage).fingerprints()
    return 0 if failed == members else max(1, abs(failed.rows - members.rows))


def sizes(storage: Storage, now: int, queues: Sequence[str] = (), reconciled: bool = False) -> list[ops.QueueSize]:
    """:func:`ictq.ops.sizes` with the failed counts from the signature tally (a row per group
    and queue) and the failures of the last hour from the failed_at index, when the side tables
    are in step with failed_jobs (``reconciled``: the caller has just run :func:`reconcile`);
    else counted in failed_jobs itself."""
    repository = FailureGroupsRepository(storage)
    if reconciled or in_step(storage):
        totals = repository.queue_totals()
        if all(len(name) < QUEUE_CHARS for name in totals):  # else a name may be cut: count in failed_jobs
            recent = repository.recent_totals(ops.last_hour(now))
            counted = [FailedCounts(name, total, recent.get(name, 0)) for name, total in totals.items() if total > 0]
            return ops.sizes(storage, now, queues, counted)
    return ops.sizes(storage, now, queues)


def _sign(repository: FailureGroupsRepository, after: int, upto: int) -> int:
    """Sign the unsigned failed jobs with ids in ``(after, upto]``; return how many."""
    count = 0
    while batch := repository.unsigned(after, upto, SIGN_BATCH):
        repository.put([signed(ops.FailedRow.of(job)) for job in batch])
        count += len(batch)
        after = batch[-1].id
    return count


def groups(storage: Storage, queues: Sequence[str] = (), fresh: bool = True) -> list[Group]:
    """Every failed job (of ``queues``; all when empty), grouped: from the side tables,
    reconciled first (``fresh``; else as they are: see :func:`unsigned`)."""
    if fresh:
        reconcile(storage)
    repository = FailureGroupsRepository(storage)
    texts = repository.texts()
    found: dict[str, Group] = {}
    for queue in list(queues) or [ALL_QUEUES]:
        for counted in repository.counts(queue):
            text = texts.get(counted.group_id)
            if text is not None:  # else its group row came after the counts: the next read has it
                found.setdefault(counted.group_id, Group(text.group_id, text.job, text.signature)).merge(counted)
    return _ordered(found.values())


def job_counts(storage: Storage) -> dict[tuple[str, str], int]:
    """Failed jobs by ``(queue, job name)``, reconciled first (what ``ictq metrics`` shows)."""
    reconcile(storage)
    repository = FailureGroupsRepository(storage)
    texts = repository.texts()
    counts: dict[tuple[str, str], int] = {}
    for counted in repository.counts():
        text = texts.get(counted.group_id)
        key = (counted.queue, text.job if text is not None else "")
        counts[key] = counts.get(key, 0) + counted.count
    return counts


def resolve(storage: Storage, ref: str, queues: Sequence[str] = (), fresh: bool = True) -> Group:
    """The group whose id is ``ref`` or starts with it (at least :data:`MIN_PREFIX` characters)."""
    ref = ref.strip().lower()
    if len(ref) < MIN_PREFIX:
        raise GroupNotFound(f"group id {ref!r} is too short: give at least {MIN_PREFIX} characters")
    found = [g for g in groups(storage, queues, fresh) if g.id.startswith(ref)]
    if not found:
        raise GroupNotFound(f"no group of failed jobs with id {ref} (see: ictq failed --group)")
    if len(found) > 1:
        raise GroupNotFound(f"group id {ref} is ambiguous: {', '.join(g.id for g in found)}")
    return found[0]


def members(storage: Storage, group: Group, queues: Sequence[str] = (), batch: int = ops.RETRY_BATCH
            ) -> Iterator[list[ops.FailedRow]]:
    """The failed jobs of ``group`` now, in batches of at most ``batch``: those the side tables
    file under it, each checked again (a retry acts on what the row says now)."""
    repository = FailureGroupsRepository(storage)
    for queue in list(queues) or [ALL_QUEUES]:
        after = 0
        while jobs := repository.members(group.id, after, batch, queue):
            after = jobs[-1].id
            found = [row for row in map(ops.FailedRow.of, jobs) if key_of(row)[0] == group.id]
            if found:
                yield found


def retry_group(storage: Storage, group: Group, now: int, queues: Sequence[str] = (),
                deadline: int | None = None) -> ops.Retried:
    """Put every failed job of ``group`` back on its queue (see :func:`ops.retry`), batch by batch."""
    moved: list[ops.FailedRow] = []
    refused: list[tuple[ops.FailedRow, str]] = []
    for batch in members(storage, group, queues):
        done = ops.retry(storage, batch, now, deadline)
        forget_members(storage, done.moved)
        moved.extend(done.moved)
        refused.extend(done.refused)
    return ops.Retried(moved, refused)


def forget_group(storage: Storage, group: Group, queues: Sequence[str] = ()) -> int:
    """Delete every failed job of ``group``; return how many went."""
    count = 0
    for batch in members(storage, group, queues):
        count += ops.forget_many(storage, batch)
        forget_members(storage, batch)
    return count


def forget_members(storage: Storage, rows: Sequence[ops.FailedRow]) -> None:
    """After failed jobs left failed_jobs through ictq (retried, forgotten): their members and
    counts go too, so the side tables stay in step without a walk of both tables."""
    FailureGroupsRepository(storage).forget([row.id for row in rows])
