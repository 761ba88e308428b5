"""Real test hosts without containers: Debian root file systems run with ``chroot``, each with
its own ``sshd`` on its own loopback address.

* **Build, cached.** ``debootstrap`` makes a minimal Debian root file system once per
  (suite, mirror, package list, recipe version) and keeps it under ``$ICTQ_TESTHOST_CACHE``
  (default ``/var/cache/ictq-testhosts``). Baked in: ``python3``, ``sudo``, ``openssh-server``,
  a non-root ``deploy`` user allowed to ``sudo`` without a password, and the ``.deb`` files of
  what a deploy installs, the PHP packages of a Laravel worker included (downloaded, not
  installed: the deploy really installs them).
* **Start.** Each host is a copy of the cached tree in the run's temporary directory, with
  ``/proc``, a private ``/dev/pts`` and a ``/dev/shm`` mounted, a fresh SSH host key, the run's
  client key in ``~deploy/.ssh/authorized_keys``, and ``sshd -D`` (our child) listening on
  ``127.0.0.N:22``. The loopback address is added to ``lo`` only if the kernel does not already
  answer for it.
* **Tear down.** Every process whose root directory is inside the host's tree is stopped by PID
  (TERM, then KILL): sshd, supervisord and its workers alike. Then the mounts are unmounted, the
  tree removed (never across a file-system boundary) and added addresses deleted. What each run
  acquires is written to ``/run/ictq-testhosts/<run>.json`` as it goes; a later run first tears
  down whatever a dead run left behind, so a killed run never breaks the next one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SUITE = os.environ.get("ICTQ_TESTHOST_SUITE", "bookworm")
MIRROR = os.environ.get("ICTQ_TESTHOST_MIRROR", "http://deb.debian.org/debian")
CACHE = Path(os.environ.get("ICTQ_TESTHOST_CACHE", "/var/cache/ictq-testhosts"))
REGISTRY = Path(os.environ.get("ICTQ_TESTHOST_REGISTRY", "/run/ictq-testhosts"))
DEPLOY_USER = "deploy"
SSH_PORT = 22
#: Installed into the cached tree.
BAKED = ("python3", "sudo", "openssh-server", "procps", "ca-certificates")
#: Downloaded into apt's archive cache of the tree (the deploy installs them for real): what every
#: deploy installs, then what a deploy with a PHP (Laravel) worker program adds.
PREFETCHED = ("supervisor", "logrotate", "python3-venv",
              "php-cli", "php-laravel-framework", "php-sqlite3", "php-pgsql", "php-mysql", "php-mbstring", "php-xml")
#: Bump when the recipe below changes: it is part of the cache key.
RECIPE = 5
REQUIRED_TOOLS = ("debootstrap", "chroot", "mount", "umount", "ssh", "ssh-keygen")


class HostError(RuntimeError):
    """A test host could not be built, started or stopped."""


def _run(cmd: Sequence[str], *, timeout: float = 600, check: bool = True, **kwargs: object) -> str:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False,
                          **kwargs)  # type: ignore[call-overload]
    if check and proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-25:]
        raise HostError(f"{' '.join(cmd)} exited {proc.returncode}:\n" + "\n".join(tail))
    return str(proc.stdout)


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run test hosts (empty when all is there)."""
    problems = [f"command {tool!r} not found (install it: see TEST_PACKAGES in the Makefile)"
                for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        problems.append("test hosts need root (chroot, mount, debootstrap)")
    return problems


# --------------------------------------------------------------------------------------------
# The cached root file system


def cache_key() -> str:
    recipe = json.dumps([SUITE, MIRROR, sorted(BAKED), sorted(PREFETCHED), DEPLOY_USER, RECIPE])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def cached_rootfs() -> Path:
    """The cached tree for the current recipe, built first if missing (once, under a lock)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    target = CACHE / f"rootfs-{SUITE}-{cache_key()}"
    if (target / ".ictq-testhost").is_file():
        return target
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".ictq-testhost").is_file():
            return target
        for stale in CACHE.glob("rootfs-*"):  # half-built trees, and trees of older recipes
            _remove_tree(stale)
        build = CACHE / f"{target.name}.build-{os.getpid()}"
        try:
            _bake(build)
            if target.exists():
                _remove_tree(target)
            build.rename(target)
        finally:
            if build.exists():
                _remove_tree(build)
    return target


def _bake(root: Path) -> None:
    _run(["debootstrap", "--variant=minbase", f"--include={','.join(BAKED)}", SUITE, str(root), MIRROR],
         timeout=1500)
    with _mounted_for_build(root):
        (root / "etc/apt/apt.conf.d/99ictq-testhost").write_text(
            '// test host: a snapshot mirror may serve an old Release file\n'
            'Acquire::Check-Valid-Until "false";\n'
            'APT::Install-Recommends "false";\n'
        )
        _chroot(root, "apt-get", "clean")  # debootstrap's own .deb files: not needed, 100+ MB per host
        _chroot(root, "apt-get", "update", "-qq", timeout=600)
        _chroot(root, "apt-get", "install", "-y", "-qq", "--download-only", *PREFETCHED, timeout=900)
        _chroot(root, "useradd", "--create-home", "--shell", "/bin/bash", DEPLOY_USER)
        # '*' rather than the locked '!': sshd refuses locked accounts; there is no password either way.
        _chroot(root, "usermod", "--password", "*", DEPLOY_USER)
    sudoers = root / "etc/sudoers.d/ictq-testhost"
    sudoers.write_text(f"{DEPLOY_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)
    (root / "etc/ssh/sshd_config.d/ictq-testhost.conf").write_text(
        "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\n"
        "HostKey /etc/ssh/ssh_host_ed25519_key\nAcceptEnv LANG LC_*\n"
    )
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / ".ictq-testhost").write_text(json.dumps({"suite": SUITE, "key": cache_key()}) + "\n")


@contextlib.contextmanager
def _mounted_for_build(root: Path) -> Iterator[None]:
    mounts = _mount_virtual(root)
    try:
        yield
    finally:
        _kill_processes_in(root)
        _unmount_under(root, mounts)


def _chroot(root: Path, *cmd: str, timeout: float = 300) -> str:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    return _run(["chroot", str(root), *cmd], timeout=timeout, env=env)


# --------------------------------------------------------------------------------------------
# Mounts, processes, addresses


def _mount_virtual(root: Path) -> list[str]:
    """Mount /proc, a private /dev/pts and /dev/shm in ``root``; returns the mount points."""
    done: list[str] = []
    plan = (
        ("proc", "proc", "proc", "nosuid,nodev,noexec"),
        ("devpts", "devpts", "dev/pts", "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        ("tmpfs", "shm", "dev/shm", "nosuid,nodev,mode=1777"),
    )
    try:
        for fstype, source, where, options in plan:
            point = root / where
            point.mkdir(parents=True, exist_ok=True)
            _run(["mount", "-t", fstype, "-o", options, source, str(point)])
            done.append(str(point))
    except HostError:
        _unmount_under(root, done)
        raise
    ptmx = root / "dev/ptmx"
    if ptmx.is_symlink() or not ptmx.exists():
        ptmx.unlink(missing_ok=True)
        ptmx.symlink_to("pts/ptmx")
    return done


def _mount_points_under(root: Path) -> list[str]:
    prefix = str(root.resolve()).rstrip("/") + "/"
    points = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix):
                points.append(point)
    return points


def _unmount_under(root: Path, recorded: Sequence[str] = ()) -> None:
    points = set(recorded) | set(_mount_points_under(root))
    for point in sorted(points, key=len, reverse=True):
        if point not in _mount_points_under(root):
            continue
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    left = _mount_points_under(root)
    if left:
        raise HostError(f"still mounted under {root}: {left}")


def _processes_in(root: Path) -> list[int]:
    """PIDs of the processes whose root directory is ``root`` or inside it."""
    base = str(root.resolve())
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            proc_root = os.readlink(entry / "root").removesuffix(" (deleted)")
        except OSError:
            continue
        if proc_root == base or proc_root.startswith(base + "/"):
            pids.append(int(entry.name))
    return pids


def _kill_processes_in(root: Path, grace: float = 5.0) -> None:
    deadline = time.monotonic() + grace
    sig = signal.SIGTERM
    while True:
        pids = _processes_in(root)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        time.sleep(0.2)
        if time.monotonic() > deadline:
            if sig == signal.SIGKILL and time.monotonic() > deadline + 10:
                raise HostError(f"processes in {root} survive SIGKILL: {pids}")
            sig = signal.SIGKILL


def _remove_tree(root: Path) -> None:
    if not root.exists():
        return
    _kill_processes_in(root)
    _unmount_under(root)
    _run(["rm", "-rf", "--one-file-system", str(root)], timeout=300)


def _address_is_local(address: str) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((address, 0))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                return False
            raise
    return True


def _port_in_use(address: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((address, port)) == 0


def _wait_for_port(address: str, port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not _port_in_use(address, port):
        if proc.poll() is not None:
            raise HostError(f"sshd on {address}:{port} exited {proc.returncode}: {log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise HostError(f"sshd on {address}:{port} did not listen within {timeout}s")
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------
# The run registry: what a run holds, so that a later run can clean up after a dead one


@dataclass
class RunRecord:
    path: Path
    owner: int = field(default_factory=os.getpid)
    roots: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    workdir: str = ""

    def save(self) -> None:
        data = {"owner": self.owner, "roots": self.roots, "mounts": self.mounts, "addresses": self.addresses,
                "workdir": self.workdir}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        data = json.loads(path.read_text())
        return cls(path, int(data["owner"]), list(data["roots"]), list(data["mounts"]), list(data["addresses"]),
                   str(data.get("workdir", "")))

    def release(self) -> list[str]:
        """Tear down everything recorded; returns the problems met (the rest is still done)."""
        problems: list[str] = []
        for root in self.roots:
            try:
                _remove_tree(Path(root))
            except (HostError, OSError, subprocess.TimeoutExpired) as exc:
                problems.append(f"{root}: {exc}")
        for address in self.addresses:
            subprocess.run(["ip", "address", "del", f"{address}/32", "dev", "lo"], capture_output=True, check=False)
        if not problems:
            if self.workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            self.path.unlink(missing_ok=True)
        return problems


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_runs() -> list[str]:
    """Tear down what runs whose process is gone left behind; returns the problems met."""
    problems: list[str] = []
    if not REGISTRY.is_dir():
        return problems
    for path in REGISTRY.glob("*.json"):
        try:
            record = RunRecord.load(path)
        except (ValueError, KeyError, OSError):
            path.unlink(missing_ok=True)
            continue
        if record.owner != os.getpid() and not _alive(record.owner):
            problems += record.release()
    return problems


# --------------------------------------------------------------------------------------------
# Hosts


@dataclass
class TestHost:
    """One running host."""

    __test__ = False  # not a pytest class

    name: str
    address: str
    root: Path
    host_public_key: str
    sshd: subprocess.Popen[bytes] | None = None
    port: int = SSH_PORT

    def chroot(self, *cmd: str, timeout: float = 60) -> str:
        """Run a command inside the host directly (for the tests' own bookkeeping)."""
        return _chroot(self.root, *cmd, timeout=timeout)

    def processes(self) -> list[int]:
        return _processes_in(self.root)


class HostFleet:
    """A run's hosts: build (cached), start, and tear down everything.

    Use as a context manager; ``start(n)`` returns ``n`` hosts reachable as ``deploy`` with
    ``self.identity`` and the known-hosts file ``self.known_hosts``.
    """

    def __init__(self, workdir: Path | None = None) -> None:
        problems = missing_prerequisites()
        if problems:
            raise HostError("cannot run test hosts: " + "; ".join(problems))
        REGISTRY.mkdir(parents=True, exist_ok=True)
        leftovers = reap_dead_runs()
        if leftovers:
            raise HostError("could not clean up after an earlier run: " + "; ".join(leftovers))
        self.workdir = Path(tempfile.mkdtemp(prefix="ictq-hosts-", dir=workdir))
        self.record = RunRecord(REGISTRY / f"{self.workdir.name}.json", workdir=str(self.workdir))
        self.record.save()
        self.hosts: list[TestHost] = []
        self.identity = self.workdir / "id_ed25519"
        self.known_hosts = self.workdir / "known_hosts"
        self.ssh_config = self.workdir / "ssh_config"
        self.timings: dict[str, float] = {}
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ictq-e2e", "-f", str(self.identity)])

    def __enter__(self) -> HostFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, count: int) -> list[TestHost]:
        started = time.monotonic()
        image = cached_rootfs()
        self.timings["image"] = time.monotonic() - started
        addresses = self._free_addresses(count)
        for index, address in enumerate(addresses, start=1):
            self.hosts.append(self._start_one(f"worker{index}", address, image))
        self._write_ssh_files()
        self.timings["start"] = time.monotonic() - started - self.timings["image"]
        return list(self.hosts)

    def _free_addresses(self, count: int) -> list[str]:
        found: list[str] = []
        for last in range(2, 250):
            address = f"127.0.0.{last}"
            if _address_is_local(address) and _port_in_use(address, SSH_PORT):
                continue  # someone else's host (or service) is here
            found.append(address)
            if len(found) == count:
                return found
        raise HostError("no free loopback address for a test host")

    def _start_one(self, name: str, address: str, image: Path) -> TestHost:
        root = self.workdir / name / "rootfs"
        root.parent.mkdir(parents=True)
        self.record.roots.append(str(root))
        self.record.save()
        _run(["cp", "-a", "--reflink=auto", str(image), str(root)], timeout=300)
        if not _address_is_local(address):
            if shutil.which("ip") is None:
                raise HostError(f"{address} is not on lo and there is no 'ip' command to add it (install iproute2)")
            _run(["ip", "address", "add", f"{address}/32", "dev", "lo"])
            self.record.addresses.append(address)
            self.record.save()
        (root / "etc/hostname").write_text(name + "\n")
        # chroot shares the machine's host name (UTS namespace): sudo wants it resolvable.
        (root / "etc/hosts").write_text(f"127.0.0.1 localhost {socket.gethostname()}\n{address} {name}\n")
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name,
              "-f", str(root / "etc/ssh/ssh_host_ed25519_key")])
        host_key = (root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
        ssh_dir = root / "home" / DEPLOY_USER / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(Path(f"{self.identity}.pub").read_text())
        (ssh_dir / "authorized_keys").chmod(0o600)
        uid_gid = self._deploy_ids(root)
        for path in (ssh_dir, ssh_dir / "authorized_keys"):
            os.chown(path, *uid_gid)
        (root / "run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        self.record.mounts += _mount_virtual(root)
        self.record.save()
        log = root.parent / "sshd.log"
        with open(log, "wb") as out:
            sshd = subprocess.Popen(
                ["chroot", str(root), "/usr/sbin/sshd", "-D", "-e", "-o", f"ListenAddress={address}:{SSH_PORT}",
                 "-o", "PidFile=none"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
            )
        host = TestHost(name, address, root, f"{host_key[0]} {host_key[1]}", sshd)
        _wait_for_port(address, SSH_PORT, sshd, log)
        return host

    @staticmethod
    def _deploy_ids(root: Path) -> tuple[int, int]:
        for line in (root / "etc/passwd").read_text().splitlines():
            parts = line.split(":")
            if parts[0] == DEPLOY_USER:
                return int(parts[2]), int(parts[3])
        raise HostError(f"no {DEPLOY_USER} user in {root}")

    def _write_ssh_files(self) -> None:
        self.known_hosts.write_text("".join(f"{h.address} {h.host_public_key}\n" for h in self.hosts))
        blocks = [
            f"Host {h.name} {h.address}\n  HostName {h.address}\n  Port {h.port}\n  User {DEPLOY_USER}\n"
            f"  IdentityFile {self.identity}\n  IdentitiesOnly yes\n  UserKnownHostsFile {self.known_hosts}\n"
            "  StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 10\n"
            for h in self.hosts
        ]
        self.ssh_config.write_text("\n".join(blocks))

    def ssh(self, host: TestHost, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``command`` on ``host`` as the deploy user, over SSH."""
        return subprocess.run(["ssh", "-F", str(self.ssh_config), host.name, command],
                              capture_output=True, text=True, timeout=timeout, check=False)

    def close(self) -> None:
        for host in self.hosts:
            if host.sshd is not None and host.sshd.poll() is None:
                host.sshd.send_signal(signal.SIGTERM)
        problems = self.record.release()
        for host in self.hosts:
            if host.sshd is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    host.sshd.wait(timeout=10)
        if problems:
            raise HostError("teardown incomplete: " + "; ".join(problems))
