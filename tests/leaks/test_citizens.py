"""Citizens and the leak register (qorgau/leaks/citizens.py): verified identifiers, lookups, subscriptions and
notifications — on SQLite and PostgreSQL, with the real OPRF key, the real segment index and the demo sink."""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select, update

from qorgau.core import audit
from qorgau.core.db import utcnow
from qorgau.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from qorgau.core.platform import Platform
from qorgau.core.ratelimit import RateLimited
from qorgau.leaks.citizens import VerificationFailed, join_tokens, leak_citizens_for
from qorgau.leaks.models import LeakCitizenIdentifier, LeakNotification, LeakVerification

from .citizens_helpers import (
    last_email_link,
    last_sms_code,
    make_incident,
    outbox,
    publish_segment,
    test_iin,
    verify_iin,
    verify_phone,
)

PHONE = "+77011234567"
EMAIL = "aigerim@example.kz"


def citizen(tenant) -> int:  # type: ignore[no-untyped-def]
    return tenant.users["citizen"][0]


# --- phone by a one-time SMS code --------------------------------------------------------------------


def test_a_phone_is_verified_with_the_code_read_from_the_sink(platform: Platform, tenant_a) -> None:
    service = leak_citizens_for(platform)
    user = citizen(tenant_a)
    started = service.start_phone(user, "8 (701) 123-45-67", lang="ru")
    assert started.sink and started.kind == "phone" and "4567" not in started.mask
    [sms] = outbox(platform, "sms")
    assert stat.S_IMODE(os.stat(sms).st_mode) == 0o600
    text = sms.read_text(encoding="utf-8")
    assert text.startswith(f"To: {PHONE}\n") and "код" in text  # the citizen's language
    code = last_sms_code(platform, PHONE)
    identifier = service.confirm_phone(user, started.selector, code)
    assert (identifier.kind, identifier.verified_via, identifier.subscribed) == ("phone", "sms_code", False)
    assert [i.id for i in service.identifiers(user)] == [identifier.id]
    # Only the token, the mask and a SHA-256 are stored: the number and the code are nowhere in the rows.
    with platform.db.reader() as s:
        challenge = s.scalar(select(LeakVerification))
        ident = s.scalar(select(LeakCitizenIdentifier))
        entries = audit.list_entries(s, limit=50)
    stored = repr(vars(challenge)) + repr(vars(ident)) + json.dumps([e.details for e in entries], default=str)
    assert "1234567" not in stored and code not in stored
    assert challenge.status == "verified" and len(challenge.secret_sha256) == 64
    with pytest.raises(VerificationFailed) as used:
        service.confirm_phone(user, started.selector, code)
    assert used.value.reason == "used"


def test_five_wrong_codes_burn_the_code(platform: Platform, tenant_a) -> None:
    service = leak_citizens_for(platform)
    user = citizen(tenant_a)
    started = service.start_phone(user, PHONE)
    code = last_sms_code(platform, PHONE)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for attempt in range(1, 5):
        with pytest.raises(VerificationFailed) as exc:
            service.confirm_phone(user, started.selector, wrong)
        assert exc.value.reason == "wrong_code" and exc.value.status == 422
    with pytest.raises(VerificationFailed) as fifth:
        service.confirm_phone(user, started.selector, wrong)
    assert fifth.value.reason == "burned" and fifth.value.status == 409
    with pytest.raises(VerificationFailed) as after:  # the right code no longer works either
        service.confirm_phone(user, started.selector, code)
    assert after.value.reason == "burned"
    assert service.identifiers(user) == []
    with platform.db.reader() as s:
        assert s.scalar(select(LeakVerification.attempts)) == 5


def test_an_expired_code_is_refused(platform: Platform, tenant_a) -> None:
    service = leak_citizens_for(platform)
    user = citizen(tenant_a)
    started = service.start_phone(user, PHONE)
    assert timedelta(minutes=9) < started.expires_at - utcnow() <= timedelta(minutes=10)
    with platform.db.transaction() as s:
        s.execute(update(LeakVerification).values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(VerificationFailed) as exc:
        service.confirm_phone(user, started.selector, last_sms_code(platform, PHONE))
    assert exc.value.reason == "expired"
    assert service.identifiers(user) == []


def test_a_code_works_only_for_the_account_that_asked_for_it(platform: Platform, tenant_a, tenant_b) -> None:
    service = leak_citizens_for(platform)
    started = service.start_phone(citizen(tenant_a), PHONE)
    code = last_sms_code(platform, PHONE)
    with pytest.raises(NotFound):
        service.confirm_phone(citizen(tenant_b), started.selector, code)
    assert service.identifiers(citizen(tenant_b)) == []


def test_bad_input_names_the_field_and_never_echoes_the_value(platform: Platform, tenant_a) -> None:
    service = leak_citizens_for(platform)
    with pytest.raises(InvalidInput) as exc:
        service.start_phone(citizen(tenant_a), "+7 999 not a phone 555")
    assert exc.value.field == "phone" and "555" not in str(exc.value)
    with pytest.raises(InvalidInput) as bad_mail:
        service.start_email(citizen(tenant_a), "not-an-email@@x")
    assert bad_mail.value.field == "email" and "not-an-email" not in str(bad_mail.value)
    with pytest.raises(InvalidInput):
        service.confirm_phone(citizen(tenant_a), "short", "123456")
    with pytest.raises(InvalidInput):
        service.confirm_phone(citizen(tenant_a), "A" * 16, "12345")
    with pytest.raises(PermissionDenied):  # staff accounts have no leak-register identifiers
        service.start_phone(tenant_a.users["admin"][0], PHONE)
    assert outbox(platform, "sms") == []


# --- e-mail by a link -----------------------------------------------------------------------------------


def test_an_email_is_verified_by_its_link_for_the_same_citizen(platform: Platform, tenant_a, tenant_b) -> None:
    service = leak_citizens_for(platform)
    user = citizen(tenant_a)
    started = service.start_email(user, "Aigerim@Example.KZ", lang="kk", base_url="https://portal.example")
    link, selector, secret = last_email_link(platform, EMAIL)
    assert link.startswith("https://portal.example/me/leaks/email/") and selector == started.selector
    assert len(secret) >= 22  # >= 128 bits
    with pytest.raises(NotFound):  # another signed-in citizen cannot use the link
        service.confirm_email(citizen(tenant_b), selector, secret)
    with pytest.raises(VerificationFailed) as wrong:
        service.confirm_email(user, selector, secret[:-2] + ("AA" if secret[-2:] != "AA" else "BB"))
    assert wrong.value.reason == "wrong_code"
    identifier = service.confirm_email(user, selector, secret)
    assert (identifier.kind, identifier.verified_via) == ("email", "email_link")
    assert identifier.mask != EMAIL and "aigerim" not in identifier.mask
    with pytest.raises(Conflict):  # verified already: nothing to send
        service.start_email(user, EMAIL)


# --- rate limits ------------------------------------------------------------------------------------------


def test_otp_starts_are_limited_per_citizen_and_per_phone(platform: Platform, tenant_a, tenant_b) -> None:
    service = leak_citizens_for(platform)
    for n in range(5):
        service.start_phone(citizen(tenant_a), f"+7701555000{n}")
    with pytest.raises(RateLimited) as per_user:
        service.start_phone(citizen(tenant_a), "+77015550009")
    assert per_user.value.retry_after_seconds >= 1 and per_user.value.status == 429
    # One phone cannot be flooded from many accounts either: four more starts for +77015550000 from tenant B's
    # citizen reach its limit of five.
    for _ in range(4):
        service.start_phone(citizen(tenant_b), "+77015550000")
    with pytest.raises(RateLimited):
        service.start_phone(citizen(tenant_b), "+77015550000")
    assert len(outbox(platform, "sms")) == 9


def test_lookups_are_rate_limited(platform: Platform, tenant_a) -> None:
    service = leak_citizens_for(platform)
    user = citizen(tenant_a)
    for _ in range(platform.settings.leaks_citizen_lookups_per_hour):
        service.lookup(user)
    with pytest.raises(RateLimited) as exc:
        service.lookup(user)
    assert exc.value.retry_after_seconds > 0


# --- lookups -----------------------------------------------------------------------------------------------


def test_a_citizen_sees_the_incidents_with_their_verified_identifiers_only(platform: Platform, tenant_a,
                                                                             tenant_b) -> None:
    service = leak_citizens_for(platform)
    alice, bob = citizen(tenant_a), citizen(tenant_b)
    verify_phone(platform, alice, PHONE)
    verify_phone(platform, bob, "+77017654321")
    received = make_incident(platform, tenant_a.org_id, advice={"en": "Change your password.",
                                                                "ru": "Смените пароль."})
    verified = make_incident(platform, tenant_b.org_id, status="verified", published=True)
    fabricated = make_incident(platform, tenant_b.org_id, status="fabricated")
    other = make_incident(platform, tenant_b.org_id)
    publish_segment(platform, received, [("phone", PHONE), ("phone", "+77019998877")])
    publish_segment(platform, verified, [("phone", PHONE)])
    publish_segment(platform, fabricated, [("phone", PHONE)])
    publish_segment(platform, other, [("phone", "+77017654321")])
    found = service.lookup(alice, lang="ru")
    assert sorted(i.incident_id for i in found) == sorted([received, verified])
    by_id = {i.incident_id: i for i in found}
    assert by_id[received].status == "received" and by_id[received].advice == "Смените пароль."
    assert by_id[verified].operator == "Org beta" and by_id[verified].status == "verified"
    assert by_id[verified].advice  # the default advice in the citizen's language
    assert by_id[received].matched == (("phone", by_id[received].matched[0][1]),)
    assert "+77011234567" not in json.dumps([i.to_dict() for i in found])
    assert [i.incident_id for i in service.lookup(bob)] == [other]


def test_a_citizen_without_a_verified_iin_gets_no_iin_lookup(platform: Platform, tenant_a, tenant_b) -> None:
    service = leak_citizens_for(platform)
    iin = test_iin(77)
    incident = make_incident(platform, tenant_b.org_id)
    publish_segment(platform, incident, [("iin", iin)])
    user = citizen(tenant_a)
    assert service.identifiers(user) == [] and service.lookup(user) == []
    verify_iin(platform, user, iin)  # the identity provider proves the IIN
    [identifier] = service.identifiers(user)
    assert identifier.kind == "iin" and identifier.verified_via == "identity_provider"
    assert iin not in identifier.mask
    assert [i.incident_id for i in service.lookup(user)] == [incident]
    with pytest.raises(Conflict):
        service.remove(user, identifier.id)


def test_identifiers_are_the_owners_alone(platform: Platform, tenant_a, tenant_b) -> None:
    service = leak_citizens_for(platform)
    mine = verify_phone(platform, citizen(tenant_a), PHONE)
    with pytest.raises(NotFound):
        service.subscribe(citizen(tenant_b), mine, True)
    with pytest.raises(NotFound):
        service.remove(citizen(tenant_b), mine)
    assert service.identifiers(citizen(tenant_b)) == []
    service.remove(citizen(tenant_a), mine)
    assert service.identifiers(citizen(tenant_a)) == []


# --- notifications ---------------------------------------------------------------------------------------


def test_subscribers_are_notified_once_per_incident(platform: Platform, tenant_a, tenant_b) -> None:
    service = leak_citizens_for(platform)
    alice, bob = citizen(tenant_a), citizen(tenant_b)
    phone_id = verify_phone(platform, alice, PHONE)
    service.subscribe(alice, phone_id, True)
    bob_phone = verify_phone(platform, bob, "+77017654321")  # verified, not subscribed
    incident = make_incident(platform, tenant_b.org_id)
    first = publish_segment(platform, incident, [("phone", PHONE), ("phone", "+77017654321")])
    assert service.notify_new_tokens(incident, np.frombuffer(b"".join(first), np.uint8).reshape(-1, 32)) == 1
    assert service.notify_new_tokens(incident, first) == 0  # called twice: nothing new
    second = publish_segment(platform, incident, [("phone", PHONE)])  # a second segment of the same incident
    assert service.notify_new_tokens(incident, second) == 0
    [note] = service.notifications(alice)
    assert (note.incident_id, note.kinds, note.operator, note.channel) == (incident, ("phone",), "Org beta",
                                                                         "sms")
    assert note.sent_at is not None and note.seen_at is None
    # The notice went by SMS to the verified phone (opened from its sealed copy), naming the operator, no values.
    [notice] = [p.read_text(encoding="utf-8") for p in outbox(platform, "sms")
                if p.read_text(encoding="utf-8").startswith(f"To: {PHONE}\n") and "Org beta" in p.read_text(encoding="utf-8")]
    assert "+77017654321" not in notice
    with platform.db.reader() as session:  # the contact is kept only sealed, and not on finished challenges
        sealed = session.scalars(select(LeakCitizenIdentifier.contact_sealed).where(
            LeakCitizenIdentifier.id == phone_id)).one()
        assert sealed and PHONE.encode() not in sealed and PHONE[2:].encode() not in sealed
        assert session.scalars(select(LeakVerification.contact_sealed).where(
            LeakVerification.user_id == alice, LeakVerification.contact_sealed.is_not(None))).all() == []
    assert service.notifications(bob) == []
    service.subscribe(bob, bob_phone, True)  # the cache is invalidated by the subscription
    assert service.notify_new_tokens(incident, first) == 1
    assert service.unseen(alice) == 1
    assert service.mark_seen(alice, note.id).seen_at is not None and service.unseen(alice) == 0
    with pytest.raises(NotFound):
        service.mark_seen(bob, note.id)
    other = make_incident(platform, tenant_a.org_id)
    assert service.notify_new_tokens(other, second) == 1  # a new incident: a new notice
    fabricated = make_incident(platform, tenant_a.org_id, status="fabricated")
    assert service.notify_new_tokens(fabricated, second) == 0
    with platform.db.reader() as s:
        assert s.scalar(select(LeakNotification.id).where(LeakNotification.incident_id == fabricated)) is None


def test_notices_go_by_sms_or_email_when_an_address_is_known(platform: Platform, tenant_a) -> None:
    class Directory:  # what a deployment with sealed contacts plugs in (docs § Delivery)
        def __init__(self) -> None:
            self.book: dict[tuple[int, str], str] = {}

        def address(self, user_id: int, identifier_id: int, kind: str) -> str | None:
            return self.book.get((identifier_id, kind))

    service = leak_citizens_for(platform)
    directory = Directory()
    service.contacts = directory
    user = citizen(tenant_a)
    phone_id = verify_phone(platform, user, PHONE)
    directory.book[(phone_id, "phone")] = PHONE
    service.subscribe(user, phone_id, True)
    incident = make_incident(platform, tenant_a.org_id)
    tokens = publish_segment(platform, incident, [("phone", PHONE)])
    before = len(outbox(platform, "sms"))
    assert service.notify_new_tokens(incident, tokens) == 1
    sms = outbox(platform, "sms")[before:]
    assert len(sms) == 1
    text = sms[0].read_text(encoding="utf-8")
    assert "Org alpha" in text and "/me/leaks" in text and "1234567" not in text.split("\n\n", 1)[1]
    assert service.notifications(user)[0].channel == "sms"


def test_unsubscribed_and_removed_identifiers_are_not_joined(platform: Platform, tenant_a) -> None:
    service = leak_citizens_for(platform)
    user = citizen(tenant_a)
    phone_id = verify_phone(platform, user, PHONE)
    service.subscribe(user, phone_id, True)
    assert len(service.subscriber_tokens().tokens) == 1
    service.subscribe(user, phone_id, False)
    incident = make_incident(platform, tenant_a.org_id)
    tokens = publish_segment(platform, incident, [("phone", PHONE)])
    assert service.notify_new_tokens(incident, tokens) == 0
    with platform.db.reader() as s:
        assert s.scalar(select(LeakCitizenIdentifier.subscribed_at)) is None


# --- the join -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_join_tokens_equals_a_brute_force_intersection(seed: int) -> None:
    rng = np.random.default_rng(seed)
    subscribers = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    new = rng.integers(0, 256, (5000, 32), dtype=np.uint8)
    picks = rng.choice(len(subscribers), 700, replace=True)
    new[rng.choice(len(new), 700, replace=False)] = subscribers[picks]
    # Same first 64 bits, different tails: candidates that must be rejected on the full token.
    twins = subscribers[:50].copy()
    twins[:, 31] ^= 0xFF
    new[:50] = twins
    subscribers[100:110] = subscribers[200:210]  # duplicate subscriber tokens (two citizens, one phone)
    i, j = join_tokens(new, subscribers)
    got = set(zip(i.tolist(), j.tolist()))
    sub_index: dict[bytes, list[int]] = {}
    for k, token in enumerate(map(bytes, subscribers)):
        sub_index.setdefault(token, []).append(k)
    expected = {(a, b) for a, token in enumerate(map(bytes, new)) for b in sub_index.get(token, [])}
    assert got == expected and len(expected) >= 600
    assert np.all(np.diff(i) >= 0)


def test_join_tokens_edge_cases() -> None:
    empty = np.zeros((0, 32), np.uint8)
    one = np.full((1, 32), 7, np.uint8)
    for a, b in ((empty, one), (one, empty), (empty, empty)):
        i, j = join_tokens(a, b)
        assert i.size == 0 and j.size == 0
    i, j = join_tokens(one, np.vstack([one, one]))
    assert sorted(j.tolist()) == [0, 1] and i.tolist() == [0, 0]
    with pytest.raises(InvalidInput):
        join_tokens(np.zeros((2, 31), np.uint8), one)
