"""qorgau.client against the real server: check, the context manager, the decorator, failing closed, and
no caching (a withdrawal is seen by the very next call)."""

from __future__ import annotations

import asyncio

import pytest

from conftest import LiveServer, Tenant
from qorgau.client import Client, ConsentCheckFailed, ConsentDenied, Subject, requires_consent
from qorgau.consent.service import ConsentService
from qorgau.core.platform import Platform

from .helpers import give, withdraw
from .owned import subject_iin


def test_processing_runs_only_while_consent_holds(platform: Platform, consents: ConsentService,
                                                  live_server: LiveServer, tenant_a: Tenant) -> None:
    consent = give(consents, platform, tenant_a.org_id)
    with platform.db.reader(tenant_a.org_id) as s:
        pseudonym = consents.subject_pseudonym(s, consent)
    sent: list[str] = []
    with Client(live_server.url, tenant_a.api_key) as client:
        assert client.check(Subject.iin(subject_iin(1)), "marketing.sms", ["PHONE_NUMBER"]).allow
        with client.processing(pseudonym, "marketing.sms") as decision:
            sent.append("first")
        assert decision.consent_id == consent.id

        @client.requires_consent(purpose="marketing.sms", subject=lambda who, **_: Subject.pseudonym(who))
        def send_sms(who: str, text: str) -> str:
            sent.append(text)
            return "ok"

        assert send_sms(pseudonym, text="second") == "ok"
        withdraw(consents, platform, tenant_a.org_id, consent.id)
        # the very next call sees the withdrawal (the remembered allow is dropped), and the body never runs
        with pytest.raises(ConsentDenied) as exc:
            with client.processing(pseudonym, "marketing.sms"):
                sent.append("must not happen")
        # the withdrawal left the subject nothing at this operator: crypto-shredded (docs/consent.md)
        assert exc.value.decision.reason == "subject_erased" and pseudonym not in str(exc.value)
        with pytest.raises(ConsentDenied):
            send_sms(pseudonym, text="must not happen either")
    assert sent == ["first", "second"]


def test_async_functions_are_guarded_too(platform: Platform, consents: ConsentService, live_server: LiveServer,
                                         tenant_a: Tenant) -> None:
    give(consents, platform, tenant_a.org_id)
    client = Client(live_server.url, tenant_a.api_key)

    @requires_consent(purpose="marketing.sms", subject=lambda iin: Subject.iin(iin), client=client)
    async def notify(iin: str) -> str:
        return "sent"

    @requires_consent(purpose="credit.scoring", subject=lambda iin: Subject.iin(iin), client=client)
    async def score(iin: str) -> str:
        return "scored"

    assert asyncio.run(notify(subject_iin(1))) == "sent"
    with pytest.raises(ConsentDenied):
        asyncio.run(score(subject_iin(1)))
    client.close()


def test_the_client_fails_closed(live_server: LiveServer, tenant_a: Tenant) -> None:
    with Client("http://127.0.0.1:9", "qk_x_y", timeout=1) as nowhere:
        with pytest.raises(ConsentCheckFailed):
            with nowhere.processing(Subject.iin(subject_iin(1)), "marketing.sms"):
                raise AssertionError("ran without an answer")
    with Client(live_server.url, "qk_kdeadbeef00_wrong") as wrong_key:
        with pytest.raises(ConsentCheckFailed) as exc:
            wrong_key.check(Subject.iin(subject_iin(1)), "marketing.sms")
        assert exc.value.status == 401
    with Client(live_server.url, tenant_a.api_key) as client:
        with pytest.raises(ConsentCheckFailed) as exc:
            client.check(Subject.iin("791028302729"), "marketing.sms")  # bad checksum
        assert exc.value.status == 422 and exc.value.field == "subject.identifier"
        assert "791028302729" not in str(exc.value)
    with pytest.raises(TypeError):
        Client(live_server.url, tenant_a.api_key).check("791028302728", "marketing.sms")  # a bare IIN: no


def test_a_subject_never_prints_its_value() -> None:
    for subject in (Subject.iin("791028302728"), Subject.pseudonym("ps_" + "a" * 26), Subject.phone("+77012345678")):
        assert "7910" not in repr(subject) and "aaaa" not in repr(subject) and "701" not in str(subject)
