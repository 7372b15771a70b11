"""Fixtures of the consent tests: the service of the test platform, a helper that gives a consent with
sensible defaults (through the service, like a user would), synthetic subjects."""

from __future__ import annotations

from collections.abc import Iterator
import pytest

from qorgau.consent.service import ConsentService, consent_for
from qorgau.core.platform import Platform


@pytest.fixture
def consents(platform: Platform) -> Iterator[ConsentService]:
    service = consent_for(platform)
    yield service
    service.close()
