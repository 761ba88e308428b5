"""The worker (``ictq work``): the loop and its parts.

- :mod:`~ictq.worker.loop`: :class:`Worker` (the loop and signals) and :class:`WorkerOptions`
- :mod:`~ictq.worker.claims`: batch claims, the local buffer, batched acknowledgements
- :mod:`~ictq.worker.outcomes`: release, retry, fail, stuck (log line and statistics included)
- :mod:`~ictq.worker.background`: the background thread (own connection) running the two below
- :mod:`~ictq.worker.lease`: the held jobs, their leases and the hard deadline
- :mod:`~ictq.worker.housekeeping`: heartbeats, statistics flush, reaping, pruning failed jobs
- :mod:`~ictq.worker.crash_marker`: which job a worker runs, readable after it was killed
- :mod:`~ictq.worker.timeouts`, :mod:`~ictq.worker.wakeup`, :mod:`~ictq.worker.control`,
  :mod:`~ictq.worker.stats`, :mod:`~ictq.worker.sampled`, :mod:`~ictq.worker.running`,
  :mod:`~ictq.worker.log`, :mod:`~ictq.worker.builtin` (the built-in mail jobs)
"""

from ictq.worker.housekeeping import Intervals
from ictq.worker.loop import EXIT_ERROR, EXIT_MEMORY, EXIT_OK, Worker, WorkerOptions

__all__ = ["EXIT_ERROR", "EXIT_MEMORY", "EXIT_OK", "Intervals", "Worker", "WorkerOptions"]
