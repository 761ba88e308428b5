"""``Every`` and ``Sampled``: the one "at most every N seconds" rule (a fake clock, no sleeping)."""

from __future__ import annotations

from ictq.pace import Every


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_every_is_due_at_once_then_once_per_interval() -> None:
    clock = Clock()
    every = Every(60, clock)
    seen = []
    for step in range(0, 200, 10):
        clock.now = 1000.0 + step
        seen.append(every.due())
    assert [step for step, due in zip(range(0, 200, 10), seen, strict=True) if due] == [0, 60, 120, 180]


def test_a_late_call_restarts_the_interval_from_then() -> None:
    clock = Clock()
    every = Every(60, clock)
    assert every.due()
    clock.now += 150
    assert every.due()
    clock.now += 59
    assert not every.due()
    clock.now += 1
    assert every.due()
