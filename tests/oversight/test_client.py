"""``@require_human_approval`` against the real server: the decorated function only *proposes*; the handle
waits for a person; rejected, refused and unreachable all fail closed (nothing to apply, never "approved")."""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.server
import threading
import time

import pytest

from conftest import LiveServer, Tenant, free_port
from qorgau.client import (Client, DecisionSubmitFailed, DecisionTimeout, Factor, OversightUnavailable, Proposal,
                           Subject, WebhookRejected, read_webhook, require_human_approval, verify_webhook)
from qorgau.consent.service import consent_for
from qorgau.core import auth
from qorgau.core.platform import Platform
from qorgau.oversight.service import oversight_for

from .owned import subject_iin


def _setup(platform: Platform, tenant: Tenant, *, basis: bool = True) -> None:
    """A high-risk scoring system; a contract basis for credit scoring unless ``basis`` is False."""
    with platform.db.transaction(tenant.org_id) as s:
        oversight_for(platform).register_system(s, code="scoring-v2", name="Scoring", risk_class="high",
                                                autonomy="medium", actor="test")
        if basis:
            consent_for(platform).add_legal_basis(s, kind="contract", purpose="credit.scoring",
                                                  reference="Loan agreement, art. 7", actor="test")


def _review(platform: Platform, tenant: Tenant, decision_id: int, action: str, **kwargs: object) -> None:
    """A person (the tenant's reviewer) acts on the decision, as the reviewer UI would."""
    service = oversight_for(platform)
    with platform.db.transaction(tenant.org_id) as s:
        user = auth.get_user(s, tenant.users["reviewer"][0])
        version = service.get(s, decision_id).version
        service.review(s, decision_id, user=user, action=action, expected_version=version,
                       rationale="checked against the application", **kwargs)


def _proposal(serial: int = 1, **overrides: object) -> Proposal:
    fields: dict[str, object] = dict(
        subject=Subject.iin(subject_iin(serial)), outcome=500000,
        factors=[Factor("income", 0.6, "Monthly income", 450000), ("arrears", -0.3, "Arrears")],
        model_version="scoring-2.4.1", confidence=0.8, idempotency_key=f"application-{serial}")
    fields.update(overrides)
    return Proposal(**fields)  # type: ignore[arg-type]


def test_the_decorated_function_proposes_and_a_person_decides(platform: Platform, live_server: LiveServer,
                                                              tenant_a: Tenant) -> None:
    _setup(platform, tenant_a)
    calls: list[int] = []
    with Client(live_server.url, tenant_a.api_key) as client:

        @client.require_human_approval(decision_type="credit_limit", system="scoring-v2")
        def propose_limit(application_id: int) -> Proposal:
            calls.append(application_id)
            return _proposal(application_id)

        handle = propose_limit(1)
        assert handle.created and handle.status() == "pending"
        assert handle.effective is False and handle.outcome is None  # nothing to apply yet
        with pytest.raises(DecisionTimeout):
            handle.wait(timeout=0.3, poll=0.05)

        # the reviewer approves while the service waits
        threading.Timer(0.3, _review, args=(platform, tenant_a, handle.id, "approve")).start()
        result = handle.wait(timeout=30, poll=0.05)
        assert result.final and result.status == "approved" and result.effective and result.outcome == 500000
        assert handle.effective is True and handle.outcome == 500000
        assert result.data["subject_pseudonym"].startswith("ps_") and subject_iin(1) not in str(result.data)

        # calling again for the same application replays the same decision (the idempotency key)
        again = propose_limit(1)
        assert again.id == handle.id and again.created is False
        assert client.decision(handle.id).result.status == "approved"
    assert calls == [1, 1]


def test_a_rejected_decision_gives_nothing_to_apply(platform: Platform, live_server: LiveServer,
                                                    tenant_a: Tenant) -> None:
    _setup(platform, tenant_a)
    client = Client(live_server.url, tenant_a.api_key)

    @require_human_approval(decision_type="credit_limit", system="scoring-v2", client=client)
    def propose(serial: int) -> Proposal:
        return _proposal(serial)

    handle = propose(2)
    _review(platform, tenant_a, handle.id, "reject")
    result = handle.wait(timeout=10, poll=0.05)
    assert result.status == "rejected" and not result.effective and result.outcome is None
    # an amended one is applied with the reviewer's outcome, not the model's
    amended = propose(3)
    _review(platform, tenant_a, amended.id, "amend", outcome=250000)
    result = amended.wait(timeout=10, poll=0.05)
    assert result.effective and result.outcome == 250000 and result.proposed_outcome == 500000
    client.close()


def test_without_consent_or_legal_basis_the_decision_is_refused(platform: Platform, live_server: LiveServer,
                                                                tenant_a: Tenant) -> None:
    _setup(platform, tenant_a, basis=False)
    with Client(live_server.url, tenant_a.api_key) as client:
        handle = client.submit_decision(_proposal(4), decision_type="credit_limit", system="scoring-v2")
        result = handle.wait(timeout=5, poll=0.05)  # already final: refused outright (L-PD-AUTO)
        assert result.status == "refused" and result.path == "refused" and result.reason
        assert result.outcome is None and handle.effective is False


def test_bad_proposals_are_refused_naming_the_field(platform: Platform, live_server: LiveServer,
                                                    tenant_a: Tenant) -> None:
    _setup(platform, tenant_a)
    with Client(live_server.url, tenant_a.api_key) as client:
        with pytest.raises(DecisionSubmitFailed) as exc:
            client.submit_decision(_proposal(5, outcome=-1), decision_type="credit_limit", system="scoring-v2")
        assert exc.value.status == 422 and exc.value.field == "proposed_outcome"
        with pytest.raises(DecisionSubmitFailed) as exc:
            client.submit_decision(_proposal(5, factors=[Factor("income", 3.0)]), decision_type="credit_limit",
                                   system="scoring-v2")
        assert exc.value.field == "factors.0.weight"
        with pytest.raises(DecisionSubmitFailed) as exc:
            client.submit_decision(_proposal(5), decision_type="credit_limit", system="no-such-system")
        assert exc.value.field == "system"
        with pytest.raises(DecisionSubmitFailed) as exc:
            client.submit_decision(_proposal(5, subject=Subject.iin("850505400019")), decision_type="credit_limit",
                                   system="scoring-v2")
        assert exc.value.field == "subject.identifier" and "850505400019" not in str(exc.value)
        with pytest.raises(TypeError):
            require_human_approval(decision_type="credit_limit", system="scoring-v2", client=client)(
                lambda: {"outcome": 1})()


def test_an_unreachable_server_fails_closed(tenant_a: Tenant) -> None:
    client = Client(f"http://127.0.0.1:{free_port()}", tenant_a.api_key, timeout=1)
    ran: list[str] = []

    @require_human_approval(decision_type="credit_limit", system="scoring-v2", client=client)
    def propose() -> Proposal:
        ran.append("proposed")
        return _proposal(6)

    started = time.monotonic()
    with pytest.raises(OversightUnavailable) as exc:
        propose()
    assert ran == ["proposed"] and exc.value.status is None
    assert time.monotonic() - started < 60  # the retries are bounded
    assert subject_iin(6) not in repr(_proposal(6)) and "Subject" not in repr(_proposal(6))


def test_async_services_are_supported(platform: Platform, live_server: LiveServer, tenant_a: Tenant) -> None:
    _setup(platform, tenant_a)
    client = Client(live_server.url, tenant_a.api_key)

    @require_human_approval(decision_type="credit_limit", system="scoring-v2", client=client)
    async def propose(serial: int) -> Proposal:
        await asyncio.sleep(0)
        return _proposal(serial)

    async def story() -> str:
        handle = await propose(7)
        threading.Timer(0.2, _review, args=(platform, tenant_a, handle.id, "approve")).start()
        result = await handle.wait_async(timeout=30, poll=0.05)
        return result.status

    # In a thread of its own: a session-wide Playwright (tests/web) keeps an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(asyncio.run, story()).result(timeout=120) == "approved"
    client.close()


class RawReceiver:
    """A bare HTTP receiver keeping each delivery's raw body and signature header (what an AI service gets)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/qorgau"
        self.deliveries: list[tuple[bytes, str, str]] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.deliveries.append((raw, self.headers.get("Qorgau-Signature", ""),
                                            self.headers.get("Idempotency-Key", "")))
                receiver.arrived.set()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_webhook_is_read_and_verified_with_the_client(platform: Platform, live_server: LiveServer,
                                                          tenant_a: Tenant) -> None:
    receiver = RawReceiver()
    try:
        with platform.db.transaction(tenant_a.org_id) as s:
            _, secret = oversight_for(platform).register_system(
                s, code="scoring-v2", name="Scoring", risk_class="high", autonomy="medium", webhook_url=receiver.url,
                actor="test")
            consent_for(platform).add_legal_basis(s, kind="contract", purpose="credit.scoring",
                                                  reference="Loan agreement, art. 7", actor="test")
        assert secret
        with Client(live_server.url, tenant_a.api_key) as client:
            handle = client.submit_decision(_proposal(8), decision_type="credit_limit", system="scoring-v2")
            assert not receiver.arrived.is_set()  # nothing is sent while the decision waits
            _review(platform, tenant_a, handle.id, "approve")
            assert receiver.arrived.wait(30)
            raw, signature, key = receiver.deliveries[0]
            topic, decision = read_webhook(secret, raw, signature)
            assert topic == "decision.decided" and key
            assert decision.id == handle.id and decision.effective and decision.outcome == 500000
            assert decision.data == handle.refresh().data  # the webhook says what polling says
            with pytest.raises(WebhookRejected):
                read_webhook(secret, raw.replace(b"500000", b"900000"), signature)
            with pytest.raises(WebhookRejected):
                read_webhook("whsec_not-the-secret", raw, signature)
            assert not verify_webhook(secret, raw, signature, now=time.time() + 3600)  # a replay an hour later
    finally:
        receiver.close()
