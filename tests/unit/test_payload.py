from __future__ import annotations

import json

import pytest

from ictq import payload
from ictq.errors import DispatchError, InvalidPayload

LARAVEL_PAYLOAD = {
    "uuid": "6a5c35a5-3c4f-4f7e-9a4e-5b8a1c0f2d11",
    "displayName": "App\\Notifications\\ResetPassword",
    "job": "Illuminate\\Queue\\CallQueuedHandler@call",
    "maxTries": None,
    "maxExceptions": None,
    "failOnTimeout": False,
    "backoff": "10,60",
    "timeout": None,
    "retryUntil": None,
    "data": {"commandName": "Illuminate\\Notifications\\SendQueuedNotifications",
             "command": 'O:48:"Illuminate\\Notifications\\SendQueuedNotifications":1:{s:5:"tries";N;}'},
    "createdAt": 1764374400,
    "delay": None,
}


def test_build_writes_laravels_envelope() -> None:
    uuid, text = payload.build("mail.welcome", {"user_id": 7}, created_at=1000, delay=30, max_tries=3,
                               backoff=(10, 60), timeout=20, retry_until=5000)
    fields = json.loads(text)
    assert set(fields) == {"uuid", "displayName", "job", "maxTries", "maxExceptions", "failOnTimeout", "backoff",
                           "timeout", "retryUntil", "data", "createdAt", "delay"}
    assert fields["uuid"] == uuid and fields["job"] == fields["displayName"] == "mail.welcome"
    assert fields["backoff"] == "10,60" and fields["maxTries"] == 3 and fields["data"] == {"user_id": 7}
    parsed = payload.parse(text)
    assert parsed.backoff == (10, 60) and parsed.max_tries == 3 and parsed.timeout == 20
    assert parsed.retry_until == 5000 and not parsed.is_php


def test_laravel_payload_parses_and_is_known_as_php() -> None:
    parsed = payload.parse(json.dumps(LARAVEL_PAYLOAD))
    assert parsed.is_php
    assert parsed.display_name == "App\\Notifications\\ResetPassword"
    assert parsed.backoff == (10, 60)


def test_unserializable_data_is_refused_at_dispatch() -> None:
    with pytest.raises(DispatchError, match="not JSON-serializable"):
        payload.build("x", {"when": object()}, created_at=0)


@pytest.mark.parametrize(("text", "reason"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON list, not an object"),
    ('{"uuid": "u"}', "'job' must be a non-empty string"),
    ('{"job": 5}', "'job' must be a non-empty string"),
    ('{"job": "x", "maxTries": "many"}', "'maxTries' must be a whole number"),
    ('{"job": "x", "backoff": "a,b"}', "'backoff' is not a list of seconds"),
    (b'{"job": "\xff"}', "not UTF-8"),
])
def test_malformed_payloads_say_what_is_wrong(text: str | bytes, reason: str) -> None:
    with pytest.raises(InvalidPayload, match=reason):
        payload.parse(text)


def test_uuid_is_found_even_in_a_broken_payload() -> None:
    assert payload.uuid_from_text('{"uuid":"abc-123","job": broken') == "abc-123"
    assert payload.uuid_from_text("garbage") is None


def test_exception_count_is_carried_in_the_payload() -> None:
    _, text = payload.build("x", {}, created_at=0, max_exceptions=2)
    updated = payload.parse(payload.parse(text).with_exceptions(1))
    assert updated.exceptions == 1 and updated.max_exceptions == 2
