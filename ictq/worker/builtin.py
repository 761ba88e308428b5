"""The jobs every worker runs whatever ``ICTQ_JOBS`` says: the built-in e-mail notifications
(``mail.password_reset``, ``mail.account_activation``). Registered by the worker at start-up
(:func:`register_builtin_jobs`), not as a side effect of what the command line imports."""

from __future__ import annotations

import importlib

BUILTIN_JOB_MODULES = ("ictq.mail.notifications",)


def register_builtin_jobs() -> None:
    """Import the built-in job modules (their jobs register on import; a second call is free)."""
    for name in BUILTIN_JOB_MODULES:
        importlib.import_module(name)
