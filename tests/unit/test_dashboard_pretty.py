"""Payloads as the dashboard shows them: readable, PHP commands decoded, secrets masked."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from ictq import display
from ictq.dashboard import charts, pretty
from ictq.history import Point

SECRET_KEYS = st.sampled_from(["password", "api_key", "token", "client_secret", "Authorization", "db_passwd",
                               "refreshToken", "private-key"])
PLAIN_KEYS = st.sampled_from(["user_id", "email", "queue", "subject", "n"])


@st.composite
def documents(draw: st.DrawFn) -> tuple[object, list[str]]:
    """A JSON document with secrets (each a unique marker) under secret-named keys at any depth."""
    secrets: list[str] = []

    def secret() -> str:
        value = f"S3cr3t-{len(secrets)}-{draw(st.integers(1000, 9999))}"
        secrets.append(value)
        return value

    def node(depth: int) -> object:
        kind = draw(st.integers(0, 3 if depth < 3 else 1))
        if kind == 0:
            return draw(st.one_of(st.integers(), st.text(max_size=10), st.none()))
        if kind == 1:
            return {draw(SECRET_KEYS): secret(), draw(PLAIN_KEYS): draw(st.text(max_size=8))}
        if kind == 2:
            return [node(depth + 1) for _ in range(draw(st.integers(0, 3)))]
        return {draw(PLAIN_KEYS): node(depth + 1), draw(SECRET_KEYS): secret()}

    return node(0), secrets


@given(documents())
def test_no_value_under_a_secret_key_is_shown(doc: tuple[object, list[str]]) -> None:
    value, secrets = doc
    shown = pretty.payload(json.dumps({"uuid": "u", "job": "x", "data": value}))
    for secret in secrets:
        assert secret not in shown


def test_env_secrets_are_masked_in_every_text() -> None:
    display.use(display.Masker(["Hunter2-Password"]))
    try:
        assert "Hunter2-Password" not in pretty.payload('{"data": {"note": "pw Hunter2-Password"}}')
        assert "Hunter2-Password" not in pretty.shown("Exception: login with Hunter2-Password failed")
    finally:
        display.use(display.Masker())


def test_text_that_is_not_json_is_shown_printable() -> None:
    assert pretty.payload("not json \x1b[31m") == "not json \\x1b[31m"


LARAVEL_COMMAND = (
    'O:19:"App\\Jobs\\SendReport":4:{s:6:"userId";i:7;s:8:"password";s:6:"hunter";'
    's:13:"\x00*\x00connection";N;s:28:"\x00App\\Jobs\\SendReport\x00options";a:2:{s:4:"fast";b:1;i:0;d:1.5;}}')


def test_a_php_command_is_shown_as_its_class_and_properties() -> None:
    payload = json.dumps({"uuid": "u", "displayName": "App\\Jobs\\SendReport",
                          "job": "Illuminate\\Queue\\CallQueuedHandler@call",
                          "data": {"commandName": "App\\Jobs\\SendReport", "command": LARAVEL_COMMAND}})
    found = pretty.php_command(payload)
    assert found is not None
    cls, text = found
    assert cls == "App\\Jobs\\SendReport"
    lines = text.splitlines()
    assert lines[0] == "App\\Jobs\\SendReport {"
    assert "  userId: 7" in lines
    assert "  password: ********" in lines and "hunter" not in text
    assert "  connection (protected): null" in lines
    assert "  options (private, App\\Jobs\\SendReport): [" in lines
    assert "    'fast': true" in lines and "    0: 1.5" in lines


@given(st.text(max_size=200))
def test_any_command_text_is_decoded_or_left_alone(command: str) -> None:
    payload = json.dumps({"data": {"command": "O:" + command}})
    found = pretty.php_command(payload)
    assert found is None or isinstance(found[1], str)


@given(st.lists(st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)), min_size=1, max_size=90))
def test_chart_points_stay_inside_the_drawing(values: list[float | None]) -> None:
    drawn = charts.chart("t", "s", list(range(0, 60 * len(values), 60)), 60, [charts.Line("v", "p50", values)])
    for line in drawn.lines:
        for dot in line["dots"]:  # type: ignore[attr-defined]
            assert charts.LEFT <= dot["x"] <= charts.WIDTH - charts.RIGHT
            assert charts.TOP <= dot["y"] <= charts.HEIGHT - charts.BOTTOM
    top = charts.nice_top(max((v for v in values if v is not None), default=0))
    assert top >= max((v for v in values if v is not None), default=0)


def test_throughput_is_per_minute_whatever_the_step() -> None:
    points = [Point(0, 30, 2, 1, None, None, None, None), Point(900, 0, 0, 0, None, None, None, None)]
    throughput, failures, _, _ = charts.charts(points, 900)
    assert throughput.lines[0]["dots"][0]["value"] == 2.0  # type: ignore[index]
    assert failures.lines[0]["dots"][0]["value"] == round(2 / 15, 2)  # type: ignore[index]
    assert not throughput.empty
