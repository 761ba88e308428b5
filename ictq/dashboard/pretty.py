"""A job's payload as a person reads it, secrets masked.

- JSON is indented, and the value of every key that names a secret (``password``, ``token``,
  ``secret``, ``api_key``, ``authorization``...) at any depth is replaced by ``********``;
- a PHP job's ``data.command`` (Laravel's ``serialize()`` of the job object) is decoded with
  phpserialize and shown as the class and its properties, one per line, with the visibility
  PHP marks in their names (``\\0*\\0connection`` is a protected ``connection``);
- the .env's secrets are masked last, in every text (:func:`ictq.display.mask`), and the result
  is printable (control characters escaped, bounded).
"""

from __future__ import annotations

import json
import re
from typing import Any

import phpserialize

from ictq import display

MASK = "********"
MAX_TEXT = 200_000  # characters of a payload or trace shown on a page
SECRET_KEY = re.compile(r"pass(word|wd|phrase)?|secret|token|api[_-]?key|authori[sz]ation|cookie|credentials?|"
                        r"private[_-]?key|card[_-]?number|cvv", re.IGNORECASE)


def masked(value: Any) -> Any:
    """``value`` (decoded JSON) with the values of secret-named keys masked, at any depth."""
    if isinstance(value, dict):
        return {key: MASK if isinstance(key, str) and SECRET_KEY.search(key) and value[key] not in (None, "")
                else masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value


def payload(text: str) -> str:
    """The payload indented, secrets masked; as it is (masked, printable) when it is not JSON."""
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError):
        return shown(text)
    return shown(json.dumps(masked(decoded), indent=2, ensure_ascii=False))


def php_command(text: str) -> tuple[str, str] | None:
    """``(class, readable properties)`` of a PHP job's serialized command; None for another job
    or a command phpserialize cannot read."""
    try:
        data = json.loads(text).get("data")
        command = data.get("command") if isinstance(data, dict) else None
    except (ValueError, AttributeError, RecursionError):
        return None
    if not isinstance(command, str) or not command.startswith("O:"):
        return None
    try:
        value = phpserialize.loads(command.encode("utf-8", "surrogateescape"), decode_strings=True,
                                   object_hook=phpserialize.phpobject)
    except Exception:  # noqa: BLE001 - a damaged or unusual serialization: the raw text is shown instead
        return None
    return str(getattr(value, "__name__", "?")), shown("\n".join(_php_lines(value, 0)))


def _php_lines(value: Any, depth: int) -> list[str]:
    pad = "  " * depth
    if depth > 20:
        return [f"{pad}…"]
    if isinstance(value, phpserialize.phpobject):
        lines = [f"{pad}{value.__name__} {{"]
        for name, item in value._asdict().items():
            lines.extend(_php_member(_property(str(name)), item, depth + 1))
        return [*lines, f"{pad}}}"]
    if isinstance(value, dict) and not value:
        return [f"{pad}[]"]
    if isinstance(value, dict):
        lines = [f"{pad}["]
        for key, item in value.items():
            lines.extend(_php_member(repr(key) if isinstance(key, str) else str(key), item, depth + 1))
        return [*lines, f"{pad}]"]
    return [f"{pad}{_scalar(value)}"]


def _php_member(label: str, item: Any, depth: int) -> list[str]:
    pad = "  " * depth
    bare = label.split(" ")[0].strip("'")
    if SECRET_KEY.search(bare) and item not in (None, ""):
        return [f"{pad}{label}: {MASK}"]
    if isinstance(item, (dict, phpserialize.phpobject)):
        nested = _php_lines(item, depth)
        return [f"{pad}{label}: {nested[0].lstrip()}", *nested[1:]]
    return [f"{pad}{label}: {_scalar(item)}"]


def _property(name: str) -> str:
    """PHP's mangled property names: ``\\0*\\0x`` protected, ``\\0Class\\0x`` private."""
    if name.startswith("\0*\0"):
        return f"{name[3:]} (protected)"
    if name.startswith("\0"):
        owner, _, bare = name[1:].partition("\0")
        return f"{bare} (private, {owner})"
    return name


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def shown(text: str) -> str:
    """Text for a page: the .env's secrets masked, printable, at most :data:`MAX_TEXT` characters."""
    return display.printable(display.mask(text), limit=MAX_TEXT, lines=True)
