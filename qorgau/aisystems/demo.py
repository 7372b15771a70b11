"""AI systems register demo data for the DEMO organization (``qorgau init --demo`` / ``make run``).

Registered through :class:`~qorgau.aisystems.register.AiRegister` with realistic questionnaires and classified
by the real rule packs, once (nothing happens when the demo chatbot exists already or there is no demo
organization). Runs after the oversight demo: its ``demo-scoring`` system (declared by oversight) gets its
questionnaire here, so the rules classify it.

* ``demo-scoring`` — credit scoring: decisions with legal effect about people, a human makes the final choice;
* ``demo-callcentre-emotions`` — a call centre's emotion recognition without the callers' consent: a
  prohibited practice (L-AI-PROHIBITED), so the system is suspended and oversight refuses its decisions;
* ``demo-chatbot`` — a customer-service chatbot writing synthetic text (labelling duties, L-AI-LABEL), public;
* ``demo-egov-routing`` — a state e-resource's application routing, public as every state system is;
* ``demo-antifraud`` — an anti-fraud model whose questionnaire is half-filled: the register lists the facts
  missing to decide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..core import auth
from ..core.demo import DEMO_BIN
from .models import AiSystem
from .register import register_for

if TYPE_CHECKING:
    from ..core.platform import Platform

ACTOR = "system:demo"


def _base(**overrides: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "system.sector": "finance", "system.state_system": False, "system.owner_name": "DEMO Qorgau Demo Bank",
        "system.possessor_name": "DEMO Qorgau Demo Bank", "system.stage": "production",
        "users.affected": "1k-100k", "users.vulnerable_groups": ["none"],
        "inputs.personal_data": True, "inputs.biometric": False, "inputs.special_categories": False,
        "functions.decisions_about_people": False, "functions.legal_effect": False,
        "functions.synthetic_content": False, "functions.imitates_real_person": False,
        "functions.emotion_recognition": False, "functions.biometric_identification": False,
        "functions.biometric_categorization": False, "functions.protected_characteristics": False,
        "functions.social_scoring": False, "functions.subliminal_manipulation": False,
        "functions.exploits_vulnerabilities": False, "functions.prohibited_content": False,
        "functions.interacts_with_people": False,
        "deployment.public_places": False, "deployment.realtime": False, "deployment.critical_ict": False,
        "deployment.state_eresources": False, "deployment.data_in_kz": True, "deployment.cross_border": False,
        "failure.impact": "minimal", "oversight.human_final_choice": True, "oversight.human_can_correct": True,
        "legal.allowed_by_law": [], "legal.emotion_recognition_consent": False, "legal.biometric_consent": False,
        "legal.automated_processing_consent": False,
        "training.provenance_documented": True, "training.personal_data": False, "training.lawful_basis": True,
        "audit.completed": False, "audit.covers_training_data": False,
    }
    facts.update(overrides)
    return facts


DEMO_SYSTEMS: tuple[tuple[str, str, str, dict[str, Any], bool], ...] = (
    ("demo-scoring", "DEMO — credit scoring model",
     "DEMO: proposes credit limits and loan decisions; a reviewer approves each before it takes effect.",
     _base(**{"system.purpose": "Scores retail loan applications and proposes a credit limit.",
              "system.model_versions": "demo-scoring 2.3.1 (gradient boosting)",
              "users.vulnerable_groups": ["low_income"], "functions.decisions_about_people": True,
              "functions.legal_effect": True, "failure.impact": "material_damage",
              "legal.automated_processing_consent": True, "training.personal_data": True}), False),
    ("demo-callcentre-emotions", "DEMO — call-centre emotion detector",
     "DEMO: flags angry callers from their voice to route them to senior staff.",
     _base(**{"system.sector": "telecom", "system.purpose": "Detects callers' emotions from voice in real time.",
              "system.model_versions": "demo-voice-emotion 0.9", "users.affected": ">100k",
              "functions.emotion_recognition": True, "functions.interacts_with_people": True,
              "deployment.realtime": True, "failure.impact": "moral_harm",
              "training.personal_data": True}), False),
    ("demo-chatbot", "DEMO — customer-service chatbot",
     "DEMO: answers customers' questions about cards and transfers in Kazakh, Russian and English.",
     _base(**{"system.sector": "finance", "system.purpose": "Answers customers' questions in chat.",
              "system.model_versions": "demo-llm 7B (fine-tuned)", "users.affected": ">100k",
              "functions.synthetic_content": True, "functions.interacts_with_people": True,
              "oversight.human_final_choice": False}), True),
    ("demo-image-generator", "DEMO — marketing image generator",
     "DEMO: generates product pictures for the bank's campaigns; every picture is labeled as AI-generated.",
     _base(**{"system.sector": "finance", "system.purpose": "Generates pictures for advertising campaigns.",
              "system.model_versions": "demo-diffusion 1.2", "users.affected": ">100k",
              "inputs.personal_data": False, "functions.synthetic_content": True}), False),
    ("demo-egov-routing", "DEMO — e-government application routing",
     "DEMO: routes citizens' applications on a state e-resource to the responsible department.",
     _base(**{"system.sector": "public_administration", "system.state_system": True,
              "system.purpose": "Routes citizens' applications to the responsible department.",
              "system.owner_name": "DEMO Ministry", "system.possessor_name": "DEMO State Technical Service",
              "users.affected": ">100k", "users.vulnerable_groups": ["elderly", "disabled"],
              "functions.decisions_about_people": True, "deployment.state_eresources": True,
              "failure.impact": "reduced_effectiveness"}), False),
    ("demo-antifraud", "DEMO — card anti-fraud model",
     "DEMO: blocks suspicious card payments; its questionnaire is not finished yet.",
     {"system.sector": "finance", "system.purpose": "Scores card payments for fraud in real time.",
      "system.state_system": False, "system.owner_name": "DEMO Qorgau Demo Bank",
      "functions.decisions_about_people": True, "deployment.realtime": True}, False),
)


def seed_aisystems_demo(platform: Platform) -> bool:
    """Seed the register demo at the DEMO organization; False if there is none or it was seeded before."""
    with platform.db.reader() as session:
        org = auth.find_organization_by_bin(session, DEMO_BIN)
        if org is None:
            return False
        org_id = org.id
    register = register_for(platform)
    with platform.db.transaction(org_id) as session:
        if session.scalar(select(AiSystem.id).where(AiSystem.code == "demo-chatbot")) is not None:
            return False
        for code, name, description, facts, public in DEMO_SYSTEMS:
            register.register_system(session, code=code, name=name, description=description, facts=facts,
                                     public=public, actor=ACTOR)
    return True


__all__ = ["DEMO_SYSTEMS", "seed_aisystems_demo"]
