"""The dashboard's users, passwords, key and login limits (no server: a fake clock where time matters)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ictq.config import load_settings
from ictq.dashboard import auth
from ictq.dashboard.app import _safe_next
from ictq.db.users import User
from ictq.errors import ConfigError, UserError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settings_with(tmp_path, **values: str):  # type: ignore[no-untyped-def]
    env = tmp_path / ".env"
    env.write_text("".join(f"{k}={v}\n" for k, v in {"DB_CONNECTION": "sqlite", "DB_DATABASE": str(tmp_path / "q.db"),
                                                     **values}.items()))
    return load_settings(env, environ={})


@pytest.mark.parametrize("key", ["", "short", "x" * 31])
def test_a_missing_or_short_key_is_refused(tmp_path, key: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"ICTQ_DASHBOARD_KEY .*at least 32"):
        auth.dashboard_key(settings_with(tmp_path, ICTQ_DASHBOARD_KEY=key))


def test_a_long_key_is_used_and_never_shown(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = settings_with(tmp_path, ICTQ_DASHBOARD_KEY="k" * 40)
    assert auth.dashboard_key(settings) == "k" * 40
    assert "k" * 40 in settings.secrets  # masked wherever ictq prints or logs


@given(st.text(max_size=80))
def test_names_are_short_plain_words(name: str) -> None:
    try:
        auth.check_name(name)
    except UserError:
        assert not (0 < len(name) <= 64 and name.isascii() and name[0].isalnum()
                    and all(c.isalnum() or c in "_.@-" for c in name))
    else:
        assert 0 < len(name) <= 64 and ":" not in name and name.isascii() and name.isprintable()


MESSAGES = {f"the password is too short: at least {auth.MIN_PASSWORD_LENGTH} characters",
            "the password holds a control character (a line break from the input?)"}


@given(st.text(max_size=40))
def test_passwords_need_ten_printable_characters(password: str) -> None:
    try:
        auth.check_password(password)
    except UserError as exc:
        assert str(exc) in MESSAGES  # never the password itself
    else:
        assert len(password) >= auth.MIN_PASSWORD_LENGTH
        assert all(ord(c) >= 32 and ord(c) != 127 for c in password)


def test_hash_verifies_only_its_password() -> None:
    user = User("ann", "viewer", auth.hash_password("correct horse"), 0, 0)
    assert user.hash.startswith("$argon2id$") and "correct horse" not in user.hash
    assert auth.verify(user, "correct horse")
    assert not auth.verify(user, "correct horsE")
    assert not auth.verify(User("ann", "viewer", "not a hash", 0, 0), "correct horse")


def test_attempts_block_after_five_failures_until_the_oldest_ages_out() -> None:
    clock = Clock()
    attempts = auth.Attempts(auth.Limit(failures=5, within=300), clock=clock)
    for _ in range(4):
        attempts.failed("address:a", "user:u")
        clock.now += 10
    assert attempts.wait("address:a", "user:u") == 0
    attempts.failed("address:a", "user:u")
    assert attempts.wait("address:a") == pytest.approx(300 - 40)
    assert attempts.wait("address:b", "user:u") > 0  # the name is limited from any address
    assert attempts.wait("address:b", "user:v") == 0
    clock.now += 261
    assert attempts.wait("address:a", "user:u") == 0  # the first failure aged out


def test_a_success_clears_the_name_but_not_the_address() -> None:
    clock = Clock()
    attempts = auth.Attempts(auth.Limit(failures=2, within=60), clock=clock)
    attempts.failed("address:a", "user:u")
    attempts.failed("address:a", "user:u")
    attempts.succeeded("user:u")
    assert attempts.wait("user:u") == 0
    assert attempts.wait("address:a") > 0


def test_verified_basic_credentials_are_remembered_for_a_while_and_end_with_a_new_hash() -> None:
    clock = Clock()
    verified = auth.Verified("k" * 40, ttl=60, clock=clock)
    user = User("ann", "viewer", auth.hash_password("first password"), 0, 0)
    assert verified.check(user, "first password")
    assert not verified.check(user, "wrong password")
    changed = User("ann", "viewer", auth.hash_password("second password"), 0, 1)
    assert not verified.check(changed, "first password")  # the remembered one was bound to the old hash
    assert verified.check(changed, "second password")
    clock.now += 61
    assert verified.check(changed, "second password")  # verified again with argon2, not remembered


@given(st.text(max_size=60))
def test_csrf_tokens_compare_only_equal_non_empty_text(given_token: str) -> None:
    token = auth.new_csrf_token()
    assert auth.same_token(token, token)
    assert auth.same_token(token, given_token) == (given_token == token)
    assert not auth.same_token(None, given_token)
    assert not auth.same_token("", "")


@given(st.one_of(st.none(), st.text(max_size=60)))
def test_going_back_never_leaves_the_site(target: str | None) -> None:
    result = _safe_next(target)
    assert result.startswith("/") and not result.startswith(("//", "/\\")) and "\n" not in result
    assert result in ("/", target)
