"""Vault fixtures: the platform's vault and principals with each role, built through the services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qorgau.core.auth import Principal
from qorgau.core.platform import Platform
from qorgau.vault.service import Vault, vault_for

IIN = "791028302728"
IIN_2 = "061211600012"
PHONE = "8 (701) 234-56-78"
PHONE_E164 = "+77012345678"
EMAIL = "Aigerim.Seitkali@Gov.KZ"
NAME = "Жаксылыков Ерлан Болатұлы"


def principal(org_id: int, *roles: str, user_id: int = 1) -> Principal:
    return Principal(kind="user", id=user_id, organization_id=org_id, roles=frozenset(roles))


@pytest.fixture
def vault(platform: Platform) -> Iterator[Vault]:
    yield vault_for(platform)
