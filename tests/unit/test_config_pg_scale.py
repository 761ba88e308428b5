"""PostgreSQL at scale in the .env: several hosts (failover), PgBouncer's pool mode, and where
workers LISTEN. Each wrong value is one line naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ictq.config import settings_from_values
from ictq.errors import ConfigError

PG = {"DB_CONNECTION": "pgsql", "DB_DATABASE": "ict"}


def test_several_hosts_with_a_port_each_or_one_for_all() -> None:
    db = settings_from_values({**PG, "DB_HOST": "10.0.0.1, 10.0.0.2", "DB_PORT": "5432,5433"}, Path("/app")).db
    assert (db.host, db.port, db.ports, db.port_text) == ("10.0.0.1,10.0.0.2", 5432, (5432, 5433), "5432,5433")
    assert db.address == "10.0.0.1:5432,10.0.0.2:5433"
    db = settings_from_values({**PG, "DB_HOST": "a,b,c", "DB_PORT": "6432"}, Path("/app")).db
    assert (db.port, db.ports, db.port_text, db.address) == (6432, (), "6432", "a:6432,b:6432,c:6432")
    db = settings_from_values({**PG, "DB_HOST": "db"}, Path("/app")).db
    assert (db.address, db.pgbouncer, db.listen_host) == ("db:5432", "off", "")


def test_pgbouncer_and_listen_settings() -> None:
    values = {**PG, "DB_PGBOUNCER": "Transaction", "DB_LISTEN_HOST": "pg1,pg2", "DB_LISTEN_PORT": "5432"}
    db = settings_from_values(values, Path("/app")).db
    assert (db.pgbouncer, db.listen_host, db.listen_ports) == ("transaction", "pg1,pg2", (5432,))
    db = settings_from_values({**PG, "DB_LISTEN_HOST": "pg1"}, Path("/app")).db
    assert db.listen_ports == (5432,)


@pytest.mark.parametrize(("values", "key"), [
    ({**PG, "DB_HOST": "a,b", "DB_PORT": "1,2,3"}, "DB_PORT lists 3 ports for the 2 hosts"),
    ({**PG, "DB_HOST": "a,,b"}, "DB_HOST="),
    ({**PG, "DB_HOST": "a, b c"}, "DB_HOST="),
    ({**PG, "DB_HOST": "a,b", "DB_PORT": "5432,x"}, "DB_PORT="),
    ({**PG, "DB_PORT": "5432,70000"}, "DB_PORT="),
    ({"DB_CONNECTION": "mariadb", "DB_DATABASE": "ict", "DB_HOST": "a,b"}, "DB_HOST lists several hosts"),
    ({"DB_CONNECTION": "mysql", "DB_DATABASE": "ict", "DB_PORT": "3306,3307"}, "DB_PORT lists several ports"),
    ({**PG, "DB_PGBOUNCER": "statement"}, "DB_PGBOUNCER="),
    ({**PG, "DB_LISTEN_PORT": "5432"}, "DB_LISTEN_PORT is set but DB_LISTEN_HOST is not"),
    ({**PG, "DB_LISTEN_HOST": "a,b", "DB_LISTEN_PORT": "1,2,3"}, "DB_LISTEN_PORT lists 3 ports"),
])
def test_a_wrong_value_is_one_line_naming_its_key(values: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_from_values(values, Path("/app"))
    message = str(raised.value)
    assert message.startswith(key) and "\n" not in message, message
