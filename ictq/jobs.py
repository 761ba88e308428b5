"""Jobs: the registry of names a worker may run, the ``@ictq.job`` decorator, and the
context a running job can read.

Only registered names are ever executed. A payload never names a module to import: the
worker imports the application's job modules (``ICTQ_JOBS``) itself, at start-up.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ictq.errors import ConfigError, DispatchError, UnknownJob

if TYPE_CHECKING:
    from ictq.config import Settings

Handler = Callable[..., Any]


@dataclass(frozen=True)
class Dispatched:
    """A queued job: its row id (None for sync) and its uuid."""

    id: int | None
    uuid: str
    name: str
    queue: str


class Dispatcher(Protocol):
    def __call__(self, name: str, data: dict[str, Any], queue: str | None, delay: int | None) -> Dispatched: ...


def _no_dispatcher(name: str, data: dict[str, Any], queue: str | None, delay: int | None) -> Dispatched:
    raise DispatchError("no dispatcher: import ictq (ictq.client installs the default one)")


# What JobSpec.dispatch queues with. This module sits below the client and does not import it:
# ictq.client installs its default client's dispatch here when it is imported (and the ``ictq``
# package always imports it).
_dispatcher: list[Dispatcher] = [_no_dispatcher]


def use_dispatcher(dispatcher: Dispatcher) -> None:
    """Make ``JobSpec.dispatch`` queue through ``dispatcher``."""
    _dispatcher[0] = dispatcher


@dataclass(frozen=True)
class JobSpec:
    """A registered job: its handler and its retry policy (None: the worker's option)."""

    name: str
    handler: Handler
    queue: str | None = None
    tries: int | None = None
    backoff: tuple[int, ...] | None = None
    timeout: int | None = None
    retry_until: int | None = None
    max_exceptions: int | None = None
    fail_on_timeout: bool = False

    def __call__(self, **data: Any) -> Any:
        """Run the handler directly, in this process."""
        return self.handler(**data)

    def dispatch(self, *, _queue: str | None = None, _delay: int | None = None, **data: Any) -> Dispatched:
        """Queue this job with ``data`` as its keyword arguments."""
        return _dispatcher[0](self.name, data, _queue, _delay)


@dataclass(frozen=True)
class JobContext:
    """What a running job can know about itself (``ictq.current_job()``)."""

    id: int | None
    uuid: str
    name: str
    queue: str
    attempt: int
    settings: Settings | None = field(default=None, repr=False, compare=False)
    max_tries: int = 0  # the effective limit for this run (0 = unlimited)


_registry: dict[str, JobSpec] = {}
# What current_job() returns, made on first use: most jobs never ask.
_current: contextvars.ContextVar[Callable[[], JobContext] | None] = contextvars.ContextVar("ictq_job", default=None)


def job(
    name: str,
    *,
    queue: str | None = None,
    tries: int | None = None,
    backoff: int | Sequence[int] | None = None,
    timeout: int | None = None,
    retry_until: int | None = None,
    max_exceptions: int | None = None,
    fail_on_timeout: bool = False,
) -> Callable[[Handler], JobSpec]:
    """Register a function as the job ``name``.

    ``tries`` (0 = unlimited), ``backoff`` (seconds, or a list per attempt), ``timeout``
    (seconds), ``retry_until`` (seconds after dispatch after which no retry happens) and
    ``max_exceptions`` override the worker's options for this job.
    """
    if not name or not isinstance(name, str):
        raise ConfigError("a job needs a non-empty name")
    for label, value in (("tries", tries), ("timeout", timeout), ("max_exceptions", max_exceptions)):
        if value is not None and value < 0:
            raise ConfigError(f"job {name}: {label} must not be negative")
    delays = _backoff_tuple(name, backoff)

    def register(handler: Handler) -> JobSpec:
        spec = JobSpec(name, handler, queue, tries, delays, timeout, retry_until, max_exceptions, fail_on_timeout)
        existing = _registry.get(name)
        if existing is not None and _qualname(existing.handler) != _qualname(handler):
            raise ConfigError(f"job {name} is already registered by {_qualname(existing.handler)}")
        _registry[name] = spec
        return spec

    return register


def get(name: str) -> JobSpec:
    """The registered job ``name``, or :class:`UnknownJob`."""
    try:
        return _registry[name]
    except KeyError:
        raise UnknownJob(f"job {name!r} is not registered in this worker (check ICTQ_JOBS / --jobs)") from None


def find(name: str) -> JobSpec | None:
    return _registry.get(name)


def check_arguments(spec: JobSpec, data: Any) -> None:
    """Raise :class:`DispatchError` when ``data`` cannot be the handler's keyword arguments."""
    if not isinstance(data, dict):
        raise DispatchError(f"data for job {spec.name} must be a JSON object, got {type(data).__name__}")
    shape = _shape(spec.handler)
    if shape is None:
        return
    required, allowed = shape
    if not required <= data.keys() or (allowed is not None and not data.keys() <= allowed):
        try:  # the slow path says exactly what is wrong
            inspect.signature(spec.handler).bind(**data)
        except TypeError as exc:
            raise DispatchError(f"data does not fit job {spec.name}: {exc}") from None


def check_chunk(spec: JobSpec, items: Sequence[Any]) -> None:
    """:func:`check_arguments` for the items of a bulk dispatch: one pass over the chunk, and
    the full check (its message) only for an item that does not fit."""
    shape = _shape(spec.handler)
    if shape is None:
        bad = [item for item in items if type(item) is not dict]
    else:
        required, allowed = shape
        bad = [item for item in items if type(item) is not dict or not required <= item.keys()
               or (allowed is not None and not item.keys() <= allowed)]
    for item in bad:
        check_arguments(spec, item)


@functools.lru_cache(maxsize=1024)
def _shape(handler: Handler) -> tuple[frozenset[str], frozenset[str] | None] | None:
    """The keyword arguments a handler needs and accepts (None: any), or None without a signature."""
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.POSITIONAL_ONLY for p in parameters):
        return frozenset({"\0positional-only"}), frozenset()
    keywords = [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    required = frozenset(p.name for p in keywords if p.default is p.empty)
    open_ended = any(p.kind is p.VAR_KEYWORD for p in parameters)
    return required, None if open_ended else frozenset(p.name for p in keywords)


def current_job() -> JobContext | None:
    """The job running in this thread, or None outside a job."""
    context = _current.get()
    return None if context is None else context()


def enter(context: Callable[[], JobContext]) -> contextvars.Token[Callable[[], JobContext] | None]:
    """Make the job whose context ``context()`` returns the current job (the worker passes a
    cached factory, so a job that never asks costs nothing); pass the token to :func:`leave`."""
    return _current.set(context)


def leave(token: contextvars.Token[Callable[[], JobContext] | None]) -> None:
    _current.reset(token)


@contextmanager
def running(context: JobContext) -> Iterator[None]:
    token = enter(lambda: context)
    try:
        yield
    finally:
        leave(token)


def _backoff_tuple(name: str, backoff: int | Sequence[int] | None) -> tuple[int, ...] | None:
    if backoff is None:
        return None
    values = (backoff,) if isinstance(backoff, int) else tuple(backoff)
    if not values or any(not isinstance(v, int) or v < 0 for v in values):
        raise ConfigError(f"job {name}: backoff must be seconds >= 0 or a list of them")
    return values


def _qualname(handler: Handler) -> str:
    return f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', repr(handler))}"
