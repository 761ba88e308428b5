"""The benchmark harness end to end on tiny N (ictq and the Laravel reference on SQLite): it
counts every job from the jobs themselves and writes the table. Timings are not asserted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.cli import main
from bench.harness import drain_metrics, percentile
from bench.record import RECORD_SIZE, count_records, job_data, read_records, record
from bench.systems import Target


def test_records_count_and_duplicates(tmp_path: Path) -> None:
    os.environ["BENCH_OUT"] = str(tmp_path)
    try:
        for seq in (0, 1, 2, 2):
            record(seq, 123)
    finally:
        del os.environ["BENCH_OUT"]
    assert count_records(str(tmp_path)) == 4
    assert all(len(line) == RECORD_SIZE for p in tmp_path.iterdir() for line in p.read_bytes().splitlines(True))
    assert sorted(r[2] for r in read_records(str(tmp_path))) == [0, 1, 2, 2]
    target = Target(db=None, app_dir=tmp_path, out_dir=tmp_path)  # type: ignore[arg-type]
    metrics = drain_metrics(target, 3, 0)
    assert (metrics["executed"], metrics["unique"], metrics["duplicates"], metrics["lost"]) == (4, 3, 1, 0)
    assert 190 <= len(json.dumps(job_data(7))) <= 210
    assert percentile([float(v) for v in range(1, 101)], 99) == 99.0


def test_harness_end_to_end_on_sqlite(tmp_path: Path) -> None:
    readme, raw = tmp_path / "README.md", tmp_path / "results.json"
    main(["--db", "sqlite", "--systems", "ictq,laravel-ref", "--scenarios", "drain,single,latency,bulk",
          "--reps", "1", "--n", "200", "--single-n", "40", "--latency-n", "10", "--idle-seconds", "0.5",
          "--bulk-n", "500", "--timeout", "40", "--workdir", str(tmp_path), "--readme", str(readme),
          "--json", str(raw)])
    results = json.loads(raw.read_text())
    assert len(results) == 8
    assert [r for r in results if r["error"]] == []
    by = {(r["system"], r["scenario"]): r["metrics"] for r in results}
    for system in ("ictq", "laravel-ref"):
        assert (by[system, "drain"]["unique"], by[system, "drain"]["lost"]) == (200, 0)
        assert (by[system, "single"]["unique"], by[system, "single"]["lost"]) == (40, 0)
        assert by[system, "drain"]["rate"] > 0
        assert by[system, "latency"]["p50"] <= by[system, "latency"]["p99"]
        assert by[system, "bulk"]["bulk_rate"] > 0
    text = readme.read_text()
    for needle in ("| SQLite | ictq |", "| SQLite | laravel-ref |", "### Ratios", "### Targets", "cores"):
        assert needle in text
    assert not any(p.name.startswith("ictq-bench-") for p in tmp_path.iterdir())  # the run cleaned up


def test_scale_scenario_on_sqlite_writes_its_block(tmp_path: Path) -> None:
    from bench import scale

    readme = tmp_path / "README.md"
    readme.write_text("# bench\n")
    scale.main(["--db", "sqlite", "--sizes", "200,400", "--reps", "1", "--readme", str(readme)])
    text = readme.read_text()
    assert text.startswith("# bench\n") and text.count(scale.BEGIN) == 1 and text.count(scale.END) == 1
    for label, _ in scale.COMMANDS:
        assert f"| `{label}` | " in text
    assert "| 200 rows | 400 rows |" in text and "FAILED" not in text
    scale.write_readme("again", readme)  # a second run replaces the block
    assert readme.read_text().count(scale.BEGIN) == 1 and "again" in readme.read_text()


def test_dashboard_scenario_on_sqlite_times_every_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import dashboard

    monkeypatch.setattr(dashboard, "TARGET_MS", 0.0)  # every page "misses": each is profiled too
    readme, raw = tmp_path / "README.md", tmp_path / "dashboard.json"
    readme.write_text("# bench\n")
    dashboard.main(["--db", "sqlite", "--sizes", "200", "--requests", "1", "--readme", str(readme),
                    "--json", str(raw)])  # exits 1 if any page answered anything but 200
    (result,) = json.loads(raw.read_text())
    assert result["error"] is None and result["rows"] == 200
    assert set(result["status"]) == {label for label, _ in dashboard.PAGES}
    assert all(codes == [200, 200] for codes in result["status"].values()), result["status"]
    assert set(result["cold_ms"]) == set(dashboard.COLD)
    text = readme.read_text()
    assert text.startswith("# bench\n") and text.count(dashboard.BEGIN) == 1 and text.count(dashboard.END) == 1
    for label, _ in dashboard.PAGES:
        assert f"| `{label}` | " in text
        if label != dashboard.FLOOR:
            assert "error" not in result["profiles"][label], result["profiles"][label]
    assert "HTTP 500" not in text and "FAILED" not in text and "first `/failed`" in text
    assert "| `/failed` | SQLite |" in text  # the profile table: a row per page over the target


def test_dashboard_side_data_is_a_week_per_minute_queue_and_job() -> None:
    import sqlite3

    from bench import dashboard

    conn = sqlite3.connect(":memory:")
    for name in ("history", "workers"):
        text = (Path(dashboard.REPO) / "ictq" / "sql" / "sqlite" / f"{name}.sql").read_text()
        conn.executescript(text.split("-- name: schema", 1)[1].split("-- name:", 1)[0])
    now = 1_800_000_030
    for statement in dashboard.side_statements("sqlite", now):
        conn.execute(statement)
    minutes = dashboard.HISTORY_DAYS * 1440
    combos = len(dashboard.QUEUES) * len(dashboard.JOB_NAMES)
    rows, distinct, first, last = conn.execute(
        "SELECT COUNT(*), COUNT(DISTINCT minute), MIN(minute), MAX(minute) FROM ictq_history").fetchone()
    top = now // 60 * 60
    assert (rows, distinct, last, first) == (minutes * combos, minutes, top, top - (minutes - 1) * 60)
    assert conn.execute("SELECT COUNT(*) FROM (SELECT DISTINCT queue, job FROM ictq_history)").fetchone() == (combos,)
    assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT minute) FROM ictq_history_sizes").fetchone() == (
        minutes * len(dashboard.QUEUES), minutes)
    assert conn.execute("SELECT COUNT(*) FROM ictq_history_marks").fetchone() == (minutes,)
    assert conn.execute("SELECT COUNT(*), SUM(beat_at > ?) FROM ictq_workers", (now,)).fetchone() == (6, 4)
