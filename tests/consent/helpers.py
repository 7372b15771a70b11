"""Helpers of the consent tests: give, withdraw, register counterparties through the service API."""

from __future__ import annotations

from typing import Any

from qorgau.consent.service import ConsentService, SubjectRef
from qorgau.core.platform import Platform

from .owned import subject_iin


def iin_subject(serial: int) -> SubjectRef:
    return SubjectRef(identifier_type="KZ_IIN", identifier=subject_iin(serial))


def give(service: ConsentService, platform: Platform, org_id: int, subject: SubjectRef | None = None, *,
         purpose: str = "marketing.sms", **overrides: Any) -> Any:
    """Give a consent in its own transaction (committed) and return it."""
    fields: dict[str, Any] = dict(data_categories=["PHONE_NUMBER"], valid_until=None, third_party_transfer=False,
                                  counterparties=[], cross_border=False, countries=[], public_sources=False,
                                  other=None, channel="written", evidence_ref=None, evidence_sha256=None,
                                  actor="user:1")
    fields.update(overrides)
    with platform.db.transaction(org_id) as s:
        return service.give(s, subject or iin_subject(1), purpose=purpose, **fields)


def withdraw(service: ConsentService, platform: Platform, org_id: int, consent_id: int, **kwargs: Any) -> Any:
    kwargs.setdefault("channel", "written")
    kwargs.setdefault("actor", "user:1")
    with platform.db.transaction(org_id) as s:
        return service.withdraw(s, consent_id, **kwargs)


def processor(service: ConsentService, platform: Platform, org_id: int, *, name: str = "SMS Gateway",
              kind: str = "processor", url: str | None = "http://127.0.0.1:9/hook", serial: int = 501,
              country: str = "KZ", registration: str | None = None) -> Any:
    from qorgau.identifiers import synthetic_kz_number

    with platform.db.transaction(org_id) as s:
        return service.add_counterparty(
            s, name=name, kind=kind, bin=synthetic_kz_number("05014", serial) if country == "KZ" else None,
            foreign_registration=registration, country=country, webhook_url=url, actor="user:1")
