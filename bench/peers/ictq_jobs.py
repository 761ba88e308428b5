"""ictq's no-op job and its always-failing twin (``ictq work --jobs bench.peers.ictq_jobs``)."""

from __future__ import annotations

import ictq
from bench.record import record


@ictq.job("bench.noop")
def noop(seq: int, sent: int, pad: str = "") -> None:
    record(seq, sent)


@ictq.job("bench.fail")
def fail(seq: int, sent: int, pad: str = "") -> None:
    """The failure drain's job: recorded, then failed (with the default ``--tries=1``, at once)."""
    record(seq, sent)
    raise RuntimeError("bench: this job always fails")
