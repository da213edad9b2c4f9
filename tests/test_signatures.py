"""Tests for app.ingest.signatures; vectors are built independently of the module."""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook
from werkzeug.datastructures import Headers

from app.errors import AppError, SignatureInvalid, SignatureMissing, TimestampOutOfTolerance
from app.ingest.signatures import (
    SCHEMES,
    AuthSpec,
    Verification,
    signature_header_names,
    verify,
)

NOW = 1_700_000_000
BODY = b'{"event": "push", "id": 42}'
SECRET = "s3cr3t-value-for-tests"
OTHER = "another-secret-entirely"
STD_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-key-32-bytes!!").decode()
STD_OTHER = "whsec_" + base64.b64encode(b"a-different-standard-webhook-key").decode()
MSG_ID = "msg_2b5Uq0wXEXAMPLE"

Signer = Callable[[str, bytes, int], dict[str, str]]


def _hex(key: str, message: bytes, digest: str = "sha256") -> str:
    return hmac.new(key.encode(), message, digest).hexdigest()


def sign_github(secret: str, body: bytes, ts: int) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + _hex(secret, body)}


def sign_stripe(secret: str, body: bytes, ts: int) -> dict[str, str]:
    return {"Stripe-Signature": f"t={ts},v1={_hex(secret, f'{ts}.'.encode() + body)}"}


def sign_slack(secret: str, body: bytes, ts: int) -> dict[str, str]:
    mac = _hex(secret, b"v0:" + str(ts).encode() + b":" + body)
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": "v0=" + mac}


def sign_standard(secret: str, body: bytes, ts: int) -> dict[str, str]:
    when = datetime.fromtimestamp(ts, tz=UTC)
    signature = Webhook(secret).sign(MSG_ID, when, body.decode())
    return {"webhook-id": MSG_ID, "webhook-timestamp": str(ts), "webhook-signature": signature}


def sign_hmac(secret: str, body: bytes, ts: int) -> dict[str, str]:
    return {"X-Signature": _hex(secret, body)}


def sign_token(secret: str, body: bytes, ts: int) -> dict[str, str]:
    return {"X-Webhook-Token": secret}


SIGNERS: dict[str, tuple[Signer, AuthSpec, str]] = {
    # scheme -> (signer, spec template, the credential header to drop)
    "github": (sign_github, AuthSpec("github"), "X-Hub-Signature-256"),
    "stripe": (sign_stripe, AuthSpec("stripe"), "Stripe-Signature"),
    "slack": (sign_slack, AuthSpec("slack"), "X-Slack-Signature"),
    "standard": (sign_standard, AuthSpec("standard"), "webhook-signature"),
    "hmac": (sign_hmac, AuthSpec("hmac", header="X-Signature"), "X-Signature"),
    "token": (sign_token, AuthSpec("token"), "X-Webhook-Token"),
}
TIMED = ["stripe", "slack", "standard"]
LEAKY = re.compile(r"[0-9a-fA-F]{16,}|[A-Za-z0-9+/]{20,}")


def _secrets(scheme: str) -> tuple[str, str]:
    return (STD_SECRET, STD_OTHER) if scheme == "standard" else (SECRET, OTHER)


def _spec(scheme: str, *secrets: str) -> AuthSpec:
    template = SIGNERS[scheme][1]
    return AuthSpec(scheme, secrets, header=template.header)


def _assert_clean(error: AppError, headers: dict[str, str], *secrets: str) -> None:
    message = str(error)
    assert message == error.message
    assert not LEAKY.search(message), message
    for secret in (*secrets, SECRET, OTHER, STD_SECRET, STD_OTHER):
        assert secret not in message
    for value in headers.values():
        if len(value) > 12:
            assert value not in message
    assert error.__cause__ is None and error.__context__ is None


# --- documented vectors ---------------------------------------------------------------


def test_github_documented_example() -> None:
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    spec = AuthSpec("github", ("It's a Secret to Everybody",))
    result = verify(spec, {"x-hub-signature-256": header}, b"Hello, World!", now=NOW)
    assert result == Verification("github", 0, None)


def test_github_rejects_legacy_sha1_header() -> None:
    legacy = "sha1=" + _hex(SECRET, BODY, "sha1")
    with pytest.raises(SignatureMissing):
        verify(AuthSpec("github", (SECRET,)), {"x-hub-signature": legacy}, BODY, now=NOW)


def test_slack_documented_example() -> None:
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
        b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
        b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com"
        b"%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    headers = Headers(
        {
            "X-Slack-Request-Timestamp": "1531420618",
            "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235"
            "a7b4a8d21a10bd27519666489c69b503",
        }
    )
    spec = AuthSpec("slack", ("8f742231b10e8888abcd99yyyzzz85a5",))
    assert verify(spec, headers, body, now=1531420618 + 10).secret_index == 0


def test_stripe_several_v1_only_second_matches() -> None:
    good = _hex(SECRET, f"{NOW}.".encode() + BODY)
    bad = _hex("not-it", f"{NOW}.".encode() + BODY)
    headers = {"stripe-signature": f"t={NOW},v1={bad},v1={good},v0={bad}"}
    assert verify(AuthSpec("stripe", (SECRET,)), headers, BODY, now=NOW).secret_index == 0


@pytest.mark.parametrize("header", ["v1=abcd", f"t={NOW}", f"t=12x,v1={'a' * 64}", "garbage"])
def test_stripe_malformed_header(header: str) -> None:
    with pytest.raises(SignatureInvalid) as info:
        verify(AuthSpec("stripe", (SECRET,)), {"stripe-signature": header}, BODY, now=NOW)
    _assert_clean(info.value, {"h": header})


def test_standard_accepts_svix_headers_and_returns_signed_id() -> None:
    signed = sign_standard(STD_SECRET, BODY, NOW)
    headers = {k.replace("webhook-", "svix-"): v for k, v in signed.items()}
    result = verify(AuthSpec("standard", (STD_SECRET,)), headers, BODY, now=NOW)
    assert result == Verification("standard", 0, MSG_ID)


def test_standard_ignores_other_versions_and_bad_secrets() -> None:
    headers = sign_standard(STD_SECRET, BODY, NOW)
    headers["webhook-signature"] = "v2,Zm9v v1a,xx " + headers["webhook-signature"]
    spec = AuthSpec("standard", ("not base64 at all!", "whsec_", STD_SECRET))
    assert verify(spec, headers, BODY, now=NOW) == Verification("standard", 2, MSG_ID)


def test_standard_secret_without_whsec_prefix() -> None:
    bare = STD_SECRET.removeprefix("whsec_")
    headers = sign_standard(STD_SECRET, BODY, NOW)
    assert verify(AuthSpec("standard", (bare,)), headers, BODY, now=NOW).secret_index == 0


# --- generic behaviour for every secret-bearing scheme -----------------------------------


@pytest.mark.parametrize("scheme", sorted(SIGNERS))
def test_valid_passes_with_werkzeug_headers(scheme: str) -> None:
    secret, _ = _secrets(scheme)
    signer = SIGNERS[scheme][0]
    headers = Headers(signer(secret, BODY, NOW))
    result = verify(_spec(scheme, secret), headers, BODY, now=NOW)
    assert result.scheme == scheme and result.secret_index == 0


@pytest.mark.parametrize("scheme", sorted(SIGNERS))
def test_valid_passes_with_lowercased_dict(scheme: str) -> None:
    secret, _ = _secrets(scheme)
    headers = {k.lower(): v for k, v in SIGNERS[scheme][0](secret, BODY, NOW).items()}
    assert verify(_spec(scheme, secret), headers, BODY, now=NOW).secret_index == 0


@pytest.mark.parametrize("scheme", sorted(set(SIGNERS) - {"token"}))
def test_tampered_body_is_invalid(scheme: str) -> None:
    secret, _ = _secrets(scheme)
    headers = SIGNERS[scheme][0](secret, BODY, NOW)
    with pytest.raises(SignatureInvalid) as info:
        verify(_spec(scheme, secret), headers, BODY + b" ", now=NOW)
    _assert_clean(info.value, headers, secret)


@pytest.mark.parametrize("scheme", sorted(SIGNERS))
def test_wrong_secret_is_invalid(scheme: str) -> None:
    secret, other = _secrets(scheme)
    headers = SIGNERS[scheme][0](other, BODY, NOW)
    with pytest.raises(SignatureInvalid) as info:
        verify(_spec(scheme, secret), headers, BODY, now=NOW)
    _assert_clean(info.value, headers, secret, other)


@pytest.mark.parametrize("scheme", sorted(SIGNERS))
def test_rotated_second_secret_matches(scheme: str) -> None:
    secret, other = _secrets(scheme)
    headers = SIGNERS[scheme][0](other, BODY, NOW)
    assert verify(_spec(scheme, secret, other), headers, BODY, now=NOW).secret_index == 1


@pytest.mark.parametrize("scheme", sorted(SIGNERS))
def test_missing_header_is_missing(scheme: str) -> None:
    secret, _ = _secrets(scheme)
    signer, _, credential = SIGNERS[scheme]
    headers = {k: v for k, v in signer(secret, BODY, NOW).items() if k != credential}
    with pytest.raises(SignatureMissing) as info:
        verify(_spec(scheme, secret), headers, BODY, now=NOW)
    _assert_clean(info.value, headers, secret)
    with pytest.raises(SignatureMissing):
        verify(_spec(scheme, secret), {}, BODY, now=NOW)


@pytest.mark.parametrize("scheme", sorted(SIGNERS))
def test_empty_header_counts_as_missing(scheme: str) -> None:
    secret, _ = _secrets(scheme)
    signer, _, credential = SIGNERS[scheme]
    headers = {**signer(secret, BODY, NOW), credential: ""}
    with pytest.raises(SignatureMissing):
        verify(_spec(scheme, secret), headers, BODY, now=NOW)


@pytest.mark.parametrize("scheme", sorted(SIGNERS))
def test_no_secrets_configured_is_invalid(scheme: str) -> None:
    headers = SIGNERS[scheme][0](_secrets(scheme)[0], BODY, NOW)
    with pytest.raises(SignatureInvalid):
        verify(_spec(scheme), headers, BODY, now=NOW)


@pytest.mark.parametrize("scheme", sorted(set(SIGNERS) - {"standard", "token"}))
def test_empty_secret_never_matches(scheme: str) -> None:
    headers = SIGNERS[scheme][0]("", BODY, NOW)
    with pytest.raises(SignatureInvalid):
        verify(_spec(scheme, ""), headers, BODY, now=NOW)


@pytest.mark.parametrize("scheme", TIMED)
@pytest.mark.parametrize("offset", [-301, 301, -10_000])
def test_stale_or_future_timestamp(scheme: str, offset: int) -> None:
    secret, _ = _secrets(scheme)
    headers = SIGNERS[scheme][0](secret, BODY, NOW + offset)
    with pytest.raises(TimestampOutOfTolerance) as info:
        verify(_spec(scheme, secret), headers, BODY, now=NOW)
    _assert_clean(info.value, headers, secret)


@pytest.mark.parametrize("scheme", TIMED)
def test_tolerance_boundary_and_custom_tolerance(scheme: str) -> None:
    secret, _ = _secrets(scheme)
    headers = SIGNERS[scheme][0](secret, BODY, NOW - 300)
    assert verify(_spec(scheme, secret), headers, BODY, now=NOW).secret_index == 0
    tight = AuthSpec(scheme, (secret,), tolerance_seconds=10)
    with pytest.raises(TimestampOutOfTolerance):
        verify(tight, headers, BODY, now=NOW)


@pytest.mark.parametrize("scheme", TIMED)
def test_stale_and_forged_is_invalid_not_stale(scheme: str) -> None:
    """The MAC is checked first: a bad signature never reveals the timestamp verdict."""
    secret, other = _secrets(scheme)
    headers = SIGNERS[scheme][0](other, BODY, NOW - 10_000)
    with pytest.raises(SignatureInvalid):
        verify(_spec(scheme, secret), headers, BODY, now=NOW)


# --- hmac variants -------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("encoding", ["hex", "base64"])
@pytest.mark.parametrize("prefix", ["", "sha256=", "v1:"])
def test_hmac_variants(algorithm: str, encoding: str, prefix: str) -> None:
    digest = hmac.new(SECRET.encode(), BODY, algorithm).digest()
    encoded = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    spec = AuthSpec(
        "hmac",
        (OTHER, SECRET),
        header="X-Sig",
        algorithm=algorithm,
        encoding=encoding,
        prefix=prefix,
    )
    assert verify(spec, {"x-sig": prefix + encoded}, BODY, now=NOW).secret_index == 1
    with pytest.raises(SignatureInvalid):
        verify(spec, {"x-sig": prefix + encoded}, BODY + b"x", now=NOW)


def test_hmac_uppercase_hex_and_missing_prefix() -> None:
    mac = _hex(SECRET, BODY, "sha512").upper()
    spec = AuthSpec("hmac", (SECRET,), header="X-Sig", algorithm="sha512", prefix="sha512=")
    assert verify(spec, {"x-sig": "sha512=" + mac}, BODY, now=NOW).secret_index == 0
    with pytest.raises(SignatureInvalid):
        verify(spec, {"x-sig": mac}, BODY, now=NOW)


def test_hmac_without_header_configured_is_invalid() -> None:
    with pytest.raises(SignatureInvalid):
        verify(AuthSpec("hmac", (SECRET,)), {"x-signature": _hex(SECRET, BODY)}, BODY, now=NOW)


def test_token_custom_header() -> None:
    spec = AuthSpec("token", (SECRET,), header="X-Gitlab-Token")
    assert verify(spec, {"x-gitlab-token": SECRET}, BODY, now=NOW).secret_index == 0
    with pytest.raises(SignatureMissing):
        verify(spec, {"x-webhook-token": SECRET}, BODY, now=NOW)


def test_none_always_passes() -> None:
    assert verify(AuthSpec("none"), {}, b"", now=NOW) == Verification("none", None, None)


def test_configuration_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        verify(AuthSpec("bogus", (SECRET,)), {}, BODY, now=NOW)
    with pytest.raises(ValueError):
        verify(AuthSpec("hmac", (SECRET,), header="X", algorithm="md5"), {}, BODY, now=NOW)
    with pytest.raises(ValueError):
        verify(AuthSpec("hmac", (SECRET,), header="X", encoding="b32"), {}, BODY, now=NOW)
    with pytest.raises(ValueError):
        signature_header_names(AuthSpec("bogus"))


def test_default_now_uses_clock() -> None:
    # A timestamp far in the past must be stale against the real clock.
    headers = sign_stripe(SECRET, BODY, 1_000)
    with pytest.raises(TimestampOutOfTolerance):
        verify(AuthSpec("stripe", (SECRET,)), headers, BODY)


# --- header names ------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", sorted(SIGNERS))
def test_signature_header_names_cover_credential(scheme: str) -> None:
    names = signature_header_names(_spec(scheme, "x"))
    assert SIGNERS[scheme][2].lower() in names
    assert all(name == name.lower() for name in names)


def test_signature_header_names_extras() -> None:
    assert signature_header_names(AuthSpec("standard")) >= {"svix-signature"}
    assert signature_header_names(AuthSpec("token", header="X-Gitlab-Token")) == {"x-gitlab-token"}
    assert signature_header_names(AuthSpec("hmac")) == frozenset()
    assert signature_header_names(AuthSpec("none")) == frozenset()
    assert sorted(SCHEMES) == ["github", "hmac", "none", "slack", "standard", "stripe", "token"]


# --- property: only the three documented errors ------------------------------------------

HEADER_NAMES = sorted(
    {k.lower() for signer, _, _ in SIGNERS.values() for k in signer(SECRET, BODY, NOW)}
    | {"svix-id", "svix-timestamp", "svix-signature", "x-sig"}
)
VALUES = st.one_of(
    st.text(),
    st.from_regex(r"(t=-?[0-9]{0,12},)?(v[01]=[0-9a-fA-F]{0,64},?){0,3}", fullmatch=True),
    st.from_regex(r"(v[0-9],[A-Za-z0-9+/=]{0,44} ?){0,3}", fullmatch=True),
    st.from_regex(r"(sha256=|v0=)?[0-9a-f]{0,64}", fullmatch=True),
    st.from_regex(r"[0-9]{0,16}", fullmatch=True),
)
HEADERS = st.dictionaries(st.one_of(st.sampled_from(HEADER_NAMES), st.text()), VALUES)
PROPERTY_SPECS = [
    AuthSpec("github", (SECRET, "")),
    AuthSpec("stripe", (SECRET, OTHER)),
    AuthSpec("slack", (SECRET,)),
    AuthSpec("standard", (STD_SECRET, "!!not base64", "whsec_")),
    AuthSpec("hmac", (SECRET,), header="X-Sig", encoding="base64", prefix="sha256="),
    AuthSpec("hmac", (SECRET,), header="X-Sig", algorithm="sha1"),
    AuthSpec("token", (SECRET,)),
    AuthSpec("none"),
]


@settings(database=None, max_examples=300, deadline=None)
@given(headers=HEADERS, body=st.binary(max_size=256), now=st.integers(0, 2**34))
def test_verify_only_raises_documented_errors(
    headers: dict[str, str], body: bytes, now: int
) -> None:
    for spec in PROPERTY_SPECS:
        try:
            result = verify(spec, headers, body, now=now)
        except (SignatureMissing, SignatureInvalid, TimestampOutOfTolerance) as error:
            assert error.__context__ is None
            assert not LEAKY.search(str(error))
        else:
            assert result.scheme == spec.scheme
