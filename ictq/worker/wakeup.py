"""Waking an idle worker: a self-pipe that signal handlers write to, and the waits that
watch it beside the database (see ``Storage.wait_for_work``)."""

from __future__ import annotations

import contextlib
import os
import select


class Waker:
    """A pipe: :meth:`set` (safe in a signal handler) ends any :meth:`wait` at once."""

    def __init__(self) -> None:
        self.fd, self._write_fd = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._write_fd, False)

    def set(self) -> None:
        with contextlib.suppress(BlockingIOError):  # already full: already woken
            os.write(self._write_fd, b"!")

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when woken."""
        if seconds <= 0:
            return self.drain()
        readable, _, _ = select.select([self.fd], [], [], seconds)
        return bool(readable) and self.drain()

    def drain(self) -> bool:
        woken = False
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 512):
                woken = True
        return woken

    def close(self) -> None:
        for fd in (self.fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
