"""Retry policy: when a job is retried, after how long, and when it fails for good.

Values come from the payload first (what the dispatcher asked for), then the registered job,
then the worker's options, as in Laravel. These are pure functions of their inputs and a
``now`` in Unix seconds, so they are tested without a clock or a database.
"""

from __future__ import annotations

from typing import NamedTuple

from ictq.jobs import JobSpec
from ictq.payload import MAX_DELAY, Envelope


class Policy(NamedTuple):  # a named tuple: one is made per job
    max_tries: int  # 0 = unlimited
    max_exceptions: int | None
    backoff: tuple[int, ...]
    timeout: int  # 0 = none
    retry_until: int | None
    fail_on_timeout: bool


def resolve(envelope: Envelope, spec: JobSpec, tries: int, backoff: tuple[int, ...], timeout: int) -> Policy:
    """The policy for one job: payload, else registered job, else worker options."""
    return Policy(
        max_tries=_first(envelope.max_tries, spec.tries, tries),
        max_exceptions=_first(envelope.max_exceptions, spec.max_exceptions, None),
        backoff=envelope.backoff or spec.backoff or backoff,
        timeout=_first(envelope.timeout, spec.timeout, timeout),
        retry_until=envelope.retry_until,
        fail_on_timeout=envelope.fail_on_timeout or spec.fail_on_timeout,
    )


def backoff_delay(policy: Policy, attempts: int) -> int:
    """Seconds before the next attempt under ``policy`` (see :func:`delay_after`)."""
    return delay_after(policy.backoff, attempts)


def requested_delay(delay: object) -> int:
    """A delay a job asked for (``Release(delay=...)``), as whole seconds clamped into
    ``[0, MAX_DELAY]``; what is not a finite number counts as 0."""
    if type(delay) is int:
        return MAX_DELAY if delay > MAX_DELAY else max(0, delay)
    if isinstance(delay, float) and delay == delay:  # not NaN
        return int(min(float(MAX_DELAY), max(0.0, delay)))
    return 0


def delay_after(backoff: tuple[int, ...], attempt: int) -> int:
    """The wait after the ``attempt``-th attempt: its entry in ``backoff``, the last one after
    that, 0 without a backoff. (Laravel's rule; mail's temporary failures use it too.)"""
    if not backoff:
        return 0
    return backoff[min(max(attempt, 1), len(backoff)) - 1]


def exhausted_before_run(policy: Policy, attempts: int, now: int) -> str | None:
    """Why a job claimed for the ``attempts``-th time must fail without running, if it must.

    This catches jobs whose earlier attempt never reported back (a worker killed mid-job).
    """
    if policy.retry_until is not None:
        if now > policy.retry_until:
            return f"the job's retryUntil ({policy.retry_until}) has passed"
        return None
    if policy.max_tries > 0 and attempts > policy.max_tries:
        return f"the job has been attempted too many times ({attempts - 1} of {policy.max_tries} allowed)"
    return None


def fails_after_attempt(policy: Policy, attempts: int, exceptions: int, now: int) -> str | None:
    """Why a job that just failed its ``attempts``-th attempt must not be retried, if so."""
    if policy.max_exceptions is not None and policy.max_exceptions > 0 and exceptions >= policy.max_exceptions:
        return f"the job raised {exceptions} exceptions (maxExceptions {policy.max_exceptions})"
    if policy.retry_until is not None:
        if now >= policy.retry_until:
            return f"the job's retryUntil ({policy.retry_until}) has passed"
        return None
    if policy.max_tries > 0 and attempts >= policy.max_tries:
        return f"attempt {attempts} of {policy.max_tries} failed"
    return None


def _first(*values: int | None) -> int:
    for value in values:
        if value is not None:
            return value
    return 0
