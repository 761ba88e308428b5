"""Error signatures: what varies between failures is normalised, what names the error is kept."""

from __future__ import annotations

import pytest

from ictq import ops, triage
from tests.support import laravel


def failed(exception: str, name: str = "test.boom", failed_id: int = 1, at: str = "2026-11-29 01:00:00",
           queue: str = "default") -> ops.FailedRow:
    return ops.FailedRow(failed_id, f"u{failed_id}", "database", queue, name, at, exception, "{}")


@pytest.mark.parametrize(("exception", "expected"), [
    ("builtins.ValueError: boom 42\nFailed because it was attempted once.\n\nTraceback ...",
     "builtins.ValueError: boom <n>"),
    ("ictq.errors.MaxAttemptsExceeded: has been attempted too many times (2 of 1)",
     "ictq.errors.MaxAttemptsExceeded: has been attempted too many times (<n> of <n>)"),
    ("RuntimeError: upstream 10.0.0.7:5432 refused after 3.25s", "RuntimeError: upstream <ip> refused after <n>s"),
    ("KeyError: user 5e40c1d2-1111-2222-3333-444455556666 gone", "KeyError: user <uuid> gone"),
    ("OSError: <Socket object at 0x7f3a2b1c9d80> closed", "OSError: <Socket object at <addr>> closed"),
    ("mail.Refused: recipient a.b+c@example.com refused", "mail.Refused: recipient <email> refused"),
    ("RuntimeError: GET https://api.example.test/v1/users/77?x=1 failed", "RuntimeError: GET <url> failed"),
    ("RuntimeError: token deadbeef00112233 expired", "RuntimeError: token <hex> expired"),
    ("FileNotFoundError: [Errno 2] No such file: /srv/ict/storage/x123.csv",
     "FileNotFoundError: [Errno <n>] No such file: <path>"),
    ("ConnectionError: [::1]:8080 and fe80::1 unreachable", "ConnectionError: <ip> and <ip> unreachable"),
    ("SystemExit", "SystemExit"),
    ("something odd happened on line 7", "something odd happened on line <n>"),
    ("", "(no exception text)"),
])
def test_signature_normalises_numbers_ids_and_addresses(exception: str, expected: str) -> None:
    assert triage.signature(exception) == expected


def test_laravel_first_line_drops_the_php_location() -> None:
    sig = triage.signature(laravel.php_exception())
    assert sig.startswith("Symfony\\Component\\Mailer\\Exception\\TransportException: Connection could not be")
    assert ".php" not in sig and "Stack trace" not in sig and '"<url>"' in sig
    php = "Illuminate\\Database\\QueryException: SQLSTATE[HY000] [2002] Connection refused in /var/www/x/Db.php:712"
    assert triage.split_first_line(php) == (
        "Illuminate\\Database\\QueryException", "SQLSTATE[HY000] [2002] Connection refused")


def test_words_with_digits_and_the_class_name_are_kept() -> None:
    assert triage.signature("app.errors.Utf8Error: bad utf8 in sha256 of IPv4 header") == \
        "app.errors.Utf8Error: bad utf8 in sha256 of IPv4 header"


def test_the_same_error_with_different_numbers_is_one_group_per_job() -> None:
    rows = [failed(f"builtins.ValueError: order {n} not found", failed_id=n, at=f"2026-11-29 0{n}:00:00")
            for n in range(1, 5)]
    rows.append(failed("builtins.ValueError: order 9 not found", name="test.other", failed_id=9))
    rows.append(failed("builtins.KeyError: 'x'", failed_id=10))
    groups = triage.group_rows(rows)
    assert [(g.job, g.count) for g in groups] == [("test.boom", 4), ("test.boom", 1), ("test.other", 1)] or \
        [(g.job, g.count) for g in groups] == [("test.boom", 4), ("test.other", 1), ("test.boom", 1)]
    big = groups[0]
    assert big.signature == "builtins.ValueError: order <n> not found"
    assert (big.first_seen, big.last_seen) == ("2026-11-29 01:00:00", "2026-11-29 04:00:00")
    assert len({g.id for g in groups}) == 3
    assert big.id == triage.group_id("test.boom", big.signature)  # stable: same input, same id


def test_long_messages_are_cut() -> None:
    sig = triage.signature("RuntimeError: " + "word " * 200)
    assert len(sig) <= len("RuntimeError: ") + triage.MAX_SIGNATURE and sig.endswith("...")
