"""The history's arithmetic: histogram percentiles, the worker's tally, chart steps, and the
capacity model (Erlang B and C, the workers needed)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ictq import capacity, history
from ictq.db.history import WAIT_BUCKETS, HistoryRepository, HistoryRow, Sums
from ictq.db.stats import DURATION_BUCKETS
from ictq.errors import UnknownSpan
from ictq.worker.history import JobHistory, wait_of
from tests.support.app import App


def test_percentile_interpolates_within_the_bucket_and_caps_at_the_last_bound() -> None:
    bounds = (1.0, 2.0, 4.0)
    assert history.percentile([0, 0, 0], bounds, 0, 0.5) is None
    assert history.percentile([10, 0, 0], bounds, 10, 0.5) == pytest.approx(0.5)  # [0, 1]: halfway
    assert history.percentile([0, 4, 0], bounds, 4, 0.25) == pytest.approx(1.25)  # [1, 2]: a quarter in
    assert history.percentile([5, 0, 5], bounds, 10, 0.95) == pytest.approx(2.0 + 2.0 * 4.5 / 5)
    assert history.percentile([1, 0, 0], bounds, 10, 0.95) == 4.0  # beyond the last bound: the last bound
    assert history.percentile([0, 1, 0], bounds, 1, 1.0) == 2.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=3, max_size=3), st.integers(0, 50), st.floats(0, 1), st.floats(0, 1))
def test_percentiles_are_monotonic_and_within_the_bounds(counts: list[int], above: int, q1: float, q2: float) -> None:
    bounds = (1.0, 2.0, 4.0)
    total = sum(counts) + above
    low, high = sorted((q1, q2))
    p_low, p_high = (history.percentile(counts, bounds, total, q) for q in (low, high))
    if total == 0:
        assert p_low is None and p_high is None
        return
    assert p_low is not None and p_high is not None
    assert 0 <= p_low <= p_high <= 4.0


def test_the_tally_counts_outcomes_buckets_and_waits_per_minute() -> None:
    tally = JobHistory()
    tally.record("default", "a", "done", 0.003, 1_000_010.0, 1_000_009)  # wait 1.0: bucket 1 (<= 1 s)
    tally.record("default", "a", "failed", 400.0, 1_000_000.0, 1_000_000)  # runtime beyond 300 s, ends later
    tally.record("default", "a", "released", 0.2, 1_000_019.0, 0)  # available_at unknown: waited 0
    tally.record("other", "a", "done", 0.02, 1_000_010.0, 999_000)  # wait 1010 s: the 1800 s bucket
    rows = {(r.minute, r.queue, r.job): r.sums for r in tally.take()}
    assert tally.take() == []
    minute = 1_000_010 // 60 * 60
    here = rows[(minute, "default", "a")]
    assert (here.processed, here.failed, here.released) == (1, 0, 1)
    assert here.runtime_buckets[0] == 1 and here.runtime_buckets[DURATION_BUCKETS.index(0.25)] == 1
    assert here.wait_buckets[0] == 1 and here.wait_buckets[1] == 1 and here.wait_sum == pytest.approx(1.0)
    late = rows[(1_000_400 // 60 * 60, "default", "a")]
    assert late.failed == 1 and sum(late.runtime_buckets) == 0 and late.count == 1  # above the last bound
    far = rows[(minute, "other", "a")]
    assert far.wait_buckets[WAIT_BUCKETS.index(1800.0)] == 1 and far.wait_sum == pytest.approx(1010.0)
    assert wait_of(5.0, 10) == 0.0 and wait_of(12.5, 10) == 2.5 and wait_of(12.5, 0) == 0.0


def test_given_back_counts_are_added_to_the_next_take() -> None:
    tally = JobHistory()
    tally.record("q", "j", "done", 0.1, 600.0, 599)
    taken = tally.take()
    tally.record("q", "j", "done", 0.1, 600.0, 599)
    tally.give_back(taken)
    (row,) = tally.take()
    assert row.sums.processed == 2 and sum(row.sums.runtime_buckets) == 2 and sum(row.sums.wait_buckets) == 2
    assert row.sums == taken[0].sums + taken[0].sums


def test_chart_steps_are_aligned_and_hold_now() -> None:
    now = 1_700_000_000 + 123
    first, end, step = history.steps(now, "hour")
    assert step == 60 and first % 60 == 0 and first <= now < end and (end - first) // step == 60
    first, end, step = history.steps(now, "day")
    assert step == 900 and first % 900 == 0 and end - first == 86400 and end - 900 <= now < end
    first, end, step = history.steps(now, "week")
    assert step == 7200 and first % 7200 == 0 and end - first == 7 * 86400 and end - 7200 <= now < end
    with pytest.raises(UnknownSpan, match="one of hour, day, week"):
        history.steps(now, "year")


def test_erlang_c_known_values() -> None:
    assert capacity.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert capacity.erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: the utilisation
    assert capacity.erlang_c(10, 8.0) == pytest.approx(0.4092, abs=1e-4)  # the textbook table
    assert capacity.erlang_b(2, 1.0) == pytest.approx(0.2)
    assert capacity.erlang_c(3, 3.0) == 1.0
    assert 0 < capacity.erlang_c(2000, 1900.0) < 1  # no overflow with many workers


def test_workers_needed_meets_the_target_with_the_fewest_workers() -> None:
    # M/M/1 at a = 0.5, S = 1 s: P(W > t) = 0.5 exp(-0.5 t); under 5 % from t = 2 ln 10 = 4.6 s.
    assert capacity.workers_needed(0.5, 1.0, 5.0) == 1
    assert capacity.workers_needed(0.5, 1.0, 4.0) == 2
    assert capacity.workers_needed(0.0, 0.0, 0.0) == 1
    for a, runtime, target in ((8.0, 1.0, 1.0), (30.0, 2.0, 0.5), (0.9, 10.0, 60.0)):
        c = capacity.workers_needed(a, runtime, target)
        assert c > a and capacity.wait_exceeds(c, a, runtime, target) <= 0.05
        assert c - 1 <= a or capacity.wait_exceeds(c - 1, a, runtime, target) > 0.05


@settings(max_examples=80, deadline=None)
@given(st.floats(0, 200), st.floats(0, 200), st.floats(0.01, 30), st.floats(0, 600), st.floats(0, 600))
def test_workers_needed_grows_with_the_load_and_shrinks_with_the_target(
        a1: float, a2: float, runtime: float, t1: float, t2: float) -> None:
    low, high = sorted((a1, a2))
    short, long = sorted((t1, t2))
    assert capacity.workers_needed(low, runtime, short) <= capacity.workers_needed(high, runtime, short)
    assert capacity.workers_needed(high, runtime, long) <= capacity.workers_needed(high, runtime, short)
    assert capacity.workers_needed(high, runtime, short) > high


def test_advice_hint() -> None:
    advice = capacity.Advice("q", 60.0, 1.0, 1.0, 2, 4, 3.0, None)
    assert advice.hint == "numprocs=4 (add 2)"
    assert capacity.Advice("q", 60.0, 1.0, 1.0, 6, 4, 3.0, None).hint == "numprocs=4 would do (2 spare)"
    assert capacity.Advice("q", 0.0, None, 0.0, 1, None, None, None).hint == "no run measured in the window"
    assert math.isclose(Sums(1, 2, 3).count, 6)


def test_series_and_recent_on_seeded_history(sqlite_app: App) -> None:
    storage = sqlite_app.storage()
    now = 1_800_000_000 + 3 * 900 + 125  # 2 minutes and 5 s into a quarter of an hour
    wait = tuple(1 if bound == 2.0 else 0 for bound in WAIT_BUCKETS)
    run = tuple(1 if bound == 0.1 else 0 for bound in DURATION_BUCKETS)
    one = Sums(1, 0, 0, 0.1, 1.5, run, wait)
    minute = now // 60 * 60
    HistoryRepository(storage).add([
        HistoryRow(minute, "default", "a", one), HistoryRow(minute - 60, "default", "b", one + one),
        HistoryRow(minute - 180, "other", "a", one),  # the previous quarter of an hour
        HistoryRow(minute - 3600, "default", "a", one)])  # out of the hour's chart
    points = history.series(storage, now, "hour")
    assert len(points) == 60 and points[-1].start == minute and points[0].start == minute - 59 * 60
    assert [(p.start, p.processed) for p in points if p.processed] == [
        (minute - 180, 1), (minute - 60, 2), (minute, 1)]
    assert points[-1].wait_p50 == pytest.approx(1.5) and points[-1].run_p95 == pytest.approx(0.05 + 0.05 * 0.95)
    assert points[1].wait_p50 is None and points[1].processed == 0
    day = history.series(storage, now, "day", queue="default")
    assert len(day) == 96 and day[-1].start == now // 900 * 900 and day[-1].processed == 3
    assert day[-2].processed == 0 and day[-5].processed == 1  # the hour before: 4 steps back
    assert sum(p.processed for p in history.series(storage, now, "week", job="a")) == 3
    rates = history.recent(storage, now, minutes=2)  # 2 minutes and the current one, 5 s of it
    assert set(rates) == {"default"} and rates["default"].jobs_per_min == pytest.approx(3 / (2 + 5 / 60))
    assert rates["default"].mean_runtime == pytest.approx(0.1)
    assert history.names(storage, now - 600) == (["default", "other"], ["a", "b"])
