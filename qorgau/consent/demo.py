"""Consent demo data for the DEMO organization (``make run``): a living portal and operator view.

Everything is built through the services (:class:`~qorgau.consent.service.ConsentService`,
:class:`~qorgau.consent.citizens.Citizens`), in one transaction at the demo operator, and only once:
:func:`seed_consent_demo` does nothing when the demo counterparties already exist (idempotent) or when
there is no demo organization. Deterministic: the same names, synthetic IINs and BINs every time (the
timestamps are the seeding time).

What it creates, all clearly marked DEMO:

* the operator's own purpose ``marketing.cashback`` (names in kk/ru/en) and a legal basis of kind ``law``
  for ``kyc.aml`` (the AML/CFT law: a withdrawal for it would be refused with that reason);
* two processors whose webhook URLs are in the ``.invalid`` top-level domain (RFC 2606: never resolves),
  so their notifications honestly stay pending — and turn overdue after 15 working days — and a third
  party (a credit bureau) without a webhook;
* ``demo-citizen``'s verified identity (method ``demo``, a synthetic IIN) and their consents: SMS
  advertising (data sent to the SMS processor), a credit-bureau request (a transfer to a third party the
  citizen must be told of within 10 working days), the operator's cashback programme, and personalised
  offers — withdrawn, so both processors were notified and are awaiting their "stopped" confirmation;
* a handful of other synthetic subjects with consents, so the operator's counts are not all ones.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from ..core import auth
from ..core.db import utcnow
from ..core.demo import DEMO_BIN
from ..identifiers import synthetic_kz_number
from .citizens import VerifiedIdentity, citizens_for
from .decision import SubjectRef
from .models import Counterparty
from .service import consent_for

if TYPE_CHECKING:
    from ..core.platform import Platform

ACTOR = "system:demo"
DEMO_CITIZEN = "demo-citizen"
DEMO_CITIZEN_NAME = "Demo Citizen"
# Synthetic, checksum-valid (a man born 15 May 1990); only ever used in data marked DEMO.
DEMO_CITIZEN_IIN = synthetic_kz_number("9005153", 4172)
DEMO_IDENTITY_METHOD = "demo"

SMS_GATEWAY = "DEMO — SMS gateway «Habar»"
MAIL_SERVICE = "DEMO — e-mail and CRM service «Mailwise»"
CREDIT_BUREAU = "DEMO — credit bureau «Senim»"
COUNTERPARTIES = (
    # name, kind, BIN (KZ) or foreign registration, country, webhook URL (RFC 2606 .invalid: never resolves)
    (SMS_GATEWAY, "processor", synthetic_kz_number("060340", 1201), "KZ",
     "https://hooks.habar-sms.demo.invalid/qorgau/withdrawals"),
    (MAIL_SERVICE, "processor", "HRB 000000 (demo)", "DE", "https://api.mailwise.demo.invalid/webhooks/qorgau"),
    (CREDIT_BUREAU, "third_party", synthetic_kz_number("040740", 3307), "KZ", None),
)
CASHBACK = ("marketing.cashback", {"kk": "Кэшбэк бағдарламасы", "ru": "Программа кэшбэка",
                                   "en": "Cashback programme"})
AML_REFERENCE = "Law of the Republic of Kazakhstan No. 191-IV on AML/CFT, Art. 5 (DEMO)"
OTHER_SUBJECTS = 6


def _evidence(label: str) -> tuple[str, str]:
    """A reference and the SHA-256 of a (demo) signed document: the consent never holds the document."""
    return f"DEMO-{label}", hashlib.sha256(f"qorgau demo signed consent {label}".encode()).hexdigest()


def seed_consent_demo(platform: Platform) -> bool:
    """Seed the consent demo at the DEMO organization; False if there is none or it was seeded before."""
    with platform.db.reader() as session:
        org = auth.find_organization_by_bin(session, DEMO_BIN)
        citizen = session.scalar(select(auth.User).where(auth.User.username == DEMO_CITIZEN)
                                 .execution_options(qorgau_cross_tenant=True))
        if org is None:
            return False
        org_id, citizen_id = org.id, (citizen.id if citizen is not None else None)
    service, citizens = consent_for(platform), citizens_for(platform)
    now = utcnow()
    with platform.db.transaction(org_id) as session:
        if session.scalar(select(Counterparty.id).where(Counterparty.name == SMS_GATEWAY)) is not None:
            return False
        cps = {}
        for name, kind, registration, country, url in COUNTERPARTIES:
            kz = country == "KZ"
            created = service.add_counterparty(session, name=name, kind=kind, bin=registration if kz else None,
                                               foreign_registration=None if kz else registration, country=country,
                                               webhook_url=url, actor=ACTOR)
            cps[name] = created.counterparty.id
        service.add_purpose(session, code=CASHBACK[0], names=CASHBACK[1], actor=ACTOR,
                            description="DEMO: the operator's own purpose, added to the platform's taxonomy.")
        service.add_legal_basis(session, kind="law", purpose="kyc.aml", reference=AML_REFERENCE, actor=ACTOR)

        def give(subject: SubjectRef, label: str, purpose: str, categories: list[str], *, days: int | None,
                 counterparties: tuple[str, ...] = (), third_party: bool = False, countries: tuple[str, ...] = (),
                 channel: str = "non_state_service", notify: bool | None = None, full_name: str | None = None) -> int:
            ref, digest = _evidence(label)
            consent = service.give(
                session, subject, purpose=purpose, data_categories=categories,
                valid_until=now + timedelta(days=days) if days else None, third_party_transfer=third_party,
                counterparties=[cps[n] for n in counterparties], cross_border=bool(countries),
                countries=list(countries), public_sources=False, other=None, channel=channel, evidence_ref=ref,
                evidence_sha256=digest, actor=ACTOR, full_name=full_name, notify_on_transfer=notify)
            return consent.id

        me = SubjectRef(identifier_type="KZ_IIN", identifier=DEMO_CITIZEN_IIN)
        sms = give(me, "SMS-0001", "marketing.sms", ["PHONE_NUMBER"], days=365, counterparties=(SMS_GATEWAY,),
                   full_name=DEMO_CITIZEN_NAME)
        service.record_transfer(session, sms, cps[SMS_GATEWAY], data_categories=["PHONE_NUMBER"], actor=ACTOR)
        bureau = give(me, "BUREAU-0002", "credit.bureau", ["identity_document", "credit_history"], days=None,
                      counterparties=(CREDIT_BUREAU,), third_party=True, channel="written", notify=True)
        service.record_transfer(session, bureau, cps[CREDIT_BUREAU], data_categories=["credit_history"], actor=ACTOR)
        give(me, "CASHBACK-0003", CASHBACK[0], ["transactions", "purchases"], days=180)
        offers = give(me, "OFFERS-0004", "marketing.personalization", ["purchases", "behavior", "EMAIL_ADDRESS"],
                      days=365, counterparties=(SMS_GATEWAY, MAIL_SERVICE), countries=("DE",))
        service.record_transfer(session, offers, cps[MAIL_SERVICE], data_categories=["purchases", "EMAIL_ADDRESS"],
                                actor=ACTOR)
        service.record_transfer(session, offers, cps[SMS_GATEWAY], data_categories=["purchases"], actor=ACTOR)
        service.withdraw(session, offers, channel="written", actor=ACTOR, idempotency_key="demo-withdrawal-offers")

        for n in range(OTHER_SUBJECTS):
            other = SubjectRef(identifier_type="KZ_IIN", identifier=synthetic_kz_number("850302" + "4", 2000 + 37 * n))
            first = give(other, f"SUBJ{n}-SMS", "marketing.sms", ["PHONE_NUMBER"], days=365,
                         counterparties=(SMS_GATEWAY,), full_name=f"DEMO Subject {n + 1}")
            if n % 2 == 0:
                give(other, f"SUBJ{n}-EMAIL", "marketing.email", ["EMAIL_ADDRESS"], days=365)
            if n % 3 == 0:
                give(other, f"SUBJ{n}-SCORING", "credit.scoring", ["credit_history", "employment"], days=None)
            if n == 1:
                service.record_transfer(session, first, cps[SMS_GATEWAY], data_categories=["PHONE_NUMBER"],
                                        actor=ACTOR)
                service.withdraw(session, first, channel="other_verifiable", actor=ACTOR,
                                 idempotency_key=f"demo-withdrawal-subject-{n}")

        if citizen_id is not None and not citizens.is_verified(session, citizen_id):
            citizens.link_verified(session, citizen_id,
                                   VerifiedIdentity(DEMO_CITIZEN_IIN, DEMO_IDENTITY_METHOD, reference="demo seed"),
                                   actor=ACTOR)
    return True
