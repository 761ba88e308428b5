"""The envelope's numbers, whatever a payload holds: each field is used within its documented
range (clamped) or the payload is refused with one line naming the field."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ictq import payload, policy
from ictq.db.base import AVAILABLE_AT_MAX, available_at, fitted, writable
from ictq.errors import InvalidPayload
from ictq.payload import MAX_DELAY, MAX_TIMEOUT

NUMERIC_FIELDS = ("maxTries", "maxExceptions", "timeout", "retryUntil", "exceptions", "backoff")

# Raw JSON number texts a hand-written or hostile payload may hold (json reads 1e309 as inf).
RAW_NUMBERS = ("1e309", "-1e309", "NaN", "Infinity", "-Infinity", "1e20", "-1", "-0", "0.5", "3.0", "1e3",
               "99999999999999999999999999999", "-99999999999999999999999999999", "true", "false", "null",
               '""', '"3"', '"1,5,10"', '"-5,1e309"', '"a,b"', "[]", "[1e309]", "[1e20, -3, 2.0]", "[[1]]",
               '{"a": 1}', '"\\u0000"', '"\\ud800"', "[true]", '" 5 , 10 "', '"99999999999999999999999"')

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def envelope_text(field: str, raw: str) -> str:
    return f'{{"uuid":"u","displayName":"x","job":"x","data":{{}},"{field}":{raw}}}'


def check(text: str, field: str) -> payload.Envelope | None:
    """Parse; a refusal must be one line naming the field."""
    try:
        envelope = payload.parse(text)
    except InvalidPayload as exc:
        message = str(exc)
        assert "\n" not in message and len(message) < 300
        assert repr(field) in message, message
        return None
    assert envelope.max_tries is None or (type(envelope.max_tries) is int and envelope.max_tries >= 0)
    assert envelope.max_exceptions is None or (type(envelope.max_exceptions) is int and envelope.max_exceptions >= 0)
    assert envelope.timeout is None or (type(envelope.timeout) is int and 0 <= envelope.timeout <= MAX_TIMEOUT)
    assert envelope.retry_until is None or type(envelope.retry_until) is int
    assert type(envelope.exceptions) is int and envelope.exceptions >= 0
    assert envelope.backoff is None or all(type(b) is int and 0 <= b <= MAX_DELAY for b in envelope.backoff)
    return envelope


@pytest.mark.parametrize("field", NUMERIC_FIELDS)
@pytest.mark.parametrize("raw", RAW_NUMBERS)
def test_extreme_raw_numbers_are_clamped_or_refused_by_name(field: str, raw: str) -> None:
    check(envelope_text(field, raw), field)


@given(field=st.sampled_from(NUMERIC_FIELDS), value=json_values)
def test_any_json_value_in_any_numeric_field_is_clamped_or_refused_by_name(field: str, value: Any) -> None:
    check(envelope_text(field, json.dumps(value)), field)


@given(field=st.sampled_from(("maxTries", "maxExceptions", "timeout", "retryUntil", "exceptions")),
       value=st.integers(min_value=0, max_value=10**30))
def test_whole_numbers_are_kept_as_given_within_range(field: str, value: int) -> None:
    for raw in (str(value), f"{value}.0" if value < 2**53 else str(value)):
        envelope = check(envelope_text(field, raw), field)
        assert envelope is not None
        got = {"maxTries": envelope.max_tries, "maxExceptions": envelope.max_exceptions, "timeout": envelope.timeout,
               "retryUntil": envelope.retry_until, "exceptions": envelope.exceptions}[field]
        assert got == (min(value, MAX_TIMEOUT) if field == "timeout" else value)


@pytest.mark.parametrize(("field", "raw", "reason"), [
    ("maxTries", "-1", "'maxTries' must not be negative"),
    ("maxExceptions", "-2", "'maxExceptions' must not be negative"),
    ("timeout", "-5", "'timeout' must not be negative"),
    ("timeout", "1e309", "'timeout' must be a whole number, got inf"),
    ("maxTries", "NaN", "'maxTries' must be a whole number, got nan"),
    ("maxTries", "2.5", "'maxTries' must be a whole number, got 2.5"),
    ("maxTries", "true", "'maxTries' must be a whole number, got bool"),
    ("retryUntil", '"tomorrow"', "'retryUntil' must be a whole number, got str"),
    ("backoff", "[1e309]", "'backoff' must be a whole number, got inf"),
    ("backoff", '"1,x"', "'backoff' is not a list of seconds"),
    ("backoff", '{"a": 1}', "'backoff' must be a whole number, got dict"),
])
def test_what_cannot_be_used_fails_the_job_naming_the_field(field: str, raw: str, reason: str) -> None:
    with pytest.raises(InvalidPayload, match=reason):
        payload.parse(envelope_text(field, raw))


@pytest.mark.parametrize(("raw", "expected"), [
    ("[1e20, -3, 2.0, 7]", (MAX_DELAY, 0, 2, 7)),
    ('"99999999999999999999999,-99999999999999999999999, 5"', (MAX_DELAY, 0, 5)),
    ("-4", (0,)),
    ("1e6", (1_000_000,)),
    ('"10,60"', (10, 60)),
    ('""', None),
    ("[]", None),
])
def test_backoff_entries_are_clamped_into_zero_to_thirty_days(raw: str, expected: tuple[int, ...] | None) -> None:
    assert payload.parse(envelope_text("backoff", raw)).backoff == expected


def test_timeout_is_clamped_to_thirty_days() -> None:
    assert payload.parse(envelope_text("timeout", "1e20")).timeout == MAX_TIMEOUT == 365 * 24 * 3600


@given(st.one_of(st.integers(), st.floats(), st.none(), st.text(max_size=3)))
def test_a_delay_a_job_asks_for_is_clamped(delay: Any) -> None:
    seconds = policy.requested_delay(delay)
    assert type(seconds) is int and 0 <= seconds <= MAX_DELAY
    if type(delay) is int and 0 <= delay <= MAX_DELAY:
        assert seconds == delay
    if isinstance(delay, float) and math.isinf(delay):
        assert seconds == (MAX_DELAY if delay > 0 else 0)


@given(st.integers(min_value=-(2**80), max_value=2**80))
def test_available_at_always_fits_every_dialects_column(moment: int) -> None:
    value = available_at(moment)
    assert 0 <= value <= AVAILABLE_AT_MAX == 2**31 - 1
    assert value == moment or not 0 <= moment <= AVAILABLE_AT_MAX


@given(st.text(), st.integers(min_value=10, max_value=300))
def test_written_text_is_storable_and_fits_its_column(text: str, length: int) -> None:
    safe = writable(text)
    safe.encode("utf-8")  # no lone surrogate
    assert "\x00" not in safe
    if text.isascii() and "\x00" not in text:
        assert safe == text
    cut = fitted(text, length)
    assert len(cut) <= length and "\x00" not in cut
    if len(safe) <= length:
        assert cut == safe
    else:
        assert cut.startswith(safe[:length - 9])
        assert fitted(text + "x", length) != cut or len(writable(text + "x")) <= length


def test_nul_and_surrogates_are_written_readably() -> None:
    assert writable("a\x00b") == "a\\u0000b"
    assert writable("\udcff\x00") == "\\udcff\\u0000"
