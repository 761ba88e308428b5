"""The one masking function and printable text: properties over any secret and any text."""

from __future__ import annotations

import base64
import json
import logging
from urllib.parse import quote, quote_plus

from hypothesis import assume, given
from hypothesis import strategies as st

from ictq import logs
from ictq.config import settings_from_values
from ictq.display import MASK, Masker, printable, text_of

# Secrets as people write them: printable, with quotes, backslashes, tabs, double spaces, non-ASCII.
secret_text = st.text(st.characters(blacklist_categories=["Cs", "Cc"]) | st.sampled_from('"\\\t \'$%&'),
                      min_size=4, max_size=40).filter(lambda s: len(" ".join(s.split())) >= 4 and "*" not in s)
any_text = st.text(max_size=60)


@given(secret_text, any_text, any_text)
def test_every_form_of_a_secret_is_masked(secret: str, before: str, after: str) -> None:
    mask = Masker([secret])
    squeezed = " ".join(secret.split())
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], repr(secret)[1:-1],
             quote(secret, safe=""), quote_plus(secret), squeezed, squeezed.replace('"', "'")}
    for form in forms:
        assume(secret not in before + after and squeezed not in before + after)
        shown = mask(before + form + after)
        assert secret not in shown and form not in shown
        assert MASK in shown


@given(st.binary(min_size=8, max_size=40), any_text)
def test_a_base64_key_is_masked_whole_as_its_body_and_as_its_text(raw: bytes, around: str) -> None:
    body = base64.b64encode(raw).decode()
    mask = Masker(["base64:" + body])
    assert body not in mask(f"{around}key={body}{around}")
    decoded = raw.decode("utf-8", "replace")
    if decoded.isprintable() and "\ufffd" not in decoded and len(decoded) >= 4:
        assert decoded not in mask(f"{around}[{decoded}]")


@given(secret_text, st.text(max_size=30))
def test_a_secret_in_a_log_field_is_masked_before_the_line_squeezes_or_cuts_it(secret: str, extra: str) -> None:
    logger = logging.getLogger("unit.display.mask")
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logs.setup(None, "INFO", [secret])
    handler.addFilter(logs.Redactor([secret]))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        long_value = extra + secret + "x" * (logs.MAX_FIELD - len(extra) - 2) + secret
        logs.event(logger, logging.WARNING, "failed", job=f"{extra} {secret} {extra}", reason=long_value,
                   queue=secret)
    finally:
        logger.removeHandler(handler)
        logs.setup(None, "INFO", [])
    assert len(records) == 1
    line = records[0]
    assert secret not in line and " ".join(secret.split()) not in line
    assert " ".join(secret.split()).replace('"', "'") not in line
    assert len(line) < 3 * logs.MAX_FIELD + 100


def test_a_huge_field_and_a_huge_line_are_cut() -> None:
    logger = logging.getLogger("unit.display.cut")
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    handler.addFilter(logs.Redactor([]))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logs.event(logger, logging.ERROR, "failed", job="j" * 10_000_000)
        logs.line(logger, logging.ERROR, "x" * 10_000_000)
    finally:
        logger.removeHandler(handler)
    assert len(records[0]) <= logs.MAX_FIELD + 20
    assert len(records[1]) <= logs.MAX_LINE


@given(st.one_of(st.text(), st.binary(), st.none(), st.integers()), st.integers(min_value=1, max_value=300))
def test_printable_text_is_one_safe_bounded_line(value: object, limit: int) -> None:
    shown = printable(value, limit)
    shown.encode("utf-8")  # no lone surrogate
    assert "\n" not in shown and "\x00" not in shown and "\r" not in shown
    assert all(ch.isprintable() or ch == " " for ch in shown)
    assert len(shown) <= 10 * limit  # cut at ``limit`` characters, each escaped in 10 at most (\U0002fa1e)


def test_format_characters_are_escaped() -> None:
    assert printable("a\u202eb\u200bc\ufeff") == "a\\u202eb\\u200bc\\ufeff"  # bidi override, zero width, BOM
    assert printable("\U0002fa1e") == "\\U0002fa1e"  # unassigned
    assert printable("line\n\ttab", lines=True) == "line\n\ttab"


def test_text_of_keeps_undecodable_bytes_visible() -> None:
    assert printable(text_of(b"ab\xffc")) == "ab\\udcffc"
    assert printable("a\x00b\ud800") == "a\\x00b\\ud800"
    assert printable("x" * 10, 5) == "xxxx…"


def test_secrets_set_only_in_the_environment_are_masked(tmp_path: object) -> None:
    from pathlib import Path

    from ictq.config import load_settings

    env = Path(str(tmp_path)) / ".env"
    env.write_text("DB_CONNECTION=sqlite\nAPP_KEY=base64:c2VjcmV0LWtleS0xMjM0NTY=\n")
    settings = load_settings(env, environ={"STRIPE_SECRET": "sk_live_abc123", "github_token": "ghp_zzz999",
                                           "FEATURE_TOKEN": "true", "HOME": "/root"})
    assert {"sk_live_abc123", "ghp_zzz999", "base64:c2VjcmV0LWtleS0xMjM0NTY="} <= set(settings.secrets)
    assert "true" not in settings.secrets and "/root" not in settings.secrets
    mask = Masker(settings.secrets)
    assert mask("c2VjcmV0LWtleS0xMjM0NTY= secret-key-123456 sk_live_abc123") == f"{MASK} {MASK} {MASK}"
    assert settings_from_values({"X_PASSWORD": "abc"}, Path(str(tmp_path))).secrets == ()


@given(st.recursive(st.none() | st.integers() | st.text(st.characters(codec=None)) | st.binary(),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=10))
def test_json_output_is_valid_utf8_json_whatever_the_rows_hold(data: object) -> None:
    from ictq.cli.output import safe_json

    text = json.dumps(safe_json(data, Masker(["Cnry-secret"])), ensure_ascii=False)
    text.encode("utf-8")
    json.loads(text)


def test_output_masks_cells_and_json() -> None:
    from ictq.cli.output import cell, safe_json

    mask = Masker(['se"cr\tet!'])
    assert cell('q-se"cr\tet!', mask) == f"q-{MASK}"
    assert cell("x" * 1000, mask).endswith("…") and len(cell("x" * 1000, mask)) == 255
    assert safe_json({"k se\"cr\tet!": ['a se"cr\tet!', b"\xff"]}, mask) == {f"k {MASK}": [f"a {MASK}", "\\udcff"]}
