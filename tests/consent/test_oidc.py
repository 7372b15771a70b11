"""The OpenID Connect identity provider against a real local IdP (tests/consent/oidc_idp.py): the code flow
with PKCE, state and nonce, ID token validation, the IIN claim, and linking (SQLite, and PostgreSQL when
configured). The browser is played by httpx following the IdP's redirect by hand."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from conftest import Tenant
from qorgau.consent import oidc as oidc_module
from qorgau.consent.citizens import CitizenIdentity, IdentityNotVerified, citizens_for
from qorgau.consent.oidc import (
    OidcConfig,
    OidcConfigError,
    OidcIdentityProvider,
    OidcRefused,
    offered_login,
    session_binding,
)
from qorgau.core import audit, auth
from qorgau.core.errors import Conflict
from qorgau.core.platform import Platform
from qorgau.core.settings import Settings

from .oidc_idp import _DELETE, TestIdP
from .owned import subject_iin

IIN = subject_iin(7001)
OTHER_IIN = subject_iin(7002)
REDIRECT = "http://127.0.0.1:9/me/verify/oidc/callback"  # never followed: the test reads the redirect itself


@pytest.fixture
def idp() -> Iterator[TestIdP]:
    with TestIdP() as server:
        server.user.claims = {"iin": IIN}
        yield server


@pytest.fixture
def settings(tmp_path: Path, database_url: str, idp: TestIdP) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=database_url, sth_interval_seconds=0,
                    oidc_issuer=idp.issuer, oidc_client_id=idp.client_id, oidc_client_secret=idp.client_secret,
                    oidc_display_name="TestID")


@pytest.fixture
def provider(platform: Platform) -> OidcIdentityProvider:
    found = citizens_for(platform).providers["oidc"]
    assert isinstance(found, OidcIdentityProvider)
    return found


def citizen(tenant: Tenant) -> int:
    return tenant.users["citizen"][0]


def binding_of(user_id: int, session_token: str = "session-token-of-the-browser") -> bytes:
    return session_binding(session_token, user_id)


def sign_in(provider: OidcIdentityProvider, user_id: int, binding: bytes | None = None) -> tuple[str, dict[str, str]]:
    """Start a login and let the IdP sign the user in: the pending cookie and the callback's parameters."""
    started = provider.start(user_id, binding or binding_of(user_id), redirect_uri=REDIRECT)
    answer = httpx.get(started.url, follow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return started.cookie, dict(parse_qsl(location.query))


def complete(provider: OidcIdentityProvider, user_id: int, cookie: str, params: dict[str, str],
             binding: bytes | None = None) -> Any:
    return provider.complete(user_id, binding or binding_of(user_id), cookie, params, actor=f"user:{user_id}")


def refused(provider: OidcIdentityProvider, user_id: int, cookie: str, params: dict[str, str],
            binding: bytes | None = None) -> OidcRefused:
    with pytest.raises(OidcRefused) as caught:
        complete(provider, user_id, cookie, params, binding)
    return caught.value


def linked(platform: Platform, user_id: int) -> CitizenIdentity | None:
    with platform.db.reader() as session:
        return session.scalar(select(CitizenIdentity).where(CitizenIdentity.user_id == user_id))


# --- the happy path ---------------------------------------------------------------------------------


def test_signing_in_at_the_idp_links_the_iin_it_vouches_for(platform: Platform, tenant_a: Tenant,
                                                            idp: TestIdP, provider: OidcIdentityProvider) -> None:
    uid = citizen(tenant_a)
    started = provider.start(uid, binding_of(uid), redirect_uri=REDIRECT)
    query = dict(parse_qsl(urlsplit(started.url).query))
    assert urlsplit(started.url).path == "/authorize"
    assert query["response_type"] == "code" and query["code_challenge_method"] == "S256"
    assert query["client_id"] == idp.client_id and query["scope"] == "openid" and query["redirect_uri"] == REDIRECT
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32 and len(query["code_challenge"]) == 43
    assert query["state"] not in started.cookie and query["nonce"] not in started.cookie  # sealed, not readable

    cookie, params = sign_in(provider, uid)
    summary = complete(provider, uid, cookie, params)
    assert summary.method == "oidc" and summary.masked_iin != IIN
    with platform.db.reader() as session:
        assert citizens_for(platform).verified_iin(session, uid) == IIN
    row = linked(platform, uid)
    assert row is not None and row.reference == f"{idp.issuer}#sub={idp.user.sub}"
    # client_secret_basic, with the PKCE verifier and the same redirect URI
    assert idp.token_requests[-1]["basic"] and idp.token_requests[-1]["has_verifier"]
    assert idp.token_requests[-1]["redirect_uri"] == REDIRECT and "client_secret" not in idp.token_requests[-1]


def test_es256_tokens_verify_too_and_discovery_and_keys_are_cached(platform: Platform, tenant_a: Tenant,
                                                                   idp: TestIdP,
                                                                   provider: OidcIdentityProvider) -> None:
    idp.alg = "ES256"
    uid = citizen(tenant_a)
    complete(provider, uid, *sign_in(provider, uid))
    complete(provider, uid, *sign_in(provider, uid))  # re-verifying the same IIN refreshes it
    assert idp.count("/.well-known/openid-configuration") == 1 and idp.count("/jwks") == 1
    with platform.db.reader() as session:
        actions = [e.action for e in audit.list_entries(session, limit=50)]
    assert "citizens.verify" in actions and "citizens.reverify" in actions


def test_the_provider_is_offered_only_when_an_issuer_is_configured(platform: Platform, tmp_path: Path) -> None:
    assert offered_login(platform) == "TestID"
    plain = Platform.initialize(Settings(data_dir=tmp_path / "plain", sth_interval_seconds=0))
    try:
        assert offered_login(plain) is None and "oidc" not in citizens_for(plain).providers
    finally:
        plain.close()


# --- the ID token ---------------------------------------------------------------------------------


@pytest.mark.parametrize("knob,detail", [
    ({"claim_overrides": {"nonce": "a-nonce-of-another-login"}}, "nonce"),
    ({"claim_overrides": {"aud": "another-client"}}, "audience"),
    ({"claim_overrides": {"aud": ["qorgau-portal", "another-client"]}}, "audience"),  # several, no azp
    ({"claim_overrides": {"aud": ["qorgau-portal", "x"], "azp": "x"}}, "audience"),
    ({"claim_overrides": {"iss": "http://127.0.0.1:1"}}, "issuer"),
    ({"claim_overrides": {"exp": 1_000_000_000, "iat": 999_999_000}}, "expired"),
    ({"claim_overrides": {"nbf": 4_000_000_000}}, "not_yet_valid"),
    ({"claim_overrides": {"exp": _DELETE}}, "malformed"),
    ({"claim_overrides": {"sub": ""}}, "subject"),
    ({"corrupt_signature": True}, "signature"),
    ({"unsigned": True, "header_overrides": {"alg": "none"}}, "algorithm"),
    ({"header_overrides": {"alg": "HS256"}}, "algorithm"),
    ({"header_overrides": {"alg": "RS256", "kid": "hmac-1"}}, "unknown_key"),
    ({"header_overrides": {"alg": "ES256"}}, "unknown_key"),  # an RSA kid named with an EC algorithm
    ({"header_overrides": {"crit": ["exp"]}}, "malformed"),
])
def test_an_id_token_that_fails_a_check_is_refused_and_links_nothing(
        platform: Platform, tenant_a: Tenant, idp: TestIdP, provider: OidcIdentityProvider,
        knob: dict[str, Any], detail: str) -> None:
    for name, value in knob.items():
        setattr(idp, name, value)
    uid = citizen(tenant_a)
    error = refused(provider, uid, *sign_in(provider, uid))
    assert (error.reason, error.detail) == ("token_invalid", detail)
    assert linked(platform, uid) is None


def test_a_token_signed_with_hs256_using_the_public_key_as_secret_is_refused(
        platform: Platform, tenant_a: Tenant, idp: TestIdP, provider: OidcIdentityProvider) -> None:
    """The classic confusion attack: HMAC keyed with the RSA public key the verifier holds."""
    import base64
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization

    public_pem = idp.rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)

    def forge(claims: dict[str, Any]) -> str:
        b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()  # noqa: E731
        head = b64(json.dumps({"alg": "HS256", "kid": idp.rsa_kid}).encode()) + "." + b64(json.dumps(claims).encode())
        return head + "." + b64(hmac.new(public_pem, head.encode(), hashlib.sha256).digest())

    idp.sign = forge  # type: ignore[method-assign]
    uid = citizen(tenant_a)
    error = refused(provider, uid, *sign_in(provider, uid))
    assert (error.reason, error.detail) == ("token_invalid", "algorithm")


def test_an_unknown_kid_fetches_the_keys_again_once(platform: Platform, tenant_a: Tenant, idp: TestIdP,
                                                    provider: OidcIdentityProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    uid = citizen(tenant_a)
    complete(provider, uid, *sign_in(provider, uid))
    assert idp.count("/jwks") == 1
    idp.rotate_rsa()  # the IdP rolls its key over
    clock = oidc_module._now()
    monkeypatch.setattr(oidc_module, "_now", lambda: clock + oidc_module.JWKS_REFETCH_MIN_SECONDS + 1)
    complete(provider, uid, *sign_in(provider, uid))
    assert idp.count("/jwks") == 2
    # a kid the IdP does not publish at all: refetched once more, then refused (and not again at once)
    idp.kid = "nobody-has-this-kid"
    monkeypatch.setattr(oidc_module, "_now", lambda: clock + 2 * oidc_module.JWKS_REFETCH_MIN_SECONDS + 2)
    assert refused(provider, uid, *sign_in(provider, uid)).detail == "unknown_key"
    assert idp.count("/jwks") == 3
    assert refused(provider, uid, *sign_in(provider, uid)).detail == "unknown_key"
    assert idp.count("/jwks") == 3  # refetches are rate-limited


# --- the IIN claim --------------------------------------------------------------------------------


@pytest.mark.parametrize("claims,reason", [
    ({}, "iin_missing"),
    ({"iin": ""}, "iin_missing"),
    ({"iin": IIN[:-1] + str((int(IIN[-1]) + 1) % 10)}, "iin_invalid"),  # bad check digit
    ({"iin": int(IIN)}, "iin_invalid"),  # a JSON number loses leading zeros: never accepted
    ({"iin": "not an iin"}, "iin_invalid"),
    ({"national_id": IIN}, "iin_missing"),  # another claim than the configured one
])
def test_a_missing_or_invalid_iin_claim_is_refused(platform: Platform, tenant_a: Tenant, idp: TestIdP,
                                                   provider: OidcIdentityProvider, claims: dict[str, Any],
                                                   reason: str) -> None:
    idp.user.claims = claims
    uid = citizen(tenant_a)
    error = refused(provider, uid, *sign_in(provider, uid))
    assert error.reason == reason and IIN not in str(error) and IIN[:-1] not in str(error)
    assert linked(platform, uid) is None


def test_the_iin_claim_is_configurable_and_accepts_the_certificate_form(
        platform: Platform, tenant_a: Tenant, idp: TestIdP, provider: OidcIdentityProvider) -> None:
    idp.user.claims = {"national_id": "IIN" + IIN}
    provider.config = dataclasses.replace(provider.config, iin_claim="national_id")
    uid = citizen(tenant_a)
    complete(provider, uid, *sign_in(provider, uid))
    with platform.db.reader() as session:
        assert citizens_for(platform).verified_iin(session, uid) == IIN


def test_an_iin_linked_to_another_citizen_is_a_conflict(platform: Platform, tenant_a: Tenant, tenant_b: Tenant,
                                                        idp: TestIdP, provider: OidcIdentityProvider) -> None:
    first, second = citizen(tenant_a), citizen(tenant_b)
    complete(provider, first, *sign_in(provider, first))
    idp.user.sub = "someone-else-with-the-same-iin"
    cookie, params = sign_in(provider, second)
    with pytest.raises(Conflict):
        complete(provider, second, cookie, params)
    assert linked(platform, second) is None
    with platform.db.reader() as session:
        failures = [e for e in audit.list_entries(session, limit=50) if e.action == "citizens.oidc_failed"]
    assert failures and failures[-1].details["reason"] == "conflict"


# --- state, session binding, expiry -----------------------------------------------------------------


def test_state_must_match_and_a_response_is_used_once(platform: Platform, tenant_a: Tenant, idp: TestIdP,
                                                      provider: OidcIdentityProvider) -> None:
    uid = citizen(tenant_a)
    cookie, params = sign_in(provider, uid)
    assert refused(provider, uid, cookie, {**params, "state": "forged"}).reason == "state_mismatch"
    complete(provider, uid, cookie, params)
    # the same callback again (a replay, cookie and all)
    assert refused(provider, uid, cookie, params).reason == "state_used"
    # a response meant for another login in the same browser
    _cookie_1, params_1 = sign_in(provider, uid)
    cookie_2, _params_2 = sign_in(provider, uid)
    assert refused(provider, uid, cookie_2, params_1).reason == "state_mismatch"


def test_a_pending_login_works_only_in_the_session_and_for_the_user_that_started_it(
        platform: Platform, tenant_a: Tenant, tenant_b: Tenant, idp: TestIdP,
        provider: OidcIdentityProvider) -> None:
    uid, other = citizen(tenant_a), citizen(tenant_b)
    cookie, params = sign_in(provider, uid)
    # login CSRF: the attacker's callback in the victim's session
    assert refused(provider, uid, cookie, params, binding_of(uid, "victim-session")).reason == "state_mismatch"
    assert refused(provider, other, cookie, params, binding_of(other)).reason == "state_mismatch"
    tampered = cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB")
    assert refused(provider, uid, tampered, params).reason == "state_mismatch"
    assert refused(provider, uid, "", params).reason == "no_login"
    assert linked(platform, uid) is None and linked(platform, other) is None


def test_a_login_older_than_ten_minutes_expires(platform: Platform, tenant_a: Tenant, idp: TestIdP,
                                                provider: OidcIdentityProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    uid = citizen(tenant_a)
    cookie, params = sign_in(provider, uid)
    later = oidc_module._now() + oidc_module.PENDING_SECONDS + 1
    monkeypatch.setattr(oidc_module, "_now", lambda: later)
    assert refused(provider, uid, cookie, params).reason == "expired"
    assert idp.token_requests == []  # refused before the code was spent


def test_an_idp_error_and_a_refused_code_are_reported(platform: Platform, tenant_a: Tenant, idp: TestIdP,
                                                      provider: OidcIdentityProvider) -> None:
    uid = citizen(tenant_a)
    idp.authorize_error = "access_denied"
    error = refused(provider, uid, *sign_in(provider, uid))
    assert (error.reason, error.detail) == ("idp_error", "access_denied")
    idp.authorize_error = None
    cookie, params = sign_in(provider, uid)
    error = refused(provider, uid, cookie, {**params, "code": "a-code-the-idp-never-issued"})
    assert (error.reason, error.detail) == ("idp_error", "invalid_grant")
    cookie, params = sign_in(provider, uid)
    error = refused(provider, uid, cookie, {**params, "iss": "https://mix-up.example"})  # RFC 9207
    assert (error.reason, error.detail) == ("token_invalid", "issuer")


def test_a_wrong_client_secret_is_refused_by_the_idp(platform: Platform, tenant_a: Tenant, idp: TestIdP,
                                                     provider: OidcIdentityProvider) -> None:
    provider.config = dataclasses.replace(provider.config, client_secret="not-the-secret")
    uid = citizen(tenant_a)
    error = refused(provider, uid, *sign_in(provider, uid))
    assert (error.reason, error.detail) == ("idp_error", "invalid_client")


def test_an_idp_that_is_down_gives_a_clear_error(platform: Platform, tenant_a: Tenant, idp: TestIdP,
                                                 provider: OidcIdentityProvider) -> None:
    uid = citizen(tenant_a)
    cookie, params = sign_in(provider, uid)
    idp.token_status = 503
    assert refused(provider, uid, cookie, params).reason == "idp_unavailable"
    idp.token_status = None
    cookie, params = sign_in(provider, uid)
    idp.stop()
    error = refused(provider, uid, cookie, params)
    assert (error.reason, error.detail) == ("idp_unavailable", "token")
    provider._metadata = None  # discovery is needed again: the start fails the same way
    with pytest.raises(OidcRefused) as caught:
        provider.start(uid, binding_of(uid), redirect_uri=REDIRECT)
    assert caught.value.reason == "idp_unavailable"


# --- the IdentityProvider protocol, configuration, no leaks ---------------------------------------------


def test_citizens_verify_runs_the_provider_through_the_protocol(platform: Platform, tenant_a: Tenant,
                                                                idp: TestIdP, provider: OidcIdentityProvider) -> None:
    uid = citizen(tenant_a)
    service = citizens_for(platform)
    cookie, params = sign_in(provider, uid)
    forged = OidcIdentityProvider.callback_credential(cookie, binding_of(uid), {**params, "state": "x"})
    with pytest.raises(IdentityNotVerified) as caught:
        service.verify(uid, forged, actor=f"user:{uid}", method="oidc")
    assert caught.value.reason == "state_mismatch"
    credential = OidcIdentityProvider.callback_credential(cookie, binding_of(uid), params)
    assert service.verify(uid, credential, actor=f"user:{uid}", method="oidc").method == "oidc"
    with pytest.raises(IdentityNotVerified):
        service.verify(uid, "garbage", actor=f"user:{uid}", method="oidc")


def test_plain_http_is_refused_except_for_loopback_issuers(tmp_path: Path) -> None:
    client = {"data_dir": tmp_path, "oidc_client_id": "qorgau"}
    with pytest.raises(ValidationError):
        Settings(**client, oidc_issuer="http://idp.example.kz")
    with pytest.raises(ValidationError):
        Settings(**client, oidc_issuer="https://idp.example.kz", oidc_redirect_uri="http://portal.kz/cb")
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, oidc_issuer="https://idp.example.kz")  # no client id
    assert Settings(**client, oidc_issuer="https://idp.egov.kz/").oidc_issuer == "https://idp.egov.kz/"
    assert Settings(**client, oidc_issuer="http://localhost:8081").oidc_issuer == "http://localhost:8081"
    with pytest.raises(OidcConfigError):
        OidcConfig(issuer="http://10.0.0.5", client_id="x")
    with pytest.raises(OidcConfigError):
        OidcConfig(issuer="https://idp.egov.kz", client_id="")
    with pytest.raises(OidcConfigError):
        OidcConfig(issuer="https://idp.egov.kz", client_id="x", scopes=("profile",))


def test_a_callback_url_that_is_not_https_is_a_configuration_error(platform: Platform, tenant_a: Tenant,
                                                                    provider: OidcIdentityProvider) -> None:
    uid = citizen(tenant_a)
    with pytest.raises(OidcRefused) as caught:
        provider.start(uid, binding_of(uid), redirect_uri="http://portal.example.kz/me/verify/oidc/callback")
    assert (caught.value.reason, caught.value.detail) == ("misconfigured", "redirect_uri")
    provider.config = dataclasses.replace(provider.config, redirect_uri="https://portal.example.kz/cb")
    started = provider.start(uid, binding_of(uid), redirect_uri="http://ignored.example/cb")  # the setting wins
    assert dict(parse_qsl(urlsplit(started.url).query))["redirect_uri"] == "https://portal.example.kz/cb"


def test_the_client_secret_can_come_from_a_file(tmp_path: Path, idp: TestIdP) -> None:
    secret_file = tmp_path / "oidc-secret"
    secret_file.write_text(idp.client_secret + "\n")
    settings = Settings(data_dir=tmp_path, oidc_issuer=idp.issuer, oidc_client_id="c",
                        oidc_client_secret_file=secret_file, oidc_scopes="openid profile,iin")
    config = oidc_module.config_from_settings(settings)
    assert config is not None and config.client_secret == idp.client_secret
    assert config.scopes == ("openid", "profile", "iin")
    assert idp.client_secret not in repr(config) and idp.client_secret not in repr(settings)


def test_nothing_logs_or_audits_the_iin_a_token_or_a_code(platform: Platform, tenant_a: Tenant, idp: TestIdP,
                                                          provider: OidcIdentityProvider,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="qorgau")
    uid = citizen(tenant_a)
    seen: list[str] = []
    cookie, params = sign_in(provider, uid)
    seen += [params["code"], params["state"], cookie]
    summary = complete(provider, uid, cookie, params)
    idp.corrupt_signature = True
    cookie, params = sign_in(provider, uid)
    seen += [params["code"], params["state"]]
    error = refused(provider, uid, cookie, params)
    with platform.db.reader() as session:
        entries = audit.list_entries(session, limit=100)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("qorgau"))
    assert "token_invalid (signature)" in logged
    texts = [logged, repr(provider), repr(summary), str(error), repr(error)]
    texts += [repr(e.details) for e in entries]
    for text in texts:
        assert IIN not in text
        for secret in seen + [idp.client_secret]:
            assert secret not in text
    assert any(e.action == "citizens.oidc_failed" and e.details["detail"] == "signature" for e in entries)


def test_a_second_account_of_the_same_person_cannot_take_the_iin(platform: Platform, tenant_a: Tenant,
                                                                 idp: TestIdP, provider: OidcIdentityProvider) -> None:
    """After an unlink, the IIN can be proved again by a new account (the flow is the only way in)."""
    uid = citizen(tenant_a)
    complete(provider, uid, *sign_in(provider, uid))
    with platform.db.transaction() as session:
        new_user, _ = auth.create_user(session, organization_id=tenant_a.org_id, username="second-account",
                                       display_name="x", roles=["citizen"], actor="test", password="another-citizen-1")
        new_id = new_user.id
    cookie, params = sign_in(provider, new_id)
    with pytest.raises(Conflict):
        complete(provider, new_id, cookie, params)
    with platform.db.transaction() as session:
        citizens_for(platform).unlink(session, uid, actor="test")
    complete(provider, new_id, *sign_in(provider, new_id))
    assert linked(platform, new_id) is not None
