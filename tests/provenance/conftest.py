"""Fixtures of the label tests: an operator with a registered generative AI system (so it has a register
number, which every label names), made through the real AI register service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from qorgau.aisystems.register import register_for
from qorgau.core.auth import Principal
from qorgau.core.platform import Platform
from tests.aisystems.conftest import credit_scoring
from tests.conftest import Tenant


def image_generator_facts() -> dict:
    """A marketplace's product-photo generator: synthetic pictures, no decisions about people."""
    return credit_scoring(**{
        "system.sector": "retail", "system.purpose": "Generates product photos for the catalogue.",
        "system.owner_name": "Alpha Market LLP", "system.possessor_name": "Alpha Market LLP",
        "functions.decisions_about_people": False, "functions.legal_effect": False,
        "functions.synthetic_content": True, "functions.interacts_with_people": False,
        "inputs.personal_data": False, "training.personal_data": False, "failure.impact": "minimal",
    })


@dataclass(frozen=True)
class GenAiSystem:
    code: str
    register_id: str
    name: str
    tenant: Tenant


def register_generator(platform: Platform, tenant: Tenant, code: str = "photo-gen") -> GenAiSystem:
    with platform.db.transaction(tenant.org_id) as s:
        record = register_for(platform).register_system(
            s, code=code, name="Product photo generator", facts=image_generator_facts(), actor="test")
    assert record.register_id
    return GenAiSystem(code, record.register_id, record.name, tenant)


def principal_of(tenant: Tenant, role: str = "dpo") -> Principal:
    user_id = tenant.users[role][0]
    return Principal(kind="user", id=user_id, organization_id=tenant.org_id, roles=frozenset({role}))


@pytest.fixture
def generator(platform: Platform, tenant_a: Tenant) -> GenAiSystem:
    return register_generator(platform, tenant_a)


def two_level_chain(password: bytes | None = None, bin_: str | None = None) -> tuple[x509.Certificate, bytes, bytes]:
    """(root, chain PEM leaf-first, key PEM) from a CA this platform doesn't know: what an operator gets from a
    real CA. ``bin_`` puts the operator's BIN in the subject (serialNumber, as Kazakh NCA certificates do)."""
    now = datetime.now(timezone.utc)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Qazaq Trust CA")])
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Org alpha"),
                                     *([x509.NameAttribute(NameOID.SERIAL_NUMBER, f"BIN{bin_}")] if bin_ else []),
                                     x509.NameAttribute(NameOID.COMMON_NAME, "Org alpha content signing")]))
            .issuer_name(root_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=300))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    pem = serialization.Encoding.PEM
    return root, leaf.public_bytes(pem) + root.public_bytes(pem), key_pem
