"""E-mail address checks, done with the standard library's RFC 5322 parser."""

from __future__ import annotations

import re
from email.errors import HeaderParseError, MessageDefect
from email.headerregistry import Address

from ictq.errors import InvalidAddress

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
MAX_LENGTH = 254

__all__ = ["MAX_LENGTH", "InvalidAddress", "parse_address"]


def parse_address(text: str) -> str:
    """``text`` as a bare ``local@domain`` address, or :class:`InvalidAddress` saying why."""
    candidate = text.strip()
    if not candidate:
        raise InvalidAddress("it is empty")
    if len(candidate) > MAX_LENGTH:
        raise InvalidAddress(f"it is longer than {MAX_LENGTH} characters")
    _check_shape(candidate)
    try:
        address = Address(addr_spec=candidate)
    except (ValueError, IndexError, HeaderParseError, MessageDefect) as exc:
        raise InvalidAddress(" ".join(str(exc).split()).rstrip(")") or "it cannot be parsed") from None
    _check_domain(address.domain)
    return address.addr_spec


def _check_shape(candidate: str) -> None:
    local, at, domain = candidate.rpartition("@")
    if not at:
        raise InvalidAddress("it has no @domain")
    if any(c.isspace() or ord(c) < 32 for c in candidate):
        raise InvalidAddress("it contains whitespace or control characters")
    if not local:
        raise InvalidAddress("it has no local part before @")
    if not domain:
        raise InvalidAddress("it has no domain after @")


def _check_domain(domain: str) -> None:
    if not domain:
        raise InvalidAddress("it has no domain after @")
    if domain.startswith("[") and domain.endswith("]"):
        return  # an address literal such as [192.0.2.1]; the parser checked its form
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidAddress(f"the domain {domain!r} is not a valid host name") from None
    if not all(_LABEL.match(label) for label in ascii_domain.rstrip(".").split(".")):
        raise InvalidAddress(f"the domain {domain!r} is not a valid host name")
