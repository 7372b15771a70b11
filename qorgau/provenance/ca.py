"""Signing credentials for labels: the installation's local test CA, operator certificates, imported chains.

C2PA validators (c2pa-rs among them) refuse a self-signed end-entity certificate, so the embedded default is a
**two-level chain**: a root "qorgau LOCAL TEST CA" created on first use, and one end-entity certificate per operator
issued by it, naming the operator and its BIN. It lets an installation label and verify end to end on day one;
it is *not* a public trust anchor, and every report that trusts it says ``local_test_ca``. In production an
operator imports a certificate from a real CA (:func:`load_imported`), and the regulator configures the trust
anchors (``labels_trust_anchors``).

What C2PA asks of the end-entity certificate (C2PA 2.x, "Certificate profile"), checked on import: not a CA,
``digitalSignature`` key usage, an extended key usage of e-mail protection, document signing or C2PA claim
signing, a key C2PA can sign with (EC P-256/384/521, RSA ≥ 2048 with PSS, Ed25519), and a chain whose
certificates are currently valid. Private keys never leave the process except sealed (``KeyRing``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from ..core.errors import InvalidInput

LOCAL_TEST_CA_NAME = "qorgau LOCAL TEST CA (not for production)"
C2PA_CLAIM_SIGNING = ObjectIdentifier("1.3.6.1.4.1.62558.2.1")
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
ACCEPTED_EKUS = {ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING, C2PA_CLAIM_SIGNING}
ROOT_YEARS = 10
LEAF_DAYS = 2 * 365


@dataclass(frozen=True)
class Credential:
    """A certificate chain (end entity first) with its private key. The key never appears in ``repr``."""

    chain: tuple[x509.Certificate, ...]
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey = field(repr=False)
    algorithm: str

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.leaf)

    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def key_der(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def describe(name: x509.Name) -> str:
    """A certificate name as people read it ("CN=…, O=…")."""
    return name.rfc4514_string({NameOID.SERIAL_NUMBER: "serialNumber"})


def _attr(name: x509.Name, oid: ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def common_name(cert: x509.Certificate) -> str | None:
    return _attr(cert.subject, NameOID.COMMON_NAME)


def organization(cert: x509.Certificate) -> str | None:
    return _attr(cert.subject, NameOID.ORGANIZATION_NAME)


def bin_of(cert: x509.Certificate) -> str | None:
    """The BIN a certificate names (``serialNumber`` = "BIN123456789012", as Kazakh NCA certificates do)."""
    value = _attr(cert.subject, NameOID.SERIAL_NUMBER)
    if value and value.upper().startswith("BIN") and value[3:].isdigit():
        return value[3:]
    return None


def _key_usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)


def new_root(now: datetime | None = None) -> Credential:
    """A fresh root for the local test CA (EC P-256, 10 years)."""
    now = now or datetime.now(timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "qorgau"),
                      x509.NameAttribute(NameOID.COMMON_NAME, LOCAL_TEST_CA_NAME)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=365 * ROOT_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(sign=False, ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return Credential((cert,), key, "ES256")


def issue_operator(root: Credential, *, operator_name: str, bin: str, now: datetime | None = None) -> Credential:
    """An end-entity certificate for one operator under the local test CA: O = the operator, serialNumber = BIN."""
    now = now or datetime.now(timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, operator_name[:64] or "operator"),
                      x509.NameAttribute(NameOID.SERIAL_NUMBER, f"BIN{bin}"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"AI content labels of BIN {bin} (LOCAL TEST)")])
    not_after = min(now + timedelta(days=LEAF_DAYS), root.leaf.not_valid_after_utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(root.leaf.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(sign=True, ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root.key.public_key()),  # type: ignore[arg-type]
                           critical=False)
            .sign(root.key, hashes.SHA256()))  # type: ignore[arg-type]
    return Credential((cert, root.leaf), key, "ES256")


def algorithm_for(key: object) -> str:
    """The C2PA signing algorithm for a private key, or InvalidInput when C2PA can't sign with it."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        by_curve = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        alg = by_curve.get(key.curve.name)
        if alg:
            return alg
        raise InvalidInput(f"EC curve {key.curve.name} can't sign C2PA manifests (use P-256, P-384 or P-521)",
                           field="key")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "Ed25519"
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise InvalidInput("RSA keys must have at least 2048 bits", field="key")
        return "PS256"
    raise InvalidInput("unsupported key type (use EC P-256/384/521, RSA ≥ 2048 or Ed25519)", field="key")


def load_imported(chain_pem: bytes, key_pem: bytes, password: bytes | None = None, *,
                  now: datetime | None = None) -> Credential:
    """Parse and check an operator's own certificate chain and key; every refusal names the field."""
    now = now or datetime.now(timezone.utc)
    try:
        chain = tuple(x509.load_pem_x509_certificates(chain_pem))
    except ValueError:
        raise InvalidInput("the certificate chain is not PEM certificates", field="chain") from None
    if not chain:
        raise InvalidInput("the certificate chain is empty", field="chain")
    try:
        key = serialization.load_pem_private_key(key_pem, password=password or None)
    except TypeError:
        raise InvalidInput("the private key is encrypted: give its password", field="password") from None
    except ValueError:
        raise InvalidInput("the private key is not a PEM private key, or the password is wrong", field="key") from None
    algorithm = algorithm_for(key)
    leaf = chain[0]
    public = key.public_key()  # type: ignore[union-attr]
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(*raw) != public.public_bytes(*raw):
        raise InvalidInput("the private key does not belong to the first certificate of the chain", field="key")
    if len(chain) == 1 and leaf.issuer == leaf.subject:
        raise InvalidInput("a self-signed certificate can't sign labels: C2PA validators reject it; give the chain "
                           "up to the issuing CA", field="chain")
    for position, cert in enumerate(chain):
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise InvalidInput(f"certificate {position + 1} of the chain is not valid now", field="chain")
    try:
        constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca:
            raise InvalidInput("the signing certificate is a CA certificate", field="chain")
    except x509.ExtensionNotFound:
        pass
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.digital_signature:
            raise InvalidInput("the signing certificate lacks the digitalSignature key usage", field="chain")
    except x509.ExtensionNotFound:
        raise InvalidInput("the signing certificate has no key usage extension", field="chain") from None
    try:
        ekus = set(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        raise InvalidInput("the signing certificate has no extended key usage (C2PA needs e-mail protection, "
                           "document signing or C2PA claim signing)", field="chain") from None
    if not ekus & ACCEPTED_EKUS:
        raise InvalidInput("the signing certificate's extended key usage doesn't allow C2PA signing", field="chain")
    for child, parent in zip(chain, chain[1:]):
        if child.issuer != parent.subject:
            raise InvalidInput("the chain is out of order: each certificate must be followed by its issuer",
                               field="chain")
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, Exception):
            raise InvalidInput("a certificate of the chain is not signed by the next one", field="chain") from None
    return Credential(chain, key, algorithm)  # type: ignore[arg-type]


def load_pem_chain(pem: bytes | str) -> tuple[x509.Certificate, ...]:
    return tuple(x509.load_pem_x509_certificates(pem.encode() if isinstance(pem, str) else pem))


def load_key_der(der: bytes) -> object:
    return serialization.load_der_private_key(der, password=None)
