"""The benchmark's run set, without running it: the default scenarios (scale included), --quick,
the PgBouncer dialects (their parsing, plan, .env, pgbouncer ini) and the PgBouncer/direct table.
No database, no process; no duration is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import dbs, pgbouncer
from bench.cli import QUICK_DASHBOARD_SIZES, QUICK_SCALE_SIZES, README, _full, dashboard_argv, parse_args, scale_argv
from bench.harness import (
    DASHBOARD,
    DASHBOARD_SIZES,
    PGBOUNCER_SCENARIOS,
    SCALE,
    SCALE_SIZES,
    SCENARIOS,
    Options,
    Result,
    Runner,
)
from bench.report import DASH, TIMES, Report

PGB = dbs.PGBOUNCER_DIALECTS


def test_the_default_run_is_every_scenario_scale_then_dashboard_last_on_every_database() -> None:
    options, args = parse_args([])
    assert options.scenarios == (*SCENARIOS, SCALE, DASHBOARD)
    assert options.dialects == dbs.ALL_DIALECTS
    assert set(PGB) < set(options.dialects) and set(dbs.DIALECTS) < set(options.dialects)
    assert options == _full(options)  # a plain run is the full run: it writes the README
    assert scale_argv(options, args.readme) == [
        "--db", "sqlite,pgsql,mariadb", "--reps", "3", "--sizes", "10000,1000000", "--readme", str(README)]
    assert dashboard_argv(options, args.readme) == [
        "--db", "sqlite,pgsql,mariadb", "--requests", "7", "--sizes", "10000,1000000", "--readme", str(README)]
    planned = {step[3] for step in Runner(options).plan()}
    assert SCALE not in planned and DASHBOARD not in planned  # bench.cli runs them, after the Runner


def test_quick_leaves_scale_out_unless_asked_then_small() -> None:
    options, args = parse_args(["--quick"])
    assert SCALE not in options.scenarios and "rss" not in options.scenarios
    assert scale_argv(options, args.readme) is None
    assert options != _full(options)
    options, args = parse_args(["--quick", "--scenarios", "scale"])
    argv = scale_argv(options, args.readme)
    assert argv is not None and argv[argv.index("--sizes") + 1] == ",".join(str(n) for n in QUICK_SCALE_SIZES)
    assert argv[argv.index("--readme") + 1] == "-"  # small sizes never replace the README's figures
    assert QUICK_SCALE_SIZES != SCALE_SIZES


def test_quick_leaves_the_dashboard_out_unless_asked_then_small() -> None:
    options, args = parse_args(["--quick"])
    assert DASHBOARD not in options.scenarios and dashboard_argv(options, args.readme) is None
    options, args = parse_args(["--quick", "--scenarios", "dashboard"])
    argv = dashboard_argv(options, args.readme)
    assert argv is not None and argv[argv.index("--sizes") + 1] == ",".join(str(n) for n in QUICK_DASHBOARD_SIZES)
    assert argv[argv.index("--requests") + 1] == "3" and argv[-2:] == ["--readme", "-"]
    assert QUICK_DASHBOARD_SIZES != DASHBOARD_SIZES
    options, args = parse_args(["--scenarios", "scale,dashboard", "--db", "pgsql"])  # the two alone: README
    assert dashboard_argv(options, args.readme) == [
        "--db", "pgsql", "--requests", "7", "--sizes", "10000,1000000", "--readme", str(README)]
    assert scale_argv(options, args.readme)[-1] == str(README)  # type: ignore[index]
    options, args = parse_args(["--scenarios", "dashboard", "--dashboard-sizes", "100", "--dashboard-requests", "2"])
    assert dashboard_argv(options, args.readme)[1:] == [  # type: ignore[index]
        "sqlite,pgsql,mariadb", "--requests", "2", "--sizes", "100", "--readme", "-"]
    options, args = parse_args(["--scenarios", "drain"])
    assert dashboard_argv(options, args.readme) is None


def test_scenarios_pick_or_leave_out_scale() -> None:
    options, args = parse_args(["--scenarios", "drain,latency"])
    assert scale_argv(options, args.readme) is None
    options, args = parse_args(["--scenarios", "scale", "--db", "pgsql,pgsql-pgbouncer-session"])
    assert scale_argv(options, args.readme) == [
        "--db", "pgsql", "--reps", "3", "--sizes", "10000,1000000", "--readme", str(README)]
    options, args = parse_args(["--scenarios", "scale", "--db", "pgbouncer"])
    assert scale_argv(options, args.readme) is None  # no server database among --db
    options, args = parse_args(["--db", "pgsql"])  # a narrowed run keeps the README's block
    assert scale_argv(options, args.readme)[-2:] == ["--readme", "-"]  # type: ignore[index]
    options, args = parse_args(["--scenarios", "scale", "--scale-sizes", "100,200", "--readme", "-"])
    assert scale_argv(options, args.readme)[-4:] == ["--sizes", "100,200", "--readme", "-"]  # type: ignore[index]


def test_db_names_the_pgbouncer_dialects_and_the_alias() -> None:
    options, _ = parse_args(["--db", "pgbouncer,pgsql"])
    assert options.dialects == (*PGB, "pgsql")
    options, _ = parse_args(["--db", "pgsql-pgbouncer-transaction,pgbouncer"])
    assert options.dialects == (dbs.PGBOUNCER_TRANSACTION, dbs.PGBOUNCER_SESSION, dbs.PGBOUNCER_TRANSACTION_LISTEN)
    with pytest.raises(SystemExit):
        parse_args(["--db", "pgsql-pgbouncer-statement"])
    with pytest.raises(SystemExit):
        parse_args(["--rss-dialects", "pgsql-pgbouncer-session"])
    with pytest.raises(SystemExit):
        parse_args(["--scale-sizes", "ten"])


def test_plan_runs_only_ictq_through_pgbouncer() -> None:
    options = Options(dialects=("pgsql", *PGB), reps=2)
    steps = Runner(options).plan()
    through = [s for s in steps if s[1] in PGB]
    assert {s[2] for s in through} == {"ictq"}
    assert {s[2] for s in steps if s[1] == "pgsql"} >= {"ictq", "pgqueuer", "procrastinate", "laravel-ref"}
    for dialect in PGB:
        assert {s[3] for s in through if s[1] == dialect} == set(PGBOUNCER_SCENARIOS[dialect])
    assert {s[3] for s in through if s[1] == dbs.PGBOUNCER_TRANSACTION_LISTEN} == {"latency"}
    assert not [s for s in steps if s[3] == "rss" and s[1] in PGB]
    assert {s[0] for s in through} == {1, 2}


def test_pgbouncer_env_and_database() -> None:
    assert dbs.pgbouncer_env(dbs.PGBOUNCER_SESSION, 6432) == {
        "DB_HOST": "127.0.0.1", "DB_PORT": "6432", "DB_PGBOUNCER": "session"}
    assert dbs.pgbouncer_env(dbs.PGBOUNCER_TRANSACTION, 6432)["DB_PGBOUNCER"] == "transaction"
    assert "DB_LISTEN_HOST" not in dbs.pgbouncer_env(dbs.PGBOUNCER_TRANSACTION, 6432)  # polls
    listen = dbs.pgbouncer_env(dbs.PGBOUNCER_TRANSACTION_LISTEN, 6432)
    assert (listen["DB_LISTEN_HOST"], listen["DB_LISTEN_PORT"]) == ("127.0.0.1", str(dbs.PG_PORT))
    db = dbs.Database("pgsql", "x", "127.0.0.1", 6432, "root", tuple(listen.items()))
    env = db.ictq_env()
    assert (env["DB_CONNECTION"], env["DB_PORT"], env["DB_PGBOUNCER"], env["DB_DATABASE"]) == (
        "pgsql", "6432", "transaction", "x")
    assert {dbs.server(d) for d in PGB} == {"pgsql"} and dbs.server("mariadb") == "mariadb"
    assert all(dbs.LABEL[d].startswith("PostgreSQL via PgBouncer") for d in PGB)


def test_pgbouncer_ini(tmp_path: Path) -> None:
    text = pgbouncer.render_ini(tmp_path, 40123, "transaction", pool_size=7)
    lines = set(text.splitlines())
    assert f"* = host=127.0.0.1 port={dbs.PG_PORT}" in lines
    for line in ("listen_addr = 127.0.0.1", "listen_port = 40123", "pool_mode = transaction", "auth_type = trust",
                 f"auth_file = {tmp_path / 'userlist.txt'}", f"logfile = {tmp_path / 'pgbouncer.log'}",
                 "default_pool_size = 7", "unix_socket_dir =", "pidfile ="):
        assert line in lines
    assert text.index("[databases]") < text.index("[pgbouncer]")
    assert "pool_mode = session" in pgbouncer.render_ini(tmp_path, 1, "session")
    assert pgbouncer.render_userlist() == f'"{dbs.USER}" ""\n'
    with pytest.raises(ValueError):
        pgbouncer.render_ini(tmp_path, 1, "statement")


def test_report_sets_pgbouncer_beside_direct_within_each_repetition() -> None:
    results = []
    for rep, (direct, session) in enumerate([(1000.0, 500.0), (2000.0, 1500.0), (4000.0, 1000.0)], start=1):
        results.append(Result(rep, "pgsql", "ictq", "drain", {"rate": direct}))
        results.append(Result(rep, dbs.PGBOUNCER_SESSION, "ictq", "drain", {"rate": session}))
        results.append(Result(rep, "pgsql", "ictq", "latency", {"p50": 2.0, "p99": 4.0}))
        results.append(Result(rep, dbs.PGBOUNCER_TRANSACTION, "ictq", "latency", {"p50": 3.0, "p99": 2.0}))
    results.append(Result(1, dbs.PGBOUNCER_TRANSACTION, "ictq", "drain", error="boom"))
    report = Report(results, Options(dialects=(*PGB, "pgsql"), reps=3))
    ratio = report.via_ratio(dbs.PGBOUNCER_SESSION, "drain", "rate")
    assert ratio is not None and (ratio.median, ratio.low, ratio.high, ratio.count) == (0.5, 0.25, 0.75, 3)
    assert report.via_ratio(dbs.PGBOUNCER_TRANSACTION, "drain", "rate") is None
    text = report.markdown()
    assert "### ictq through PgBouncer / ictq on PostgreSQL direct" in text
    x, to, none = TIMES, DASH, "\u2014"
    assert f"| PgBouncer (session) | 0.50{x} (0.25{x}{to}0.75{x}) |" in text
    assert (f"| PgBouncer (transaction, polling) | {none} | {none} | {none} | 1.50{x} (1.50{x}{to}1.50{x}) | "
            f"0.50{x} (0.50{x}{to}0.50{x}) |") in text
    drain = text.split("### Drain")[1].split("###")[0]
    assert drain.index("| PostgreSQL | ictq |") < drain.index("| PostgreSQL via PgBouncer (session) | ictq |")


def test_a_run_keeps_the_hand_written_notes_and_the_scale_block(tmp_path: Path) -> None:
    from bench import cli, dashboard, scale

    readme = tmp_path / "README.md"
    readme.write_text(f"old tables\n{cli.NOTES[0]}\nbefore/after by hand\n{cli.NOTES[1]}\n\n"
                      f"{scale.BEGIN}\nscale figures\n{scale.END}\n\n{dashboard.BEGIN}\npages\n{dashboard.END}\n")
    assert dashboard.kept_block(readme) == f"{dashboard.BEGIN}\npages\n{dashboard.END}"
    written = cli.readme(Report([], Options(reps=1)), [("cores", "2")], "python -m bench", 1.0, 0.5, readme, 0.7)
    assert written.index(cli.NOTES[0]) < written.index(scale.BEGIN) < written.index(dashboard.BEGIN)
    assert "the scale scenario 0.5 min, the dashboard scenario 0.7 min" in written
    assert scale.kept_block(readme, *cli.NOTES) == f"{cli.NOTES[0]}\nbefore/after by hand\n{cli.NOTES[1]}"
    assert scale.kept_block(readme) == f"{scale.BEGIN}\nscale figures\n{scale.END}"
    assert scale.kept_block(tmp_path / "missing.md") == ""
