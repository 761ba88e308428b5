"""Example job module for the demo application (ICTQ_JOBS=jobs)."""

from __future__ import annotations

import ictq


@ictq.job("demo.greet", tries=3, backoff=[1, 5])
def greet(name: str) -> None:
    context = ictq.current_job()
    attempt = context.attempt if context else 1
    print(f"hello, {name} (attempt {attempt})", flush=True)


@ictq.job("demo.unreliable", tries=2, backoff=1)
def unreliable(code: int) -> None:
    raise RuntimeError(f"upstream answered {code}")
