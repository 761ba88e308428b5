"""The one job body every system runs: append this job's start to a per-process file.

Each line is fixed-width (``RECORD_SIZE`` bytes): the start and the dispatch timestamps
(``time.time_ns()``, comparable across processes) and the job's sequence number. The file is
opened once per process with ``O_APPEND``; one ``os.write`` per job keeps lines whole even
with threads.
"""

from __future__ import annotations

import json
import os
import time

RECORD_SIZE = 50
WARMUP_SEQ = 999_999_999
PAD_TO = 200  # bytes of JSON in a job's arguments

_fd = -1
_pid = -1


def record(seq: int, sent: int) -> None:
    """Called first thing by every system's no-op job."""
    global _fd, _pid
    start = time.time_ns()
    pid = os.getpid()
    if pid != _pid:
        path = os.path.join(os.environ["BENCH_OUT"], f"starts.{pid}")
        _fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        _pid = pid
    os.write(_fd, b"%019d %019d %09d\n" % (start, sent, seq))


def job_data(seq: int, sent: int | None = None) -> dict[str, object]:
    """A job's arguments: its sequence number, dispatch time and padding to ~200 bytes of JSON."""
    data: dict[str, object] = {"seq": seq, "sent": time.time_ns() if sent is None else sent, "pad": ""}
    data["pad"] = "x" * max(0, PAD_TO - len(json.dumps(data)))
    return data


def read_records(out_dir: str) -> list[tuple[int, int, int]]:
    """Every (start_ns, sent_ns, seq) written under ``out_dir``."""
    rows: list[tuple[int, int, int]] = []
    for name in os.listdir(out_dir):
        if not name.startswith("starts."):
            continue
        with open(os.path.join(out_dir, name), "rb") as handle:
            for line in handle.read().splitlines():
                parts = line.split()
                if len(parts) == 3:
                    rows.append((int(parts[0]), int(parts[1]), int(parts[2])))
    return rows


def count_records(out_dir: str) -> int:
    """How many jobs have started so far (cheap: file sizes only)."""
    total = 0
    with os.scandir(out_dir) as entries:
        for entry in entries:
            if entry.name.startswith("starts."):
                total += entry.stat().st_size
    return total // RECORD_SIZE
