"""A failure's record and log line, made with what is remembered from the failures before it,
are what the standard formatting makes (:mod:`ictq.worker.outcomes`, :meth:`ictq.worker.log.WorkerLog.failed`)."""

from __future__ import annotations

import logging
import traceback

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ictq import logs
from ictq.worker.log import WorkerLog
from ictq.worker.outcomes import describe, failure_text


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def worker_log(name: str) -> tuple[WorkerLog, Lines]:
    logger = logging.getLogger(f"test.failed-line.{name!r}")
    logger.handlers, logger.propagate, logger.level = [], False, logging.DEBUG
    lines = Lines()
    logger.addHandler(lines)
    return WorkerLog(logger, name), lines


texts = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(["", "a b", 'say "hi"', "k=v", "x" * 1200])


@given(worker=texts, name=texts, uuid=st.none() | texts, queue=texts, reason=texts,
       job_id=st.integers(1, 2**40), attempt=st.integers(0, 32767))
def test_the_failed_line_is_the_event_line(worker: str, name: str, uuid: str | None, queue: str, reason: str,
                                           job_id: int, attempt: int) -> None:
    log, lines = worker_log(worker)
    for _ in range(2):  # the second time from what was remembered
        log.failed(name, job_id, uuid, queue, attempt, reason)
        log.event(logging.ERROR, "failed", job=name, id=job_id, uuid=uuid, queue=queue, attempt=attempt,
                  reason=reason)
    assert lines.lines[0] == lines.lines[1] == lines.lines[2] == lines.lines[3]


def test_no_failed_line_below_its_level() -> None:
    log, lines = worker_log("quiet")
    log.logger.setLevel(logging.CRITICAL)
    log.failed("job", 1, None, "default", 1, "boom")
    assert lines.lines == []


class Noted(Exception):
    pass


class Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("a broken __str__")


def raised(make: type[BaseException], *args: object, note: str | None = None) -> BaseException:
    try:
        error = make(*args)
        if note is not None:
            error.add_note(note)
        raise error
    except BaseException as exc:  # noqa: BLE001 - the exception is the point
        return exc


def reference(exc: BaseException, why: str | None) -> str:
    """failure_text by the standard formatting alone (nothing remembered)."""
    lines = [f"{type(exc).__module__}.{type(exc).__qualname__}: {' '.join(str(exc).split())}".rstrip(": ")]
    if why:
        lines.append(f"Failed because {why}.")
    lines.append("")
    lines.extend(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "\n".join(line.rstrip("\n") for line in lines)


@pytest.mark.parametrize("make", [
    lambda n: raised(RuntimeError, f"job {n} failed"),
    lambda n: raised(RuntimeError, "the same message"),
    lambda n: raised(RuntimeError),
    lambda n: raised(KeyError, f"key{n}"),
    lambda n: raised(ValueError, f"two\nlines {n}"),
    lambda n: raised(Noted, "noted", note=f"note {n}"),
    lambda n: raised(SyntaxError, "bad", ("job.py", n, 3, "x = = 1\n")),
])
def test_a_failure_text_is_the_standard_one_however_often_it_repeats(make: object) -> None:
    assert callable(make)
    for n in (1, 1, 2):
        exc = make(n)
        assert failure_text(exc, "it ran out of tries") == reference(exc, "it ran out of tries")


def test_logs_word_and_fields_text_agree() -> None:
    assert logs.word('a "b"') == logs.fields_text({"k": 'a "b"'})[3:]


def test_an_exception_whose_str_raises_still_makes_a_record() -> None:
    exc = raised(Unprintable)
    text = failure_text(exc, "it ran out of tries")
    assert text.startswith(f"{__name__}.Unprintable: <exception str() failed>\nFailed because it ran out of tries.")
    assert text.endswith(traceback.format_exception_only(type(exc), exc)[-1].rstrip("\n"))
    assert describe(exc) == "Unprintable: <exception str() failed>"
