"""The job the deploy tests ship into the hosts' app dir (``ICTQ_JOBS=e2e_jobs``).

Each execution appends one line to ``storage/e2e/records`` in the app dir: the job number,
the host, the worker's PID and the ictq version it runs (package and metadata), so the test can
tell which host and which code processed it.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import ictq

RECORDS = Path(__file__).resolve().parent / "storage" / "e2e" / "records"


@ictq.job("e2e.record")
def record(n: int) -> None:
    host = Path("/etc/hostname").read_text().strip()
    line = f"{n} {host} {os.getpid()} {ictq.__version__} {importlib.metadata.version('ictq')}\n"
    RECORDS.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(RECORDS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
