"""Signed consent and withdrawal receipts (Ed25519), verifiable offline.

A receipt is a JSON document::

    {"receipt": {...body...},
     "signature": {"algorithm": "Ed25519", "key_id": "dk-consent-receipts-v1", "public_key": "<hex>",
                   "value": "<hex>"}}

The signature covers ``b"qorgau-consent-receipt/v1\\n"`` + the canonical JSON of the body (keys sorted, no
spaces, UTF-8: :func:`qorgau.core.audit.canonical_json`). The body follows ISO/IEC TS 27560 and the Kantara
Consent Receipt where they fit (``version``, ``jurisdiction`` "KZ", ``consentTimestamp``,
``collectionMethod``, ``consentReceiptID``, ``piiPrincipalId``, ``piiControllers``, ``services`` /
``purposes`` / ``piiCategory``, ``sensitive``, ``spiCat``) plus the fields Kazakhstan's law asks for
(Art.8 p.4). It holds no personal data: the subject is their pseudonym, the operator its BIN and name.
Pin the public key (``GET /api/v1/consent/receipt-key``) to rule out a forger who signs with a key of their
own; :func:`verify_receipt` (and ``qorgau consent receipt verify FILE``) needs nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy.orm import Session

from ..core.audit import canonical_json
from ..core.errors import InvalidInput

CONSENT_RECEIPT_TYPE = "qorgau.consent.receipt/v1"
WITHDRAWAL_RECEIPT_TYPE = "qorgau.consent.withdrawal-receipt/v1"
RECEIPT_TYPES = (CONSENT_RECEIPT_TYPE, WITHDRAWAL_RECEIPT_TYPE)
SIGNING_CONTEXT = b"qorgau-consent-receipt/v1\n"
SIGNING_KEY_ID = "dk-consent-receipts-v1"
SIGNING_KEY_PURPOSE = "consent-receipt-signing"
MAX_DOCUMENT_BYTES = 256 * 1024

_CACHE_ATTRIBUTE = "_qorgau_consent_receipt_key"


def signing_key(session: Session, keyring: Any) -> Ed25519PrivateKey:
    """The platform's receipt signing key: a data key in the key ring (wrapped by the master key), unwrapped
    once and kept on that key ring object (never in a global: two platforms in one process never mix)."""
    key = keyring.__dict__.get(_CACHE_ATTRIBUTE)
    if key is None:
        key = Ed25519PrivateKey.from_private_bytes(keyring.get_or_create(session, SIGNING_KEY_ID, SIGNING_KEY_PURPOSE))
        keyring.__dict__[_CACHE_ATTRIBUTE] = key
    return key


def public_key_hex(session: Session, keyring: Any) -> str:
    return signing_key(session, keyring).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def sign(body: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """The signed document for ``body`` (a dict; ``text_of`` gives its exact JSON text)."""
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    signature = key.sign(SIGNING_CONTEXT + canonical_json(body)).hex()
    return {"receipt": body, "signature": {"algorithm": "Ed25519", "key_id": SIGNING_KEY_ID,
                                           "public_key": public, "value": signature}}


def text_of(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


@dataclass
class ReceiptVerification:
    """Each check with its outcome; ``valid`` only if every check passed."""

    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    receipt_id: str | None = None
    receipt_type: str | None = None

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append((name, ok, detail))

    @property
    def valid(self) -> bool:
        return bool(self.checks) and all(ok for _, ok, _ in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "receipt_id": self.receipt_id, "type": self.receipt_type,
                "checks": [{"check": n, "ok": ok, "detail": d} for n, ok, d in self.checks]}


def parse(text: str | bytes | dict[str, Any]) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    if isinstance(text, bytes):
        if len(text) > MAX_DOCUMENT_BYTES:
            raise InvalidInput("the receipt is too large", field="receipt")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("the receipt is not UTF-8 text", field="receipt") from None
    if len(text) > MAX_DOCUMENT_BYTES:
        raise InvalidInput("the receipt is too large", field="receipt")
    try:
        doc = json.loads(text)
    except ValueError:
        raise InvalidInput("the receipt is not valid JSON", field="receipt") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("receipt"), dict) or not isinstance(doc.get("signature"), dict):
        raise InvalidInput("a receipt has a 'receipt' object and a 'signature' object", field="receipt")
    return doc


def verify_receipt(document: str | bytes | dict[str, Any], *, public_key: str | None = None) -> ReceiptVerification:
    """Check a receipt offline: its shape, its type, and its Ed25519 signature (against ``public_key`` when
    pinned, else against the key it names — which proves integrity, not who signed)."""
    result = ReceiptVerification()
    try:
        doc = parse(document)
    except InvalidInput as exc:
        result.add("format", False, exc.message)
        return result
    body, sig = doc["receipt"], doc["signature"]
    result.receipt_id = body.get("withdrawalReceiptID") or body.get("consentReceiptID")
    result.receipt_type = body.get("type")
    result.add("format", body.get("type") in RECEIPT_TYPES, f"type {body.get('type')!r}")
    named = sig.get("public_key")
    if public_key is not None:
        same = isinstance(named, str) and named.lower() == public_key.lower()
        result.add("pinned key", same, "the receipt names the pinned public key" if same
                   else "the receipt names another public key than the pinned one")
    key_hex = public_key or named
    ok = False
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(str(key_hex)))
        key.verify(bytes.fromhex(str(sig.get("value"))), SIGNING_CONTEXT + canonical_json(body))
        ok = sig.get("algorithm") == "Ed25519"
    except (InvalidSignature, ValueError, TypeError):
        ok = False
    result.add("signature", ok, "Ed25519 signature over the receipt is valid" if ok
               else "the signature does not match the receipt (altered, or signed by another key)")
    return result
