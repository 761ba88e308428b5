"""The job being processed, and what the loop learned about it (shared by the loop, the
outcomes and the lease keeper's deadline)."""

from __future__ import annotations

import time

from ictq import jobs, payload, policy
from ictq.config import Settings
from ictq.db import Reserved


class Running:
    __slots__ = ("_context", "envelope", "job", "policy", "settings", "spec", "started", "tag")

    def __init__(self, job: Reserved, envelope: payload.Envelope, spec: jobs.JobSpec, policy: policy.Policy,
                 settings: Settings) -> None:
        self.job, self.envelope, self.spec, self.policy, self.settings = job, envelope, spec, policy, settings
        self.started = time.monotonic()
        self.tag = ""  # the job's log fields, formatted once for all of its lines (see WorkerLog.job)
        self._context: jobs.JobContext | None = None

    def context(self) -> jobs.JobContext:
        """What ``ictq.current_job()`` returns inside this job (made on the first call)."""
        if self._context is None:
            job = self.job
            self._context = jobs.JobContext(job.id, self.envelope.uuid, self.spec.name, job.queue, job.attempts,
                                            self.settings, self.policy.max_tries)
        return self._context
