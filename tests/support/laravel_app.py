"""The real Laravel application of the test suite (``tests/laravel_app``) beside ictq.

:class:`LaravelApp` is an :class:`~tests.support.app.App` whose directory is a copy of the
Laravel application: one ``.env`` for both (ictq's keys and Laravel's), Laravel's tables made
the Laravel way (``php artisan migrate``), then adopted by ``ictq migrate``. ``php(...)`` runs
``php artisan``, ``php_worker(...)`` starts ``php artisan queue:work``. PHP and Laravel come
from Debian's packages (``make test`` installs them); without them the tests fail, never skip.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.app import REPO, App
from tests.support.databases import fresh_database

SOURCE = REPO / "tests" / "laravel_app"
PHP = shutil.which("php") or "php"
PACKAGES = "php-cli php-laravel-framework php-sqlite3 php-pgsql php-mysql php-mbstring php-xml php-redis"


def require_php() -> None:
    """Fail (never skip) when PHP or Laravel is missing, saying how to install them."""
    if shutil.which("php") is None or not Path("/usr/share/php/Illuminate/autoload.php").exists():
        pytest.fail(f"PHP with Laravel is not installed: apt-get install {PACKAGES}", pytrace=False)


class LaravelApp(App):
    """An ictq app dir that is also a Laravel application sharing its ``.env``."""

    def php(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``php artisan ARGS`` in the app dir and wait; fail the test on a non-zero exit
        unless ``check`` is false."""
        proc = subprocess.run([PHP, "artisan", *args], cwd=self.root, env=self.env(), capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            pytest.fail(f"php artisan {' '.join(args)} exited {proc.returncode}: {proc.stdout}{proc.stderr}",
                        pytrace=False)
        return proc

    def php_worker(self, *args: str) -> subprocess.Popen[str]:
        """Start ``php artisan queue:work database ARGS`` (stopped at teardown)."""
        proc = subprocess.Popen([PHP, "artisan", "queue:work", "database", *args], cwd=self.root, env=self.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._procs.append(proc)
        return proc

    def php_ran(self) -> list[str]:
        """Tags the PHP jobs appended to storage/app/ran.log, one per run."""
        path = self.root / "storage" / "app" / "ran.log"
        return path.read_text().split() if path.exists() else []

    def laravel_log(self) -> str:
        path = self.root / "storage" / "logs" / "laravel.log"
        return path.read_text() if path.exists() else ""

    @staticmethod
    def stop(proc: subprocess.Popen[str], timeout: float = 60) -> str:
        """TERM a worker, wait for it, return what it printed."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=timeout)
        return out or ""


def copy_app(root: Path) -> None:
    """A fresh copy of the Laravel application at ``root`` (no .env, empty storage)."""
    shutil.copytree(SOURCE, root, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".env", "ran.log", "laravel.log", "*.sqlite"))


@contextmanager
def laravel_app(dialect: str, root: Path, adopt: bool = True, **extra: str) -> Iterator[LaravelApp]:
    """The Laravel application on a fresh database of ``dialect``: tables by ``php artisan
    migrate``, then (``adopt``) ``ictq migrate`` on them. Every worker is stopped afterwards."""
    require_php()
    copy_app(root)
    with fresh_database(dialect, root) as database:
        if dialect == "sqlite":
            Path(database.env["DB_DATABASE"]).touch()
        application = LaravelApp(root, dialect, database.env, **{"CACHE_DRIVER": "file", "MAIL_MAILER": "log", **extra})
        try:
            application.php("migrate", "--force")
            if adopt:
                migrated = application.ictq("migrate")
                assert migrated.returncode == 0, migrated.stdout + migrated.stderr
            yield application
        finally:
            application.stop_all()
