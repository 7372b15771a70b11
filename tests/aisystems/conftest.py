"""Fixtures of the AI systems register tests: questionnaires (every fact of the real catalogue answered),
systems registered through the service, and a temporary copy of the real rule packs for pack-change tests.

The rule packs are the product: the tests classify with the real ``qorgau/rules/packs`` and ``facts.yaml``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qorgau.aisystems.register import AiRegister, register_for
from qorgau.core.platform import Platform
from qorgau.rules import reload_rulebook, rulebook

PACKS_DIR = Path(__file__).resolve().parents[2] / "qorgau" / "rules" / "packs"


def credit_scoring(**overrides: Any) -> dict[str, Any]:
    """A bank's credit-scoring model: decisions about people with legal effect, a human makes the final
    choice, personal data inside, no prohibited practice. Every fact of the catalogue is answered."""
    facts: dict[str, Any] = {
        "system.sector": "finance", "system.purpose": "Scores retail loan applications and proposes a limit.",
        "system.state_system": False, "system.owner_name": "Alpha Bank JSC",
        "system.possessor_name": "Alpha Bank JSC", "system.model_versions": "gbm-scoring 2.3", "system.stage": "production",
        "users.affected": "1k-100k", "users.vulnerable_groups": ["low_income"],
        "inputs.personal_data": True, "inputs.biometric": False, "inputs.special_categories": False,
        "functions.decisions_about_people": True, "functions.legal_effect": True,
        "functions.synthetic_content": False, "functions.imitates_real_person": False,
        "functions.emotion_recognition": False, "functions.biometric_identification": False,
        "functions.biometric_categorization": False, "functions.protected_characteristics": False,
        "functions.social_scoring": False, "functions.subliminal_manipulation": False,
        "functions.exploits_vulnerabilities": False, "functions.prohibited_content": False,
        "functions.interacts_with_people": False,
        "deployment.public_places": False, "deployment.realtime": False, "deployment.critical_ict": False,
        "deployment.state_eresources": False, "deployment.data_in_kz": True, "deployment.cross_border": False,
        "failure.impact": "material_damage",
        "oversight.human_final_choice": True, "oversight.human_can_correct": True,
        "legal.allowed_by_law": [], "legal.emotion_recognition_consent": False, "legal.biometric_consent": False,
        "legal.automated_processing_consent": True,
        "training.provenance_documented": True, "training.personal_data": True, "training.lawful_basis": True,
        "audit.completed": False, "audit.covers_training_data": False,
    }
    facts.update(overrides)
    return facts


def emotion_detector(**overrides: Any) -> dict[str, Any]:
    """A call centre's emotion recognition without the callers' consent and without a law allowing it
    (L-AI-PROHIBITED)."""
    return credit_scoring(**{
        "system.sector": "telecom", "system.purpose": "Detects callers' emotions to route angry customers.",
        "system.owner_name": "Alpha Telecom LLP", "system.possessor_name": "Alpha Telecom LLP",
        "users.affected": ">100k", "users.vulnerable_groups": ["none"],
        "functions.decisions_about_people": False, "functions.legal_effect": False,
        "functions.emotion_recognition": True, "functions.interacts_with_people": True,
        "deployment.realtime": True, "failure.impact": "moral_harm", "legal.emotion_recognition_consent": False,
        "legal.automated_processing_consent": False, **overrides})


def chatbot(**overrides: Any) -> dict[str, Any]:
    """A customer-service chatbot that writes answers (synthetic text) and talks to people."""
    return credit_scoring(**{
        "system.sector": "retail", "system.purpose": "Answers customers' questions about orders.",
        "users.affected": ">100k", "users.vulnerable_groups": ["none"],
        "functions.decisions_about_people": False, "functions.legal_effect": False,
        "functions.synthetic_content": True, "functions.interacts_with_people": True,
        "failure.impact": "minimal", "oversight.human_final_choice": False, **overrides})


def state_eresource(**overrides: Any) -> dict[str, Any]:
    """A state body's system on a state e-resource (public by default)."""
    return credit_scoring(**{
        "system.sector": "public_administration", "system.state_system": True,
        "system.purpose": "Routes citizens' applications to the responsible department.",
        "system.owner_name": "Ministry of Digital Development", "system.possessor_name": "State Technical Service",
        "users.affected": ">100k", "users.vulnerable_groups": ["elderly", "disabled"],
        "functions.legal_effect": False, "deployment.state_eresources": True,
        "failure.impact": "reduced_effectiveness", **overrides})


@pytest.fixture
def register(platform: Platform) -> AiRegister:
    return register_for(platform)


def register_system(platform: Platform, org: int, code: str, facts: dict[str, Any], **kwargs: Any) -> Any:
    with platform.db.transaction(org) as s:
        return register_for(platform).register_system(s, code=code, name=f"System {code}", facts=facts,
                                                      actor="user:1", **kwargs)


@pytest.fixture
def packs_copy(tmp_path: Path) -> Iterator[Path]:
    """A temporary copy of the real packs, made the current rule book (the real one is back afterwards)."""
    target = tmp_path / "packs"
    shutil.copytree(PACKS_DIR, target)
    reload_rulebook([target])
    yield target
    reload_rulebook()


@pytest.fixture(autouse=True)
def _real_rulebook() -> Iterator[None]:
    """Every test ends with the real packs current (a test that swaps them cannot leak into the next)."""
    digest = rulebook().digest
    yield
    if rulebook().digest != digest:
        reload_rulebook()
