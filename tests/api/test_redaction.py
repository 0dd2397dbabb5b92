"""Keys and staff credentials never reach a log line, whatever parameter or position they are in."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataflow.api.redaction import REDACTED, redact
from dataflow.contracts.keys import STAFF_PREFIX, new_key
from dataflow.contracts.models import Role
from tests.api.conftest import ROWS, Env

_SECRET_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TEXT = st.text(alphabet=st.characters(codec="ascii", exclude_characters="\x00"), max_size=40)


def _secret(full: str) -> str:
    return full.split("_", 2)[2]


@given(
    before=_TEXT,
    after=st.sampled_from(["", "&limit=2", "/rows", " trailing", "'", '"}']),
    secret=st.text(alphabet=_SECRET_CHARS, min_size=1, max_size=64),
    staff=st.booleans(),
    encode=st.booleans(),
)
def test_any_key_shaped_value_is_redacted_wherever_it_is(
    before: str, after: str, secret: str, staff: bool, encode: bool
) -> None:
    key_id = new_key()[0]
    key = f"{'dfa' if staff else 'df'}_{key_id}_{secret}"
    # a client may encode separators, and a client library encode its percent signs again
    placed = key.replace("_", "%5F").replace("%", "%25" * encode) if encode else key
    out = redact(before + placed + after)
    assert placed not in out and REDACTED in out
    if len(secret) >= 8 and secret not in before + after:
        assert secret not in out


def test_real_keys_the_public_key_id_and_ordinary_text() -> None:
    key_id, secret, key = new_key()
    _, staff_secret, staff = new_key(STAFF_PREFIX)
    for text in (
        f"bearer={key}",
        f"/v1/tables/{key}/rows",
        f"x={key}&y={staff}",
        f"q=a%20{key.replace('_', '%5F')}",
        f"unhandled error: ValueError('{staff}')",
    ):
        out = redact(text)
        assert secret not in out and staff_secret not in out, out
    # the key id alone names a key in the log on purpose; cookies and tables stay readable
    assert redact(f"key_id=df_{key_id}") == f"key_id={REDACTED}"  # named like a credential
    assert redact(f"/admin/v1/keys/{key_id}/rotate") == f"/admin/v1/keys/{key_id}/rotate"
    assert redact(f"id=df_{key_id}") == f"id=df_{key_id}"
    assert redact("limit=2&sort=-month&df_console=1") == "limit=2&sort=-month&df_console=1"
    assert redact("api_key=abc&token=x&limit=3") == f"api_key={REDACTED}&token={REDACTED}&limit=3"


async def test_access_log_never_holds_a_key_in_any_parameter_or_position(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dataflow.access")
    secret = _secret(env.key)
    staff = env.api.contracts.create_staff("Ops", Role.OPERATOR)
    staff_secret = _secret(staff)
    calls = [
        ("GET", ROWS, {"bearer": env.key, "limit": "2"}),  # a name that says nothing of keys
        ("GET", ROWS, {"q": env.key}),  # an unknown parameter
        ("GET", ROWS, {"limit": "2", "x": env.key.replace("_", "%5F")}),  # encoded separators
        ("GET", f"/v1/tables/{env.key}/rows", {}),  # a path segment (404 table)
        ("GET", "/admin/v1/partners", {"auth_as": staff}),  # a staff credential
        ("POST", f"/admin/v1/keys/{staff}/revoke", {}),
    ]
    for method, path, params in calls:
        await env.client.request(method, path, params=params, headers=env.auth())
    lines = [r.getMessage() for r in caplog.records if r.name == "dataflow.access"]
    assert len(lines) == len(calls), lines
    for line in lines:
        assert secret not in line and staff_secret not in line, line
        assert env.key not in line and staff not in line
    records = [json.loads(line) for line in lines]
    assert all(REDACTED in r["query"] or REDACTED in r["path"] for r in records), records
    assert records[0]["partner"] == env.partner_id  # the caller is named by its ids


async def test_an_error_message_carrying_a_key_is_redacted_in_the_error_log(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """An unhandled error is logged with its traceback; what it quotes goes through redaction."""
    ring = env.api.keys
    leaked = env.key

    def broken() -> None:
        raise RuntimeError(f"could not load the key {leaked}")

    ring._refresh = 0  # reload on this request, and fail doing it
    ring._load = broken  # type: ignore[assignment,method-assign]
    with caplog.at_level(logging.ERROR):
        r = await env.client.get(f"/v1/tables/{leaked}", headers=env.auth())
    assert r.status_code == 500
    text = caplog.text
    assert "could not load the key" in text and "Traceback" in text
    assert _secret(leaked) not in text


def _both_patterns(text: str) -> str:
    """``redact`` as it was, both patterns run on every text (the shortcut must not differ)."""
    from dataflow.api.redaction import _KEY_SHAPE, _SECRET_PARAM

    if not text:
        return text
    text = _KEY_SHAPE.sub(REDACTED, text)
    return _SECRET_PARAM.sub(rf"\1{REDACTED}", text) if "=" in text else text


@given(
    st.lists(
        st.one_of(
            st.text(max_size=12),  # any Unicode, "ſ" and the Kelvin sign included
            st.sampled_from(
                [
                    "df_",
                    "DF%5f",
                    "dfa_",
                    "0123456789abcdef",
                    "_",
                    "=",
                    "&",
                    ";",
                    "?",
                    "Key",
                    "ſecret",
                    "\u212aey",
                    "auth",
                    "BEARER",
                    "passwd",
                    "credential",
                    "token",
                    "limit=100",
                ]
            ),
        ),
        max_size=12,
    ).map("".join)
)
def test_the_substring_shortcut_redacts_exactly_what_both_patterns_do(text: str) -> None:
    assert redact(text) == _both_patterns(text)
