"""Text on its way out (log lines, command output, metrics labels, failed_jobs records): secrets
masked, odd characters escaped, length bounded.

- :class:`Masker` is the one masking function. It replaces every secret with ``********``, and
  also the forms a secret takes on the way out: the body of a ``base64:`` key and its decoded
  text (when printable), JSON-escaped, ``repr``-escaped, URL-encoded, and as a log line writes
  it (blanks squeezed, ``"`` turned into ``'``, non-ASCII escaped). A secret shorter than
  :data:`MIN_SECRET_LENGTH` is not masked (it would mask common words). Cheap on the per-job
  path: one ``in`` test per form, and a plain secret has a single form.
  :func:`use` makes one masker the process's own, :func:`mask` applies it.
- :func:`printable` makes any value from a row (bytes, lone surrogates from undecodable bytes,
  NUL and other control characters, megabytes of text) one safe line of bounded length.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "********"
MIN_SECRET_LENGTH = 4
CUT = "…"

_KEPT_IN_LINES = frozenset("\n\t")


def _escape(char: str) -> str:
    """A character as Python writes it in a string literal: ``\\x00``, ``\\u202e``, ``\\U0002fa1e``."""
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def text_of(value: object) -> str:
    """Any column value as text: bytes decoded (undecodable bytes kept as lone surrogates, as
    the SQLite connection reads them: :func:`printable` shows them as ``\udcff``), None as ``""``."""
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "surrogateescape")
    return value if isinstance(value, str) else str(value)


def printable(value: object, limit: int | None = None, lines: bool = False) -> str:
    """``value`` as text safe to print, log or put in a label: every character that is not
    printable escaped (``\\x00``, ``\\udc80``, ``\\u202e``; newlines and tabs kept when ``lines``),
    cut at ``limit`` characters (before escaping) with ``…``."""
    text = text_of(value)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + CUT
    if text.isprintable():
        return text
    # Everything str.isprintable() refuses is escaped: control and format characters (bidi
    # overrides included), separators other than the space, lone surrogates, unassigned ones.
    kept = _KEPT_IN_LINES if lines else frozenset()
    return "".join(char if char.isprintable() or char in kept else _escape(char) for char in text)


def _decoded(body: str) -> str | None:
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


def _escapes(secret: str) -> set[str]:
    """How text carrying ``secret`` may encode it: JSON, repr, URL."""
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        secret.encode("ascii", "backslashreplace").decode("ascii"),
    }


def _as_logged(text: str) -> set[str]:
    """What a log field makes of ``text`` (see :func:`ictq.logs.fields_text`)."""
    squeezed = " ".join(text.split())
    return {text, squeezed, text.replace('"', "'"), squeezed.replace('"', "'")}


def secret_forms(secret: str) -> set[str]:
    """Every form of ``secret`` to mask, at least :data:`MIN_SECRET_LENGTH` characters each."""
    bases = {secret}
    if secret.startswith("base64:"):
        body = secret[len("base64:"):]
        bases.add(body)
        decoded = _decoded(body)
        if decoded:
            bases.add(decoded)
    escaped = {form for base in bases for form in _escapes(base)}
    forms = {logged for form in escaped for logged in _as_logged(form)}
    return {form for form in forms if len(form.strip()) >= MIN_SECRET_LENGTH}


class Masker:
    """Replaces every secret, in every form of :func:`secret_forms`, with ``********``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        found = {form for secret in secrets if secret for form in secret_forms(secret)}
        self.forms = tuple(sorted(found, key=lambda form: (-len(form), form)))  # longest first
        self.longest = len(self.forms[0]) if self.forms else 0

    def __bool__(self) -> bool:
        return bool(self.forms)

    def __call__(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def bounded(self, text: str, limit: int) -> str:
        """``text`` masked and cut at ``limit`` characters (a secret is never cut in two: only
        the part that can hold the kept characters is masked, then cut)."""
        if len(text) > limit:
            text = self(text[: limit + self.longest])
            return text if len(text) <= limit else text[: max(0, limit - 1)] + CUT
        return self(text)


NO_SECRETS = Masker()
_current = NO_SECRETS


def use(masker: Masker) -> None:
    """Make ``masker`` the one :func:`mask` of this process (the settings' secrets: set when a
    command reads its settings and when logging is set up)."""
    global _current
    _current = masker


def mask(text: str) -> str:
    """``text`` through the masker of this process (see :func:`use`): for text that is shown
    after a transformation a secret would not survive (a triage signature)."""
    return _current(text)
