"""The ``ictq_dashboard_users`` table: who may log in to ``ictq dashboard``, with which role,
and the hash of their password (argon2, made by :mod:`ictq.dashboard.auth`; the password itself
is never stored); and ``ictq_dashboard_ended``, the sessions logged out before their signed
cookie expires. :class:`UsersRepository` is the only caller of the ``user_*`` and ``session_*``
statements."""

from __future__ import annotations

from dataclasses import dataclass

from ictq.db.base import Storage

ROLES = ("viewer", "operator")


@dataclass(frozen=True)
class User:
    name: str
    role: str
    hash: str
    created_at: int
    updated_at: int

    @property
    def operator(self) -> bool:
        """Operators may change things (retry, forget, pause, resume, restart); viewers only look."""
        return self.role == "operator"


class UsersRepository:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def get(self, name: str) -> User | None:
        rows = self.storage.fetch("user_get", {"name": name})
        return _user(rows[0]) if rows else None

    def all(self) -> list[User]:
        return [_user(row) for row in self.storage.fetch("user_all")]

    def put(self, name: str, role: str, password_hash: str, now: int) -> None:
        """Create the user, or replace its role and hash."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        self.storage.run("user_put", {"name": name, "role": role, "hash": password_hash, "now": now})

    def delete(self, name: str) -> bool:
        """Remove the user; False when there was none."""
        return self.storage.run("user_delete", {"name": name}) > 0

    def end_session(self, sid: str, expires_at: int) -> None:
        """Remember that session ``sid`` was logged out (until its cookie would expire anyway)."""
        self.storage.run("session_end", {"sid": sid, "expires_at": expires_at})

    def session_ended(self, sid: str) -> bool:
        return bool(self.storage.fetch("session_ended", {"sid": sid}))

    def prune_sessions(self, now: int) -> int:
        """Forget ended sessions whose cookies have expired; return how many."""
        return self.storage.run("session_prune", {"now": now})


def _user(row: tuple[object, ...]) -> User:
    name, role, password_hash, created_at, updated_at = row
    return User(str(name), str(role), str(password_hash), int(str(created_at)), int(str(updated_at)))


__all__ = ["ROLES", "User", "UsersRepository"]
