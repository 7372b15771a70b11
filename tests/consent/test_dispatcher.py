"""The outbox and its dispatcher: signed webhooks to a real HTTP receiver, retries with backoff, dead
letters, leases, several dispatchers at once, and a dispatcher killed with SIGKILL mid-flight."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from conftest import Tenant
from qorgau.consent import outbox
from qorgau.consent.dispatcher import Dispatcher, backoff, sign, verify_signature
from qorgau.consent.outbox import OutboxMessage
from qorgau.consent.service import ConsentService
from qorgau.core.platform import Platform

from .helpers import give, iin_subject, processor, withdraw
from .receiver import Receiver

SECRET = "whsec_test-secret"


# --- signatures and backoff (pure) -------------------------------------------------------------------


def test_a_signature_verifies_only_for_the_same_body_secret_and_a_fresh_timestamp() -> None:
    body = b'{"type":"consent.withdrawn"}'
    now = int(time.time())
    header = sign(SECRET, body, now)
    assert header.startswith(f"t={now},v1=") and len(header.split("v1=")[1]) == 64
    assert verify_signature(SECRET, body, header)
    assert not verify_signature(SECRET, body + b" ", header)
    assert not verify_signature("whsec_other", body, header)
    assert not verify_signature(SECRET, body, sign(SECRET, body, now - 301))  # a replay from long ago
    assert not verify_signature(SECRET, body, "v1=abc") and not verify_signature(SECRET, body, "")
    # during a rotation the sender may send two v1 values; one matching is enough
    rotated = f"t={now},v1={'0' * 64},v1={header.split('v1=')[1]}"
    assert verify_signature(SECRET, body, rotated)


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    delays = [backoff(n, 2.0, 60.0, rng) for n in range(1, 10)]
    for n, delay in enumerate(delays, start=1):
        full = min(60.0, 2.0 * 2 ** (n - 1))
        assert full / 2 <= delay <= full
    assert max(delays) <= 60.0 and delays[-1] >= 30.0


# --- helpers ----------------------------------------------------------------------------------------


def enqueue(platform: Platform, org: int, url: str, n: int = 1, *, max_attempts: int = 5,
            max_age: timedelta = timedelta(hours=1), secret: str = SECRET) -> list[int]:
    with platform.db.transaction(org) as s:
        sealed = outbox.seal_secret(s, platform.keyring, org, secret)
        rows = outbox.enqueue(s, [outbox.Outgoing("test.event", url, {"n": i, "pseudonym": "ps_x"}, sealed,
                                                  f"test:{org}:{time.monotonic_ns()}:{i}", "test", str(i))
                                  for i in range(n)], max_attempts=max_attempts, max_age=max_age)
        return [r.id for r in rows]


def states(platform: Platform, org: int) -> dict[int, Any]:
    with platform.db.reader(org) as s:
        return {m.id: m for m in outbox.list_messages(s, limit=1000)}


def quick(platform: Platform, **kw: Any) -> Dispatcher:
    kw.setdefault("backoff_seconds", 0.01)
    kw.setdefault("backoff_cap_seconds", 0.05)
    kw.setdefault("poll_seconds", 0.02)
    kw.setdefault("timeout_seconds", 5.0)
    return Dispatcher(platform, **kw)


def run_until(d: Dispatcher, done: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "dispatcher did not finish in time"
        if not d.run_once():
            time.sleep(0.02)


# --- delivery ------------------------------------------------------------------------------------------


def test_a_withdrawal_reaches_the_processor_signed_and_with_its_idempotency_key(
        platform: Platform, consents: ConsentService, tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    with Receiver() as receiver:
        created = processor(consents, platform, org, url=receiver.url)
        receiver.secret = created.webhook_secret
        consent = give(consents, platform, org, counterparties=[created.counterparty.id])
        with platform.db.transaction(org) as s:
            consents.record_transfer(s, consent.id, created.counterparty.id, data_categories=["PHONE_NUMBER"], actor="u")
        w = withdraw(consents, platform, org, consent.id)
        d = quick(platform)
        try:
            assert d.run_once() == 1
        finally:
            d.stop()
        [got] = receiver.received
    assert got.signature_ok and got.event == "consent.withdrawn"
    assert got.key == f"consent.withdrawn:{w.receipt['receipt']['withdrawalReceiptID']}:{created.counterparty.id}"
    assert got.body["notification_id"] == w.notifications[0].id and got.body["action"] == "stop_processing"
    assert got.body["confirm"]["path"] == f"/api/v1/consent/notifications/{w.notifications[0].id}/confirm"
    assert got.delivery.endswith(".1")
    [state] = states(platform, org).values()
    assert state.status == "delivered" and state.attempts == 1 and state.delivered_at is not None


def test_failures_are_retried_with_backoff_until_delivered(platform: Platform, tenant_a: Tenant) -> None:
    with Receiver(secret=SECRET, statuses=[500, 503, 200]) as receiver:
        [mid] = enqueue(platform, tenant_a.org_id, receiver.url)
        d = quick(platform)
        try:
            run_until(d, lambda: states(platform, tenant_a.org_id)[mid].status == "delivered")
        finally:
            d.stop()
    state = states(platform, tenant_a.org_id)[mid]
    assert state.attempts == 3 and state.last_status == 200 and state.last_error is None
    assert [r.delivery.split(".")[1] for r in receiver.received] == ["1", "2", "3"]
    assert len({r.key for r in receiver.received}) == 1  # the same idempotency key on every attempt


def test_a_message_is_dead_lettered_after_its_attempts_and_can_be_retried(platform: Platform, tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    with Receiver(secret=SECRET, statuses=[500] * 3) as receiver:
        [mid] = enqueue(platform, org, receiver.url, max_attempts=3)
        d = quick(platform)
        try:
            run_until(d, lambda: states(platform, org)[mid].status == "dead")
            assert states(platform, org)[mid].attempts == 3 and states(platform, org)[mid].last_error == "HTTP 500"
            with platform.db.transaction(org) as s:
                outbox.retry_dead(s, mid)
            run_until(d, lambda: states(platform, org)[mid].status == "delivered")
        finally:
            d.stop()
    assert len(receiver.received) == 4


def test_an_unreachable_receiver_and_a_message_past_its_age_are_dead_lettered(platform: Platform,
                                                                             tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    [old] = enqueue(platform, org, "http://127.0.0.1:9/nobody", max_age=timedelta(milliseconds=1))
    [unreachable] = enqueue(platform, org, "http://127.0.0.1:9/nobody", max_attempts=2)
    time.sleep(0.01)
    d = quick(platform)
    try:
        run_until(d, lambda: all(states(platform, org)[m].status == "dead" for m in (old, unreachable)))
    finally:
        d.stop()
    got = states(platform, org)
    assert got[old].attempts == 0 and "maximum age" in (got[old].last_error or "")
    assert got[unreachable].attempts == 2 and got[unreachable].last_error == "ConnectError"


def test_a_dispatcher_that_lost_its_lease_cannot_overwrite_the_new_owner(platform: Platform, tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    [mid] = enqueue(platform, org, "http://127.0.0.1:9/x")
    slow, fast = quick(platform, lease_seconds=0.05, owner="slow"), quick(platform, owner="fast")
    try:
        [held] = slow.claim()
        assert fast.claim() == []  # leased
        time.sleep(0.1)  # the lease runs out (the slow one is "stuck")
        [taken] = fast.claim()
        assert taken.id == held.id == mid and taken.attempt == 2
        from qorgau.consent.dispatcher import Outcome

        assert not slow.record(held, Outcome(mid, True, 200, None))  # fenced off
        assert fast.record(taken, Outcome(mid, True, 200, None))
    finally:
        slow.stop()
        fast.stop()
    assert states(platform, org)[mid].status == "delivered"


def test_several_dispatchers_share_the_work_without_sending_anything_twice(platform: Platform,
                                                                          tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    with Receiver(secret=SECRET, delay=0.01) as receiver:
        ids = enqueue(platform, org, receiver.url, n=60)
        dispatchers = [quick(platform, batch=5, workers=2) for _ in range(3)]
        for d in dispatchers:
            d.start()
        try:
            assert receiver.wait_for(lambda: len(receiver.received) >= 60, timeout=60)
            deadline = time.monotonic() + 30
            while any(states(platform, org)[m].status != "delivered" for m in ids):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            for d in dispatchers:
                d.stop()
        counts = Counter(r.key for r in receiver.received)
    assert len(counts) == 60 and set(counts.values()) == {1}  # no message was claimed by two dispatchers
    assert sum(1 for d in dispatchers if d.delivered) >= 2  # the work was actually shared
    assert all(r.signature_ok for r in receiver.received)


def test_a_local_commit_wakes_the_dispatcher_without_waiting_for_the_poll(platform: Platform, consents: ConsentService,
                                                                          tenant_a: Tenant) -> None:
    org = tenant_a.org_id
    with Receiver() as receiver:
        created = processor(consents, platform, org, url=receiver.url)
        consent = give(consents, platform, org, counterparties=[created.counterparty.id])
        with platform.db.transaction(org) as s:
            consents.record_transfer(s, consent.id, created.counterparty.id, data_categories=["PHONE_NUMBER"], actor="u")
        d = quick(platform, poll_seconds=30.0).start()  # a poll so slow only the wake-up can explain delivery
        try:
            time.sleep(0.2)  # let it go idle
            started = time.monotonic()
            withdraw(consents, platform, org, consent.id)
            assert receiver.wait_for(lambda: len(receiver.received) == 1, timeout=10)
            assert time.monotonic() - started < 5
        finally:
            d.stop()


# --- a crash mid-flight ----------------------------------------------------------------------------


def _dispatcher_process(settings: Any, lease: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "QORGAU_DATA_DIR": str(settings.data_dir),
           "QORGAU_DATABASE_URL": settings.resolved_database_url, "QORGAU_CONSENT_WEBHOOK_BACKOFF_SECONDS": "0.05",
           "QORGAU_CONSENT_WEBHOOK_BACKOFF_CAP_SECONDS": "0.2"}
    return subprocess.Popen([sys.executable, "-m", "qorgau.cli", "consent", "dispatcher", "--lease", str(lease),
                             "--poll", "0.05", "--workers", "4"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_a_dispatcher_killed_mid_flight_loses_nothing_and_each_key_takes_effect_once(
        platform: Platform, consents: ConsentService, tenant_a: Tenant, settings: Any) -> None:
    """At-least-once delivery + the receiver's idempotency: after SIGKILL and a restart every notification
    arrives; those in flight at the kill arrive twice, with the same key, and take effect once."""
    org = tenant_a.org_id
    with Receiver() as receiver:
        counterparties = []
        for n in range(3):
            created = processor(consents, platform, org, name=f"P{n}", url=receiver.url, serial=600 + n)
            counterparties.append(created)
        secrets = {c.counterparty.id: c.webhook_secret for c in counterparties}
        receiver.secret = lambda body: secrets[body["counterparty_id"]]  # each counterparty its own secret
        ids = [c.counterparty.id for c in counterparties]
        expected: set[str] = set()
        for n in range(6):
            consent = give(consents, platform, org, iin_subject(100 + n), counterparties=ids)
            with platform.db.transaction(org) as s:
                for cp in ids:
                    consents.record_transfer(s, consent.id, cp, data_categories=["PHONE_NUMBER"], actor="u")
            w = withdraw(consents, platform, org, consent.id)
            rid = w.receipt["receipt"]["withdrawalReceiptID"]
            expected.update(f"consent.withdrawn:{rid}:{cp}" for cp in ids)
        assert len(expected) == 18
        receiver.hold.set()  # requests arrive and wait: the dispatcher's POSTs are in flight
        first = _dispatcher_process(settings, lease=2.0)
        try:
            assert receiver.wait_for(lambda: len(receiver.received) >= 4, timeout=60), "no delivery started"
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
        in_flight = receiver.keys()
        receiver.hold.clear()  # the held requests are answered now, to a dead process
        with platform.db.reader(org) as s:
            assert not all(m.status == "delivered" for m in s.scalars(select(OutboxMessage)))
        second = _dispatcher_process(settings, lease=2.0)
        try:
            def all_delivered() -> bool:
                with platform.db.reader(org) as s:
                    return all(m.status == "delivered" for m in s.scalars(select(OutboxMessage)))

            deadline = time.monotonic() + 90
            while not all_delivered():
                assert time.monotonic() < deadline, "not everything was delivered after the restart"
                assert second.poll() is None, "the restarted dispatcher died"
                time.sleep(0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            try:
                second.wait(timeout=15)
            except subprocess.TimeoutExpired:
                second.kill()
        counts = Counter(r.key for r in receiver.received)
    assert set(counts) == expected  # nothing lost, nothing invented
    assert set(receiver.processed) == expected and set(receiver.processed.values()) == {1}  # each took effect once
    redelivered = {k for k, n in counts.items() if n > 1}
    assert redelivered and redelivered <= in_flight  # only what was in flight at the kill came twice
    # every delivery was signed with its own counterparty's secret
    assert all(r.signature_ok and r.key.endswith(f":{r.body['counterparty_id']}") for r in receiver.received)
