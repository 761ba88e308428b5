"""Who may use the dashboard, and how they prove it.

- Users live in ``ictq_dashboard_users`` (:mod:`ictq.db.users`) with an argon2id hash of their
  password (argon2-cffi's defaults); :func:`add_user` is ``ictq dashboard user add``.
- The session cookie is signed with ``ICTQ_DASHBOARD_KEY`` (:func:`dashboard_key`: refused when
  missing or shorter than :data:`MIN_KEY_LENGTH`); it carries the user's name, a CSRF token and
  the moment the user's record last changed, so a new password or role ends older sessions.
- :class:`Attempts` limits failed logins (form and HTTP Basic alike) per client address and per
  user name.
- :class:`Verified` remembers, for a minute, a Basic credential that verified, so a probe that
  sends one with every request does not pay argon2 each time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ictq.config import Settings
from ictq.db import Storage
from ictq.db.users import ROLES, User, UsersRepository
from ictq.errors import ConfigError, UserError

KEY_SETTING = "ICTQ_DASHBOARD_KEY"
MIN_KEY_LENGTH = 32
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
CSRF_FIELD = "csrf_token"

_hasher = PasswordHasher()


def dashboard_key(settings: Settings) -> str:
    """The key that signs sessions; a :class:`ConfigError` when it is missing or short."""
    key = settings.values.get(KEY_SETTING, "").strip()
    if len(key) < MIN_KEY_LENGTH:
        state = "is not set" if not key else f"is {len(key)} characters long"
        raise ConfigError(
            f"{KEY_SETTING} {state}: the dashboard signs its sessions with it and needs at least "
            f"{MIN_KEY_LENGTH} random characters (python3 -c 'import secrets; print(secrets.token_urlsafe(48))')")
    return key


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise UserError("a user name is 1 to 64 letters, digits and . _ @ - (starting with a letter or digit)")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password is too short: at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"the password is too long: at most {MAX_PASSWORD_LENGTH} characters")
    if any(ord(char) < 32 or ord(char) == 127 for char in password):
        raise UserError("the password holds a control character (a line break from the input?)")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(user: User, password: str) -> bool:
    """Whether ``password`` is the user's (never raises for a wrong or damaged hash)."""
    try:
        return _hasher.verify(user.hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def add_user(storage: Storage, name: str, role: str, password: str, update: bool, now: int) -> str:
    """``created``; with ``update`` also ``updated`` or ``unchanged`` (same role, password verifies)."""
    check_name(name)
    if role not in ROLES:
        raise UserError(f"unknown role {role!r} (use {' or '.join(ROLES)})")
    check_password(password)
    users = UsersRepository(storage)
    existing = users.get(name)
    if existing is not None and not update:
        raise UserError(f"user {name} exists (use --update to change its password or role)")
    if existing is not None and existing.role == role and verify(existing, password):
        return "unchanged"
    users.put(name, role, hash_password(password), now)
    return "created" if existing is None else "updated"


def remove_user(storage: Storage, name: str) -> None:
    if not UsersRepository(storage).delete(name):
        raise UserError(f"no dashboard user named {name}")


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(expected: object, given: object) -> bool:
    """Constant-time comparison of two CSRF tokens; False unless both are non-empty text."""
    if not isinstance(expected, str) or not isinstance(given, str) or not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


@dataclass(frozen=True)
class Limit:
    failures: int = 5
    within: float = 300.0


class Attempts:
    """Failed logins per key (a client address, a user name): after ``limit.failures`` within
    ``limit.within`` seconds, more attempts are refused until the oldest failure ages out.
    In memory: one dashboard process (restarting it forgets, which an attacker cannot trigger)."""

    def __init__(self, limit: Limit = Limit(), clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def wait(self, *keys: str) -> float:
        """Seconds until the keys may try again (0: now)."""
        now = self.clock()
        with self._lock:
            longest = 0.0
            for key in keys:
                failures = self._recent(key, now)
                if len(failures) >= self.limit.failures:
                    longest = max(longest, failures[0] + self.limit.within - now)
            return longest

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            if len(self._failures) > 10_000:  # bound the memory an address scan can take
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.limit.within:
            failures.popleft()
        return failures


class Verified:
    """Basic credentials that verified in the last ``ttl`` seconds, kept as a keyed digest
    (never the password), each bound to the user's hash: a new password ends it."""

    def __init__(self, key: str, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._key = hashlib.sha256(key.encode()).digest()
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[bytes, tuple[str, float]] = {}

    def _digest(self, name: str, password: str) -> bytes:
        return hmac.new(self._key, f"{name}\0{password}".encode("utf-8", "surrogatepass"), "sha256").digest()

    def check(self, user: User, password: str) -> bool:
        digest = self._digest(user.name, password)
        now = self.clock()
        with self._lock:
            seen = self._seen.get(digest)
            if seen is not None and seen[0] == user.hash and seen[1] > now:
                return True
        if not verify(user, password):
            return False
        with self._lock:
            if len(self._seen) > 1_000:
                self._seen = {k: v for k, v in self._seen.items() if v[1] > now}
            self._seen[digest] = (user.hash, now + self.ttl)
        return True
