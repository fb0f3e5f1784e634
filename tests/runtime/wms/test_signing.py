"""HMAC signing: a known answer, the round trip, and every way a request is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import ConfigError
from engine.runtime.settings import Secret
from engine.runtime.wms.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BadSignature,
    MalformedSignature,
    MissingSignature,
    SignatureError,
    StaleTimestamp,
    sign_request,
    verify,
)

NOW = 1_700_000_000
secrets = st.one_of(st.text(min_size=1, max_size=64), st.binary(min_size=1, max_size=64))
bodies = st.binary(max_size=2048)


def test_known_answer_matches_openssl() -> None:
    # printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 's3cret'
    headers = sign_request(Secret("s3cret"), b'{"a":1}', NOW + 0.9)
    assert headers == {
        TIMESTAMP_HEADER: "1700000000",
        SIGNATURE_HEADER: "sha256="
        "1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940",
    }


@given(secrets, bodies, st.integers(min_value=0, max_value=2**33))
def test_verify_accepts_what_sign_produces(secret: str | bytes, body: bytes, now: int) -> None:
    verify(secret, sign_request(secret, body, now), body, now)


@given(secrets, bodies.filter(bool), st.data())
def test_any_single_byte_change_of_the_body_is_refused(
    secret: str | bytes, body: bytes, data: st.DataObject
) -> None:
    headers = sign_request(secret, body, NOW)
    i = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    new = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != body[i]))
    tampered = body[:i] + bytes([new]) + body[i + 1 :]
    with pytest.raises(BadSignature):
        verify(secret, headers, tampered, NOW)


@given(secrets, bodies, st.data())
def test_any_single_character_change_of_the_signature_is_refused(
    secret: str | bytes, body: bytes, data: st.DataObject
) -> None:
    headers = sign_request(secret, body, NOW)
    sig = headers[SIGNATURE_HEADER]
    i = data.draw(st.integers(min_value=len("sha256="), max_value=len(sig) - 1))
    new = data.draw(st.sampled_from([c for c in "0123456789abcdef" if c != sig[i]]))
    headers[SIGNATURE_HEADER] = sig[:i] + new + sig[i + 1 :]
    with pytest.raises(BadSignature):
        verify(secret, headers, body, NOW)


@given(secrets, secrets, bodies)
def test_another_secret_is_refused(a: str | bytes, b: str | bytes, body: bytes) -> None:
    key_a = a.encode() if isinstance(a, str) else a
    key_b = b.encode() if isinstance(b, str) else b
    if key_a != key_b:
        with pytest.raises(BadSignature):
            verify(b, sign_request(a, body, NOW), body, NOW)


def test_the_window_is_five_minutes_either_way() -> None:
    body = b"{}"
    verify("k", sign_request("k", body, NOW - 300), body, NOW)
    verify("k", sign_request("k", body, NOW + 300), body, NOW)
    with pytest.raises(StaleTimestamp, match="301 s away"):
        verify("k", sign_request("k", body, NOW - 301), body, NOW)
    with pytest.raises(StaleTimestamp):
        verify("k", sign_request("k", body, NOW + 301), body, NOW)
    verify("k", sign_request("k", body, NOW - 900), body, NOW, tolerance=1000)


def test_forged_and_stale_reports_the_forgery() -> None:
    headers = sign_request("k", b"{}", NOW - 3600)
    with pytest.raises(BadSignature):
        verify("other", headers, b"{}", NOW)


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, MissingSignature),
        ({TIMESTAMP_HEADER: str(NOW)}, MissingSignature),
        ({SIGNATURE_HEADER: "sha256=" + "0" * 64}, MissingSignature),
        (
            {TIMESTAMP_HEADER: "yesterday", SIGNATURE_HEADER: "sha256=" + "0" * 64},
            MalformedSignature,
        ),
        ({TIMESTAMP_HEADER: "-5", SIGNATURE_HEADER: "sha256=" + "0" * 64}, MalformedSignature),
        ({TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: "0" * 64}, MalformedSignature),
        ({TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: "sha1=" + "0" * 40}, MalformedSignature),
        ({TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: "sha256=" + "0" * 63}, MalformedSignature),
        ({TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: "sha256=" + "0" * 64}, BadSignature),
    ],
)
def test_missing_and_malformed_headers(headers: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        verify("k", headers, b"{}", NOW)


def test_header_names_are_case_insensitive_and_hex_case_too() -> None:
    headers = sign_request("k", b"{}", NOW)
    lower = {k.lower(): v.upper().replace("SHA256=", "sha256=") for k, v in headers.items()}
    verify("k", lower, b"{}", NOW)


def test_an_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="OMSFLOW_WMS_SECRET"):
        sign_request(Secret(""), b"{}", NOW)
    with pytest.raises(ConfigError):
        verify(b"", {}, b"{}", NOW)


def test_errors_never_contain_the_secret() -> None:
    secret = Secret("super-secret-value")
    headers = sign_request("wrong", b"{}", NOW)
    with pytest.raises(SignatureError) as info:
        verify(secret, headers, b"{}", NOW)
    assert "super-secret-value" not in str(info.value)
