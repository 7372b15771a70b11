"""OpenID Connect: the production identity provider of citizen accounts (IIN only after login as its owner).

A citizen proves their IIN by signing in at the deployment's OpenID Connect provider (the e-government IdP,
eGov IDP style: the IIN is a claim of the ID token). The flow is the authorization code flow with PKCE
(RFC 7636, ``S256``), ``state`` and ``nonce`` (OpenID Connect Core 1.0 §3.1):

1. :meth:`OidcIdentityProvider.start` — discovery (``/.well-known/openid-configuration``, cached), a fresh
   ``state``, ``nonce`` and PKCE verifier, and the authorization URL the browser is redirected to. The
   *pending login* (state, nonce, verifier, user id, redirect URI, expiry 10 minutes) is sealed with
   AES-256-GCM under a platform data key (``dk-oidc-pending``, wrapped by the master key through
   ``platform.keyring``) into a cookie whose associated data binds it to the user's web session and user id.
   A cookie rather than process memory: with several server processes the callback may reach another
   process, and there is no table for it (no schema change). A copied cookie is useless in another session.
2. :meth:`OidcIdentityProvider.finish` — the callback: the cookie opens only in the session that started
   the login, the ``state`` matches and was not used before (a per-process set; across processes the
   single-use authorization code makes a replay fail at the IdP's token endpoint), the code is exchanged at
   the token endpoint (``client_secret_basic``; ``client_secret_post`` when that is all the IdP supports; a
   public client sends only its id), and the ID token is validated: RS256 or ES256 with ``cryptography``
   against the IdP's JWKS (cached; fetched again once on an unknown ``kid``); ``alg=none``, HS* or any other
   algorithm refused; ``iss``, ``aud`` (and ``azp`` when several audiences), ``exp``/``iat``/``nbf`` with a
   small leeway, ``nonce``. The IIN is read from a configurable claim (default ``iin``) and checked with
   :func:`qorgau.identifiers.parse_iin`.
3. :meth:`OidcIdentityProvider.complete` — :meth:`Citizens.link_verified` with method ``oidc`` and the
   issuer plus ``sub`` as the provider's reference (one IIN, one citizen identity: L-PD-RIGHTS — a citizen
   sees only their own data).

The network calls run outside any database transaction (a slow IdP must not hold SQLite's write lock); only
the link (or the audit entry of a refusal) is written, in one transaction. :meth:`verify` implements the
:class:`~qorgau.consent.citizens.IdentityProvider` protocol too (the callback's parameters as one
credential) for callers that go through :meth:`Citizens.verify`.

Transport: ``httpx`` with timeouts, TLS verification on, no redirects followed, responses capped at 512 KiB.
The issuer and every endpoint must be ``https://``; plain ``http://`` is accepted only for loopback hosts
(``127.0.0.1``, ``::1``, ``localhost``) — for a local test IdP, never across a network.

Personal data never leaks: errors carry a reason code (and a detail code), never a token, a code or the IIN;
logs and audit entries hold the reason, the user id and the method only. See ``docs/oidc.md``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session

from ..core import audit
from ..identifiers import IdentifierError, parse_iin
from .citizens import IdentityNotVerified, VerificationOutcome, VerifiedIdentity

if TYPE_CHECKING:
    from ..core.platform import Platform
    from ..core.settings import Settings
    from .citizens import Citizens, IdentitySummary

__all__ = [
    "ALGORITHMS", "METHOD", "OidcConfig", "OidcConfigError", "OidcIdentityProvider", "OidcRefused", "OidcStart",
    "is_loopback_http", "offered_login", "provider_from_settings", "session_binding",
]

log = logging.getLogger("qorgau.consent.oidc")

METHOD = "oidc"
ALGORITHMS = ("RS256", "ES256")          # asymmetric only: HS* would need the client secret as a key
PENDING_KEY_ID = "dk-oidc-pending"       # AES-256-GCM key sealing pending logins (platform data key)
PENDING_KEY_PURPOSE = "oidc-pending-login"
PENDING_SECONDS = 600                    # a login must come back within 10 minutes
LEEWAY_SECONDS = 60                      # clock skew allowed on exp / iat / nbf
METADATA_TTL_SECONDS = 3600.0            # discovery and JWKS are cached this long
JWKS_REFETCH_MIN_SECONDS = 10.0          # an unknown kid refetches the JWKS at most this often
MAX_RESPONSE_BYTES = 512 * 1024
MAX_TOKEN_CHARS = 16 * 1024
MAX_PARAM_CHARS = 4096
MAX_SUB_CHARS = 255
MIN_RSA_BITS = 2048
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_ERROR_CODE = re.compile(r"^[a-z0-9_.-]{1,64}$")
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def _now() -> float:
    """The clock (a function, so tests can move it)."""
    return time.time()


# --- shapes -----------------------------------------------------------------------------------------


class OidcConfigError(ValueError):
    """The OIDC settings are unusable; the message names the setting, never a secret."""


class OidcRefused(IdentityNotVerified):
    """A sign-in through the IdP was refused. ``reason`` is a machine code:

    ``no_login`` (no pending login in this browser), ``state_mismatch``, ``state_used``, ``expired`` (the
    pending login is older than 10 minutes), ``idp_error`` (the IdP answered with an error), ``idp_unavailable``
    (the IdP cannot be reached or answered garbage), ``token_invalid`` (the ID token failed validation;
    ``detail`` says which check), ``iin_missing``, ``iin_invalid``, ``misconfigured`` (the callback URL
    this server derived is not https: set ``oidc_redirect_uri``). ``detail`` is a short machine code too;
    neither ever contains a token, a code or an identifier.
    """

    code = "oidc_refused"

    def __init__(self, reason: str, detail: str | None = None) -> None:
        text = f"OpenID Connect sign-in refused: {reason}" + (f" ({detail})" if detail else "")
        super().__init__(text, reason=reason, field="oidc")
        self.detail = detail


@dataclass(frozen=True)
class OidcConfig:
    """Where and how to sign in. ``repr`` hides the client secret."""

    issuer: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    iin_claim: str = "iin"
    scopes: tuple[str, ...] = ("openid",)
    display_name: str = "eGov"
    redirect_uri: str | None = None
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        check_url(self.issuer, "oidc_issuer")
        if self.redirect_uri is not None:
            check_url(self.redirect_uri, "oidc_redirect_uri")
        if not self.client_id or len(self.client_id) > 255:
            raise OidcConfigError("oidc_client_id is required (1-255 characters) when oidc_issuer is set")
        if not self.iin_claim or len(self.iin_claim) > 100:
            raise OidcConfigError("oidc_iin_claim must name a claim (1-100 characters)")
        if "openid" not in self.scopes:
            raise OidcConfigError("oidc_scopes must include 'openid'")
        if not self.display_name.strip() or len(self.display_name) > 80:
            raise OidcConfigError("oidc_display_name must be 1-80 characters")


@dataclass(frozen=True)
class OidcStart:
    """Where to send the browser, and the sealed pending login to keep in its cookie (``repr`` hides it)."""

    url: str = field(repr=False)
    cookie: str = field(repr=False)
    expires_in: int = PENDING_SECONDS


def is_loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK


def check_url(url: str, what: str) -> str:
    """``https://`` (``http://`` only for loopback), a host, no fragment — or :class:`OidcConfigError`."""
    if not isinstance(url, str) or not url or len(url) > 2048:
        raise OidcConfigError(f"{what} must be an absolute URL")
    parts = urlsplit(url)
    if not parts.hostname or parts.fragment or parts.username or parts.password:
        raise OidcConfigError(f"{what} must be an absolute URL with a host, without credentials or fragment")
    if parts.scheme != "https" and not is_loopback_http(url):
        raise OidcConfigError(f"{what} must use https:// (plain http:// only for loopback hosts)")
    return url


def session_binding(session_token: str, user_id: int) -> bytes:
    """What a pending login is bound to: a hash of the web session's token (never the token) and the user."""
    digest = hashlib.sha256(b"qorgau-oidc-binding/v1\x00" + session_token.encode("utf-8")).digest()
    return digest + b"\x00user=%d" % user_id


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- keys of the IdP --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Jwk:
    kid: str | None
    kty: str
    alg: str | None
    key: Any = field(repr=False)

    def fits(self, alg: str) -> bool:
        if self.alg is not None and self.alg != alg:
            return False
        if alg == "RS256":
            return self.kty == "RSA"
        return self.kty == "EC"


def _parse_jwk(data: Any) -> _Jwk | None:
    """A public signing key of the JWKS, or None for what we cannot or must not use (oct keys, enc keys…)."""
    if not isinstance(data, dict):
        return None
    if data.get("use") not in (None, "sig"):
        return None
    ops = data.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return None
    kid = data.get("kid") if isinstance(data.get("kid"), str) else None
    alg = data.get("alg") if isinstance(data.get("alg"), str) else None
    try:
        if data.get("kty") == "RSA":
            n = int.from_bytes(_unb64url(data["n"]), "big")
            e = int.from_bytes(_unb64url(data["e"]), "big")
            key = rsa.RSAPublicNumbers(e, n).public_key()
            if key.key_size < MIN_RSA_BITS:
                return None
            return _Jwk(kid, "RSA", alg, key)
        if data.get("kty") == "EC" and data.get("crv") == "P-256":
            x, y = _unb64url(data["x"]), _unb64url(data["y"])
            if len(x) != 32 or len(y) != 32:
                return None
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
            return _Jwk(kid, "EC", alg, key)
    except (KeyError, TypeError, ValueError):
        return None
    return None


def _signature_ok(alg: str, jwk: _Jwk, signing_input: bytes, signature: bytes) -> bool:
    try:
        if alg == "RS256" and isinstance(jwk.key, rsa.RSAPublicKey):
            jwk.key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            return True
        if alg == "ES256" and isinstance(jwk.key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:  # JWS: R || S, 32 bytes each (RFC 7518 §3.4), not DER
                return False
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            jwk.key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
            return True
    except InvalidSignature:
        return False
    return False


# --- the provider -----------------------------------------------------------------------------------


class OidcIdentityProvider:
    """An :class:`~qorgau.consent.citizens.IdentityProvider` backed by an OpenID Connect provider."""

    method = METHOD

    def __init__(self, citizens: Citizens, config: OidcConfig, *, client: httpx.Client | None = None,
                 jwks_refetch_min_seconds: float = JWKS_REFETCH_MIN_SECONDS) -> None:
        self._citizens = citizens
        self.platform: Platform = citizens.platform
        self.config = config
        self.jwks_refetch_min_seconds = jwks_refetch_min_seconds
        self._client = client
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_expires = 0.0
        self._jwks: list[_Jwk] | None = None
        self._jwks_fetched = 0.0
        self._pending_key: bytes | None = None
        self._used_states: dict[bytes, float] = {}

    def __repr__(self) -> str:
        return f"OidcIdentityProvider(issuer={self.config.issuer!r}, client_id={self.config.client_id!r})"

    @property
    def display_name(self) -> str:
        return self.config.display_name

    # -- HTTP ------------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    timeout = httpx.Timeout(self.config.timeout_seconds, connect=min(5.0, self.config.timeout_seconds))
                    # trust_env: the deployment's proxy and CA bundle (SSL_CERT_FILE) apply; TLS is verified.
                    self._client = httpx.Client(timeout=timeout, verify=True, follow_redirects=False,
                                                headers={"Accept": "application/json"})
        return self._client

    def _call(self, what: str, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        """One request; returns (status, parsed JSON or None). Network trouble → ``idp_unavailable``."""
        try:
            with self._http().stream(method, url, **kwargs) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        log.warning("OIDC %s: response larger than %d bytes", what, MAX_RESPONSE_BYTES)
                        raise OidcRefused("idp_unavailable", what)
                status = response.status_code
        except httpx.HTTPError as exc:
            log.warning("OIDC %s failed: %s", what, type(exc).__name__)
            raise OidcRefused("idp_unavailable", what) from None
        try:
            parsed = json.loads(bytes(body)) if body else None
        except ValueError:
            parsed = None
        return status, parsed

    def _get_json(self, what: str, url: str) -> dict[str, Any]:
        status, parsed = self._call(what, "GET", url)
        if status != 200 or not isinstance(parsed, dict):
            log.warning("OIDC %s: HTTP %d%s", what, status, "" if isinstance(parsed, dict) else " (not a JSON object)")
            raise OidcRefused("idp_unavailable", what)
        return parsed

    # -- discovery and keys ----------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """The IdP's discovery document (OpenID Connect Discovery 1.0 §4), cached for an hour."""
        with self._lock:
            if self._metadata is not None and _now() < self._metadata_expires:
                return self._metadata
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = self._get_json("discovery", url)
        if doc.get("issuer") != self.config.issuer:  # §4.3: must be exactly the configured issuer
            log.warning("OIDC discovery: the document names another issuer")
            raise OidcRefused("idp_unavailable", "discovery")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            try:
                check_url(doc.get(name), name)
            except OidcConfigError:
                log.warning("OIDC discovery: %s missing or not https", name)
                raise OidcRefused("idp_unavailable", "discovery") from None
        with self._lock:
            self._metadata, self._metadata_expires = doc, _now() + METADATA_TTL_SECONDS
        return doc

    def _fetch_jwks(self) -> list[_Jwk]:
        doc = self._get_json("jwks", self.metadata()["jwks_uri"])
        keys = [jwk for jwk in map(_parse_jwk, doc.get("keys") or []) if jwk is not None] \
            if isinstance(doc.get("keys"), list) else []
        with self._lock:
            self._jwks, self._jwks_fetched = keys, _now()
        return keys

    def _signing_keys(self, kid: str | None, alg: str) -> list[_Jwk]:
        """Keys that may have signed a token with this header: cached, refetched once on an unknown ``kid``."""
        with self._lock:
            keys, fetched = self._jwks, self._jwks_fetched
        fresh = keys is None or _now() - fetched > METADATA_TTL_SECONDS
        if fresh:
            keys = self._fetch_jwks()
        found = self._matching(keys or [], kid, alg)
        if not found and not fresh and _now() - fetched >= self.jwks_refetch_min_seconds:
            found = self._matching(self._fetch_jwks(), kid, alg)  # the IdP may have rotated its keys
        return found

    @staticmethod
    def _matching(keys: list[_Jwk], kid: str | None, alg: str) -> list[_Jwk]:
        fitting = [k for k in keys if k.fits(alg)]
        if kid is not None:
            return [k for k in fitting if k.kid == kid]
        return fitting if len(fitting) == 1 else []  # no kid: only an unambiguous key

    # -- the pending login (a sealed cookie) -----------------------------------------------------

    def _key(self) -> bytes:
        if self._pending_key is None:
            with self.platform.db.transaction() as session:
                key = self._citizens._key(session, PENDING_KEY_ID, PENDING_KEY_PURPOSE, create=True)
            assert key is not None
            self._pending_key = key
        return self._pending_key

    def _seal(self, pending: dict[str, Any], binding: bytes) -> str:
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self._key()).encrypt(nonce, json.dumps(pending, separators=(",", ":")).encode(),
                                             b"qorgau-oidc-pending/v1\x00" + binding)
        return "v1." + _b64url(nonce + sealed)

    def _open(self, cookie: str | None, binding: bytes) -> dict[str, Any]:
        if not cookie:
            raise OidcRefused("no_login")
        try:
            if not cookie.startswith("v1.") or len(cookie) > MAX_PARAM_CHARS:
                raise ValueError("not a pending login")
            blob = _unb64url(cookie[3:])
            plain = AESGCM(self._key()).decrypt(blob[:12], blob[12:], b"qorgau-oidc-pending/v1\x00" + binding)
            pending = json.loads(plain)
        except (ValueError, InvalidTag):
            # Tampered, from another session or user, or sealed under an older key: not this login.
            raise OidcRefused("state_mismatch", "session") from None
        if not isinstance(pending, dict) or pending.get("v") != 1 or pending.get("iss") != self.config.issuer:
            raise OidcRefused("state_mismatch", "session")
        return pending

    def _claim_state(self, state: str, expires: float) -> bool:
        """Mark a state as used (False if it already was). Per process; see the module docstring."""
        digest = hashlib.sha256(state.encode()).digest()
        now = _now()
        with self._lock:
            if len(self._used_states) > 10_000:
                self._used_states = {k: v for k, v in self._used_states.items() if v > now}
            if digest in self._used_states and self._used_states[digest] > now:
                return False
            self._used_states[digest] = max(expires, now) + LEEWAY_SECONDS
            return True

    # -- the flow --------------------------------------------------------------------------------

    def start(self, user_id: int, binding: bytes, redirect_uri: str) -> OidcStart:
        """Begin a login: the authorization URL (code flow, PKCE S256, state, nonce) and the sealed cookie.

        ``redirect_uri`` is where the IdP sends the browser back (``settings.oidc_redirect_uri`` wins);
        raises :class:`OidcRefused` (``idp_unavailable``) when the IdP cannot be reached."""
        try:
            redirect_uri = check_url(self.config.redirect_uri or redirect_uri, "redirect_uri")
        except OidcConfigError:
            log.error("OIDC: this server's callback URL is not https; set QORGAU_OIDC_REDIRECT_URI")
            raise OidcRefused("misconfigured", "redirect_uri") from None
        endpoint = self.metadata()["authorization_endpoint"]
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-] (RFC 7636 §4.1: 43-128)
        challenge = _b64url(hashlib.sha256(verifier.encode("ascii")).digest())
        query = urlencode({"response_type": "code", "client_id": self.config.client_id,
                           "redirect_uri": redirect_uri, "scope": " ".join(self.config.scopes),
                           "state": state, "nonce": nonce, "code_challenge": challenge,
                           "code_challenge_method": "S256"})
        pending = {"v": 1, "iss": self.config.issuer, "u": user_id, "st": state, "n": nonce, "cv": verifier,
                   "ru": redirect_uri, "exp": int(_now()) + PENDING_SECONDS}
        url = endpoint + ("&" if urlsplit(endpoint).query else "?") + query
        return OidcStart(url, self._seal(pending, binding))

    def finish(self, user_id: int, binding: bytes, cookie: str | None,
               params: Mapping[str, str]) -> VerifiedIdentity:
        """The callback: check the pending login and the state, exchange the code, validate the ID token,
        read the IIN. Raises :class:`OidcRefused`; returns the identity (not yet linked)."""
        pending = self._open(cookie, binding)
        if pending.get("u") != user_id:
            raise OidcRefused("state_mismatch", "session")
        state = params.get("state") or ""
        if len(state) > MAX_PARAM_CHARS or not hmac.compare_digest(state.encode(), str(pending.get("st")).encode()):
            raise OidcRefused("state_mismatch")
        if not _is_number(pending.get("exp")) or _now() > pending["exp"]:
            raise OidcRefused("expired")
        if not self._claim_state(state, float(pending["exp"])):
            raise OidcRefused("state_used")
        if params.get("error"):
            code = params["error"] if _ERROR_CODE.match(params["error"]) else "unknown"
            raise OidcRefused("idp_error", code)
        if params.get("iss") is not None and params.get("iss") != self.config.issuer:  # RFC 9207 mix-up defence
            raise OidcRefused("token_invalid", "issuer")
        code = params.get("code") or ""
        if not code or len(code) > MAX_PARAM_CHARS:
            raise OidcRefused("idp_error", "no_code")
        id_token = self._exchange(code, pending)
        claims = self.validate_id_token(id_token, nonce=str(pending["n"]))
        return VerifiedIdentity(self._iin(claims), METHOD, reference=self._reference(claims["sub"]))

    def complete(self, user_id: int, binding: bytes, cookie: str | None, params: Mapping[str, str], *,
                 actor: str) -> IdentitySummary:
        """:meth:`finish`, then link the IIN to the account in one transaction (L-PD-RIGHTS: the citizen's
        own data only). A refusal is audited (reason codes only) and raised; a conflict (the IIN belongs to
        another citizen account, or this account to another IIN) raises :class:`~qorgau.core.errors.Conflict`
        and links nothing."""
        from ..core.errors import Conflict

        try:
            identity = self.finish(user_id, binding, cookie, params)
        except OidcRefused as exc:
            self._audit_refusal(user_id, actor, exc.reason, exc.detail)
            raise
        try:
            with self.platform.db.transaction() as session:
                return self._citizens.link_verified(session, user_id, identity, actor=actor)
        except Conflict:
            self._audit_refusal(user_id, actor, "conflict", None)
            raise

    def verify(self, session: Session, user_id: int, credential: str) -> VerificationOutcome:
        """The :class:`IdentityProvider` protocol: ``credential`` is :meth:`callback_credential`'s JSON (the
        pending cookie, the session binding and the callback's parameters). Runs :meth:`finish` — network
        calls — inside the caller's transaction, which is why the web callback uses :meth:`complete`."""
        try:
            data = json.loads(credential) if isinstance(credential, str) and len(credential) < 4 * MAX_PARAM_CHARS \
                else None
            if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
                raise ValueError("not an OIDC callback credential")
            binding = bytes.fromhex(str(data.get("binding")))
            params = {str(k): str(v) for k, v in data["params"].items()}
        except ValueError:
            return VerificationOutcome(None, "state_mismatch")
        try:
            return VerificationOutcome(self.finish(user_id, binding, data.get("pending"), params))
        except OidcRefused as exc:
            audit.record(session, actor=f"user:{user_id}", action="citizens.oidc_failed",
                         object_type="citizen_identity", object_id="-",
                         organization_id=self._citizens._user_org(session, user_id),
                         details={"user_id": user_id, "method": METHOD, "reason": exc.reason, "detail": exc.detail})
            return VerificationOutcome(None, exc.reason)

    @staticmethod
    def callback_credential(cookie: str | None, binding: bytes, params: Mapping[str, str]) -> str:
        """One string for :meth:`verify` (``Citizens.verify(user_id, credential, method="oidc")``)."""
        return json.dumps({"pending": cookie, "binding": binding.hex(), "params": dict(params)})

    def _audit_refusal(self, user_id: int, actor: str, reason: str, detail: str | None) -> None:
        log.info("OIDC sign-in refused for user %d: %s%s", user_id, reason, f" ({detail})" if detail else "")
        try:
            with self.platform.db.transaction() as session:
                audit.record(session, actor=actor, action="citizens.oidc_failed", object_type="citizen_identity",
                             object_id="-", organization_id=self._citizens._user_org(session, user_id),
                             details={"user_id": user_id, "method": METHOD, "reason": reason, "detail": detail})
        except Exception as exc:  # the refusal itself must still reach the user
            log.error("OIDC: auditing a refusal failed: %s", type(exc).__name__)

    # -- token endpoint and ID token -------------------------------------------------------------

    def _exchange(self, code: str, pending: Mapping[str, Any]) -> str:
        """Exchange the authorization code (with the PKCE verifier) for an ID token."""
        meta = self.metadata()
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": str(pending["ru"]),
                "code_verifier": str(pending["cv"])}
        auth: httpx.BasicAuth | None = None
        secret = self.config.client_secret
        supported = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if secret is None:
            data["client_id"] = self.config.client_id  # a public client: PKCE is its proof
        elif "client_secret_basic" in supported or "client_secret_post" not in supported:
            # RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
            auth = httpx.BasicAuth(quote_plus(self.config.client_id), quote_plus(secret))
        else:
            data.update(client_id=self.config.client_id, client_secret=secret)
        status, answer = self._call("token", "POST", meta["token_endpoint"], data=data, auth=auth)
        if status >= 500 or not isinstance(answer, dict):
            log.warning("OIDC token endpoint: HTTP %d", status)
            raise OidcRefused("idp_unavailable", "token")
        if status != 200:
            error = answer.get("error")
            raise OidcRefused("idp_error", error if isinstance(error, str) and _ERROR_CODE.match(error) else "token")
        id_token = answer.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise OidcRefused("token_invalid", "missing")
        return id_token

    def validate_id_token(self, token: str, *, nonce: str) -> dict[str, Any]:
        """Validate an ID token (OpenID Connect Core §3.1.3.7) and return its claims.

        Signature first (RS256 / ES256 only, a key of the IdP's JWKS), then ``iss``, ``aud``/``azp``,
        ``exp``/``iat``/``nbf`` (± :data:`LEEWAY_SECONDS`), ``nonce`` and ``sub``."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise OidcRefused("token_invalid", "malformed")
        head_b64, body_b64, sig_b64 = token.split(".")
        try:
            header = json.loads(_unb64url(head_b64))
            claims = json.loads(_unb64url(body_b64))
            signature = _unb64url(sig_b64)
        except ValueError:
            raise OidcRefused("token_invalid", "malformed") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise OidcRefused("token_invalid", "malformed")
        alg = header.get("alg")
        if alg not in ALGORITHMS:  # "none", HS256 with a public key as the secret, …: never
            raise OidcRefused("token_invalid", "algorithm")
        if "crit" in header:  # no extension is understood, so none may be critical (RFC 7515 §4.1.11)
            raise OidcRefused("token_invalid", "malformed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise OidcRefused("token_invalid", "malformed")
        keys = self._signing_keys(kid, alg)
        if not keys:
            raise OidcRefused("token_invalid", "unknown_key")
        signing_input = f"{head_b64}.{body_b64}".encode("ascii")
        if not any(_signature_ok(alg, key, signing_input, signature) for key in keys):
            raise OidcRefused("token_invalid", "signature")
        self._check_claims(claims, nonce)
        return claims

    def _check_claims(self, claims: dict[str, Any], nonce: str) -> None:
        now = _now()
        if claims.get("iss") != self.config.issuer:
            raise OidcRefused("token_invalid", "issuer")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if self.config.client_id not in audiences or not all(isinstance(a, str) for a in audiences):
            raise OidcRefused("token_invalid", "audience")
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != self.config.client_id:
            raise OidcRefused("token_invalid", "audience")
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
        if not _is_number(exp) or not _is_number(iat) or (nbf is not None and not _is_number(nbf)):
            raise OidcRefused("token_invalid", "malformed")
        if now > exp + LEEWAY_SECONDS:
            raise OidcRefused("token_invalid", "expired")
        if iat > now + LEEWAY_SECONDS or (nbf is not None and nbf > now + LEEWAY_SECONDS):
            raise OidcRefused("token_invalid", "not_yet_valid")
        if iat < now - PENDING_SECONDS - LEEWAY_SECONDS:  # issued before this login could have started
            raise OidcRefused("token_invalid", "expired")
        token_nonce = claims.get("nonce")
        if not isinstance(token_nonce, str) or not hmac.compare_digest(token_nonce.encode(), nonce.encode()):
            raise OidcRefused("token_invalid", "nonce")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > MAX_SUB_CHARS:
            raise OidcRefused("token_invalid", "subject")

    def _iin(self, claims: Mapping[str, Any]) -> str:
        value = claims.get(self.config.iin_claim)
        if value is None or value == "":
            raise OidcRefused("iin_missing")
        if not isinstance(value, str) or len(value) > 64:  # a JSON number would lose leading zeros
            raise OidcRefused("iin_invalid")
        text = value.strip()
        if text.upper().startswith("IIN"):  # the certificate SERIALNUMBER form, "IIN" + 12 digits
            text = text[3:]
        try:
            return parse_iin(text).value
        except IdentifierError:
            raise OidcRefused("iin_invalid") from None

    def _reference(self, sub: str) -> str:
        """The provider's reference of the link: issuer and ``sub`` (hashed when too long for the column)."""
        reference = f"{self.config.issuer}#sub={sub}"
        if len(reference) > 200:
            reference = f"{self.config.issuer[:120]}#sub-sha256={hashlib.sha256(sub.encode()).hexdigest()[:64]}"
        return reference


# --- settings ---------------------------------------------------------------------------------------


def config_from_settings(settings: Settings) -> OidcConfig | None:
    """The OIDC configuration of ``settings`` (None when ``oidc_issuer`` is not set)."""
    issuer = getattr(settings, "oidc_issuer", None)
    if not issuer:
        return None
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
    secret_file: Path | None = settings.oidc_client_secret_file
    if secret is None and secret_file is not None:
        try:
            secret = secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise OidcConfigError(f"oidc_client_secret_file cannot be read: {type(exc).__name__}") from None
    scopes = tuple(dict.fromkeys(s for s in settings.oidc_scopes.replace(",", " ").split() if s))
    return OidcConfig(issuer=issuer, client_id=settings.oidc_client_id or "", client_secret=secret or None,
                      iin_claim=settings.oidc_iin_claim, scopes=scopes, display_name=settings.oidc_display_name,
                      redirect_uri=settings.oidc_redirect_uri)


def provider_from_settings(citizens: Citizens) -> OidcIdentityProvider | None:
    """The provider :class:`Citizens` registers at start-up when ``oidc_issuer`` is set (no network here)."""
    config = config_from_settings(citizens.platform.settings)
    return None if config is None else OidcIdentityProvider(citizens, config)


def offered_login(platform: Platform) -> str | None:
    """The display name of the OIDC sign-in ``/me/verify`` offers, or None (then the enrollment code of the
    embedded demo provider is the only way, and the page says so)."""
    from .citizens import citizens_for

    provider = citizens_for(platform).providers.get(METHOD)
    return provider.display_name if isinstance(provider, OidcIdentityProvider) else None
