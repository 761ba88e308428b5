"""Logging: one line per event with stable ``key=value`` fields, secrets masked.

Worker lines go to ``storage/logs/queue.log`` (``ICTQ_LOG_FILE``; the file is reopened when
logrotate moves it away) and warnings and errors also to stderr, where Supervisor keeps
them. Every line passes through :class:`Redactor`, which replaces any configured secret.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ictq.errors import ConfigError

LOGGER_NAME = "ictq"
MASK = "********"
_NEEDS_QUOTES = re.compile(r'[\s"=]')
FORMAT = "%(asctime)s %(levelname)s %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


class Redactor(logging.Filter):
    """Replaces every secret in a record's final message with ``********``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = redact(record.getMessage(), self.secrets)
            if record.exc_info:
                message += "\n" + redact(logging.Formatter().formatException(record.exc_info), self.secrets)
                record.exc_info = None
                record.exc_text = None
            record.msg, record.args = message, None
        return True


class ReopeningFileHandler(logging.handlers.WatchedFileHandler):
    """Appends to a file and reopens it when it was moved or removed (logrotate without
    ``copytruncate``), checking at most once a second rather than on every line."""

    check_every = 1.0

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8")
        self._checked = time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        now = time.monotonic()
        if now - self._checked >= self.check_every:
            self._checked = now
            self.reopenIfNeeded()
        logging.FileHandler.emit(self, record)


class Formatter(logging.Formatter):
    """The standard formatter, with the timestamp text reused within the same second."""

    _second = -1
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, super().formatTime(record, datefmt)
        return self._stamp


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``********``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def setup(
    log_file: Path | None, level: str, secrets: Iterable[str], stderr_level: int = logging.WARNING
) -> logging.Logger:
    """Configure the ``ictq`` logger for a worker or a command."""
    # The logging docs' "Optimization" advice: ictq's lines carry their own fields, so the
    # caller's frame, thread and process names need not be looked up for every record.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(level)
    logger.propagate = False
    formatter = Formatter(FORMAT, DATE_FORMAT)
    redactor = Redactor(secrets)
    handlers: list[logging.Handler] = []
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            handlers.append(ReopeningFileHandler(log_file))
        except OSError as exc:
            raise ConfigError(f"ICTQ_LOG_FILE: cannot write {log_file}: {exc.strerror}") from None
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(stderr_level if log_file is not None else logging.DEBUG)
    handlers.append(console)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redactor)
        logger.addHandler(handler)
    return logger


def event(logger: logging.Logger, level: int, action: str, **fields: Any) -> None:
    """Log ``action key=value ...``; nothing is formatted when the level is off."""
    if not logger.isEnabledFor(level):
        return
    parts = [action]
    for key, value in fields.items():
        if value is None:
            continue
        text = str(value)
        if not text.isascii():
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        if not text or _NEEDS_QUOTES.search(text):
            text = '"' + " ".join(text.split()).replace('"', "'") + '"'
        parts.append(f"{key}={text}")
    logger.log(level, " ".join(parts))
