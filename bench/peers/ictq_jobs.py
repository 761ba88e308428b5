"""ictq's no-op job (``ictq work --jobs bench.peers.ictq_jobs``)."""

from __future__ import annotations

import ictq
from bench.record import record


@ictq.job("bench.noop")
def noop(seq: int, sent: int, pad: str = "") -> None:
    record(seq, sent)
