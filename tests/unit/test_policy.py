from __future__ import annotations

from ictq import policy
from ictq.jobs import JobSpec
from ictq.payload import build, parse


def spec(**kwargs: object) -> JobSpec:
    return JobSpec("x", lambda: None, **kwargs)  # type: ignore[arg-type]


def resolved(payload_kwargs: dict[str, object] | None = None, **spec_kwargs: object) -> policy.Policy:
    _, text = build("x", {}, created_at=0, **(payload_kwargs or {}))  # type: ignore[arg-type]
    return policy.resolve(parse(text), spec(**spec_kwargs), tries=1, backoff=(0,), timeout=60)


def test_payload_beats_job_beats_worker_options() -> None:
    assert resolved().max_tries == 1 and resolved().timeout == 60
    assert resolved(tries=5, timeout=10).max_tries == 5
    assert resolved({"max_tries": 7}, tries=5).max_tries == 7
    assert resolved({"timeout": 0}, timeout=10).timeout == 0


def test_backoff_list_is_per_attempt_then_repeats_the_last() -> None:
    p = resolved(backoff=(10, 60, 300))
    assert [policy.backoff_delay(p, n) for n in (1, 2, 3, 4, 9)] == [10, 60, 300, 300, 300]
    assert policy.backoff_delay(resolved(), 3) == 0


def test_tries_decide_when_a_failed_attempt_is_final() -> None:
    p = resolved(tries=3)
    assert policy.fails_after_attempt(p, 1, 1, now=0) is None
    assert policy.fails_after_attempt(p, 3, 3, now=0) == "attempt 3 of 3 failed"
    assert policy.fails_after_attempt(resolved(tries=0), 50, 50, now=0) is None


def test_max_exceptions_fails_before_tries_run_out() -> None:
    p = resolved(tries=10, max_exceptions=2)
    assert policy.fails_after_attempt(p, 1, 1, now=0) is None
    assert "maxExceptions 2" in (policy.fails_after_attempt(p, 2, 2, now=0) or "")


def test_retry_until_replaces_tries() -> None:
    p = resolved({"retry_until": 100}, tries=1)
    assert policy.fails_after_attempt(p, 5, 5, now=99) is None
    assert policy.fails_after_attempt(p, 5, 5, now=100) is not None
    assert policy.exhausted_before_run(p, 9, now=100) is None
    assert policy.exhausted_before_run(p, 9, now=101) is not None


def test_a_job_claimed_past_its_tries_fails_without_running() -> None:
    p = resolved(tries=2)
    assert policy.exhausted_before_run(p, 2, now=0) is None
    assert "attempted too many times" in (policy.exhausted_before_run(p, 3, now=0) or "")
