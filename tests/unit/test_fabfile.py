"""The fabfile's pieces without SSH: host resolution, ssh options, Supervisor's exit codes, and
whole ``fab`` runs against Fabric's mocked SSH (``fabric.testing``). The real thing, over real
SSH to real hosts, is tests/e2e/test_fabric.py.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fabric.main import make_program
from fabric.testing.base import Command, MockRemote, Session

from fabfile import DEFAULTS
from fabfile.hosts import HostsError, resolve, ssh_options
from fabfile.remote import Output
from fabfile.settings import App, SettingsError, role_defaults
from fabfile.supervisor import processes, summary

REPO = Path(__file__).resolve().parents[2]
STATUS_OK = (b"laravel-worker:laravel-worker_00   RUNNING   pid 101, uptime 0:01:00\n"
             b"laravel-worker:laravel-worker_01   RUNNING   pid 102, uptime 0:01:00\n")
STATUS_STOPPED = (b"laravel-worker:laravel-worker_00   STOPPED   Jan 01 10:00 AM\n"
                  b"laravel-worker:laravel-worker_01   RUNNING   pid 102, uptime 0:01:00\n")
SIZE = (b'{"queues": [], "total": {"queue": "total", "pending": 2, "delayed": 1, "reserved": 0, '
        b'"oldest_pending_age": 7, "failed": 4, "failed_last_hour": 1, "size": 3}}')


def app_command(*argv: str, user: str = "ictq", app_dir: str = "/srv/ict") -> str:
    script = f"cd {app_dir} && exec {shlex.join(argv)}"
    return f"sudo -n -H -u {user} -- {shlex.join(['sh', '-c', script])}"


def ictq_command(*args: str) -> str:
    return app_command("/opt/ictq/venv/bin/ictq", "--env-file=/srv/ict/.env", *args)


def root_command(*argv: str) -> str:
    return f"sudo -n -- {shlex.join(argv)}"


SUPERVISOR_STATUS = root_command("supervisorctl", "status", "laravel-worker:*")


# -- settings and hosts -----------------------------------------------------------------------


def test_the_defaults_are_the_deploy_roles() -> None:
    assert role_defaults() == App(user="ictq", app_dir="/srv/ict", venv="/opt/ictq/venv", program="laravel-worker",
                                  log_file="storage/logs/queue.log")


def config(**changes: Any) -> dict[str, Any]:
    return {**DEFAULTS, "inventory": "", **changes}


def test_without_hosts_or_inventory_the_error_says_how_to_name_them() -> None:
    with pytest.raises(HostsError, match=r"^no hosts: name them with -H \(fab -H host1,host2 queue.stop\)"):
        resolve((), config(), "queue.stop")


def write_inventory(root: Path) -> Path:
    (root / "group_vars" / "workers").mkdir(parents=True)
    (root / "host_vars").mkdir()
    (root / "hosts.ini").write_text(
        "[workers]\nw1 ansible_host=10.0.0.11\nw2 ansible_host=10.0.0.12 ansible_port=2222\n\n"
        "[other]\nbastion\n\n[workers:vars]\nansible_user=deploy\nansible_ssh_private_key_file=~/.ssh/deploy\n"
        "ansible_ssh_common_args='-o UserKnownHostsFile=/etc/kh -o StrictHostKeyChecking=yes'\n")
    (root / "group_vars" / "workers" / "vars.yml").write_text("ictq_worker_app_dir: /srv/app\nictq_worker_tries: 4\n")
    # Encrypted files are skipped (no vault password is asked for): this one is not even valid.
    (root / "group_vars" / "workers" / "vault.yml").write_text("$ANSIBLE_VAULT;1.1;AES256\n6162636465\n")
    (root / "host_vars" / "w2.yml").write_text("ictq_worker_user: app2\n")
    return root / "hosts.ini"


def test_the_inventory_workers_group_with_its_connection_settings_and_paths(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path)
    w1, w2 = resolve((), config(inventory=str(inventory)), "queue.status")
    assert (w1.name, w1.address, w1.port, w1.user) == ("w1", "10.0.0.11", None, "deploy")
    assert (w2.name, w2.address, w2.port, w2.user) == ("w2", "10.0.0.12", 2222, "deploy")
    assert w1.key_files == (str(Path("~/.ssh/deploy").expanduser()),)
    assert w1.ssh_options == {"userknownhostsfile": "/etc/kh", "stricthostkeychecking": "yes"}
    assert (w1.app.app_dir, w1.app.user) == ("/srv/app", "ictq")
    assert (w2.app.app_dir, w2.app.user) == ("/srv/app", "app2")
    # Explicit Fabric settings win over the inventory.
    [w2_again] = resolve(("w2",), config(inventory=str(inventory), app_dir="/srv/x"), "queue.status")
    assert (w2_again.app.app_dir, w2_again.port) == ("/srv/x", 2222)


def test_H_names_outside_the_inventory_are_plain_hosts(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path)
    plain, known = resolve(("other.example.com", "w1", "w1"), config(inventory=str(inventory)), "queue.status")
    assert (plain.name, plain.address, plain.user, plain.key_files) == ("other.example.com", "other.example.com",
                                                                        None, ())
    assert known.address == "10.0.0.11"


def test_inventory_errors_are_one_line(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path)
    with pytest.raises(HostsError, match=r"has no group 'web' \(its groups: other, workers\)$"):
        resolve((), config(inventory=str(inventory), group="web"), "queue.status")
    with pytest.raises(HostsError, match=r"^the inventory .*/nope does not exist$"):
        resolve((), config(inventory=str(tmp_path / "nope")), "queue.status")
    (tmp_path / "bad.ini").write_text("[workers\nw1 x=\n")
    with pytest.raises(HostsError, match=r"^cannot parse the inventory .*bad.ini: Failed to parse inventory"):
        resolve((), config(inventory=str(tmp_path / "bad.ini")), "queue.status")
    (tmp_path / "group_vars" / "workers" / "vars.yml").write_text("ictq_worker_app_dir: '{{ base }}/app'\n")
    with pytest.raises(Exception, match=r"ictq_worker_app_dir in the inventory \(host w1\) is a template"):
        resolve((), config(inventory=str(inventory)), "queue.status")


def test_ssh_options_of_the_inventory() -> None:
    assert ssh_options("-o ConnectTimeout=10 -oUserKnownHostsFile=/k -o 'IdentitiesOnly yes' -p 2200 "
                       "-o ConnectTimeout=99", "h") == {
        "connecttimeout": "10", "userknownhostsfile": "/k", "identitiesonly": "yes", "port": "2200"}
    with pytest.raises(HostsError, match="ssh option 'proxyjump' is not supported"):
        ssh_options("-o ProxyJump=bastion", "h")
    with pytest.raises(HostsError, match="ssh argument '-J' is not supported"):
        ssh_options("-J bastion", "h")


# -- Supervisor's exit codes ------------------------------------------------------------------


@pytest.mark.parametrize(("out", "exited", "code", "words"), [
    (STATUS_OK.decode(), 0, 0, "workers: all 2 running"),
    (STATUS_STOPPED.decode(), 3, 3, "1 of 2 workers not running (STOPPED) (supervisorctl exit 3: some stopped)"),
    ("laravel-worker: ERROR (no such group)\n", 4, 4, "Supervisor does not know the program 'laravel-worker'"),
    ("unix:///var/run/supervisor.sock no such file\n", 4, 4, "supervisord is not running"),
    ("unix:///var/run/supervisor.sock refused connection\n", 4, 4, "supervisord is not running"),
    ("", 1, 1, "supervisorctl is not installed"),
], ids=["running", "stopped", "unknown-program", "no-socket", "refused", "not-installed"])
def test_supervisorctl_status_in_plain_words(out: str, exited: int, code: int, words: str) -> None:
    err = "sudo: supervisorctl: command not found\n" if exited == 1 else ""
    got_code, got_words = summary(Output(out, err, exited), "laravel-worker")
    assert got_code == code and words in got_words


def test_processes_are_parsed_with_their_pids() -> None:
    found = processes(Output(STATUS_STOPPED.decode(), "", 3))
    assert [(p.name, p.state, p.pid) for p in found] == [
        ("laravel-worker:laravel-worker_00", "STOPPED", None), ("laravel-worker:laravel-worker_01", "RUNNING", 102)]


# -- whole runs of `fab`, over Fabric's mocked SSH ------------------------------------------------


@pytest.fixture
def fab(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """``fab ARGS`` in this process: (exit code, stdout, stderr). Hosts are served one at a time."""
    for name in ("FABRIC_QUEUE_INVENTORY", "FABRIC_QUEUE_PARALLEL", "FABRIC_QUEUE_CONNECT_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FABRIC_QUEUE_INVENTORY", "")
    monkeypatch.setenv("FABRIC_QUEUE_PARALLEL", "1")  # the mocked sessions are handed out in order
    monkeypatch.setenv("FABRIC_QUEUE_CONNECT_TIMEOUT", "0")  # the mocks expect connect() without a timeout
    monkeypatch.chdir(REPO)

    def run(*args: str) -> tuple[int, str, str]:
        program = make_program()
        try:
            program.run(["fab", "-S", "/dev/null", *args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    yield run


def expect(remote: MockRemote, *sessions: Session) -> None:
    remote.expect_sessions(*sessions)


def test_status_on_two_hosts_groups_the_output_and_exits_3_when_workers_are_stopped(fab: Any) -> None:
    with MockRemote() as remote:
        expect(remote,
               Session("w1", commands=[Command(SUPERVISOR_STATUS, out=STATUS_OK),
                                       Command(ictq_command("size", "--json"), out=SIZE)]),
               Session("w2", commands=[Command(SUPERVISOR_STATUS, out=STATUS_STOPPED, exit=3),
                                       Command(ictq_command("size", "--json"), out=SIZE)]))
        code, out, err = fab("-H", "w1,w2", "queue.status")
    assert code == 3
    assert out.splitlines() == [
        "w1:",
        "  workers: all 2 running",
        "    laravel-worker:laravel-worker_00  RUNNING   pid 101, uptime 0:01:00",
        "    laravel-worker:laravel-worker_01  RUNNING   pid 102, uptime 0:01:00",
        "  queue: 3 job(s) (2 pending, 1 delayed, 0 reserved), oldest pending 7s; 4 failed (1 in the last hour)",
        "w2:",
        "  workers: 1 of 2 workers not running (STOPPED) (supervisorctl exit 3: some stopped)",
        "    laravel-worker:laravel-worker_00  STOPPED   Jan 01 10:00 AM",
        "    laravel-worker:laravel-worker_01  RUNNING   pid 102, uptime 0:01:00",
        "  queue: 3 job(s) (2 pending, 1 delayed, 0 reserved), oldest pending 7s; 4 failed (1 in the last hour)",
        "  FAILED: 1 of 2 workers not running (STOPPED) (supervisorctl exit 3: some stopped)",
    ]
    assert err.strip() == "queue.status failed on 1 of 2 host(s): w2"


def test_retry_runs_on_one_host_as_the_app_user(fab: Any) -> None:
    with MockRemote() as remote:
        expect(remote, Session("w1", cmd=ictq_command("retry", "5", "7"), out=b"re-queued failed job 5\n"))
        code, out, err = fab("-H", "w1,w2", "queue.retry", "--id=5,7")
    assert (code, err) == (0, "")
    assert out.splitlines() == ["w1:", "  re-queued failed job 5"]


def test_test_email_reports_mail_not_sent_in_time_with_exit_3(fab: Any) -> None:
    with MockRemote() as remote:
        expect(remote, Session("w1", cmd=ictq_command("test-email", "--email=ops@example.com", "--wait=5"),
                               out=b"not sent yet password_reset\n", exit=3))
        code, out, _ = fab("-H", "w1", "queue.test-email", "--to=ops@example.com", "--wait=5")
    assert code == 3
    assert "  FAILED: not sent within 5s: are the workers running? (queue.status)" in out.splitlines()


def test_logs_tail_the_queue_log_as_the_app_user(fab: Any) -> None:
    with MockRemote() as remote:
        expect(remote, Session("w1", cmd=app_command("tail", "-n", "2", "--", "/srv/ict/storage/logs/queue.log"),
                               out=b"line one\nline two\n"))
        code, out, _ = fab("-H", "w1", "queue.logs", "--lines=2")
    assert code == 0
    assert out.splitlines() == ["w1:", "  /srv/ict/storage/logs/queue.log (last 2 lines):", "  line one", "  line two"]


def test_sudo_asking_for_a_password_is_one_line(fab: Any) -> None:
    with MockRemote() as remote:
        expect(remote, Session("w1", cmd=root_command("supervisorctl", "reread"),
                               err=b"sudo: a password is required\n", exit=1))
        code, out, err = fab("-H", "w1", "queue.reread")
    assert code == 1
    assert out.splitlines()[-1].startswith("  FAILED: sudo asks for a password")
    assert "Traceback" not in err


def test_no_hosts_is_refused_before_any_connection(fab: Any) -> None:
    with MockRemote():
        code, out, err = fab("queue.restart")
    assert code == 2 and out == ""
    assert err.strip().startswith("no hosts: name them with -H (fab -H host1,host2 queue.restart)")


# -- several programs (ictq and PHP workers) ------------------------------------------------------


def test_the_programs_come_from_the_inventorys_program_list_or_the_configuration(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path)
    (tmp_path / "host_vars" / "w1.yml").write_text(
        "ictq_worker_programs:\n  - {name: laravel-worker, kind: ictq}\n"
        "  - {name: laravel-php, kind: php, numprocs: 1}\n")
    w1, w2 = resolve((), config(inventory=str(inventory)), "queue.status")
    assert w1.app.program_names == ("laravel-worker", "laravel-php")
    assert w1.app.groups == ["laravel-worker:*", "laravel-php:*"]
    assert w2.app.program_names == ("laravel-worker",), "without a list: the single program"
    [w2_listed] = resolve(("w2",), config(inventory=str(inventory), programs="a, b"), "queue.status")
    assert w2_listed.app.program_names == ("a", "b")


@pytest.mark.parametrize(("programs", "message"), [
    ("{{ my_programs }}", "is a template"),
    ("ok,bad name", "'bad name' is not a Supervisor program name"),
    ({"name": "x"}, "a list of programs"),
], ids=["template", "bad-name", "not-a-list"])
def test_a_program_list_that_cannot_be_used_is_one_line(programs: Any, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        resolve(("w1",), config(programs=programs), "queue.status")


STATUS_TWO_PROGRAMS = STATUS_OK + b"laravel-php:laravel-php_00         RUNNING   pid 201, uptime 0:01:00\n"
AFTER_RESTART = (b"laravel-worker:laravel-worker_00   RUNNING   pid 111, uptime 0:00:01\n"
                 b"laravel-worker:laravel-worker_01   RUNNING   pid 112, uptime 0:00:01\n"
                 b"laravel-php:laravel-php_00         RUNNING   pid 211, uptime 0:00:01\n")
GROUPS = ("laravel-worker:*", "laravel-php:*")


def test_status_shows_every_programs_processes(fab: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FABRIC_QUEUE_PROGRAMS", "laravel-worker,laravel-php")
    with MockRemote() as remote:
        expect(remote, Session("w1", commands=[
            Command(root_command("supervisorctl", "status", *GROUPS), out=STATUS_TWO_PROGRAMS),
            Command(ictq_command("size", "--json"), out=SIZE)]))
        code, out, _ = fab("-H", "w1", "queue.status")
    assert code == 0
    assert out.splitlines()[1:5] == [
        "  workers: all 3 running",
        "    laravel-worker:laravel-worker_00  RUNNING   pid 101, uptime 0:01:00",
        "    laravel-worker:laravel-worker_01  RUNNING   pid 102, uptime 0:01:00",
        "    laravel-php:laravel-php_00        RUNNING   pid 201, uptime 0:01:00",
    ]


def test_restart_and_update_act_on_every_program(fab: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FABRIC_QUEUE_PROGRAMS", "laravel-worker,laravel-php")
    with MockRemote() as remote:
        expect(remote, Session("w1", commands=[
            Command(root_command("supervisorctl", "status", *GROUPS), out=STATUS_TWO_PROGRAMS),
            Command(root_command("supervisorctl", "restart", *GROUPS), out=b"laravel-php:laravel-php_00: stopped\n"),
            Command(root_command("supervisorctl", "status", *GROUPS), out=AFTER_RESTART)]))
        code, out, _ = fab("-H", "w1", "queue.restart")
    assert code == 0, out
    assert "  new PIDs: laravel-worker_00 101 -> 111, laravel-worker_01 102 -> 112, laravel-php_00 201 -> 211" in \
        out.splitlines()
    with MockRemote() as remote:
        expect(remote, Session("w1", cmd=root_command("supervisorctl", "update", "laravel-worker", "laravel-php"),
                               out=b""))
        code, _, _ = fab("-H", "w1", "queue.update")
    assert code == 0
