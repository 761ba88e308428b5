"""Logging: one line per event with stable ``key=value`` fields, secrets masked, length bounded.

Worker lines go to ``storage/logs/queue.log`` (``ICTQ_LOG_FILE``; the file is reopened when
logrotate moves it away) and warnings and errors also to stderr, where Supervisor keeps
them. Every line passes through :class:`Redactor`, which masks every configured secret
(:class:`ictq.display.Masker`) and cuts the line at :data:`MAX_LINE` characters; a field value
is masked before it is squeezed, quoted or cut at :data:`MAX_FIELD` characters.

Logging trouble never stops a worker: when the log file cannot be written (removed directory,
a file replaced by something unwritable, a full disk), lines go to stderr, with one warning,
and the file is tried again at the next check (every second) until it takes lines again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import logging.handlers
import os
import re
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ictq import display
from ictq.display import MASK, NO_SECRETS, Masker, printable
from ictq.errors import ConfigError

LOGGER_NAME = "ictq"
MAX_FIELD = 1000  # characters of one field value in a log line (a display name, a reason)
MAX_LINE = 16000  # characters of one log line, traceback included
__all__ = ["MASK", "MAX_FIELD", "MAX_LINE", "Redactor", "event", "fields_text", "line", "redact", "setup", "word"]
_NEEDS_QUOTES = re.compile(r'[\s"=]')
FORMAT = "%(asctime)s %(levelname)s %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


# The masker of the lines being written, set by setup(): field values are masked before a
# log line squeezes, quotes or cuts them (after that a secret would no longer match).
_masker: Masker = NO_SECRETS


class Redactor(logging.Filter):
    """Replaces every secret in a record's final message with ``********`` and cuts the
    message at :data:`MAX_LINE` characters."""

    def __init__(self, secrets: Iterable[str] | Masker) -> None:
        super().__init__()
        self.masker = secrets if isinstance(secrets, Masker) else Masker(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        elif len(message) <= MAX_LINE and not self.masker:
            return True
        record.msg, record.args = self.masker.bounded(message, MAX_LINE), None
        return True


class QuietStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that says nothing when its stream fails (stderr closed or full: there is
    nowhere left to report it), instead of printing a traceback per line."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


class ReopeningFileHandler(logging.handlers.WatchedFileHandler):
    """Appends to a file and reopens it when it was moved or removed (logrotate without
    ``copytruncate``), checking at most once a second rather than on every line.

    When the file cannot be opened or written, the line goes to stderr instead (unless the
    console handler shows it anyway: ``echoed_level``), with one warning for the whole time the
    file is unusable; the file is tried again at every check."""

    check_every = 1.0

    def __init__(self, path: Path, echoed_level: int = logging.CRITICAL + 1) -> None:
        super().__init__(path, encoding="utf-8")
        self._checked = time.monotonic()
        self.echoed_level = echoed_level
        self.failing: str | None = None  # why the file cannot be written, while it cannot

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own policy: report, never raise into the caller
            self.handleError(record)
            return
        try:
            written = self._write(text)
        except OSError as exc:
            self._close_stream()
            if self.failing is None:
                self.failing = exc.strerror or type(exc).__name__
                _stderr(f"{time.strftime(DATE_FORMAT)} WARNING log-file-unwritable file={word(self.baseFilename)} "
                        f"error={word(self.failing)} (lines go to stderr until it can be written again)")
            written = False
        if not written:
            if record.levelno < self.echoed_level:
                _stderr(text)
        elif self.failing is not None:
            self.failing = None
            _stderr(f"{time.strftime(DATE_FORMAT)} INFO log-file-writable file={word(self.baseFilename)}")

    def _write(self, text: str) -> bool:
        """Write one line to the file; False when it is known unusable until the next check."""
        now = time.monotonic()
        if now - self._checked >= self.check_every:
            self._checked = now
            if self.failing is not None:
                self._close_stream()
            self.reopenIfNeeded()
        elif self.failing is not None:
            return False
        if self.stream is None:
            self.stream = self._open()
            self._statstream()
        # StreamHandler.emit with one os.write per line (handle() holds the lock): no buffer
        # for a killed worker to lose, and no text-layer flush on the per-job path.
        data = (text + "\n").encode("utf-8", "backslashreplace")
        fd = self.stream.fileno()
        while data:
            data = data[os.write(fd, data):]
        return True

    def reopenIfNeeded(self) -> None:
        if self.stream is None:
            return  # opened at the next write
        super().reopenIfNeeded()

    def _close_stream(self) -> None:
        stream, self.stream = self.stream, None  # type: ignore[assignment]
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()

    def handleError(self, record: logging.LogRecord) -> None:
        pass  # a record that cannot be formatted is dropped, never a traceback per line


def _stderr(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class Formatter(logging.Formatter):
    """The standard formatter, with the timestamp text reused within the same second."""

    _second = -1
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, super().formatTime(record, datefmt)
        return self._stamp

    def format(self, record: logging.LogRecord) -> str:
        """:data:`FORMAT` without the generic ``%``-style machinery (two lines per job pass
        here); records with an exception or a stack, or another format, take the standard way."""
        if record.exc_info or record.exc_text or record.stack_info or self._fmt != FORMAT:
            return super().format(record)
        record.message = record.getMessage()
        return f"{self.formatTime(record, self.datefmt)} {record.levelname} {record.message}"


def redact(text: str, secrets: Iterable[str] | Masker) -> str:
    """``text`` with every secret, in each of its forms, replaced by ``********``."""
    return (secrets if isinstance(secrets, Masker) else _masker_of(tuple(secrets)))(text)


@functools.lru_cache(maxsize=16)
def _masker_of(secrets: tuple[str, ...]) -> Masker:
    return Masker(secrets)


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
    global _masker
    _masker = Masker(secrets)
    display.use(_masker)
    word.cache_clear()
    redactor = Redactor(_masker)
    handlers: list[logging.Handler] = []
    console_level = stderr_level if log_file is not None else logging.DEBUG
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            handlers.append(ReopeningFileHandler(log_file, echoed_level=console_level))
        except OSError as exc:
            raise ConfigError(f"ICTQ_LOG_FILE: cannot write {log_file}: {exc.strerror}") from None
    console = QuietStreamHandler(sys.stderr)
    console.setLevel(console_level)
    handlers.append(console)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redactor)
        logger.addHandler(handler)
    return logger


class Line(logging.LogRecord):
    """A record of one ictq line, made cheaply: ictq's lines carry their own fields, so there
    are no ``%`` arguments, no caller frame, no exception. The attributes a formatter may still
    ask for get the values ``logging._srcfile = None`` gives (formatters read ``__dict__``).

    Not calling ``LogRecord.__init__`` is outside logging's public API; it is kept for a measured
    gain: 1.1 µs instead of 2.0 µs a record (1.7 times, CPython 3.11), two records per job."""

    def __init__(self, name: str, level: int, message: str) -> None:  # no super().__init__: that is the point
        now = time.time()
        attributes = self.__dict__
        attributes.update(_RECORD_DEFAULTS)
        attributes["name"] = name
        attributes["msg"] = message
        attributes["levelno"] = level
        attributes["levelname"] = logging.getLevelName(level)
        attributes["created"] = now
        attributes["msecs"] = int((now - int(now)) * 1000) + 0.0
        attributes["relativeCreated"] = (now - _STARTED) * 1000


_RECORD_DEFAULTS: dict[str, Any] = {
    "args": None, "exc_info": None, "exc_text": None, "stack_info": None, "pathname": "(unknown file)",
    "filename": "(unknown file)", "module": "(unknown file)", "lineno": 0, "funcName": None, "thread": None,
    "threadName": None, "processName": None, "process": None, "taskName": None,
}
_STARTED = time.time()


def line(logger: logging.Logger, level: int, text: str) -> None:
    """Log ``text`` as it is (through the logger's filters and handlers, as ``logger.log``)."""
    if logger.isEnabledFor(level):
        logger.handle(Line(logger.name, level, text))


def event(logger: logging.Logger, level: int, action: str, **fields: Any) -> None:
    """Log ``action key=value ...``; nothing is formatted when the level is off."""
    if logger.isEnabledFor(level):
        logger.handle(Line(logger.name, level, action + fields_text(fields)))


@functools.lru_cache(maxsize=4096)
def word(text: str) -> str:
    """A field value as :func:`fields_text` writes it, remembered: for names that repeat on
    every line (worker, job, queue)."""
    return fields_text({"": text})[2:]


def fields_text(fields: Mapping[str, Any]) -> str:
    """`` key=value`` for every field that is not None; values with blanks, quotes or ``=``
    quoted, non-ASCII text escaped. (Per job, twice: ints and plain words take the short way.)"""
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        if value.__class__ is int:
            parts.append(f" {key}={value}")
            continue
        text = value if value.__class__ is str else str(value)
        if len(text) > MAX_FIELD or not text.isascii() or not text.isprintable():
            # masked first: squeezed, escaped or cut, a secret would no longer match
            text = printable(_masker.bounded(text, MAX_FIELD), lines=True)
        if not text or _NEEDS_QUOTES.search(text):
            text = '"' + _masker(" ".join(_masker(text).split()).replace('"', "'")) + '"'
        parts.append(f" {key}={text}")
    return "".join(parts)
