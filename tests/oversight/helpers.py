"""Helpers of the oversight tests: AI systems, consents, submissions and reviewers, all through the services."""

from __future__ import annotations

from typing import Any

from qorgau.consent.service import SubjectRef, consent_for
from qorgau.core import auth
from qorgau.core.auth import User
from qorgau.core.platform import Platform
from qorgau.oversight.service import Factor, OversightService, Submission, SubmitResult

from consent.owned import subject_iin


def iin(serial: int) -> str:
    return subject_iin(serial)


def subject(serial: int) -> SubjectRef:
    return SubjectRef(identifier_type="KZ_IIN", identifier=subject_iin(serial))


def system(service: OversightService, platform: Platform, org: int, code: str = "scoring", *,
           risk_class: str = "medium", autonomy: str = "low", webhook_url: str | None = "http://127.0.0.1:9/hook") -> str | None:
    """Register an AI system; returns its webhook secret."""
    with platform.db.transaction(org) as s:
        _view, secret = service.register_system(s, code=code, name=f"System {code}", risk_class=risk_class,
                                                autonomy=autonomy, webhook_url=webhook_url, actor="user:1")
    return secret


def consent(platform: Platform, org: int, serial: int, purpose: str = "credit.scoring") -> int:
    """An active consent of subject ``serial`` for ``purpose`` (so automated processing is allowed)."""
    fields: dict[str, Any] = dict(data_categories=["KZ_IIN"], valid_until=None, third_party_transfer=False,
                                  counterparties=[], cross_border=False, countries=[], public_sources=False,
                                  other=None, channel="written", evidence_ref=None, evidence_sha256=None,
                                  actor="user:1")
    with platform.db.transaction(org) as s:
        return consent_for(platform).give(s, subject(serial), purpose=purpose, **fields).id


FACTORS = (Factor("income", 0.6, "Monthly income", 450000), Factor("debt_ratio", -0.3, "Debt to income"),
           Factor("history", 0.1))


def submission(key: str, serial: int = 1, **overrides: Any) -> Submission:
    fields: dict[str, Any] = dict(system="scoring", idempotency_key=key, subject=subject(serial),
                                  decision_type="loan", proposed_outcome="approve", factors=list(FACTORS),
                                  model_version="scoring-2.3", confidence=0.91, input_ref="s3://inputs/7f3a")
    fields.update(overrides)
    return Submission(**fields)


def submit(service: OversightService, platform: Platform, org: int, key: str, serial: int = 1,
           **overrides: Any) -> SubmitResult:
    with platform.db.transaction(org) as s:
        return service.submit(s, submission(key, serial, **overrides), actor="apikey:1")


def user(platform: Platform, org: int, user_id: int) -> User:
    with platform.db.reader(org) as s:
        return auth.get_user(s, user_id)


def new_user(platform: Platform, org: int, username: str, roles: list[str]) -> User:
    with platform.db.transaction() as s:
        created, _ = auth.create_user(s, organization_id=org, username=username, display_name=username,
                                      roles=roles, actor="test", password=f"{username}-password-1")
        return created


def review(service: OversightService, platform: Platform, org: int, decision_id: int, who: User, action: str,
           *, version: int | None = None, open_first: bool = True, **kwargs: Any) -> Any:
    if open_first:
        with platform.db.transaction(org) as s:
            seen = service.open(s, decision_id, user=who)
    else:
        with platform.db.reader(org) as s:
            seen = service.get(s, decision_id)
    with platform.db.transaction(org) as s:
        return service.review(s, decision_id, user=who, action=action,
                              expected_version=seen.version if version is None else version, **kwargs)
