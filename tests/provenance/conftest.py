"""Fixtures of the label tests: an operator with a registered generative AI system (so it has a register
number, which every label names), made through the real AI register service."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

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
