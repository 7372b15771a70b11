"""A tiny but real OpenID Connect provider for the tests: a threading ``http.server`` on 127.0.0.1.

It serves discovery, a JWKS with an RSA and an EC (P-256) key generated with ``cryptography``, ``/authorize``
(which signs the configured test user in at once and redirects back with a one-time code) and ``/token``
(which checks the client's Basic authentication, the code, the PKCE verifier against the S256 challenge and
the redirect URI, then returns an ID token it signs). Written independently of ``qorgau.consent.oidc`` so the
two check each other.

Knobs a test turns to make the IdP misbehave: ``alg`` / ``kid`` of the next tokens, ``claim_overrides``
(e.g. a wrong ``nonce`` or ``aud``, an ``exp`` in the past), ``header_overrides`` (``alg=none``),
``corrupt_signature``, ``unsigned`` (no signature at all), ``authorize_error`` (the user cancels),
``rotate_rsa()`` (a new key under a new kid), and ``stop()`` (the IdP is down).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

_DELETE = object()  # a claim_overrides value that removes the claim


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(value: int, length: int | None = None) -> bytes:
    return value.to_bytes(length or (value.bit_length() + 7) // 8, "big")


@dataclass
class User:
    sub: str
    claims: dict[str, Any] = field(default_factory=dict)


class TestIdP:
    """One IdP, one registered client (``client_id`` / ``client_secret``), one signed-in ``user`` at a time."""

    __test__ = False  # not a test class, despite its name

    def __init__(self, *, client_id: str = "qorgau-portal", client_secret: str | None = None) -> None:
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_kid = "rsa-1"
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.ec_kid = "ec-1"
        self.user = User("citizen-sub-1")
        self.alg = "RS256"
        self.kid: str | None = None            # None: the kid of the alg's key
        self.claim_overrides: dict[str, Any] = {}
        self.header_overrides: dict[str, Any] = {}
        self.corrupt_signature = False
        self.unsigned = False
        self.authorize_error: str | None = None
        self.token_status: int | None = None   # force the token endpoint to answer this status
        self.codes: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.token_requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> "TestIdP":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Shut the server down and close its socket: the IdP is now unreachable."""
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

    def count(self, path: str) -> int:
        return sum(1 for _m, p in self.requests if p == path)

    # -- keys ------------------------------------------------------------------------------------

    def rotate_rsa(self) -> None:
        """A new RSA key under a new kid; the old one is no longer published."""
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_kid = f"rsa-{secrets.token_hex(4)}"

    def jwks(self) -> dict[str, Any]:
        rsa_numbers = self.rsa_key.public_key().public_numbers()
        ec_numbers = self.ec_key.public_key().public_numbers()
        return {"keys": [
            {"kty": "RSA", "kid": self.rsa_kid, "use": "sig", "alg": "RS256",
             "n": b64url(_int_bytes(rsa_numbers.n)), "e": b64url(_int_bytes(rsa_numbers.e))},
            {"kty": "EC", "kid": self.ec_kid, "use": "sig", "alg": "ES256", "crv": "P-256",
             "x": b64url(_int_bytes(ec_numbers.x, 32)), "y": b64url(_int_bytes(ec_numbers.y, 32))},
            # A symmetric key must never be used to check a token (HS256 confusion): publish one anyway.
            {"kty": "oct", "kid": "hmac-1", "k": b64url(b"not-a-verification-key-0123456789")},
        ]}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        }

    # -- tokens ----------------------------------------------------------------------------------

    def sign(self, claims: dict[str, Any]) -> str:
        alg = self.alg
        header: dict[str, Any] = {"alg": alg, "typ": "JWT",
                                  "kid": self.kid or (self.rsa_kid if alg == "RS256" else self.ec_kid)}
        header.update(self.header_overrides)
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        if self.unsigned:
            return signing_input + "."
        if alg == "ES256":
            r, s = decode_dss_signature(self.ec_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
            signature = _int_bytes(r, 32) + _int_bytes(s, 32)
        else:
            signature = self.rsa_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        if self.corrupt_signature:
            signature = bytes([signature[0] ^ 0x01]) + signature[1:]
        return f"{signing_input}.{b64url(signature)}"

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "sub": self.user.sub, "aud": self.client_id,
                                  "iat": now, "exp": now + 300, "nonce": nonce, **self.user.claims}
        for name, value in self.claim_overrides.items():
            if value is _DELETE:
                claims.pop(name, None)
            else:
                claims[name] = value
        return self.sign(claims)

    # -- HTTP ------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Connection", "close")  # no keep-alive: after stop() nothing answers
                self.close_connection = True
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                idp.requests.append(("GET", url.path))
                if url.path == "/.well-known/openid-configuration":
                    self._send(200, idp.discovery())
                elif url.path == "/jwks":
                    self._send(200, idp.jwks())
                elif url.path == "/authorize":
                    self._authorize({k: v[0] for k, v in parse_qs(url.query).items()})
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                idp.requests.append(("POST", url.path))
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if url.path == "/token":
                    self._token(form)
                else:
                    self._send(404, {"error": "not_found"})

            def _authorize(self, q: dict[str, str]) -> None:
                redirect_uri = q.get("redirect_uri", "")
                if q.get("client_id") != idp.client_id or not redirect_uri:
                    self._send(400, {"error": "invalid_request"})  # never redirect to an unknown client
                    return
                back: dict[str, str] = {"state": q.get("state", "")}
                if idp.authorize_error:
                    back["error"] = idp.authorize_error
                elif (q.get("response_type") != "code" or "openid" not in q.get("scope", "").split()
                      or q.get("code_challenge_method") != "S256" or not q.get("code_challenge")
                      or not q.get("nonce")):
                    back["error"] = "invalid_request"
                else:
                    code = secrets.token_urlsafe(24)
                    with idp.lock:
                        idp.codes[code] = {"redirect_uri": redirect_uri, "nonce": q["nonce"],
                                           "challenge": q["code_challenge"], "expires": time.time() + 60}
                    back["code"] = code
                self._send(302, None, {"Location": redirect_uri + "?" + urlencode(back)})

            def _client_ok(self) -> bool:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return False
                try:
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                except ValueError:
                    return False
                return unquote_plus(user) == idp.client_id and unquote_plus(password) == idp.client_secret

            def _token(self, form: dict[str, str]) -> None:
                idp.token_requests.append({k: v for k, v in form.items() if k != "code_verifier"}
                                          | {"has_verifier": "code_verifier" in form,
                                             "basic": self.headers.get("Authorization", "").startswith("Basic ")})
                if idp.token_status is not None:
                    self._send(idp.token_status, {"error": "server_error"})
                    return
                if not self._client_ok():
                    self._send(401, {"error": "invalid_client"}, {"WWW-Authenticate": "Basic"})
                    return
                with idp.lock:
                    grant = idp.codes.pop(form.get("code", ""), None)  # one use only
                verifier = form.get("code_verifier", "")
                if (form.get("grant_type") != "authorization_code" or grant is None
                        or grant["expires"] < time.time() or grant["redirect_uri"] != form.get("redirect_uri")
                        or b64url(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]):
                    self._send(400, {"error": "invalid_grant"})
                    return
                self._send(200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer",
                                 "expires_in": 300, "id_token": idp.id_token(grant["nonce"])})

        return Handler
