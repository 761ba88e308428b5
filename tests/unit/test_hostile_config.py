"""Hostile input at the boundaries that need no database: numbers and names on the command line,
``.env`` files that do not parse, values that would inject into the Supervisor program, and the
exit codes of ``ictq health`` (issue 13, families 1, 6 and 11).

Each command runs through the real entry point, :func:`ictq.cli.main`, in this process. A value
the command accepts reaches the command's body, which then reads a ``.env`` whose first line does
not parse: so "accepted" is the one-line error about that line, and "refused" is one line naming
the option; never a traceback, never ``unexpected error``.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from ictq.cli import main
from ictq.config import MAX_COUNT, MAX_HOURS, MAX_MEGABYTES, MAX_SECONDS, MAX_TRIES, load_settings
from ictq.deploy import MAX_PROCS, ROLE_TEMPLATES, WorkerProgram, render_program
from ictq.errors import ConfigError

BROKEN_ENV = "THIS LINE HAS NO EQUALS SIGN\n"
SENTINEL = "line 1: not KEY=value"


def run(argv: list[str]) -> tuple[int, str, str]:
    """``ictq ARGV`` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code
    assert isinstance(code, int), code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def broken_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("app") / ".env"
    path.write_text(BROKEN_ENV)
    return path


def assert_one_line(text: str) -> str:
    assert text.count("\n") == 1 and text.endswith("\n"), text
    assert "Traceback" not in text and "unexpected error" not in text, text
    return text.strip()


# --- numbers: one generator of hostile text, every numeric option ------------------------------

UNICODE_DIGITS = "²³¹٣۳߃१১௧๑０"
numeric_text = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.integers(min_value=0, max_value=10**7).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=0, max_value=10**6).map(str),
    st.text(alphabet="0123456789+-.eE_ x" + UNICODE_DIGITS, max_size=12),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "1e23", "1e309", "0x10", "1_000", "٣", "²", "-0", "+5",
                     "9" * 40, "9" * 5000, "1,2", "10,60,300", "3\n4"]),
)


def ascii_integer(text: str) -> int | None:
    """The oracle for whole numbers: optional sign, ASCII digits, blanks around allowed."""
    stripped = text.strip(" \t\n")
    if re.fullmatch(r"[+-]?[0-9]+", stripped, re.ASCII) and len(stripped) < 40:
        return int(stripped)
    return None


def ascii_decimal(text: str) -> float | None:
    stripped = text.strip(" \t\n")
    if re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?", stripped, re.ASCII) \
            and len(stripped) < 40:
        return float(stripped)
    return None


def whole(low: int, high: int) -> Callable[[str], bool]:
    return lambda text: (value := ascii_integer(text)) is not None and low <= value <= high


def decimal(low: float, high: float) -> Callable[[str], bool]:
    return lambda text: (value := ascii_decimal(text)) is not None and low <= value <= high


def seconds_list(text: str) -> bool:
    return all(whole(0, MAX_SECONDS)(part) for part in text.split(","))


# (command, option, the documented range as an oracle)
NUMERIC_OPTIONS = [
    (["work"], "--sleep", decimal(0, MAX_SECONDS)),
    (["work"], "--rest", decimal(0, MAX_SECONDS)),
    (["work"], "--timeout", whole(0, MAX_SECONDS)),
    (["work"], "--max-time", whole(0, MAX_SECONDS)),
    (["work"], "--tries", whole(0, MAX_TRIES)),
    (["work"], "--memory", whole(0, MAX_MEGABYTES)),
    (["work"], "--max-jobs", whole(0, MAX_COUNT)),
    (["work"], "--backoff", seconds_list),
    (["dispatch", "some.job"], "--delay", whole(0, MAX_SECONDS)),
    (["list"], "--limit", whole(1, MAX_COUNT)),
    (["failed"], "--limit", whole(1, MAX_COUNT)),
    (["flush"], "--hours", whole(0, MAX_HOURS)),
    (["prune-failed"], "--hours", whole(0, MAX_HOURS)),
    (["monitor", "default"], "--max", whole(0, MAX_COUNT)),
    (["test-email", "--email", "ops@example.com"], "--wait", decimal(0, MAX_SECONDS)),
]


@pytest.mark.parametrize(("command", "option", "accepts"), NUMERIC_OPTIONS,
                         ids=[f"{c[0]} {o}" for c, o, _ in NUMERIC_OPTIONS])
@given(text=numeric_text)
@example(text="1e23")
@example(text="nan")
@example(text="²")
@example(text="٣")
@example(text=str(2**64))
def test_every_numeric_option_is_refused_in_one_line_or_accepted_within_its_range(
        broken_env: Path, command: list[str], option: str, accepts: Callable[[str], bool], text: str) -> None:
    code, out, err = run(["--env-file", str(broken_env), *command, f"{option}={text}"])
    line = assert_one_line(err)
    assert code == 2 and out == "" and len(line) < 400, line
    if accepts(text):
        assert SENTINEL in line, line
    else:
        assert f"'{option}'" in line and SENTINEL not in line, line


SUPERVISOR = ["supervisor-config", "--user", "deploy", "--app-dir", "/srv/app"]
SUPERVISOR_NUMBERS = [
    ("--numprocs", whole(1, MAX_PROCS)), ("--sleep", whole(0, MAX_SECONDS)), ("--tries", whole(0, MAX_TRIES)),
    ("--memory", whole(0, MAX_MEGABYTES)), ("--max-time", whole(0, MAX_SECONDS)),
    ("--max-jobs", whole(0, MAX_COUNT)), ("--backoff", seconds_list),
]


@pytest.mark.parametrize(("option", "accepts"), SUPERVISOR_NUMBERS, ids=[o for o, _ in SUPERVISOR_NUMBERS])
@given(text=numeric_text)
def test_supervisor_config_numbers(tmp_path: Path, option: str, accepts: Callable[[str], bool], text: str) -> None:
    output = tmp_path / "worker.conf"
    output.unlink(missing_ok=True)
    code, _, err = run([*SUPERVISOR, "--retry-after", "90", "-o", str(output), f"{option}={text}"])
    if accepts(text):
        assert code == 0 and output.is_file(), err
    else:
        line = assert_one_line(err)
        assert code == 2 and not output.exists()
        assert option in line, line


@pytest.mark.parametrize("option", ["--timeout", "--stopwaitsecs", "--retry-after", "--numprocs"])
@pytest.mark.parametrize("text", ["1e23", str(2**64), "²", "nan", "-1", ""])
def test_supervisor_config_refuses_other_numbers(option: str, text: str) -> None:
    code, _, err = run([*SUPERVISOR, f"{option}={text}"])
    assert code == 2 and option in assert_one_line(err)


@pytest.mark.parametrize("text", ["1", "2,1", "²", "1,²", "٣", "-1", "1e3", str(2**64), "1,2,3", "", "5,x"])
@pytest.mark.parametrize("option", ["--max-size", "--max-age", "--max-failed-per-hour", "--min-workers"])
def test_health_thresholds_are_checked_and_usage_errors_are_unknown(broken_env: Path, option: str,
                                                                    text: str) -> None:
    code, out, err = run(["--env-file", str(broken_env), "health", f"{option}={text}"])
    assert code == 3  # UNKNOWN either way: a wrong threshold, or the .env that does not parse
    if out:
        assert err == "" and assert_one_line(out).startswith("ICTQ UNKNOWN - configuration:")
    else:
        assert f"'{option}'" in assert_one_line(err)


@pytest.mark.parametrize("argv", [
    ["health", "--no-such-option"],
    ["health", "--queue", ""],
    ["health", "--queue", "a,,b"],
    ["health", "unexpected-argument"],
])
def test_health_answers_unknown_for_its_own_usage_errors(broken_env: Path, argv: list[str]) -> None:
    code, _, err = run(["--env-file", str(broken_env), *argv])
    assert code == 3, err
    assert_one_line(err)


@pytest.mark.parametrize("env", ["missing", "directory", "broken", "bad value"])
def test_health_answers_unknown_for_configuration_errors(tmp_path: Path, env: str) -> None:
    path = {"missing": tmp_path / "nothing.env", "directory": tmp_path}.get(env, tmp_path / ".env")
    if env == "broken":
        path.write_text("DB_CONNECTION=sqlite\nDB_CONNECTION pgsql\n")
    if env == "bad value":
        path.write_text("DB_CONNECTION=oracle\n")
    code, out, err = run(["--env-file", str(path), "health"])
    assert code == 3 and err == ""
    assert assert_one_line(out).startswith("ICTQ UNKNOWN - configuration:")


# --- names ---------------------------------------------------------------------------------------

blank_or_control = st.one_of(
    st.text(alphabet=" \t\u00a0\u2003", max_size=4),
    st.text(min_size=1, max_size=8).map(lambda s: s + "\n" + s),
    st.text(min_size=1, max_size=4).map(lambda s: "\x00" + s),
    st.sampled_from(["", " ", "\t", "a\rb", "x\u2028y", "q\x1b[31m"]),
)
NAME_ARGS: list[Callable[[str], list[str]]] = [
    lambda name: ["dispatch", "--", name],
    lambda name: ["dispatch", "some.job", f"--queue={name}"],
    lambda name: ["pause", "--", name],
    lambda name: ["resume", "--", name],
    lambda name: ["work", f"--queue={name}"],
    lambda name: ["work", f"--queue=high,{name}"],
    lambda name: ["work", f"--name={name}"],
    lambda name: ["size", f"--queue={name}"],
    lambda name: ["list", f"--queue={name},default"],
    lambda name: ["failed", f"--queue={name}"],
    lambda name: ["clear", "--force", f"--queue={name}"],
    lambda name: ["monitor", "--", name],
    lambda name: ["retry", "all", f"--queue={name}"],
    lambda name: ["failed", "show", "--", name],
    lambda name: ["forget", "--", name],
    lambda name: ["forget", f"--group={name}"],
]


@pytest.mark.parametrize("argv", NAME_ARGS, ids=[" ".join(a("NAME")) for a in NAME_ARGS])
@given(name=blank_or_control)
def test_empty_blank_or_control_names_are_refused(broken_env: Path, argv: Callable[[str], list[str]],
                                                  name: str) -> None:
    assume("," not in name)
    code, out, err = run(["--env-file", str(broken_env), *argv(name)])
    line = assert_one_line(err)
    assert code == 2 and out == "" and "Invalid value for" in line and SENTINEL not in line, line


@pytest.mark.parametrize("argv", [["failed", "show"], ["forget"], ["retry"]])
@pytest.mark.parametrize("ref", ["²", "٣", "1" * 25, str(2**63)])
def test_failed_job_ids_are_ascii_and_64_bit(broken_env: Path, argv: list[str], ref: str) -> None:
    code, _, err = run(["--env-file", str(broken_env), *argv, ref])
    assert code == 2 and "REF" in assert_one_line(err)


@pytest.mark.parametrize("bounds", ["1-²", "٣-9", f"1-{2**64}", "5-1", "-", "1-", "x"])
def test_retry_ranges_are_checked(broken_env: Path, bounds: str) -> None:
    code, _, err = run(["--env-file", str(broken_env), "retry", "--range", bounds])
    assert code == 2 and "--range" in assert_one_line(err)


@pytest.mark.parametrize("data", [
    "[" * 30_000 + "]" * 30_000,
    '{"a":' * 30_000 + "1" + "}" * 30_000,
    "{",
    "[1, 2]",
    '{"a":' * 65 + "1" + "}" * 65,
])
def test_dispatch_data_that_is_not_a_json_object_is_one_line(broken_env: Path, data: str) -> None:
    code, _, err = run(["--env-file", str(broken_env), "dispatch", "some.job", "--data", data])
    line = assert_one_line(err)
    assert code == 2 and "--data" in line and len(line) < 300, line


# --- .env files ------------------------------------------------------------------------------------

key = st.from_regex(r"X_[A-Z0-9_]{1,8}", fullmatch=True)
plain = st.text(alphabet="abcXYZ019_-./:@", min_size=0, max_size=10)
quoted = st.text(alphabet="abc XYZ019_-./:@#=", min_size=0, max_size=10)


@st.composite
def env_files(draw: st.DrawFn) -> tuple[str, dict[str, str], int | None]:
    """(text, the values its valid lines set, the number of the first line that does not parse)."""
    lines: list[str] = []
    values: dict[str, str] = {}
    first_error: int | None = None
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["plain", "double", "single", "export", "comment", "blank", "reference",
                                     "no equals", "bare key"]))
        name = draw(key)
        if kind in ("plain", "export"):
            value = draw(plain)
            lines.append(f"{'export ' if kind == 'export' else ''}{name}={value}")
            values[name] = value
        elif kind == "double":
            value = draw(quoted)
            lines.append(f'{name}="{value}"')
            values[name] = value
        elif kind == "single":
            value = draw(quoted) + "${NOT_EXPANDED}"
            lines.append(f"{name}='{value}'")
            values[name] = value
        elif kind == "reference" and values:
            other = draw(st.sampled_from(sorted(values)))
            lines.append(f"{name}=${{{other}}}/x")
            values[name] = values[other] + "/x"
        elif kind == "comment":
            lines.append("# " + draw(quoted))
        elif kind in ("no equals", "bare key"):
            lines.append(f"{name} {draw(plain)}" if kind == "no equals" else name)
            first_error = first_error or len(lines)
        else:
            lines.append("")
    if draw(st.booleans()):  # an unterminated quote, last (a later quote would close it)
        quote = draw(st.sampled_from(['"', "'"]))
        lines.append(f"{draw(key)}={quote}{draw(plain)}")
        first_error = first_error or len(lines)
    return "\n".join(lines) + "\n", values, first_error


@given(env=env_files())
@example(env=("DB_CONNECTION pgsql\n", {}, 1))
@example(env=("A=1\n\n# note\nB='x\n", {}, 4))
def test_an_env_file_loads_its_valid_lines_or_names_the_first_bad_line(tmp_path: Path,
                                                                     env: tuple[str, dict[str, str], int | None]
                                                                     ) -> None:
    text, values, first_error = env
    path = tmp_path / ".env"
    path.write_text(text)
    if first_error is None:
        settings = load_settings(path, environ={})
        assert {name: settings.get(name) for name in values} == values
    else:
        with pytest.raises(ConfigError) as caught:
            load_settings(path, environ={})
        message = str(caught.value)
        assert message.startswith(f"{path}, line {first_error}: not KEY=value"), message
        assert "\n" not in message


def test_a_broken_line_is_never_quoted_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text('APP_NAME=x\nDB_PASSWORD="hunter2-secret\n')
    code, _, err = run(["--env-file", str(path), "size"])
    assert code == 2 and "hunter2" not in err and "line 2" in assert_one_line(err)


@pytest.mark.parametrize(("line", "key_name"), [
    ("DB_QUEUE_RETRY_AFTER=99999999999999999999999", "DB_QUEUE_RETRY_AFTER"),
    (f"DB_QUEUE_RETRY_AFTER={MAX_SECONDS + 1}", "DB_QUEUE_RETRY_AFTER"),
    ("ICTQ_PRUNE_FAILED_HOURS=1e23", "ICTQ_PRUNE_FAILED_HOURS"),
    (f"ICTQ_PRUNE_FAILED_HOURS={MAX_HOURS + 1}", "ICTQ_PRUNE_FAILED_HOURS"),
    ("ICTQ_BEAT_EVERY=nan", "ICTQ_BEAT_EVERY"),
    ("ICTQ_PRUNE_EVERY=inf", "ICTQ_PRUNE_EVERY"),
    ("ICTQ_HISTORY_DAYS=0", "ICTQ_HISTORY_DAYS"),
    ("ICTQ_HISTORY_DAYS=401", "ICTQ_HISTORY_DAYS"),
    ("DB_BUSY_TIMEOUT=²", "DB_BUSY_TIMEOUT"),
    ("DB_QUEUE_RETRY_AFTER=٣", "DB_QUEUE_RETRY_AFTER"),
    ("DB_QUEUE_RETRY_AFTER=1_000", "DB_QUEUE_RETRY_AFTER"),
])
def test_numbers_in_the_env_are_refused_naming_the_key(tmp_path: Path, line: str, key_name: str) -> None:
    path = tmp_path / ".env"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError, match=f"^{key_name}="):
        load_settings(path, environ={})


@pytest.mark.parametrize(("line", "key_name"), [
    ("DB_PORT=٣٣٠٦", "DB_PORT"), ("DB_PORT=99999999999999999999999", "DB_PORT"), ("DB_PORT=1e3", "DB_PORT"),
])
def test_db_port_is_ascii_and_in_range(tmp_path: Path, line: str, key_name: str) -> None:
    path = tmp_path / ".env"
    path.write_text(f"DB_CONNECTION=pgsql\nDB_DATABASE=x\n{line}\n")
    with pytest.raises(ConfigError, match=f"^{key_name}="):
        load_settings(path, environ={})


# --- the Supervisor program ------------------------------------------------------------------------

hostile_text = st.one_of(
    st.text(alphabet="abz09_.-/,:=[];#%\"'\\` \t\n\r\x00\u2028", max_size=16),
    st.sampled_from(["x\n[program:evil]\ncommand=/bin/sh -c id", "a;b", "a #b", "%(here)s", "a b", "q'", "",
                     "default", "high,default", "/srv/app", "--tries=3"]),
)
FIELDS = ["queue", "program", "user", "venv", "app_dir", "supervisor_log_dir", "extra_args"]


def parse_supervisor(text: str) -> configparser.RawConfigParser:
    """The file as Supervisor reads it (its parser: RawConfigParser with ; and # inline comments)."""
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"), strict=False)
    parser.read_string(text)
    return parser


@pytest.mark.parametrize("field", FIELDS)
@given(value=hostile_text)
@example(value="x\n[program:evil]\ncommand=/bin/sh")
def test_a_supervisor_value_is_refused_or_lands_whole_in_one_program(field: str, value: str) -> None:
    fields: dict[str, object] = {"app_dir": "/srv/ict", "venv": "/opt/ictq/venv", "user": "deploy"}
    fields[field] = (value,) if field == "extra_args" else value
    program = WorkerProgram(**fields)  # type: ignore[arg-type]
    try:
        text = render_program(program, ROLE_TEMPLATES)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    parser = parse_supervisor(text)
    assert parser.sections() == [f"program:{program.program}"]
    section = parser[f"program:{program.program}"]
    command = shlex.split(section["command"])
    assert "%" not in text.replace("%(program_name)s", "").replace("%(process_num)02d", "")
    if field == "queue":
        assert f"--queue={value}" in command
    if field == "extra_args":
        assert command[-1] == value
    if field == "user":
        assert section["user"] == value
    if field == "venv":
        assert command[0] == f"{value}/bin/ictq"


def test_the_injection_of_the_issue_is_refused_by_the_cli() -> None:
    code, out, err = run([*SUPERVISOR, "--queue", "x\n[program:evil]\ncommand=id"])
    assert code == 2 and out == "" and "--queue" in assert_one_line(err)


@pytest.mark.parametrize("option", ["--program", "--user", "--venv", "--log-dir", "--extra-arg", "--app-dir"])
def test_every_supervisor_text_option_is_checked(option: str) -> None:
    code, out, err = run([*SUPERVISOR, option, "a\n[program:evil]"])
    assert code == 2 and out == "" and option in assert_one_line(err)


@pytest.mark.parametrize("listen", ["127.0.0.1:٣", ":²", "99999999999999999999", "[::1]:0", "host:", "x" * 500])
def test_metrics_listen_address_is_checked_first(broken_env: Path, listen: str) -> None:
    code, _, err = run(["--env-file", str(broken_env), "metrics", "--listen", listen])
    line = assert_one_line(err)
    assert code == 2 and "--listen" in line and len(line) < 300, line


def test_an_env_file_name_the_system_refuses_is_one_line() -> None:
    code, _, err = run(["--env-file", "x" * 5000, "size"])
    line = assert_one_line(err)
    assert code == 2 and "cannot read the .env file" in line and len(line) < 300, line


def test_migrate_into_a_directory_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    env = tmp_path / ".env"
    env.write_text(f"DB_CONNECTION=sqlite\nDB_DATABASE={tmp_path}/a-file/sub/db.sqlite\n")
    code, _, err = run(["--env-file", str(env), "migrate"])
    assert code == 2 and "DB_DATABASE" in assert_one_line(err)


def test_output_into_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    code, _, err = run([*SUPERVISOR, "-o", str(tmp_path / "missing" / "w.conf")])
    line = assert_one_line(err)
    assert code == 2 and "'-o' / '--output'" in line and "No such file" in line


def test_supervisor_config_never_skips_a_dot_env_that_is_there_but_broken(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ICTQ_ENV_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DB_QUEUE_RETRY_AFTER 30\n")
    code, out, err = run(SUPERVISOR)
    assert code == 2 and out == "" and "line 1" in assert_one_line(err)
    (tmp_path / ".env").unlink()
    code, out, _ = run(SUPERVISOR)
    assert code == 0 and "[program:laravel-worker]" in out


# --- the Laravel app's cache store (restart and pause signals shared with PHP workers) -----------

LARAVEL_NUMBERS = {"REDIS_PORT": (1, 65535), "REDIS_CACHE_DB": (0, 1_000_000)}


@pytest.mark.parametrize("key", sorted(LARAVEL_NUMBERS))
@given(text=numeric_text)
def test_laravel_cache_numbers_are_accepted_in_range_or_refused_naming_the_key(tmp_path: Path, key: str,
                                                                               text: str) -> None:
    assume("\n" not in text and "\r" not in text and "#" not in text)
    path = tmp_path / ".env"
    assume("'" not in text)
    path.write_text(f"CACHE_DRIVER=redis\n{key}='{text}'\n")
    low, high = LARAVEL_NUMBERS[key]
    value = ascii_integer(text)
    try:
        cache = load_settings(path, environ={}).laravel_cache
    except ConfigError as exc:
        assert str(exc).startswith(f"{key}=") and "\n" not in str(exc)
        assert value is None or not low <= value <= high or text.strip() == ""
        return
    assert cache is not None
    found = cache.redis_port if key == "REDIS_PORT" else cache.redis_db
    assert (value is not None and low <= value <= high and found == value) or text.strip() == ""


@given(st.one_of(numeric_text, st.text(max_size=20)))
def test_laravel_signal_switch_and_cache_table_are_checked(tmp_path: Path, text: str) -> None:
    assume("\n" not in text and "\r" not in text and "'" not in text and "#" not in text)
    for key, good in (("ICTQ_LARAVEL_SIGNALS", text.strip().lower() in ("", "true", "false")),
                      ("DB_CACHE_TABLE", re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", text.strip(), re.ASCII)
                       is not None or text.strip() == "")):
        path = tmp_path / ".env"
        path.write_text(f"CACHE_DRIVER=database\n{key}='{text}'\n")
        try:
            load_settings(path, environ={})
        except ConfigError as exc:
            assert str(exc).startswith(f"{key}=") and "\n" not in str(exc) and not good
        else:
            assert good
