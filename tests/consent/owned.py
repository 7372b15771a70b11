"""Objects of every consent kind owned by one tenant, made through the service API (for the route walk's
OWNED_BY and for tests that need "another organization's" consent objects)."""

from __future__ import annotations

from typing import Any

from qorgau.consent.service import SubjectRef, consent_for
from qorgau.core.platform import Platform
from qorgau.identifiers import synthetic_kz_number

_KEY = "_consent_test_objects"


def subject_iin(serial: int) -> str:
    """A checksum-valid synthetic IIN (born 1990-01-01, male) for test subjects."""
    return synthetic_kz_number("9001013", serial)


def consent_objects(platform: Platform, tenant: Any) -> dict[str, int]:
    """Counterparty, consent (withdrawn, with a transfer, a notification and an outbox message), a second
    consent, a legal basis and a transfer — created once per tenant and platform."""
    cache = platform.__dict__.setdefault(_KEY, {})
    if tenant.org_id in cache:
        return cache[tenant.org_id]
    service = consent_for(platform)
    with platform.db.transaction(tenant.org_id) as s:
        cp = service.add_counterparty(s, name=f"Processor of {tenant.org_id}", kind="processor",
                                      bin=synthetic_kz_number("05014", 900 + tenant.org_id),
                                      webhook_url="http://127.0.0.1:9/unreachable", actor="test").counterparty
        subject = SubjectRef(identifier_type="KZ_IIN", identifier=subject_iin(tenant.org_id * 10 + 1))
        common = dict(data_categories=["PHONE_NUMBER"], valid_until=None, third_party_transfer=False,
                      counterparties=[cp.id], cross_border=False, countries=[], public_sources=False, other=None,
                      channel="written", evidence_ref=None, evidence_sha256=None, actor="test")
        first = service.give(s, subject, purpose="marketing.sms", **common)
        second = service.give(s, subject, purpose="marketing.email", **common)
        transfer = service.record_transfer(s, first.id, cp.id, data_categories=["PHONE_NUMBER"], actor="test")
        basis = service.add_legal_basis(s, kind="law", purpose="kyc.aml", reference="AML/CFT Law Art.5",
                                        actor="test")
    with platform.db.transaction(tenant.org_id) as s:
        withdrawal = service.withdraw(s, first.id, channel="written", actor="test")
    notification = withdrawal.notifications[0]
    objects = {"counterparty_id": cp.id, "consent_id": second.id, "withdrawn_consent_id": first.id,
               "transfer_id": transfer.id, "basis_id": basis.id, "notification_id": notification.id,
               "message_id": notification.outbox_message_id or 0}
    cache[tenant.org_id] = objects
    return objects
