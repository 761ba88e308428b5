"""What ictq writes for and reads from a Laravel application beside it: the cache signals'
formats, the settings read from the shared .env, retried deadlines, PHP's re-encoded payloads."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ictq import payload
from ictq.config import LaravelCacheSettings, laravel_slug, settings_from_values
from ictq.errors import ConfigError, RetryRefused
from ictq.laravel_cache import FOREVER_FILE, FileStore, next_restart_stamp, php_serialize, php_unserialize
from ictq.ops import retry_payload

scalars = st.one_of(st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.text())


@given(scalars)
def test_php_serialized_scalars_read_back_as_written(value: bool | int | str) -> None:
    assert php_unserialize(php_serialize(value)) == value


def test_php_serialization_is_phps() -> None:
    assert [php_serialize(v) for v in (True, False, 1796137975, "ключ")] == \
        ["b:1;", "b:0;", "i:1796137975;", 's:8:"ключ";']
    assert php_unserialize("1796137975") == 1796137975  # Laravel's redis store keeps numbers as they are
    assert php_unserialize("d:1.5;") == 1.5 and php_unserialize("N;") is None
    assert php_unserialize('s:9:"ключ";') is None  # a length that does not match is not a string
    assert php_unserialize('a:1:{i:0;i:1;}') is None  # not a scalar


@given(st.one_of(st.none(), st.integers(min_value=0, max_value=2**40), st.text(max_size=5)),
       st.floats(min_value=0, max_value=2**40, allow_nan=False))
def test_a_restart_stamp_always_differs_from_the_one_before(current: Any, now: float) -> None:
    stamp = next_restart_stamp(current, now)
    assert stamp != current and stamp >= int(now)


def test_the_file_store_writes_where_and_how_laravels_file_store_reads(tmp_path: Path) -> None:
    clock = [1_800_000_000.0]
    store = FileStore(tmp_path, clock=lambda: clock[0])
    store.forever("illuminate:queue:restart", 1796137975)
    digest = hashlib.sha1(b"illuminate:queue:restart").hexdigest()
    path = tmp_path / digest[:2] / digest[2:4] / digest
    assert path.read_text() == f"{FOREVER_FILE}i:1796137975;"
    assert store.get("illuminate:queue:restart") == 1796137975
    path.write_text("1700000000i:5;")  # expired (Laravel's put with a ttl)
    assert store.get("illuminate:queue:restart") is None
    store.forget("illuminate:queue:restart")
    store.forget("illuminate:queue:restart")
    assert not path.exists() and store.get("illuminate:queue:restart") is None


@pytest.mark.parametrize(("name", "slug"), [("ICT", "ict"), ("My App", "my_app"), ("Laravel-App", "laravel_app"),
                                            ("a@b", "a_at_b"), ("  Ops  & Co!", "ops_co"), ("", "")])
def test_default_prefixes_use_laravels_slug(name: str, slug: str) -> None:
    assert laravel_slug(name) == slug


def _cache(tmp_path: Path, artisan: bool = True, **values: str) -> LaravelCacheSettings | None:
    if artisan:
        (tmp_path / "artisan").write_text("<?php\n")
    return settings_from_values({"APP_NAME": "ICT", **values}, app_dir=tmp_path).laravel_cache


def test_laravel_signals_follow_the_shared_env(tmp_path: Path) -> None:
    assert _cache(tmp_path, artisan=False) is None  # no Laravel app here: no signals
    assert _cache(tmp_path, artisan=False, CACHE_DRIVER="redis") is not None
    eight = _cache(tmp_path)
    assert eight is not None and (eight.store, eight.prefix) == ("file", "ict_cache")
    assert eight.directory == tmp_path / "storage" / "framework" / "cache" / "data"
    eleven = _cache(tmp_path, CACHE_STORE="database", DB_CACHE_TABLE="cache_entries")
    assert eleven is not None
    assert (eleven.store, eleven.prefix, eleven.table) == ("database", "ict_cache_", "cache_entries")
    redis = _cache(tmp_path, CACHE_DRIVER="redis", CACHE_PREFIX="", REDIS_PASSWORD="null", REDIS_CACHE_DB="3",
                   REDIS_PREFIX="x_")
    assert redis is not None and (redis.prefix, redis.redis_password, redis.redis_db, redis.redis_prefix) == \
        ("", "", 3, "x_")
    memcached = _cache(tmp_path, CACHE_DRIVER="memcached")
    assert memcached is not None and not memcached.reachable
    assert _cache(tmp_path, ICTQ_LARAVEL_SIGNALS="false") is None
    with pytest.raises(ConfigError, match="ICTQ_LARAVEL_SIGNALS='maybe' is not supported"):
        _cache(tmp_path, ICTQ_LARAVEL_SIGNALS="maybe")


def test_a_laravel_apps_sqlite_file_keeps_laravels_rollback_journal(tmp_path: Path) -> None:
    assert settings_from_values({}, app_dir=tmp_path).db.journal_mode == "WAL"
    (tmp_path / "artisan").write_text("<?php\n")
    assert settings_from_values({}, app_dir=tmp_path).db.journal_mode == "DELETE"
    assert settings_from_values({"DB_JOURNAL_MODE": "wal"}, app_dir=tmp_path).db.journal_mode == "WAL"


# -- retryUntil on retry ----------------------------------------------------------------------------

NOW = 1_800_000_000
envelopes = st.fixed_dictionaries({
    "uuid": st.uuids().map(str),
    "job": st.sampled_from(["mail.welcome", "Illuminate\\Queue\\CallQueuedHandler@call"]),
    "data": st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    "retryUntil": st.one_of(st.none(), st.integers(min_value=0, max_value=2 * NOW)),
}, optional={"createdAt": st.one_of(st.none(), st.booleans(), st.integers(min_value=0, max_value=2 * NOW)),
             "displayName": st.text(min_size=1, max_size=10)})


@given(envelopes, st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)))
def test_a_retried_job_is_runnable_on_arrival_or_refused(fields: dict[str, Any], deadline: int | None) -> None:
    text = json.dumps(fields)
    try:
        renewed = retry_payload(text, NOW, deadline)
    except RetryRefused as exc:
        assert fields["retryUntil"] is not None and deadline is None
        assert "php artisan queue:retry" in str(exc) and "--deadline" in str(exc)
        return
    if fields["retryUntil"] is None:
        assert renewed == text  # byte for byte
        return
    after = json.loads(renewed)
    assert after["retryUntil"] >= NOW
    assert {k: v for k, v in after.items() if k not in ("retryUntil", "createdAt")} == \
        {k: v for k, v in fields.items() if k not in ("retryUntil", "createdAt")}
    if deadline is not None:
        assert after["retryUntil"] == NOW + deadline
    else:  # an ictq job: the same window again, from now
        assert "\\" not in fields["job"]
        assert after["retryUntil"] - after["createdAt"] == fields["retryUntil"] - fields["createdAt"]


def test_a_payload_that_does_not_parse_goes_back_unchanged() -> None:
    assert retry_payload("{not json", NOW) == "{not json"


# -- PHP's re-encoding --------------------------------------------------------------------------------

json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                           max_leaves=10)


def php_round_trip(value: Any) -> Any:
    """``json_encode(json_decode($json, true))``: an empty object comes back as []."""
    if isinstance(value, dict):
        return [] if not value else {key: php_round_trip(item) for key, item in value.items()}
    if isinstance(value, list):
        return [php_round_trip(item) for item in value]
    return value


@given(st.dictionaries(st.text(max_size=5), json_values, max_size=4))
def test_whatever_php_writes_back_ictq_reads_as_its_data(data: dict[str, Any]) -> None:
    _, text = payload.build("mail.welcome", data, created_at=NOW)
    fields = php_round_trip(json.loads(text))
    envelope = payload.parse(json.dumps(fields).replace("/", "\\/"))
    assert envelope.data == php_round_trip(data) if data else envelope.data == {}
    assert isinstance(envelope.data, dict)
