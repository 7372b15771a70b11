"""Erasure certificates: signed proof that a subject's key was destroyed (crypto-shredding).

A certificate is a JSON document::

    {"certificate": {...body...},
     "signature": {"algorithm": "Ed25519", "key_id": "...", "public_key": "<hex>", "value": "<hex>"}}

The signature covers ``b"qorgau-erasure-certificate/v1\\n" + canonical JSON of the body`` (keys sorted,
no spaces, UTF-8: :func:`qorgau.core.audit.canonical_json`). The body names the organization, the
subject's pseudonym(s), the time, the destroyed key's id and the audit entry that recorded the erasure,
together with that entry's exact leaf bytes, its details (so their digest can be recomputed), an RFC 6962
inclusion proof and the signed tree head the proof leads to. Everything needed to check it is inside,
so :func:`verify_certificate` (and ``qorgau vault verify-certificate FILE``) works offline; pin the two
public keys (``GET /api/v1/audit/public-key``, ``GET /api/v1/vault/certificate-key``) to rule out a
forger who signs with keys of their own. The procedure, step by step, is in ``docs/vault.md``.

The body holds no personal data: pseudonyms, ids, hashes and the reason (which the audit log's
personal-data guard has already accepted).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy.orm import Session

from ..core import merkle
from ..core.audit import canonical_json, sth_message
from ..core.errors import InvalidInput

CERTIFICATE_TYPE = "qorgau.vault.erasure-certificate/v1"
SIGNING_CONTEXT = b"qorgau-erasure-certificate/v1\n"
SIGNING_KEY_ID = "dk-vault-certificates-v1"
SIGNING_KEY_PURPOSE = "vault-certificate-signing"
MAX_DOCUMENT_BYTES = 256 * 1024


def signing_key(session: Session, keyring: Any) -> Ed25519PrivateKey:
    """The platform's certificate signing key (a data key in the key ring, wrapped by the master key)."""
    return Ed25519PrivateKey.from_private_bytes(keyring.get_or_create(session, SIGNING_KEY_ID, SIGNING_KEY_PURPOSE))


def public_key(session: Session, keyring: Any) -> bytes:
    return signing_key(session, keyring).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def signed_message(body: dict[str, Any]) -> bytes:
    return SIGNING_CONTEXT + canonical_json(body)


@dataclass(frozen=True)
class ErasureCertificate:
    """A signed erasure certificate. ``text`` is the exact JSON to hand out (it holds no personal data)."""

    certificate_id: str
    body: dict[str, Any]
    signature: dict[str, str]

    @property
    def document(self) -> dict[str, Any]:
        return {"certificate": self.body, "signature": self.signature}

    @property
    def text(self) -> str:
        return json.dumps(self.document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"

    @property
    def pseudonym(self) -> str:
        return self.body["pseudonym"]

    @property
    def erased_at(self) -> datetime:
        return datetime.fromisoformat(self.body["erased_at"])

    @property
    def audit_entry_id(self) -> int:
        return self.body["audit"]["entry_id"]

    def __repr__(self) -> str:
        return f"ErasureCertificate(id={self.certificate_id!r}, pseudonym={self.pseudonym!r})"


def sign(body: dict[str, Any], key: Ed25519PrivateKey) -> ErasureCertificate:
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signature = {"algorithm": "Ed25519", "key_id": SIGNING_KEY_ID, "public_key": public.hex(),
                 "value": key.sign(signed_message(body)).hex()}
    return ErasureCertificate(body["id"], body, signature)


def parse(text: str | bytes) -> ErasureCertificate:
    """Read a certificate document; a malformed one raises :class:`InvalidInput` naming the part."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise InvalidInput(f"certificate is larger than {MAX_DOCUMENT_BYTES} bytes", field="certificate")
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("certificate is not valid JSON", field="certificate") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("certificate"), dict) \
            or not isinstance(doc.get("signature"), dict):
        raise InvalidInput("certificate must be an object with 'certificate' and 'signature'", field="certificate")
    body, signature = doc["certificate"], doc["signature"]
    if body.get("type") != CERTIFICATE_TYPE or not isinstance(body.get("id"), str):
        raise InvalidInput(f"not a {CERTIFICATE_TYPE} document", field="certificate.type")
    return ErasureCertificate(body["id"], body, signature)


# --- verification --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class CertificateVerification:
    """Each check with its outcome; ``ok`` only when every one passed."""

    certificate_id: str | None
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok

    def to_dict(self) -> dict[str, Any]:
        return {"certificate_id": self.certificate_id, "ok": self.ok,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks]}


def _ed25519_ok(public_hex: str, signature_hex: str, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(bytes.fromhex(signature_hex), message)
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def verify_certificate(certificate: ErasureCertificate | str | bytes, *, certificate_public_key: str | None = None,
                       audit_public_key: str | None = None) -> CertificateVerification:
    """Check a certificate offline: its signature, the audit entry it cites and the entry's inclusion
    proof against the signed tree head. Pass the public keys you trust to pin them (hex)."""
    try:
        cert = certificate if isinstance(certificate, ErasureCertificate) else parse(certificate)
    except InvalidInput as exc:
        result = CertificateVerification(None)
        result.add("document", False, exc.message)
        return result
    result = CertificateVerification(cert.certificate_id)
    try:
        _verify_into(result, cert, certificate_public_key, audit_public_key)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        result.add("document", False, f"malformed certificate ({type(exc).__name__})")
    return result


def _verify_into(result: CertificateVerification, cert: ErasureCertificate, pinned_cert_key: str | None,
                 pinned_audit_key: str | None) -> None:
    body, sig = cert.body, cert.signature
    result.add("certificate signature", sig.get("algorithm") == "Ed25519"
               and _ed25519_ok(sig["public_key"], sig["value"], signed_message(body)),
               f"Ed25519 by {sig.get('key_id')}")
    if pinned_cert_key is not None:
        result.add("certificate key pinned", sig["public_key"].lower() == pinned_cert_key.strip().lower(),
                   "signed by the key you trust" if sig["public_key"].lower() == pinned_cert_key.strip().lower()
                   else "signed by another key than the one you trust")
    aud = body["audit"]
    leaf = bytes.fromhex(aud["leaf"])
    fields = json.loads(leaf)
    details_ok = hashlib.sha256(canonical_json(aud["details"])).hexdigest() == fields["digest"]
    result.add("audit details digest", details_ok, "details match the digest in the entry")
    entry_ok = (fields["id"] == aud["entry_id"] and fields["action"] == "vault.shred"
                and fields["type"] == "vault_subject" and fields["object"] == body["pseudonym"]
                and fields["org"] == body["organization_id"]
                and aud["details"].get("certificate_id") == cert.certificate_id
                and aud["details"].get("key_id") == body["key_id"])
    result.add("audit entry names this erasure", entry_ok,
               f"entry {aud['entry_id']}: vault.shred of {body['pseudonym']}, key {body['key_id']}")
    proof, head = aud["inclusion_proof"], aud["tree_head"]
    leaf_hash = merkle.leaf_hash(leaf)
    path = [bytes.fromhex(h) for h in proof["path"]]
    root = bytes.fromhex(head["root_hash"])
    included = (leaf_hash.hex() == proof["leaf_hash"] and proof["tree_size"] == head["tree_size"]
                and merkle.verify_inclusion(leaf_hash, aud["entry_id"], head["tree_size"], path, root))
    result.add("inclusion proof", included, f"entry {aud['entry_id']} in the tree of {head['tree_size']} entries")
    message = sth_message(head["tree_size"], root, datetime.fromisoformat(head["signed_at"]))
    result.add("tree head signature", _ed25519_ok(aud["tree_head_public_key"], head["signature"], message),
               f"Ed25519 by {head.get('key_id')}")
    if pinned_audit_key is not None:
        same = aud["tree_head_public_key"].lower() == pinned_audit_key.strip().lower()
        result.add("audit key pinned", same, "tree head signed by the key you trust" if same
                   else "tree head signed by another key than the one you trust")
