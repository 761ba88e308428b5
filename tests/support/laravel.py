"""Rows shaped exactly as a Laravel 11 application writes them (``Illuminate/Queue/Queue.php``
``createPayloadArray`` and ``DatabaseQueue``; ``failed_jobs`` rows from ``DatabaseUuidFailedJobProvider``),
including PHP-serialized commands and PHP stack traces, for interop tests."""

from __future__ import annotations

import json
import uuid as uuidlib
from typing import Any


class PhpObject:
    def __init__(self, cls: str, props: dict[str, Any]) -> None:
        self.cls, self.props = cls, props


def php_serialize(value: Any) -> str:
    """PHP's ``serialize()`` for the values Laravel's queued commands hold."""
    if value is None:
        return "N;"
    if isinstance(value, bool):
        return f"b:{int(value)};"
    if isinstance(value, int):
        return f"i:{value};"
    if isinstance(value, str):
        return f's:{len(value.encode())}:"{value}";'
    if isinstance(value, list):
        value = dict(enumerate(value))
    if isinstance(value, dict):
        body = "".join(php_serialize(k) + php_serialize(v) for k, v in value.items())
        return f"a:{len(value)}:{{{body}}}"
    assert isinstance(value, PhpObject)
    body = "".join(php_serialize(k) + php_serialize(v) for k, v in value.props.items())
    return f'O:{len(value.cls.encode())}:"{value.cls}":{len(value.props)}:{{{body}}}'


def php_json(data: dict[str, Any]) -> str:
    """``json_encode($payload, JSON_UNESCAPED_UNICODE)``: compact, slashes escaped."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")


def notification_payload(notification: str = "Illuminate\\Auth\\Notifications\\ResetPassword",
                         user_id: int = 42, created_at: int = 1764374400) -> tuple[str, str]:
    """A queued notification, as ``$user->notify(new ResetPassword($token))`` queues it."""
    notifiable = PhpObject("Illuminate\\Contracts\\Database\\ModelIdentifier", {
        "class": "App\\Models\\User", "id": [user_id], "relations": [], "connection": "pgsql",
        "collectionClass": None})
    command = PhpObject("Illuminate\\Notifications\\SendQueuedNotifications", {
        "notifiables": notifiable,
        "notification": PhpObject(notification, {"token": "9f2c" * 16, "id": str(uuidlib.uuid4())}),
        "channels": ["mail"],
        "tries": None, "timeout": None, "maxExceptions": None, "shouldBeEncrypted": False,
    })
    job_uuid = str(uuidlib.uuid4())
    return job_uuid, php_json({
        "uuid": job_uuid,
        "displayName": notification,
        "job": "Illuminate\\Queue\\CallQueuedHandler@call",
        "maxTries": None,
        "maxExceptions": None,
        "failOnTimeout": False,
        "backoff": None,
        "timeout": None,
        "retryUntil": None,
        "data": {"commandName": "Illuminate\\Notifications\\SendQueuedNotifications",
                 "command": php_serialize(command)},
        "createdAt": created_at,
        "delay": None,
    })


def job_payload(job_class: str = "App\\Jobs\\SendWelcomeEmail", created_at: int = 1764374400) -> tuple[str, str]:
    """A queued job class, as ``SendWelcomeEmail::dispatch($user)->onQueue('emails')`` queues it."""
    command = PhpObject(job_class, {"user": PhpObject("Illuminate\\Contracts\\Database\\ModelIdentifier", {
        "class": "App\\Models\\User", "id": 42, "relations": [], "connection": "pgsql", "collectionClass": None}),
        "tries": 3, "backoff": [10, 60], "queue": "emails"})
    job_uuid = str(uuidlib.uuid4())
    return job_uuid, php_json({
        "uuid": job_uuid, "displayName": job_class, "job": "Illuminate\\Queue\\CallQueuedHandler@call",
        "maxTries": 3, "maxExceptions": None, "failOnTimeout": False, "backoff": "10,60", "timeout": 120,
        "retryUntil": None, "data": {"commandName": job_class, "command": php_serialize(command)},
        "createdAt": created_at, "delay": None,
    })


def php_exception(job_class: str = "App\\Jobs\\SendWelcomeEmail") -> str:
    """``(string) $exception`` as Laravel stores it in ``failed_jobs.exception``."""
    short = job_class.rsplit("\\", 1)[-1]
    smtp = "Symfony\\Component\\Mailer\\Transport\\Smtp\\Stream"
    return (
        "Symfony\\Component\\Mailer\\Exception\\TransportException: Connection could not be established with host "
        '"ssl://smtp.example.com:465": stream_socket_client(): Unable to connect (Connection timed out) in '
        "/var/www/ict/vendor/symfony/mailer/Transport/Smtp/Stream/SocketStream.php:154\n"
        "Stack trace:\n"
        f"#0 [internal function]: {smtp}\\SocketStream->{smtp}\\{{closure}}"
        "(2, 'stream_socket_c...', '/var/www/ict/ven...', 157)\n"
        "#1 /var/www/ict/vendor/symfony/mailer/Transport/Smtp/Stream/SocketStream.php(157): "
        "stream_socket_client('ssl://smtp.exam...', 0, '', 60.0, 4, Resource id #1234)\n"
        f"#2 /var/www/ict/app/Jobs/{short}.php(41): Illuminate\\Mail\\Mailer->send(Object(App\\Mail\\Welcome))\n"
        "#3 /var/www/ict/vendor/laravel/framework/src/Illuminate/Queue/CallQueuedHandler.php(124): "
        f"{job_class}->handle()\n"
        "#4 /var/www/ict/vendor/laravel/framework/src/Illuminate/Queue/Worker.php(441): "
        "Illuminate\\Queue\\CallQueuedHandler->call(Object(Illuminate\\Queue\\Jobs\\DatabaseJob), Array)\n"
        "#5 {main}"
    )
