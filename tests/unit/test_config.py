from __future__ import annotations

from pathlib import Path

import pytest

from ictq.config import load_settings, settings_from_values
from ictq.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(text)
    return path


def test_laravel_env_is_read_unchanged(tmp_path: Path) -> None:
    env = write(tmp_path, "\n".join([
        "APP_NAME=ICT", "APP_KEY=base64:abcdefghijklmnop=", "QUEUE_CONNECTION=database",
        "DB_CONNECTION=pgsql", "DB_HOST=db.internal", "DB_PORT=6432", "DB_DATABASE=ict",
        "DB_USERNAME=ict", 'DB_PASSWORD="p@ss word#1"', "DB_QUEUE=emails", "DB_QUEUE_RETRY_AFTER=120",
        "# a comment", "MAIL_PASSWORD=${DB_PASSWORD}",
    ]))
    settings = load_settings(env, environ={})
    assert settings.queue_connection == "database"
    assert settings.db.connection == "pgsql" and settings.db.dialect == "pgsql"
    assert (settings.db.host, settings.db.port, settings.db.database) == ("db.internal", 6432, "ict")
    assert settings.db.password == "p@ss word#1"
    assert settings.default_queue == "emails" and settings.retry_after == 120
    assert settings.queue_table == "jobs" and settings.failed_table == "failed_jobs"
    assert settings.get("MAIL_PASSWORD") == "p@ss word#1"
    assert "p@ss word#1" in settings.secrets and "base64:abcdefghijklmnop=" in settings.secrets
    assert "p@ss word#1" not in repr(settings.db)


def test_environment_overrides_the_file_as_in_laravel(tmp_path: Path) -> None:
    env = write(tmp_path, "DB_CONNECTION=sqlite\nDB_QUEUE=default\n")
    settings = load_settings(env, environ={"DB_QUEUE": "high", "UNRELATED": "x"})
    assert settings.default_queue == "high"
    assert settings.get("UNRELATED") == ""


def test_defaults_and_sqlite_path_relative_to_app_dir(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), environ={})
    assert settings.queue_connection == "database"
    assert settings.db.dialect == "sqlite"
    assert settings.db.database == str(tmp_path / "database" / "database.sqlite")
    assert settings.db.synchronous == "FULL" and settings.db.journal_mode == "WAL"
    assert settings.log_file == tmp_path / "storage" / "logs" / "queue.log"
    assert settings.retry_after == 90


def test_mariadb_is_the_mysql_dialect(tmp_path: Path) -> None:
    settings = settings_from_values({"DB_CONNECTION": "mariadb", "DB_DATABASE": "x"}, tmp_path)
    assert settings.db.dialect == "mysql" and settings.db.port == 3306


@pytest.mark.parametrize(("line", "key"), [
    ("QUEUE_CONNECTION=redis", "QUEUE_CONNECTION"),
    ("DB_CONNECTION=oracle", "DB_CONNECTION"),
    ("DB_QUEUE_RETRY_AFTER=soon", "DB_QUEUE_RETRY_AFTER"),
    ("DB_QUEUE_RETRY_AFTER=0", "DB_QUEUE_RETRY_AFTER"),
    ("DB_CONNECTION=pgsql\nDB_DATABASE=x\nDB_PORT=70000", "DB_PORT"),
    ("DB_CONNECTION=mysql\nDB_DATABASE=", "DB_DATABASE"),
    ("DB_QUEUE_TABLE=jobs;drop", "DB_QUEUE_TABLE"),
    ("DB_SYNCHRONOUS=sometimes", "DB_SYNCHRONOUS"),
])
def test_a_wrong_value_names_its_key_in_one_line(tmp_path: Path, line: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, line + "\n"), environ={})
    message = str(raised.value)
    assert message.startswith(key) and "\n" not in message


def test_missing_env_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no \.env file at .*nowhere"):
        load_settings(tmp_path / "nowhere" / ".env", environ={})


def test_interpolation_follows_laravel_single_quotes_stay_literal(tmp_path: Path) -> None:
    env = write(tmp_path, "A=x\nB='${A}y'\nC=\"${A}z\"\nD=${A}w\nDB_PASSWORD='pa$${word}'\nE=${FROM_ENV:-dflt}\n")
    settings = load_settings(env, environ={})
    assert [settings.get(k) for k in "ABCDE"] == ["x", "${A}y", "xz", "xw", "dflt"]
    assert settings.get("DB_PASSWORD") == "pa$${word}"
