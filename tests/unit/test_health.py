"""The health verdict: thresholds, the worst check wins, one Nagios line."""

from __future__ import annotations

import pytest

from ictq import health
from ictq.ops import QueueSize


def size(queue: str, pending: int = 0, age: int | None = None, failed_hour: int = 0) -> QueueSize:
    return QueueSize(queue, pending, 0, 0, age, failed_hour, failed_hour)


def test_thresholds_parse_one_value_or_a_pair() -> None:
    assert health.parse_threshold("5") == health.Threshold(5, 5)
    assert health.parse_threshold("5,10") == health.Threshold(5, 10)
    assert health.parse_threshold("3,1", minimum=True) == health.Threshold(3, 1, minimum=True)
    for bad in ("x", "-1", "1,2,3", "", "10,5"):
        with pytest.raises(ValueError):
            health.parse_threshold(bad)
    with pytest.raises(ValueError):
        health.parse_threshold("1,3", minimum=True)


def test_maximum_and_minimum_states() -> None:
    upper = health.parse_threshold("10,20")
    assert [upper.state(v) for v in (0, 10, 11, 20, 21)] == [0, 0, 1, 1, 2]
    lower = health.parse_threshold("2,1", minimum=True)
    assert [lower.state(v) for v in (3, 2, 1, 0)] == [0, 0, 1, 2]


def test_all_fine_is_ok_with_perfdata() -> None:
    report = health.judge([size("default", 3, 4)], 2, health.Thresholds())
    assert report.state == health.OK
    assert report.line.startswith("ICTQ OK - largest queue default has 3 jobs")
    assert report.line.endswith("| size=3;1000;10000;0 oldest_age=4s;300;900;0 failed_1h=0;10;100;0 workers=2;1:;1:;0")


def test_the_worst_check_decides_and_only_its_problems_are_named() -> None:
    thresholds = health.Thresholds(max_size=health.parse_threshold("5,50"), max_age=health.parse_threshold("60"))
    report = health.judge([size("default", 7, 10), size("emails", 1, 61)], 1, thresholds)
    assert report.state == health.CRITICAL
    summary = report.line.split(" | ")[0]
    assert summary == "ICTQ CRITICAL - oldest pending job waited 61s on emails (max 60)"
    warning = health.judge([size("default", 7, 10)], 1, thresholds)
    assert warning.state == health.WARNING and "largest queue default has 7 jobs (max 5,50)" in warning.line


def test_failures_add_up_across_queues_and_missing_workers_are_critical() -> None:
    report = health.judge([size("a", failed_hour=6), size("b", failed_hour=6)], 0, health.Thresholds())
    assert report.state == health.CRITICAL
    assert "0 worker(s) alive" in report.line
    only_failed = health.judge([size("a", failed_hour=6), size("b", failed_hour=6)], 1, health.Thresholds())
    assert only_failed.state == health.WARNING and "12 failed in the last hour (max 10,100)" in only_failed.line


def test_unknown_is_one_line() -> None:
    report = health.unknown("database unavailable:\n  connection refused")
    assert report.state == health.UNKNOWN
    assert report.line == "ICTQ UNKNOWN - database unavailable: connection refused"
