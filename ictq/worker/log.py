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

    def tag(self, name: str, job_id: int, uuid: str | None, queue: str, attempt: int) -> str:
        """`` worker=.. job=.. id=.. uuid=.. queue=.. attempt=..``: a job's fields as its lines
        carry them (the names that repeat from one line to the next formatted once,
        :func:`ictq.logs.word`)."""
        word = logs.word
        return (f" worker={word(self.name)} job={word(name)} id={job_id}{logs.fields_text({'uuid': uuid})}"
                f" queue={word(queue)} attempt={attempt}")

    def job(self, level: int, action: str, running: Running, **fields: Any) -> None:
        """``action worker=.. job=.. id=.. uuid=.. queue=.. attempt=.. fields..``: the job's own
        fields are formatted once, for its first line, and reused for the next."""
        if not self.logger.isEnabledFor(level):
            return
        if not running.tag:
            job = running.job
            running.tag = self.tag(running.spec.name, job.id, running.envelope.uuid, job.queue, job.attempts)
        text = action + running.tag
        logs.line(self.logger, level, text + logs.fields_text(fields) if fields else text)

    def failed(self, name: str, job_id: int, uuid: str | None, queue: str, attempt: int, reason: str) -> None:
        """``failed worker=.. job=.. id=.. uuid=.. queue=.. attempt=.. reason=..`` at ERROR: the
        line :meth:`event` writes, for a job that may have no :class:`Running` (a batch written
        later), the reason (which repeats from one failure to the next) formatted once."""
        if self.logger.isEnabledFor(logging.ERROR):
            logs.line(self.logger, logging.ERROR,
                      f"failed{self.tag(name, job_id, uuid, queue, attempt)} reason={logs.word(reason)}")
