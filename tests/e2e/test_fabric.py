"""``fab queue.*`` against the deploy kit's two real test hosts, over real SSH.

The hosts are deployed once (tests/e2e/fabric_support.py) with a real supervisord each, one
PostgreSQL database and a real SMTP server on 127.0.0.1. The tests run in file order: reading
tasks first, then the failed/retry round, reread/update, stop/start, an unknown program and a
stopped supervisord, the graceful restart, the test e-mail, unreachable hosts, and last the
check that no secret was ever printed.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.deployment import APP_DIR, NUMPROCS, PROGRAM
from tests.e2e.fabric_support import FabricHosts, fabric_hosts
from tests.support.app import wait_for
from tests.support.hosts import TestHost

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900),
              # the SMTP server requires AUTH over plain SMTP on loopback, on purpose (MAIL_PASSWORD is a vault canary)
              pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")]
TASKS = ("status", "start", "stop", "restart", "reread", "update", "size", "failed", "retry", "logs", "test-email")
CONF = f"/etc/supervisor/conf.d/{PROGRAM}.conf"


@pytest.fixture(scope="module")
def fab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FabricHosts]:
    with fabric_hosts(tmp_path_factory.mktemp("fabric")) as deployed:
        yield deployed


def blocks(output: str) -> dict[str, list[str]]:
    """stdout of a queue task: host name -> the lines of its block."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = found.setdefault(line[:-1], [])
        elif current is not None and line.startswith("  "):
            current.append(line[2:])
    return found


def ok(proc: subprocess.CompletedProcess[str]) -> dict[str, list[str]]:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return blocks(proc.stdout)


def running(fab: FabricHosts) -> dict[str, dict[str, int]]:
    """Every worker RUNNING on both hosts: host -> process -> pid."""
    pids = {}
    for host in fab.hosts:
        states = fab.deployment.workers(host)
        assert len(states) == NUMPROCS and all(s == "RUNNING" for s, _ in states.values()), f"{host.name}: {states}"
        pids[host.name] = {name: pid for name, (_, pid) in states.items()}
    return pids


def failed_ids(fab: FabricHosts) -> dict[int, str]:
    """failed_jobs as the control node sees it: id -> job name."""
    result = fab.app.ictq("failed", "--json")
    assert result.returncode == 0, result.stderr
    return {row["id"]: row["name"] for row in json.loads(result.stdout)}


# -- without hosts ------------------------------------------------------------------------------


def test_fab_list_shows_every_task_with_its_help(fab: FabricHosts) -> None:
    listed = fab.fab("--list")
    assert listed.returncode == 0, listed.stderr
    for name in TASKS:
        line = next((ln for ln in listed.stdout.splitlines() if ln.split()[:1] == [f"queue.{name}"]), None)
        assert line is not None and len(line.split()) > 2, f"queue.{name} without help in:\n{listed.stdout}"
    helped = fab.fab("--help", "queue.test-email")
    assert helped.returncode == 0 and "--to=STRING" in helped.stdout and "--wait=STRING" in helped.stdout


def test_a_task_refuses_to_run_without_hosts_and_says_how_to_name_them(fab: FabricHosts) -> None:
    for name in ("status", "stop", "test-email"):
        proc = fab.fab(f"queue.{name}", *(["--to=ops@example.com"] if name == "test-email" else []))
        assert proc.returncode == 2, proc
        assert proc.stdout == "" and "Traceback" not in proc.stderr
        message = proc.stderr.strip()
        assert len(message.splitlines()) == 1 and f"fab -H host1,host2 queue.{name}" in message, message
        assert "queue.inventory" in message
    assert running(fab), "nothing was stopped"


def test_bad_options_are_one_line_errors(fab: FabricHosts) -> None:
    cases = [
        (("queue.retry",), "give --id=ID"),
        (("queue.retry", "--id=1", "--all"), "not both"),
        (("queue.retry", "--id=x; rm -rf /"), "is not a failed job's ID or UUID"),
        (("queue.logs", "--lines=0"), "--lines='0'"),
        (("queue.test-email",), "--to=ADDRESS"),
        (("queue.test-email", "--to=not-an-address"), "is not an e-mail address"),
        (("queue.test-email", "--to=ops@example.com", "--wait=soon"), "is not a number of seconds"),
    ]
    for args, message in cases:
        proc = fab.fab_h(*args)
        assert proc.returncode == 2, (args, proc)
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stdout == ""


# -- reading ------------------------------------------------------------------------------------


def _check_status(fab: FabricHosts, proc: subprocess.CompletedProcess[str]) -> None:
    found = ok(proc)
    pids = running(fab)
    assert list(found) == ["worker1", "worker2"], proc.stdout
    for host, lines in found.items():
        assert lines[0] == f"workers: all {NUMPROCS} running", lines
        for name, pid in pids[host].items():
            assert any(ln.split()[:2] == [name, "RUNNING"] and f"pid {pid}," in ln for ln in lines), (name, lines)
        assert any(re.fullmatch(r"queue: \d+ job\(s\) .*; \d+ failed \(\d+ in the last hour\)", ln) for ln in lines)


def test_status_with_H_on_two_hosts(fab: FabricHosts) -> None:
    _check_status(fab, fab.fab_h("queue.status"))


def test_status_from_the_inventory_workers_group(fab: FabricHosts) -> None:
    _check_status(fab, fab.fab("queue.status", inventory=fab.inventory))
    # -H names of the inventory take its connection settings (no SSH config given here).
    _check_status(fab, fab.fab("-H", "worker1,worker2", "queue.status", inventory=fab.inventory))


def test_size_failed_and_retry_by_id_and_all(fab: FabricHosts) -> None:
    before = set(failed_ids(fab))
    for n in (1, 2, 3):
        assert fab.app.ictq("dispatch", "fabric.flaky", "--data", json.dumps({"n": n})).returncode == 0
    def new_failures() -> list[int] | None:
        found = sorted(set(failed_ids(fab)) - before)
        return found if len(found) == 3 else None

    ids: list[int] = wait_for(new_failures, timeout=60, interval=1, what="three failed flaky jobs")

    sizes = ok(fab.fab_h("queue.size"))
    assert set(sizes) == {"worker1", "worker2"}
    for lines in sizes.values():
        total = next(ln for ln in lines if ln.startswith("total"))
        assert int(total.split()[6]) == len(before) + 3, lines  # the "failed" column

    listed = ok(fab.fab_h("queue.failed", "--limit=10"))
    for lines in listed.values():
        shown = {int(ln.split()[0]) for ln in lines[1:] if ln.split() and ln.split()[0].isdigit()}
        assert set(ids) <= shown, lines
        assert any("flaky job" in ln for ln in lines)

    for n in (1, 2, 3):
        fab.allow(n)

    def oks() -> set[str]:
        return {r[1] for r in fab.records() if r[0] == "ok"}

    retried = ok(fab.fab_h("queue.retry", f"--id={ids[0]}"))
    assert list(retried) == ["worker1"], "retry runs on one host"
    assert any(f"re-queued failed job {ids[0]} (fabric.flaky" in ln for ln in retried["worker1"]), retried
    wait_for(lambda: len(oks()) == 1, timeout=60, interval=1, what="the retried job ran")
    assert sorted(set(failed_ids(fab)) - before) == ids[1:]

    everything = ok(fab.fab("queue.retry", "--all", inventory=fab.inventory))
    assert any("re-queued 2 failed job(s)" in ln for ln in everything["worker1"]), everything
    wait_for(lambda: oks() == {"1", "2", "3"}, timeout=60, interval=1, what="every retried job ran")
    assert set(failed_ids(fab)) == before

    gone = fab.fab_h("queue.retry", f"--id={ids[0]}")
    assert gone.returncode != 0 and "FAILED:" in gone.stdout and "Traceback" not in gone.stderr


def test_logs_show_the_last_lines_of_each_hosts_queue_log(fab: FabricHosts) -> None:
    found = ok(fab.fab_h("queue.logs", "--lines=5"))
    assert set(found) == {"worker1", "worker2"}
    for host in fab.hosts:
        lines = found[host.name]
        assert lines[0] == f"{APP_DIR}/storage/logs/queue.log (last 5 lines):", lines
        shown = lines[1:]
        log = fab.sudo(host, f"cat {APP_DIR}/storage/logs/queue.log").splitlines()
        # The last 5 lines as they were then: a run of the log (which may have grown since), all
        # 5 of them, or fewer only when they were the whole file (a rotation shortly before).
        assert 1 <= len(shown) <= 5, lines
        starts = [i for i in range(len(log) - len(shown) + 1) if log[i:i + len(shown)] == shown]
        assert starts, f"{host.name}: {shown!r} is not a run of lines of its queue.log"
        assert len(shown) == 5 or starts[0] == 0, f"{host.name}: {len(shown)} lines of a longer log"


# -- Supervisor ---------------------------------------------------------------------------------


def test_reread_and_update_apply_a_changed_program_file(fab: FabricHosts) -> None:
    host = fab.hosts[0]
    before = running(fab)
    unchanged = ok(fab.fab_h("queue.reread"))
    assert all(lines == ["No config updates to processes"] for lines in unchanged.values()), unchanged
    original = fab.sudo(host, f"cat {CONF}")
    fab.sudo(host, f"sed -i 's/^stopwaitsecs=.*/stopwaitsecs=76/' {CONF}")
    try:
        changed = ok(fab.fab_h("queue.reread"))
        assert changed["worker1"] == [f"{PROGRAM}: changed"] and changed["worker2"] == \
            ["No config updates to processes"], changed
        updated = ok(fab.fab_h("queue.update"))
        assert any("updated process group" in ln for ln in updated["worker1"]), updated
    finally:
        fab.deployment.sudo(host, f"cat > {CONF} <<'EOF'\n{original}EOF")
    ok(fab.fab_h("queue.update", hosts="worker1"))
    after = wait_for(lambda: _all_running(fab), timeout=60, interval=1, what="workers running after update")
    assert set(after["worker1"].values()).isdisjoint(before["worker1"].values()), "worker1 restarted by update"
    assert after["worker2"] == before["worker2"], "worker2 was not touched"


def _all_running(fab: FabricHosts) -> dict[str, dict[str, int]] | None:
    try:
        return running(fab)
    except AssertionError:
        return None


def test_stop_then_status_reports_exit_3_then_start(fab: FabricHosts) -> None:
    stopped = ok(fab.fab_h("queue.stop"))
    for host in fab.hosts:
        assert stopped[host.name][-1] == f"workers: all {NUMPROCS} stopped", stopped
        assert all(state == "STOPPED" for state, _ in fab.deployment.workers(host).values())
    status = fab.fab_h("queue.status")
    assert status.returncode == 3, status
    for lines in blocks(status.stdout).values():
        assert f"FAILED: {NUMPROCS} of {NUMPROCS} workers not running (STOPPED) (supervisorctl exit 3: some stopped)" \
            in lines, lines
    assert "queue.status failed on 2 of 2 host(s): worker1, worker2" in status.stderr

    started = ok(fab.fab("queue.start", inventory=fab.inventory))
    assert all(lines[-1] == f"workers: all {NUMPROCS} running" for lines in started.values()), started
    running(fab)
    ok(fab.fab_h("queue.status"))


def test_exit_4_unknown_program_and_supervisord_down(fab: FabricHosts) -> None:
    unknown = fab.fab_h("queue.status", env={"FABRIC_QUEUE_PROGRAM": "no-such-program"})
    assert unknown.returncode == 4, unknown
    for lines in blocks(unknown.stdout).values():
        assert any("Supervisor does not know the program 'no-such-program' (supervisorctl exit 4: unknown program)"
                   in ln for ln in lines), lines

    host = fab.hosts[1]
    fab.sudo(host, "service supervisor stop")
    try:
        wait_for(lambda: _supervisord_gone(fab, host), timeout=90, interval=1, what="supervisord gone on worker2")
        down = fab.fab_h("queue.status")
        assert down.returncode == 4, down
        found = blocks(down.stdout)
        assert found["worker1"][0] == f"workers: all {NUMPROCS} running", found
        assert any("supervisord is not running (supervisorctl exit 4" in ln for ln in found["worker2"]), found
        assert "failed on 1 of 2 host(s): worker2" in down.stderr
    finally:
        fab.sudo(host, "service supervisor start")
    wait_for(lambda: _all_running(fab), timeout=60, interval=1, what="supervisord back on worker2")


def _supervisord_gone(fab: FabricHosts, host: TestHost) -> bool:
    """supervisord has removed its pid file and its socket (it is gone, and can be started again)."""
    alive = "test -e /var/run/supervisord.pid || test -S /var/run/supervisor.sock"
    return fab.deployment.sudo(host, alive).returncode == 1


def test_restart_waits_for_the_current_jobs_and_gives_new_pids(fab: FabricHosts) -> None:
    before = running(fab)
    seconds = 6
    for n in (11, 12):
        data = json.dumps({"n": n, "seconds": seconds})
        assert fab.app.ictq("dispatch", "fabric.slow", "--data", data).returncode == 0

    def both_started() -> list[list[str]] | None:
        found = [r for r in fab.records() if r[0] == "start" and r[1] in ("11", "12")]
        return found if len(found) == 2 else None

    starts: list[list[str]] = wait_for(both_started, timeout=30, interval=0.2, what="both slow jobs running")
    began = time.monotonic()
    restarted = ok(fab.fab_h("queue.restart"))
    took = time.monotonic() - began
    after = running(fab)
    records = fab.records()
    for _, n, host, pid in starts:
        assert ["done", n, host, pid] in records, f"slow job {n} did not finish in its worker {pid}: {records}"
        assert int(pid) in before[host].values() and int(pid) not in after[host].values()
    assert took >= seconds - 3, f"restart took {took:.1f}s: it did not wait for the jobs"
    for host in fab.hosts:
        assert set(after[host.name].values()).isdisjoint(before[host.name].values()), (before, after)
        lines = restarted[host.name]
        for name, pid in after[host.name].items():
            assert any(f"{name.split(':')[-1]} {before[host.name][name]} -> {pid}" in ln for ln in lines), lines
    assert not any(name == "fabric.slow" for name in failed_ids(fab).values())


# -- mail -------------------------------------------------------------------------------------


def test_test_email_delivers_both_notifications(fab: FabricHosts) -> None:
    already = len(fab.smtp.received)
    sent = ok(fab.fab_h("queue.test-email", "--to=ops@example.com", "--wait=60"))
    assert list(sent) == ["worker1"], "test-email runs on one host"
    lines = sent["worker1"]
    assert "both notifications sent to ops@example.com" in lines, lines
    assert sum(ln.startswith("sent ") for ln in lines) == 2, lines
    received = fab.smtp.wait_for(already + 2, timeout=10)[already:]
    assert ("fab-e2e", True) in fab.smtp.logins and all(login == "fab-e2e" for login in (r.login for r in received))
    assert len(received) == 2
    assert all(r.rcpt_tos == ("ops@example.com",) for r in received)
    subjects = {str(r.message["Subject"]) for r in received}
    assert len(subjects) == 2, subjects


# -- hosts that are down ------------------------------------------------------------------------


def _dead_address() -> str:
    import socket

    for last in range(250, 200, -1):
        address = f"127.0.0.{last}"
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((address, 22)) != 0:
                return address
    raise AssertionError("no loopback address without an sshd")


def test_a_host_that_is_down_is_reported_and_the_others_still_served(fab: FabricHosts) -> None:
    dead = _dead_address()
    proc = fab.fab_h("queue.status", hosts=f"worker1,{dead},worker2")
    assert proc.returncode == 1, proc
    assert "Traceback" not in proc.stderr
    found = blocks(proc.stdout)
    assert list(found) == ["worker1", dead, "worker2"], proc.stdout
    assert found["worker1"][0] == found["worker2"][0] == f"workers: all {NUMPROCS} running"
    refused = f"unreachable: connection refused by {dead} (port 22): is the host or its sshd down?"
    assert found[dead] == [f"FAILED: {refused}"]
    assert proc.stderr.strip() == f"queue.status failed on 1 of 3 host(s): {dead}"

    mail = ok(fab.fab_h("queue.test-email", "--to=ops@example.com", hosts=f"{dead},worker2"))
    assert mail[dead] == [f"skipped: {refused}"]
    assert "both notifications sent to ops@example.com" in mail["worker2"]


def test_an_unknown_host_key_is_refused(fab: FabricHosts, tmp_path: Path) -> None:
    config = fab.ssh_config.read_text().replace(str(fab.fleet.known_hosts), str(tmp_path / "empty_known_hosts"))
    (tmp_path / "ssh_config").write_text(config)
    proc = fab.fab("-S", str(tmp_path / "ssh_config"), "-H", "worker1", "queue.status")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert blocks(proc.stdout)["worker1"] == [
        "FAILED: unknown host key for worker1: add it to known_hosts (ssh-keyscan, or ssh once), or set "
        "queue.host_key_checking: false"], proc.stdout


def test_secrets_were_never_printed(fab: FabricHosts) -> None:
    assert len(fab.outputs) > 20
    canaries = (fab.deployment.canary_db, fab.deployment.canary_mail)
    for host in fab.hosts:
        env = fab.sudo(host, f"cat {APP_DIR}/.env")
        assert all(canary in env for canary in canaries), "the canaries reached the hosts"
    for output in fab.outputs:
        for canary in canaries:
            assert canary not in output
