"""Configuration from a Laravel-style ``.env`` file.

The same ``.env`` that drives the Laravel application drives ictq. It is parsed with
python-dotenv; variables already set in the process environment win over the file, as in
Laravel. Every value is validated here, once, and a wrong one raises :class:`ConfigError`
with a one-line message that names the key.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv.parser import parse_stream
from dotenv.variables import parse_variables

from ictq.errors import ConfigError

QUEUE_CONNECTIONS = ("database", "sync")
DB_CONNECTIONS = ("sqlite", "pgsql", "mysql", "mariadb")
DEFAULT_PORTS = {"pgsql": 5432, "mysql": 3306, "mariadb": 3306}
PGBOUNCER_MODES = ("off", "session", "transaction")  #: DB_PGBOUNCER: no PgBouncer, or its pool mode
SQLITE_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
SQLITE_JOURNAL_MODES = ("WAL", "DELETE", "TRUNCATE", "PERSIST", "MEMORY")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SECRET_KEY = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY)$")
_MIN_SECRET_LENGTH = 4
_NOT_SECRETS = frozenset({"true", "false", "null", "none", "(null)", "empty"})

# The ranges of every number ictq reads from a command line or the .env, in one place.
# A number is written in ASCII digits only (no "²", no Arabic-Indic digits, no "1_000"); one
# outside its range is refused, naming the option or key, never clamped.
MAX_SECONDS = 365 * 24 * 3600  #: any duration in seconds: a timeout, a backoff, a delay, a sleep
MAX_HOURS = 10 * 365 * 24  #: an age in hours (pruning failed jobs): ten years
MAX_COUNT = 1_000_000_000  #: a count: jobs, tries, rows to show, megabytes, a threshold
MAX_ID = 2**63 - 1  #: a row id (the columns are 64-bit)
MAX_TRIES = 255  #: attempts before a job fails: the attempts column of Laravel's MariaDB table is a tinyint
MAX_MEGABYTES = 1024 * 1024  #: a memory limit in MB: a terabyte
_INTEGER = re.compile(r"[+-]?[0-9]{1,30}", re.ASCII)
_DECIMAL = re.compile(r"[+-]?([0-9]{1,30}(\.[0-9]{0,30})?|\.[0-9]{1,30})([eE][+-]?[0-9]{1,3})?", re.ASCII)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SHOWN = 40  # characters of a refused value quoted in its error


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the queue tables live."""

    connection: str
    database: str
    host: str = "127.0.0.1"
    port: int = 0
    username: str = ""
    password: str = field(default="", repr=False)
    socket: str = ""
    worker_synchronous_commit: bool = False
    busy_timeout_ms: int = 5000
    synchronous: str = "FULL"
    journal_mode: str = "WAL"
    # PostgreSQL only. ``host`` may list several hosts (``a,b``: libpq's failover, the first
    # writable one wins); ``ports`` then holds one port for all or one per host (``port`` is the first).
    ports: tuple[int, ...] = ()
    pgbouncer: str = "off"  # off, session or transaction: the pool mode of the PgBouncer at host:port
    listen_host: str = ""  # where workers LISTEN, straight to PostgreSQL (empty: on their own connection)
    listen_ports: tuple[int, ...] = ()

    @property
    def dialect(self) -> str:
        """``sqlite``, ``pgsql`` or ``mysql`` (MariaDB speaks the MySQL dialect)."""
        return "mysql" if self.connection == "mariadb" else self.connection

    @property
    def port_text(self) -> str:
        """The port, or the comma list of ports, as libpq takes it."""
        return ",".join(str(port) for port in self.ports) if self.ports else str(self.port)

    @property
    def address(self) -> str:
        """``host:port``, or every host with its port (``a:5432,b:5433``) when there are several."""
        hosts = self.host.split(",")
        if len(hosts) == 1:
            return f"{self.host}:{self.port_text}"
        ports = self.ports if len(self.ports) == len(hosts) else (self.port,) * len(hosts)
        return ",".join(f"{host}:{port}" for host, port in zip(hosts, ports, strict=True))


@dataclass(frozen=True)
class LaravelCacheSettings:
    """The Laravel application's cache store, where ``php artisan queue:restart`` (and
    ``queue:pause`` from Laravel 11) leave their signals: read from the same ``.env`` as
    Laravel reads it (``CACHE_STORE``/``CACHE_DRIVER``, ``CACHE_PREFIX``, ``REDIS_*``)."""

    store: str  # file, database, redis, or a store ictq cannot reach (memcached, array...)
    prefix: str  # the cache prefix (database and redis stores; the file store has none)
    directory: Path  # the file store's directory
    table: str = "cache"
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_username: str = ""
    redis_password: str = field(default="", repr=False)
    redis_db: int = 1
    redis_prefix: str = ""

    @property
    def reachable(self) -> bool:
        return self.store in LARAVEL_CACHE_STORES


@dataclass(frozen=True)
class Settings:
    """Everything ictq reads from the environment, validated."""

    app_dir: Path
    env_file: Path | None
    queue_connection: str
    db: DatabaseSettings
    queue_table: str
    failed_table: str
    default_queue: str
    retry_after: int
    job_modules: tuple[str, ...]
    log_file: Path | None
    log_level: str
    values: Mapping[str, str] = field(repr=False)
    prune_failed_hours: int = 0
    beat_every: float = 5.0  # seconds between a worker's heartbeats (ICTQ_BEAT_EVERY)
    prune_every: float = 3600.0  # seconds between a worker's prunes of old failed jobs (ICTQ_PRUNE_EVERY)
    history_days: int = 7  # days of per-minute history kept in ictq_history (ICTQ_HISTORY_DAYS)
    laravel_cache: LaravelCacheSettings | None = None  # where the Laravel app's queue signals live

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never be shown: every ``*PASSWORD``, ``*SECRET``, ``*TOKEN``, ``*_KEY``
        of the ``.env`` or of the process environment alone (``STRIPE_SECRET``, ``GITHUB_TOKEN``),
        but not values too short or too common to be secret (``true``, ``null``)."""
        found = {
            value
            for key, value in self.values.items()
            if _SECRET_KEY.search(key.upper()) and len(value.strip()) >= _MIN_SECRET_LENGTH
            and value.strip().lower() not in _NOT_SECRETS
        }
        return tuple(sorted(found, key=len, reverse=True))

    def get(self, key: str, default: str = "") -> str:
        """A raw value from the environment or the ``.env`` file."""
        return self.values.get(key, default)


def comma_list(text: str | None) -> tuple[str, ...]:
    """The items of a comma-separated list (queues, modules), blanks trimmed, empty ones dropped."""
    return tuple(item for part in (text or "").split(",") if (item := part.strip()))


def shown(text: str) -> str:
    """A refused value as an error quotes it: a plain number as it is, else ``repr``, cut to a
    few dozen characters."""
    if _DECIMAL.fullmatch(text):
        return text
    return repr(text) if len(text) <= _SHOWN else repr(text[:_SHOWN]) + "..."


def whole_number(text: str, minimum: int, maximum: int) -> int:
    """A whole number in ASCII digits within ``minimum..maximum``.

    Otherwise ValueError, whose message says what is wrong after the value: ``is not ...``."""
    raw = text.strip()
    if not _INTEGER.fullmatch(raw):
        raise ValueError("is not a whole number (ASCII digits only)")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise ValueError(f"is out of range ({minimum} to {maximum})")
    return value


def decimal_number(text: str, minimum: float, maximum: float) -> float:
    """A finite decimal number (``1.5``, ``2e3``) in ASCII digits within ``minimum..maximum``
    (``nan`` and ``inf`` are refused); otherwise ValueError, as :func:`whole_number`."""
    raw = text.strip()
    if not _DECIMAL.fullmatch(raw):
        raise ValueError("is not a number (ASCII digits only)")
    value = float(raw)
    if not minimum <= value <= maximum:
        raise ValueError(f"is out of range ({minimum:g} to {maximum:g})")
    return value


def seconds_list(text: str) -> tuple[int, ...]:
    """A comma list of whole seconds (``10,60,300``), each ``0..MAX_SECONDS``; otherwise
    ValueError, as :func:`whole_number`."""
    try:
        return tuple(whole_number(part, 0, MAX_SECONDS) for part in text.split(","))
    except ValueError:
        raise ValueError(f"is not whole seconds (0 to {MAX_SECONDS}, ASCII digits) or a comma list of them") from None


def find_env_file(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The ``.env`` to read: ``explicit``, else ``$ICTQ_ENV_FILE``, else ``./.env``."""
    candidate = explicit or os.environ.get("ICTQ_ENV_FILE") or ".env"
    path = Path(candidate).expanduser()
    try:
        found = path.is_file()
    except OSError as exc:  # a name too long, a loop of links
        raise ConfigError(f"cannot read the .env file {shown(str(candidate))}: {exc.strerror}") from None
    if not found:
        raise ConfigError(
            f"no .env file at {path.resolve()} (run in the app directory, or pass --env-file / set ICTQ_ENV_FILE)"
        )
    return path.resolve()


def load_settings(
    env_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read and validate the ``.env`` file; the process environment overrides it."""
    path = find_env_file(env_file)
    environment = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    check_env_syntax(text, path)
    merged = parse_env(text, environment)
    merged.update({key: value for key, value in environment.items()
                   if key in merged or _known(key) or _SECRET_KEY.search(key.upper())})
    return settings_from_values(merged, app_dir=path.parent, env_file=path)


def parse_env(text: str, environment: Mapping[str, str]) -> dict[str, str]:
    """Parse ``.env`` text as Laravel does: ``${VAR}`` expands in unquoted and double-quoted
    values (from earlier lines, else the environment), never in single-quoted ones. Lines that
    do not parse are skipped: :func:`check_env_syntax` refuses them first."""
    values: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.key is None:
            continue
        raw = binding.value or ""
        literal = binding.original.string.split("=", 1)[-1].lstrip().startswith("'")
        if literal:
            values[binding.key] = raw
        else:
            scope = {**environment, **values}
            values[binding.key] = "".join(atom.resolve(scope) for atom in parse_variables(raw))  # type: ignore[arg-type]
    return values


def check_env_syntax(text: str, path: Path) -> None:
    """Refuse ``.env`` text with a line that does not parse (no ``=``, an unterminated quote):
    ConfigError naming the file and the line number, never the line (it may hold a secret)."""
    for binding in parse_stream(io.StringIO(text)):
        if binding.error or (binding.key is not None and binding.value is None):
            line = _first_line(binding.original.string, binding.original.line)
            raise ConfigError(f"{path}, line {line}: not KEY=value (a line without '=', or an unterminated "
                              "quote); fix or remove it")


def _first_line(chunk: str, line: int) -> int:
    """The line number of the first non-blank line of ``chunk``, which starts at ``line``."""
    blank = chunk[: len(chunk) - len(chunk.lstrip())]
    return line + len(_LINE_BREAK.findall(blank))


def _known(key: str) -> bool:
    return key.startswith(("DB_", "QUEUE_", "ICTQ_", "MAIL_", "APP_", "CACHE_", "REDIS_"))


def settings_from_values(values: Mapping[str, str], app_dir: Path, env_file: Path | None = None) -> Settings:
    """Validate raw key/value pairs into :class:`Settings`."""
    reader = _Reader(values)
    connection = reader.choice("DB_CONNECTION", DB_CONNECTIONS, "sqlite")
    db = _database_settings(reader, connection, app_dir)
    log_file = reader.text("ICTQ_LOG_FILE", "storage/logs/queue.log")
    return Settings(
        app_dir=app_dir,
        env_file=env_file,
        queue_connection=reader.choice("QUEUE_CONNECTION", QUEUE_CONNECTIONS, "database"),
        db=db,
        queue_table=reader.identifier("DB_QUEUE_TABLE", "jobs"),
        failed_table=reader.identifier("ICTQ_FAILED_TABLE", "failed_jobs"),
        default_queue=reader.text("DB_QUEUE", "default") or "default",
        retry_after=reader.integer("DB_QUEUE_RETRY_AFTER", 90, minimum=1, maximum=MAX_SECONDS),
        job_modules=comma_list(reader.text("ICTQ_JOBS", "")),
        log_file=None if log_file in ("", "-") else _resolve(app_dir, log_file),
        log_level=reader.choice("ICTQ_LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO", upper=True),
        values=dict(values),
        prune_failed_hours=reader.integer("ICTQ_PRUNE_FAILED_HOURS", 0, minimum=0, maximum=MAX_HOURS),
        beat_every=reader.seconds("ICTQ_BEAT_EVERY", 5.0, minimum=0.05, maximum=10),  # a third of DEAD_AFTER at most
        prune_every=reader.seconds("ICTQ_PRUNE_EVERY", 3600.0, minimum=0.05, maximum=7 * 24 * 3600),
        history_days=reader.integer("ICTQ_HISTORY_DAYS", 7, minimum=1, maximum=400),
        laravel_cache=_laravel_cache_settings(reader, app_dir),
    )


LARAVEL_CACHE_STORES = ("file", "database", "redis")  #: the Laravel cache stores ictq reads and writes


def _laravel_cache_settings(reader: _Reader, app_dir: Path) -> LaravelCacheSettings | None:
    """Laravel's cache store, when ictq shares its queue with a Laravel application:
    ``ICTQ_LARAVEL_SIGNALS=true``, or (unset) when the app dir holds ``artisan`` or the ``.env``
    names a cache store. Defaults follow Laravel's own config files: Laravel 11 and later
    (``CACHE_STORE``, database store, prefix ``<app>_cache_``), else Laravel 8 to 10
    (``CACHE_DRIVER``, file store, prefix ``<app>_cache``)."""
    explicit = reader.text("ICTQ_LARAVEL_SIGNALS", "").lower()
    if explicit not in ("", "true", "false"):
        raise ConfigError(f"ICTQ_LARAVEL_SIGNALS={shown(explicit)} is not supported (use true or false)")
    named = reader.text("CACHE_STORE", "") or reader.text("CACHE_DRIVER", "")
    if explicit == "false" or (explicit == "" and not named and not (app_dir / "artisan").is_file()):
        return None
    eleven = reader.text("CACHE_STORE", "") != "" or laravel_major(app_dir) >= 11
    app = laravel_slug(reader.text("APP_NAME", "laravel") or "laravel")
    default_prefix = f"{app}_cache_" if eleven else f"{app}_cache"
    return LaravelCacheSettings(
        store=(named or ("database" if eleven else "file")).lower(),
        prefix=reader.text("CACHE_PREFIX", default_prefix),
        directory=app_dir / "storage" / "framework" / "cache" / "data",
        table=reader.identifier("DB_CACHE_TABLE", "cache"),
        redis_host=reader.text("REDIS_HOST", "127.0.0.1") or "127.0.0.1",
        redis_port=reader.integer("REDIS_PORT", 6379, minimum=1, maximum=65535),
        redis_username=reader.text("REDIS_USERNAME", ""),
        redis_password=_php_env(reader.text("REDIS_PASSWORD", "")),
        redis_db=reader.integer("REDIS_CACHE_DB", 1, minimum=0, maximum=1_000_000),
        redis_prefix=reader.text("REDIS_PREFIX", f"{app}_database_"),
    )


def _php_env(value: str) -> str:
    """A value as Laravel's ``env()`` gives it: ``null`` and ``(null)`` mean none."""
    return "" if value.lower() in ("null", "(null)") else value


_LARAVEL_VERSION = re.compile(r"const VERSION = '(\d+)\.")


def laravel_major(app_dir: Path) -> int:
    """The major version of the Laravel framework the app runs: Composer's copy in ``vendor/``,
    else Debian's ``php-laravel-framework``; 0 when neither is found."""
    for candidate in (app_dir / "vendor" / "laravel" / "framework" / "src" / "Illuminate" / "Foundation",
                      Path("/usr/share/php/Illuminate/Foundation")):
        try:
            found = _LARAVEL_VERSION.search((candidate / "Application.php").read_text(errors="replace"))
        except OSError:
            continue
        if found:
            return int(found.group(1))
    return 0


def laravel_slug(text: str) -> str:
    """``Str::slug(text, '_')`` as Laravel's config files use it for default prefixes: ``-``
    becomes ``_``, ``@`` becomes ``_at_``, other characters than letters, digits, ``_`` and
    spaces go, runs of ``_`` and spaces become one ``_``, then lower case, trimmed of ``_``."""
    text = text.replace("-", "_").replace("@", "_at_").lower()
    kept = "".join(char for char in text if char.isalnum() or char == "_" or char.isspace())
    return re.sub(r"[_\s]+", "_", kept).strip("_")


def _database_settings(reader: _Reader, connection: str, app_dir: Path) -> DatabaseSettings:
    if connection == "sqlite":
        database = reader.text("DB_DATABASE", "database/database.sqlite")
        if database != ":memory:":
            database = str(_resolve(app_dir, database))
        return DatabaseSettings(
            connection=connection,
            database=database,
            busy_timeout_ms=reader.integer("DB_BUSY_TIMEOUT", 5000, minimum=0, maximum=3_600_000),  # an hour
            synchronous=reader.choice("DB_SYNCHRONOUS", SQLITE_SYNCHRONOUS, "FULL", upper=True),
            # WAL, except in a Laravel app's database: Laravel's own default, the rollback journal,
            # in which its deferred transactions meet "database is locked" less (docs/laravel.md).
            journal_mode=reader.choice("DB_JOURNAL_MODE", SQLITE_JOURNAL_MODES,
                                       "DELETE" if (app_dir / "artisan").is_file() else "WAL", upper=True),
            worker_synchronous_commit=_worker_synchronous_commit(reader),
        )
    several = connection == "pgsql"  # libpq's multi-host syntax; PyMySQL takes one host
    host, ports = _hosts_and_ports(reader, "DB_HOST", "DB_PORT", DEFAULT_PORTS[connection], several)
    pgbouncer, listen_host, listen_ports = "off", "", tuple[int, ...]()
    if connection == "pgsql":
        pgbouncer = reader.choice("DB_PGBOUNCER", PGBOUNCER_MODES, "off")
        if reader.text("DB_LISTEN_HOST", ""):
            listen_host, listen_ports = _hosts_and_ports(reader, "DB_LISTEN_HOST", "DB_LISTEN_PORT",
                                                         DEFAULT_PORTS[connection], several)
        elif reader.text("DB_LISTEN_PORT", ""):
            raise ConfigError("DB_LISTEN_PORT is set but DB_LISTEN_HOST is not (set both, or neither)")
    return DatabaseSettings(
        connection=connection,
        database=reader.required("DB_DATABASE"),
        host=host,
        port=ports[0],
        ports=ports if len(ports) > 1 else (),
        username=reader.text("DB_USERNAME", "root"),
        password=reader.text("DB_PASSWORD", ""),
        socket=reader.text("DB_SOCKET", ""),
        worker_synchronous_commit=_worker_synchronous_commit(reader),
        pgbouncer=pgbouncer,
        listen_host=listen_host,
        listen_ports=listen_ports,
    )


def _hosts_and_ports(reader: _Reader, host_key: str, port_key: str, default_port: int,
                     several: bool) -> tuple[str, tuple[int, ...]]:
    """A host, or (``several``) a comma list of hosts, and its ports: one for all, or one per
    host, as libpq takes them (``DB_HOST=10.0.0.1,10.0.0.2``, ``DB_PORT=5432,5433``)."""
    raw_host = reader.text(host_key, "127.0.0.1") or "127.0.0.1"
    hosts = [part.strip() for part in raw_host.split(",")]
    if len(hosts) > 1 and not several:
        raise ConfigError(f"{host_key} lists several hosts; only DB_CONNECTION=pgsql connects to one of several")
    if any(not host or any(char.isspace() for char in host) for host in hosts):
        raise ConfigError(f"{host_key}={shown(raw_host)} is not a host or a comma list of hosts "
                          "(an empty name or a blank inside one)")
    raw_port = reader.text(port_key, "")
    if raw_port == "":
        return ",".join(hosts), (default_port,)
    parts = raw_port.split(",")
    if len(parts) > 1 and not several:
        raise ConfigError(f"{port_key} lists several ports; only DB_CONNECTION=pgsql connects to one of several")
    try:
        ports = tuple(whole_number(part, 1, 65535) for part in parts)
    except ValueError as exc:
        raise ConfigError(f"{port_key}={shown(raw_port)} {exc}") from None
    if len(ports) not in (1, len(hosts)):
        raise ConfigError(f"{port_key} lists {len(ports)} ports for the {len(hosts)} hosts of {host_key} "
                          "(give one port for all, or one per host)")
    return ",".join(hosts), ports


def _worker_synchronous_commit(reader: _Reader) -> bool:
    return reader.choice("DB_WORKER_SYNCHRONOUS_COMMIT", ("on", "off"), "off") == "on"


def _resolve(app_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else app_dir / path


class _Reader:
    """Typed access to raw values; each failure names its key."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def text(self, key: str, default: str) -> str:
        value = self._values.get(key)
        return default if value is None else value.strip()

    def required(self, key: str) -> str:
        value = self.text(key, "")
        if not value:
            raise ConfigError(f"{key} is required but empty or missing")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: str, upper: bool = False) -> str:
        value = self.text(key, default) or default
        value = value.upper() if upper else value.lower()
        if value not in allowed:
            raise ConfigError(f"{key}={value!r} is not supported (use one of: {', '.join(allowed)})")
        return value

    def integer(self, key: str, default: int, minimum: int, maximum: int) -> int:
        raw = self.text(key, "")
        if raw == "":
            return default
        try:
            return whole_number(raw, minimum, maximum)
        except ValueError as exc:
            raise ConfigError(f"{key}={shown(raw)} {exc}") from None

    def seconds(self, key: str, default: float, minimum: float, maximum: float) -> float:
        raw = self.text(key, "")
        if raw == "":
            return default
        try:
            return decimal_number(raw, minimum, maximum)
        except ValueError as exc:
            raise ConfigError(f"{key}={shown(raw)} {exc} seconds") from None

    def identifier(self, key: str, default: str) -> str:
        value = self.text(key, default) or default
        if not _IDENTIFIER.match(value):
            raise ConfigError(f"{key}={value!r} is not a valid table name (letters, digits and _ only)")
        return value
