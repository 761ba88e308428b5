"""The test-host machinery itself: a run that dies leaves nothing that breaks the next one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import hosts
from tests.support.hosts import HostFleet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
REPO = Path(__file__).resolve().parents[2]

_START_AND_HANG = textwrap.dedent("""
    import json, sys, time
    from tests.support.hosts import HostFleet
    fleet = HostFleet()
    host = fleet.start(1)[0]
    # a process of the host that is not sshd, like supervisord: it must die with the host
    fleet.ssh(host, "sudo -n sh -c 'nohup sleep 600 >/dev/null 2>&1 &'")
    print(json.dumps({"root": str(host.root), "record": str(fleet.record.path), "address": host.address}), flush=True)
    time.sleep(600)
""")


def test_a_killed_run_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", _START_AND_HANG], cwd=REPO, stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line, "the child run did not start its host"
        started = json.loads(line)
        root = Path(started["root"])
        assert hosts._processes_in(root), "the host runs processes"
        assert hosts._mount_points_under(root), "the host has its mounts"
    finally:
        child.send_signal(signal.SIGKILL)  # no teardown of its own
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    assert Path(started["record"]).exists(), "the dead run left its record"

    with HostFleet() as fleet:  # reaps dead runs first
        assert not Path(started["record"]).exists()
        assert not hosts._processes_in(root)
        assert not hosts._mount_points_under(root)
        assert not root.exists() and not root.parent.parent.exists()
        assert fleet.hosts == []


def test_missing_prerequisites_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hosts, "REQUIRED_TOOLS", ("debootstrap", "no-such-tool-ictq"))
    with pytest.raises(hosts.HostError, match="'no-such-tool-ictq' not found"):
        HostFleet()
