"""Vault objects owned by a tenant, made through the service, for the route walk (tests/api/test_route_walk.py)."""

from __future__ import annotations

from conftest import Tenant

from qorgau.core.platform import Platform
from qorgau.identifiers import synthetic_kz_number
from qorgau.vault.service import vault_for


def an_erasure_certificate_of(platform: Platform, tenant: Tenant) -> str:
    """Tokenize a fresh IIN for the tenant, shred it, and return the certificate id."""
    vault = vault_for(platform)
    with platform.db.transaction(tenant.org_id) as s:
        serial = vault.stats(s).subjects
        token = vault.tokenize(s, "KZ_IIN", synthetic_kz_number("9001013", serial + 7 * tenant.org_id), actor="test")
        return vault.shred(s, token.pseudonym, reason="route walk", actor="test").certificate_id
