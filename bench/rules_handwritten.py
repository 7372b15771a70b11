"""The AI-law pack (qorgau/rules/packs/kz/ai-law.yaml) written by hand as plain Python if-statements.

The baseline of bench/rules.py: what the rule engine's classification would cost if a programmer hard-coded the
law instead. It reads the same nested facts and returns the same risk level, autonomy level, prohibited practices,
autonomy violation, obligation and notice codes as ``RuleBook.evaluate`` does with the packs' law profile, for
facts where every question is answered (the bench first checks that both agree on every casebook system).
It knows nothing about missing facts, citations or texts; keep it in step with ai-law.yaml when that changes.
"""

from __future__ import annotations

from datetime import date
from typing import Any

AI_LAW = date(2026, 1, 18)          # Law No. 230-VIII in force (and DC, CoAO 641-1, PD law Art. 7 as modelled)
PD_AUTO = date(2026, 1, 1)          # PD law Art. 19-1 (L-PD-AUTO)
PD_LOCAL = date(2016, 1, 1)         # PD law Art. 12 p. 2
PD_LAW = date(2013, 11, 25)         # PD law Art. 16

HIGH_IMPACT = frozenset({"social_emergency", "manmade_emergency", "defence", "security", "economy", "infrastructure"})
MEDIUM_IMPACT = frozenset({"reduced_effectiveness", "moral_harm", "material_damage"})
VULNERABLE = frozenset({"children", "elderly", "disabled", "low_income"})


def classify_ai_system(facts: dict[str, Any], as_of: date) -> dict[str, Any]:
    system = facts["system"]
    users = facts["users"]
    inputs = facts["inputs"]
    fn = facts["functions"]
    dep = facts["deployment"]
    impact = facts["failure"]["impact"]
    ov = facts["oversight"]
    legal = facts["legal"]
    allowed = legal["allowed_by_law"]
    training = facts["training"]
    audit = facts["audit"]

    prohibitions: set[str] = set()
    obligations: set[str] = set()
    notices: set[str] = set()
    risk = None                     # no risk class before the AI law (Evaluation.law_in_force false)
    autonomy = None
    violation = False
    ai_law = as_of >= AI_LAW
    high = impact in HIGH_IMPACT
    fully_automated = not ov["human_final_choice"]

    if ai_law:
        # risk (Art. 17 p. 1) and autonomy (Art. 17 p. 2)
        risk = "minimal"
        if high:
            risk = "high"
        elif impact in MEDIUM_IMPACT:
            risk = "medium"
        if ov["human_final_choice"]:
            autonomy = "low"
        elif ov["human_can_correct"]:
            autonomy = "medium"
        else:
            autonomy = "high"
            violation = "high_autonomy" not in allowed

        # prohibited functionality
        if fn["subliminal_manipulation"]:
            prohibitions.add("subliminal_manipulation")
        if fn["exploits_vulnerabilities"]:
            prohibitions.add("exploiting_vulnerabilities")
        if fn["social_scoring"]:
            prohibitions.add("social_scoring")
        if fn["protected_characteristics"]:
            prohibitions.add("discrimination")
        if fn["biometric_categorization"]:
            prohibitions.add("biometric_categorization")
        if (fn["emotion_recognition"] and not legal["emotion_recognition_consent"]
                and "emotion_recognition" not in allowed):
            prohibitions.add("emotion_recognition")
        if training["personal_data"] and not training["lawful_basis"]:
            prohibitions.add("unlawful_personal_data")
        if fn["prohibited_content"]:
            prohibitions.add("prohibited_content")
        if fn["biometric_identification"] and dep["public_places"] and "biometric_public_order" not in allowed:
            if dep["realtime"]:
                prohibitions.add("realtime_remote_biometric_identification")
            if not legal["biometric_consent"]:
                prohibitions.add("biometric_identification_public_places")

        # labeling and informing
        if fn["interacts_with_people"] or fn["synthetic_content"]:
            obligations.add("inform_ai_use")
        if fn["synthetic_content"]:
            obligations.add("label_machine_readable")
            obligations.add("label_visible_warning")
            if fn["imitates_real_person"]:
                notices.add("synthetic_result")
                notices.add("fine_misleading_synthetic")

        # users' rights and automated decisions
        if fn["interacts_with_people"]:
            obligations.add("user_agreement")
            obligations.add("allow_refusal")
            if VULNERABLE.intersection(users["vulnerable_groups"]):
                obligations.add("vulnerable_users_safeguards")
        if fn["decisions_about_people"]:
            obligations.add("provide_decision_data")
            if fn["legal_effect"]:
                obligations.add("explain_results")
            if fully_automated:
                obligations.add("key_factors")
                if fn["legal_effect"]:
                    obligations.add("human_review_on_request")

        # high risk
        if high:
            obligations.add("risk_management")
            obligations.add("audit_training_data")
            notices.add("fine_high_risk_harm")
            if not training["provenance_documented"]:
                obligations.add("document_training_data")
            if dep["critical_ict"] or dep["state_eresources"]:
                obligations.add("state_infosec_requirements")
            if audit["completed"]:
                notices.add("trusted_list_eligible" if audit["covers_training_data"] else "audit_scope_incomplete")

        # planned instruments (notices)
        if system["stage"] in ("research", "pilot"):
            notices.add("sandbox_available")
        if system["state_system"]:
            notices.add("digital_development_index")

    # PD law Art. 19-1 (from 2026-01-01)
    if (as_of >= PD_AUTO and fn["decisions_about_people"] and fn["legal_effect"] and fully_automated
            and inputs["personal_data"]):
        obligations.add("accept_objections")
        if "automated_decisions" not in allowed and not legal["automated_processing_consent"]:
            prohibitions.add("automated_decision_without_consent")

    # PD law localization and cross-border transfer
    if inputs["personal_data"]:
        if as_of >= PD_LOCAL and not dep["data_in_kz"]:
            obligations.add("pd_localization")
        if as_of >= PD_LAW and dep["cross_border"]:
            obligations.add("cross_border_basis")

    return {"risk_level": risk, "autonomy_level": autonomy, "prohibitions": prohibitions,
            "autonomy_violation": violation, "obligations": obligations, "notices": notices}
