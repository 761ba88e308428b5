"""Laravel's queue payload: the JSON envelope stored in ``jobs.payload``.

For Python jobs ``job`` and ``displayName`` are the registered job name and ``data`` is a JSON
object of keyword arguments. Payloads written by a Laravel app (``job`` =
``Illuminate\\Queue\\CallQueuedHandler@call``, ``data.command`` PHP-serialized) parse too, so
they can be listed and failed with a clear reason, but a PHP job is never executed here.
"""

from __future__ import annotations

import functools
import json
import os
import re
import uuid as uuidlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from ictq.config import MAX_SECONDS
from ictq.display import printable, text_of
from ictq.errors import DispatchError, InvalidPayload

_UUID_FIELD = re.compile(r'"uuid"\s*:\s*"([0-9A-Za-z-]{1,64})"')


class Envelope(NamedTuple):
    """A parsed payload; ``fields`` keeps every key, known or not, for re-encoding. (A named
    tuple: one is made per job.)"""

    uuid: str
    display_name: str
    job: str
    data: Any
    max_tries: int | None
    max_exceptions: int | None
    fail_on_timeout: bool
    backoff: tuple[int, ...] | None
    timeout: int | None
    retry_until: int | None
    exceptions: int
    fields: Mapping[str, Any]

    @property
    def is_php(self) -> bool:
        """A job written by a Laravel (PHP) application."""
        return "\\" in self.job or "@" in self.job

    def with_exceptions(self, count: int) -> str:
        """The payload re-encoded with an updated exception count (for ``maxExceptions``)."""
        return json.dumps({**self.fields, "exceptions": count}, separators=(",", ":"), ensure_ascii=False)


def build(
    name: str,
    data: Mapping[str, Any],
    *,
    created_at: int,
    delay: int | None = None,
    max_tries: int | None = None,
    max_exceptions: int | None = None,
    fail_on_timeout: bool = False,
    backoff: tuple[int, ...] | None = None,
    timeout: int | None = None,
    retry_until: int | None = None,
) -> tuple[str, str]:
    """Encode a Python job as a Laravel envelope; return ``(uuid, payload)``."""
    return Template(name, created_at=created_at, delay=delay, max_tries=max_tries, max_exceptions=max_exceptions,
                    fail_on_timeout=fail_on_timeout, backoff=backoff, timeout=timeout,
                    retry_until=retry_until).render(data)


_UUID_MARK = "\\u0001uuid"  # how json writes "\x01uuid"
_DATA_MARK = "\\u0001data"


class Template:
    """The envelope of one job name and policy, encoded once; :meth:`render` adds a uuid and
    the data. Many payloads of one dispatch share it, so a bulk dispatch encodes only the data."""

    def __init__(
        self,
        name: str,
        *,
        created_at: int,
        delay: int | None = None,
        max_tries: int | None = None,
        max_exceptions: int | None = None,
        fail_on_timeout: bool = False,
        backoff: tuple[int, ...] | None = None,
        timeout: int | None = None,
        retry_until: int | None = None,
    ) -> None:
        self.name = name
        envelope = {
            "uuid": "\x01uuid",
            "displayName": name,
            "job": name,
            "maxTries": max_tries,
            "maxExceptions": max_exceptions,
            "failOnTimeout": fail_on_timeout,
            "backoff": ",".join(str(b) for b in backoff) if backoff else None,
            "timeout": timeout,
            "retryUntil": retry_until,
            "data": "\x01data",
            "createdAt": created_at,
            "delay": delay,
        }
        text = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)
        head, rest = text.split(f'"{_UUID_MARK}"')
        middle, tail = rest.split(f'"{_DATA_MARK}"')
        self._head, self._middle, self._tail = head + '"', '"' + middle, tail

    def render(self, data: Mapping[str, Any]) -> tuple[str, str]:
        """``(uuid, payload)`` for one job."""
        job_uuid = str(uuidlib.uuid4())
        try:
            encoded = _encode(data)
        except (TypeError, ValueError) as exc:
            raise self._unencodable(exc) from None
        return job_uuid, f"{self._head}{job_uuid}{self._middle}{encoded}{self._tail}"

    def filler(self) -> Callable[[str, Mapping[str, Any]], str]:
        """A function ``(uuid, data) -> payload``, like :meth:`render` with a given uuid (see
        :func:`random_uuids`), for the many jobs of one bulk dispatch.

        For speed it encodes with :func:`_reused_encoder`, so: one function per bulk dispatch,
        used by one thread, and not used again after it raised.
        """
        encode = _reused_encoder()
        head, middle, tail = self._head, self._middle, self._tail

        def fill(job_uuid: str, data: Mapping[str, Any]) -> str:
            try:
                encoded = encode(data)
            except (TypeError, ValueError) as exc:
                raise self._unencodable(exc) from None
            return f"{head}{job_uuid}{middle}{encoded}{tail}"

        return fill

    def chunk_filler(self) -> Callable[[Sequence[str], Sequence[Mapping[str, Any]]], list[str]]:
        """A function ``(uuids, items) -> payloads``: :meth:`filler` for a chunk of jobs at once,
        one list comprehension rather than a call per job (same rules: one per bulk dispatch,
        one thread, not used again after it raised)."""
        encode = _reused_encoder()
        head, middle, tail = self._head, self._middle, self._tail

        def fill_chunk(uuids: Sequence[str], items: Sequence[Mapping[str, Any]]) -> list[str]:
            try:
                return [f"{head}{job_uuid}{middle}{encode(data)}{tail}"
                        for job_uuid, data in zip(uuids, items, strict=True)]
            except (TypeError, ValueError) as exc:
                raise self._unencodable(exc) from None

        return fill_chunk

    def _unencodable(self, exc: Exception) -> DispatchError:
        return DispatchError(f"data for job {self.name} is not JSON-serializable: {exc}")


UUID_BATCH = 256
# The bits of a random uuid that are not random: version 4 (byte 6: 0100xxxx) and the RFC 4122
# variant (byte 8: 10xxxxxx), as masks over one uuid's 16 bytes.
_UUID_KEEP = bytes.fromhex("ffffffffffff0fff3fffffffffffffff")
_UUID_SET = bytes.fromhex("00000000000040008000000000000000")


def random_uuids(batch: int = UUID_BATCH) -> Iterator[str]:
    """Endless random (version 4) uuids as text, like ``str(uuid.uuid4())``.

    For speed: a bulk dispatch needs one per job, and ``uuid4()`` per job costs more than
    encoding the job's data. Here one ``os.urandom`` call serves ``batch`` uuids, whose version
    and variant bits are set with one big-integer operation; each is formatted only when taken.
    Each generator has its own state: use one per thread (a bulk dispatch makes one per call).
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    return _random_uuids(batch)


def _random_uuids(batch: int) -> Iterator[str]:
    for uuids in uuid_batches(batch):
        yield from uuids


def uuid_batches(batch: int = UUID_BATCH) -> Iterator[list[str]]:
    """Endless lists of ``batch`` random uuids: :func:`random_uuids` a list at a time (one
    list comprehension per ``os.urandom`` call)."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    size = 16 * batch
    keep = int.from_bytes(_UUID_KEEP * batch, "big")
    fixed = int.from_bytes(_UUID_SET * batch, "big")
    while True:
        text = ((int.from_bytes(os.urandom(size), "big") & keep) | fixed).to_bytes(size, "big").hex()
        yield [f"{text[i:i + 8]}-{text[i + 8:i + 12]}-{text[i + 12:i + 16]}-{text[i + 16:i + 20]}-{text[i + 20:i + 32]}"
               for i in range(0, 2 * size, 32)]


_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_encode = _encoder.encode


def _reused_encoder() -> Callable[[Any], str]:
    """An encoder giving exactly what :data:`_encode` gives, for many calls in one thread.

    For speed: ``JSONEncoder.encode`` builds json's C encoder anew on every call, a third of the
    cost of encoding a job's small data; this builds it once (with the arguments ``encode``
    passes it). Its circular-reference markers stay between calls, and an error can leave one
    behind: do not share it between threads, nor use it after it raised. Without the C encoder
    (or should its signature change) this is plain ``_encode``.

    ``json.encoder.c_make_encoder`` is not a public API; it is kept for a measured gain: 1.7 µs
    instead of 2.9 µs to encode a five-field job's data (1.7 times, CPython 3.11), a tenth of the
    per-job cost of a bulk dispatch.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _encode
    try:
        iterencode = make({}, _encoder.default, json.encoder.encode_basestring, _encoder.indent,
                          _encoder.key_separator, _encoder.item_separator, _encoder.sort_keys, _encoder.skipkeys,
                          _encoder.allow_nan)
    except TypeError:
        return _encode
    join = "".join
    return lambda data: join(iterencode(data, 0))


def parse(text: str | bytes) -> Envelope:
    """Decode and check a payload; raise :class:`InvalidPayload` saying what is wrong."""
    if isinstance(text, str) and not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # bytes kept as surrogates by the storage: check them as bytes
            text = text.encode("utf-8", "surrogateescape")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidPayload(f"payload is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        fields = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidPayload(f"payload is not valid JSON ({_short(exc)})") from None
    if not isinstance(fields, dict):
        raise InvalidPayload(f"payload is a JSON {type(fields).__name__}, not an object")
    job = _string(fields, "job", required=True) or ""
    if not job.isascii() and clean(job) != job:
        raise InvalidPayload("payload field 'job' is not valid Unicode text (a lone surrogate escape)")
    get = fields.get
    # The optional fields are null in most payloads: test for that inline (this runs per job).
    display_name = get("displayName")
    backoff = get("backoff")
    data = get("data")
    if data == []:  # PHP re-encodes an empty object as [] (php artisan queue:retry of a job without arguments)
        data = {}
    return Envelope(
        uuid=_string(fields, "uuid", required=False) or "",
        display_name=job if display_name is None else _string(fields, "displayName", required=False) or job,
        job=job,
        data=data,
        max_tries=None if get("maxTries") is None else _count(fields, "maxTries"),
        max_exceptions=None if get("maxExceptions") is None else _count(fields, "maxExceptions"),
        fail_on_timeout=bool(get("failOnTimeout") or False),
        backoff=None if backoff is None else _backoff(backoff),
        timeout=None if get("timeout") is None else min(MAX_TIMEOUT, _count(fields, "timeout")),
        retry_until=None if get("retryUntil") is None else _whole(get("retryUntil"), "retryUntil"),
        exceptions=0 if get("exceptions") is None else _count(fields, "exceptions"),
        fields=fields,
    )


def clean(text: str) -> str:
    """``text`` made writable as UTF-8: characters that cannot be (lone surrogates) escaped."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def uuid_from_text(text: str) -> str | None:
    """The uuid of a payload, even a malformed one, when it can be found."""
    try:
        fields = json.loads(text)
        if isinstance(fields, dict) and isinstance(fields.get("uuid"), str) and fields["uuid"]:
            return str(fields["uuid"])[:64]
    except (ValueError, RecursionError):
        pass
    match = _UUID_FIELD.search(text[:4096])
    return match.group(1) if match else None


UNREADABLE_NAME = "(unreadable payload)"
MAX_NAME = 255  # characters of a job name as shown (commands, logs, metrics labels)
_DISPLAY_NAME = re.compile(r'"displayName"\s*:\s*("(?:[^"\\]|\\.)*")')


def name_of(text: str | bytes | None) -> str:
    """The job name of a payload (Laravel's ``displayName``), or :data:`UNREADABLE_NAME`.

    The one rule for "which job is this row" wherever a payload is shown: a payload that parses
    gives the envelope's display name; one that does not, the ``displayName`` field found in it.
    Any row gives a name safe to show: control characters and undecodable bytes escaped, at
    most :data:`MAX_NAME` characters (see :func:`ictq.display.printable`).
    """
    if text is None:
        return UNREADABLE_NAME
    try:
        return printable(parse(text).display_name, MAX_NAME) or UNREADABLE_NAME
    except (InvalidPayload, ValueError, TypeError, RecursionError):
        return name_in_head(text)


def name_in_head(head: str | bytes | None) -> str:
    """The ``displayName`` found in the first characters of a payload, without parsing the whole
    (a scrape reads only a payload's head), or :data:`UNREADABLE_NAME`."""
    if head is None:
        return UNREADABLE_NAME
    match = _DISPLAY_NAME.search(text_of(head))
    if match is None:
        return UNREADABLE_NAME
    try:
        name = json.loads(match.group(1))
    except ValueError:
        return UNREADABLE_NAME
    return printable(name, MAX_NAME) if isinstance(name, str) and name else UNREADABLE_NAME


def _string(fields: Mapping[str, Any], key: str, required: bool) -> str | None:
    value = fields.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise InvalidPayload(f"payload field {key!r} must be a non-empty string, got {_kind(value)}")
    return value


MAX_DELAY = MAX_SECONDS
"""The longest wait (seconds) a payload's ``backoff`` entry gives (365 days, the limit of every
duration ictq takes): longer ones are clamped to it, negative ones to 0."""
MAX_TIMEOUT = MAX_SECONDS
"""The longest ``timeout`` (seconds) a payload gives a job (365 days, as ``--timeout``): a longer
one is clamped to it."""


def _count(fields: Mapping[str, Any], key: str) -> int:
    """A non-negative whole number (``maxTries``, ``maxExceptions``, ``timeout``, ``exceptions``)."""
    value = _whole(fields.get(key), key)
    if value < 0:
        raise InvalidPayload(f"payload field {key!r} must not be negative, got {value}")
    return value


def _whole(value: Any, key: str) -> int:
    """A JSON number that is a whole number (``3`` or ``3.0``); anything else fails the job."""
    if type(value) is int:
        return value
    if isinstance(value, float) and value.is_integer():  # not NaN nor infinite
        return int(value)
    if isinstance(value, float):
        raise InvalidPayload(f"payload field {key!r} must be a whole number, got {value!r}")
    raise InvalidPayload(f"payload field {key!r} must be a whole number, got {_kind(value)}")


def _backoff(value: Any) -> tuple[int, ...] | None:
    """Laravel stores backoff as ``"1,5,10"``; accept a number or a list too. Each entry is a
    whole number of seconds, clamped into ``[0, MAX_DELAY]``."""
    if isinstance(value, str):
        return _backoff_text(value)
    if value == []:
        return None
    return tuple(_delay(_whole(item, "backoff")) for item in (value if isinstance(value, list) else [value]))


@functools.lru_cache(maxsize=256)
def _backoff_text(value: str) -> tuple[int, ...] | None:
    """``"1,5,10"`` (remembered: the jobs of one dispatch share it)."""
    if not value:
        return None
    items = []
    for part in value.split(","):
        text = part.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not (digits.isascii() and digits.isdigit()):
            raise InvalidPayload(f"payload field 'backoff' is not a list of seconds: {value!r:.40}")
        items.append(_delay(int(text) if len(digits) <= 18 else -1 if text[0] == "-" else MAX_DELAY))
    return tuple(items)


def _delay(seconds: int) -> int:
    return MAX_DELAY if seconds > MAX_DELAY else 0 if seconds < 0 else seconds


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _short(exc: BaseException) -> str:
    return str(exc)[:200]
