from __future__ import annotations

import pytest

from ictq.mail.address import InvalidAddress, parse_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("user@example.com", "user@example.com"),
        ("  first.last+tag@sub.example.org ", "first.last+tag@sub.example.org"),
        ("user@пример.рф", "user@пример.рф"),
        ("root@[192.0.2.1]", "root@[192.0.2.1]"),
    ],
)
def test_valid_addresses(text: str, expected: str) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "it is empty"),
        ("user", "it has no @domain"),
        ("user@", "it has no domain after @"),
        ("@example.com", "it has no local part before @"),
        ("us er@example.com", "whitespace"),
        ("user@example.com\r\nBcc: victim@example.com", "whitespace or control characters"),
        ("user@-example.com", "not a valid host name"),
        ("user@exa_mple.com", "not a valid host name"),
        ("user@example..com", "expected atom"),
        ("Name<user@example.com>", "Invalid addr_spec"),
        ("пользователь@example.com", "non-ASCII"),
        ("a" * 250 + "@example.com", "longer than 254"),
    ],
)
def test_invalid_addresses_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        parse_address(text)
    assert reason in str(caught.value)
