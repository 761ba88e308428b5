"""The worker's log lines: ``action worker=NAME key=value ...`` (see :mod:`ictq.logs`)."""

from __future__ import annotations

import logging
from typing import Any

from ictq import logs
from ictq.worker.running import Running


class WorkerLog:
    """Thread-safe (the lease thread logs too)."""

    def __init__(self, logger: logging.Logger, name: str) -> None:
        self.logger = logger
        self.name = name

    def event(self, level: int, action: str, **fields: Any) -> None:
        logs.event(self.logger, level, action, worker=self.name, **fields)

    def job(self, level: int, action: str, running: Running, **fields: Any) -> None:
        """``action worker=.. job=.. id=.. uuid=.. queue=.. attempt=.. fields..``: the job's own
        fields are formatted once, for its first line, and reused for the next."""
        if not self.logger.isEnabledFor(level):
            return
        if not running.tag:
            job, word = running.job, logs.word
            running.tag = (f" worker={word(self.name)} job={word(running.spec.name)} id={job.id}"
                           f"{logs.fields_text({'uuid': running.envelope.uuid})}"
                           f" queue={word(job.queue)} attempt={job.attempts}")
        text = action + running.tag
        logs.line(self.logger, level, text + logs.fields_text(fields) if fields else text)
