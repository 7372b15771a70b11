"""Citizen identity: one-time enrollment codes, one IIN per identity, the identity-provider plug point, and
finding a citizen's subjects at every operator (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from conftest import Tenant
from qorgau.consent import citizens as citizens_module
from qorgau.consent.citizens import (
    MAX_CODE_ATTEMPTS,
    MAX_USER_FAILURES,
    CitizenEnrollment,
    CitizenIdentity,
    Citizens,
    IdentityNotVerified,
    VerificationOutcome,
    VerifiedIdentity,
    citizens_for,
    format_code,
    parse_code,
)
from qorgau.consent.service import ConsentService, SubjectRef
from qorgau.core import audit, auth
from qorgau.core.db import utcnow
from qorgau.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from qorgau.core.platform import Platform
from qorgau.vault import vault_for

from .helpers import give
from .owned import subject_iin

IIN = subject_iin(4242)
OTHER_IIN = subject_iin(5151)


def citizen_id(tenant: Tenant) -> int:
    return tenant.users["citizen"][0]


def issue(platform: Platform, iin: str = IIN, **kwargs: Any) -> Any:
    with platform.db.transaction() as session:
        return citizens_for(platform).issue_enrollment(session, iin, actor="test", **kwargs)


def wrong(code: str) -> str:
    """The same code with its last character changed."""
    last = code[-1]
    return code[:-1] + ("2" if last != "2" else "3")


def new_citizen(platform: Platform, tenant: Tenant, name: str) -> int:
    with platform.db.transaction() as session:
        user, _ = auth.create_user(session, organization_id=tenant.org_id, username=name, display_name=name,
                                   roles=["citizen"], actor="test", password="another-citizen-1")
        return user.id


class Clock:
    """Moves the citizens module's clock (expiry and throttling windows) without sleeping."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = timedelta()
        monkeypatch.setattr(citizens_module, "utcnow", lambda: utcnow() + self.offset)

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


# --- enrollment codes -------------------------------------------------------------------------------


def test_an_enrollment_code_verifies_the_citizen_once(platform: Platform, tenant_a: Tenant) -> None:
    issued = issue(platform)
    assert len(issued.code) == 29 and issued.code.count("-") == 5
    summary = citizens_for(platform).verify(citizen_id(tenant_a), issued.code, actor="user:1")
    assert summary.masked_iin == IIN[:2] + "******" + IIN[-4:]
    assert summary.method == "enrollment_code"
    with platform.db.reader() as session:
        assert citizens_for(platform).verified_iin(session, citizen_id(tenant_a)) == IIN
        row = session.scalar(select(CitizenEnrollment).where(CitizenEnrollment.id == issued.enrollment_id))
        assert row.status() == "redeemed" and row.redeemed_by == citizen_id(tenant_a)
        assert row.iin_sealed is None  # the IIN is not kept once the code did its job
    with pytest.raises(IdentityNotVerified) as refused:
        citizens_for(platform).verify(citizen_id(tenant_a), issued.code, actor="user:1")
    assert refused.value.reason == "used" and refused.value.field == "code"


def test_neither_the_iin_nor_the_code_is_stored_in_the_clear(platform: Platform, tenant_a: Tenant) -> None:
    issued = issue(platform)
    second = issue(platform, OTHER_IIN)
    citizens_for(platform).verify(citizen_id(tenant_a), issued.code, actor="user:1")
    with platform.db.reader() as session:
        dump = repr([tuple(r) for table in ("citizen_identities", "citizen_enrollments")
                     for r in session.execute(text(f"SELECT * FROM {table}")).all()])
    for secret in (IIN, OTHER_IIN, issued.code.replace("-", ""), second.code.replace("-", "")[8:]):
        assert secret not in dump
        assert secret.encode() not in dump.encode()


def test_codes_are_typo_tolerant_but_malformed_ones_are_refused_without_counting(
        platform: Platform, tenant_a: Tenant) -> None:
    selector, verifier = parse_code("abcd-efgh-jkmn-pqrs-tvwx-yzo1")
    assert selector + verifier == "ABCDEFGHJKMNPQRSTVWXYZ01"
    assert format_code(selector, verifier) == "ABCD-EFGH-JKMN-PQRS-TVWX-YZ01"
    for bad in ("", "short", "ABCD-EFGH-JKMN-PQRS-TVWX-YZU1", "x" * 100):
        with pytest.raises(InvalidInput) as exc:
            parse_code(bad)
        assert exc.value.field == "code"
    issued = issue(platform)
    spaced = issued.code.lower().replace("-", " ").replace("0", "o")
    with pytest.raises(InvalidInput):
        citizens_for(platform).verify(citizen_id(tenant_a), "not a code", actor="user:1")
    with platform.db.reader() as session:
        assert session.scalar(select(CitizenEnrollment.attempts)) == 0
        assert session.execute(text("SELECT count(*) FROM citizen_redeem_throttle")).scalar() == 0
    assert citizens_for(platform).verify(citizen_id(tenant_a), spaced, actor="user:1").method == "enrollment_code"


def test_a_code_is_blocked_after_five_wrong_attempts(platform: Platform, tenant_a: Tenant) -> None:
    issued = issue(platform)
    service = citizens_for(platform)
    for attempt in range(MAX_CODE_ATTEMPTS):
        with pytest.raises(IdentityNotVerified) as refused:
            service.verify(citizen_id(tenant_a), wrong(issued.code), actor="user:1")
        assert refused.value.reason == "wrong_code", attempt
    with pytest.raises(IdentityNotVerified) as refused:
        service.verify(citizen_id(tenant_a), issued.code, actor="user:1")  # the right code, too late
    assert refused.value.reason == "locked"
    with platform.db.reader() as session:
        row = session.get(CitizenEnrollment, issued.enrollment_id)
        assert row.attempts == MAX_CODE_ATTEMPTS and row.iin_sealed is None
        assert not service.is_verified(session, citizen_id(tenant_a))
        failed = audit.list_entries(session, action="citizens.redeem_failed", limit=50)
    assert len(failed) == MAX_CODE_ATTEMPTS + 1


def test_an_expired_code_is_refused_and_purged(platform: Platform, tenant_a: Tenant,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    issued = issue(platform, valid_for=timedelta(hours=1))
    clock.advance(timedelta(hours=1, seconds=1))
    with pytest.raises(IdentityNotVerified) as refused:
        citizens_for(platform).verify(citizen_id(tenant_a), issued.code, actor="user:1")
    assert refused.value.reason == "expired"
    with platform.db.transaction() as session:
        assert citizens_for(platform).purge_enrollments(session, actor="test") == 1
    with platform.db.reader() as session:
        assert session.get(CitizenEnrollment, issued.enrollment_id).iin_sealed is None


def test_an_account_that_keeps_failing_is_throttled_for_a_day(platform: Platform, tenant_a: Tenant,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    service = citizens_for(platform)
    good = issue(platform)
    for _ in range(MAX_USER_FAILURES):
        guess = issue(platform, OTHER_IIN).code  # a real selector each time, a wrong secret
        with pytest.raises(IdentityNotVerified):
            service.verify(citizen_id(tenant_a), wrong(guess), actor="user:1")
    with pytest.raises(IdentityNotVerified) as refused:
        service.verify(citizen_id(tenant_a), good.code, actor="user:1")
    assert refused.value.reason == "throttled"
    with platform.db.reader() as session:
        assert session.get(CitizenEnrollment, good.enrollment_id).status() == "pending"  # not burned
    clock.advance(timedelta(hours=24, seconds=1))
    assert service.verify(citizen_id(tenant_a), good.code, actor="user:1").method == "enrollment_code"


def test_a_code_bound_to_an_account_works_only_for_it(platform: Platform, tenant_a: Tenant) -> None:
    other = new_citizen(platform, tenant_a, "second-citizen")
    issued = issue(platform, user_id=citizen_id(tenant_a))
    with pytest.raises(IdentityNotVerified) as refused:
        citizens_for(platform).verify(other, issued.code, actor="user:2")
    assert refused.value.reason == "not_for_you"
    citizens_for(platform).verify(citizen_id(tenant_a), issued.code, actor="user:1")


def test_one_iin_has_one_citizen_identity_and_a_refused_link_changes_nothing(
        platform: Platform, tenant_a: Tenant) -> None:
    service = citizens_for(platform)
    service.verify(citizen_id(tenant_a), issue(platform).code, actor="user:1")
    other = new_citizen(platform, tenant_a, "second-citizen")
    second = issue(platform)  # the same IIN again, for someone else's account
    with pytest.raises(Conflict) as exc:
        service.verify(other, second.code, actor="user:2")
    assert exc.value.field == "code" and IIN not in exc.value.message
    with platform.db.reader() as session:
        assert session.get(CitizenEnrollment, second.enrollment_id).status() == "pending"  # rolled back whole
        assert not service.is_verified(session, other)
    # and an account cannot switch to another person's IIN either
    with pytest.raises(Conflict):
        service.verify(citizen_id(tenant_a), issue(platform, OTHER_IIN).code, actor="user:1")
    # re-verifying with the same IIN refreshes the verification
    again = service.verify(citizen_id(tenant_a), issue(platform).code, actor="user:1")
    with platform.db.reader() as session:
        actions = [e.action for e in audit.list_entries(session, limit=100)]
        assert service.identity(session, citizen_id(tenant_a)).verified_at == again.verified_at
    assert "citizens.verify" in actions and "citizens.reverify" in actions


def test_only_citizen_accounts_can_link_an_identity(platform: Platform, tenant_a: Tenant) -> None:
    issued = issue(platform)
    with pytest.raises(PermissionDenied):
        citizens_for(platform).verify(tenant_a.users["dpo"][0], issued.code, actor="user:9")
    with platform.db.reader() as session:
        assert session.get(CitizenEnrollment, issued.enrollment_id).status() == "pending"


@pytest.mark.parametrize("value", ["791028302729", "12345", "", "79102830272a", "7" * 70])
def test_an_invalid_iin_is_refused_without_echoing_it(platform: Platform, value: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        issue(platform, value)
    assert exc.value.field == "iin"
    if value:
        assert value not in exc.value.message
    with platform.db.reader() as session:
        assert session.execute(text("SELECT count(*) FROM citizen_enrollments")).scalar() == 0


def test_codes_can_be_revoked_by_their_issuer_only(platform: Platform, tenant_a: Tenant, tenant_b: Tenant) -> None:
    service = citizens_for(platform)
    issued = issue(platform, organization_id=tenant_a.org_id)
    with platform.db.transaction(tenant_b.org_id) as session, pytest.raises(NotFound):
        service.revoke_enrollment(session, issued.selector, actor="user:b", organization_id=tenant_b.org_id)
    with platform.db.transaction(tenant_a.org_id) as session:
        assert service.revoke_enrollment(session, issued.selector.lower(), actor="user:a",
                                         organization_id=tenant_a.org_id).status() == "revoked"
    with pytest.raises(IdentityNotVerified) as refused:
        service.verify(citizen_id(tenant_a), issued.code, actor="user:1")
    assert refused.value.reason == "revoked"
    with platform.db.reader() as session:
        assert [e.selector for e in service.list_enrollments(session, organization_id=tenant_b.org_id)] == []
        assert [e.selector for e in service.list_enrollments(session, organization_id=tenant_a.org_id)] \
            == [issued.selector]


def test_nothing_prints_an_iin_or_a_code(platform: Platform, tenant_a: Tenant) -> None:
    issued = issue(platform)
    summary = citizens_for(platform).verify(citizen_id(tenant_a), issued.code, actor="user:1")
    identity = VerifiedIdentity(IIN, "enrollment_code", "x")
    with platform.db.reader() as session:
        row = session.scalar(select(CitizenIdentity))
        enrollment = session.scalar(select(CitizenEnrollment))
        entries = audit.list_entries(session, limit=100)
    for shown in (repr(issued), str(issued), repr(identity), repr(row), repr(enrollment), repr(summary),
                  repr(citizens_for(platform))):
        assert IIN not in shown and issued.code not in shown
    for entry in entries:
        assert IIN not in repr(entry.details) and issued.code.replace("-", "") not in repr(entry.details)


def test_unlinking_removes_the_identity(platform: Platform, tenant_a: Tenant) -> None:
    service = citizens_for(platform)
    service.verify(citizen_id(tenant_a), issue(platform).code, actor="user:1")
    with platform.db.transaction() as session:
        assert service.unlink(session, citizen_id(tenant_a), actor="test")
        assert not service.unlink(session, citizen_id(tenant_a), actor="test")
    with platform.db.reader() as session:
        assert service.identity(session, citizen_id(tenant_a)) is None
        with pytest.raises(PermissionDenied):
            service.verified_iin(session, citizen_id(tenant_a))
    # the IIN is free again for a new account
    other = new_citizen(platform, tenant_a, "new-account")
    assert service.verify(other, issue(platform).code, actor="user:3").method == "enrollment_code"


# --- the identity-provider plug point -----------------------------------------------------------------


class SignedAssertionProvider:
    """A provider that checks an Ed25519-signed assertion "IIN|user id", the shape of a digital-signature
    login (eGov / NCALayer): the platform trusts the signer's public key, never the client."""

    method = "signed_assertion"

    def __init__(self, trusted: Ed25519PublicKey) -> None:
        self.trusted = trusted

    def verify(self, session: Session, user_id: int, credential: str) -> VerificationOutcome:
        payload, _, signature = credential.rpartition(".")
        try:
            self.trusted.verify(bytes.fromhex(signature), payload.encode())
        except (InvalidSignature, ValueError):
            return VerificationOutcome(None, "bad_signature")
        iin, _, uid = payload.partition("|")
        if uid != str(user_id):
            return VerificationOutcome(None, "not_for_you")
        return VerificationOutcome(VerifiedIdentity(iin, self.method, reference="sig:" + signature[:16]))


def test_a_production_identity_provider_plugs_in(platform: Platform, tenant_a: Tenant) -> None:
    signer = Ed25519PrivateKey.generate()
    service = Citizens(platform)
    service.register_provider(SignedAssertionProvider(signer.public_key()))
    uid = citizen_id(tenant_a)
    payload = f"{IIN}|{uid}"
    forged = Ed25519PrivateKey.generate().sign(payload.encode()).hex()
    with pytest.raises(IdentityNotVerified) as refused:
        service.verify(uid, f"{payload}.{forged}", actor="user:1", method="signed_assertion")
    assert refused.value.reason == "bad_signature"
    good = signer.sign(payload.encode()).hex()
    summary = service.verify(uid, f"{payload}.{good}", actor="user:1", method="signed_assertion")
    assert summary.method == "signed_assertion"
    with pytest.raises(InvalidInput):
        service.verify(uid, "x", actor="user:1", method="egov")  # not registered
    with pytest.raises(TypeError):
        service.register_provider(object())  # type: ignore[arg-type]


# --- finding the citizen's subjects at every operator ---------------------------------------------------


def test_a_citizen_is_found_at_every_operator_by_their_own_iin_only(
        platform: Platform, consents: ConsentService, tenant_a: Tenant, tenant_b: Tenant) -> None:
    me = SubjectRef(identifier_type="KZ_IIN", identifier=IIN)
    someone = SubjectRef(identifier_type="KZ_IIN", identifier=OTHER_IIN)
    give(consents, platform, tenant_a.org_id, me)
    give(consents, platform, tenant_b.org_id, me, purpose="marketing.email", data_categories=["EMAIL_ADDRESS"])
    give(consents, platform, tenant_b.org_id, someone)
    service = citizens_for(platform)
    service.verify(citizen_id(tenant_a), issue(platform).code, actor="user:1")
    found = service.subjects(citizen_id(tenant_a))
    assert [(s.organization_id, s.found_by) for s in found] == [(tenant_a.org_id, "iin"), (tenant_b.org_id, "iin")]
    vault = vault_for(platform)
    for s in found:
        with platform.db.reader(s.organization_id) as session:
            assert vault.lookup(session, "KZ_IIN", IIN) == s.subject_id
    with platform.db.reader(tenant_b.org_id) as session:
        stranger = vault.lookup(session, "KZ_IIN", OTHER_IIN)
    assert stranger not in {s.subject_id for s in found}
    # another citizen, verified for another IIN, finds only that person
    other = new_citizen(platform, tenant_b, "other-citizen")
    service.verify(other, issue(platform, OTHER_IIN).code, actor="user:2")
    assert [(s.organization_id, s.subject_id) for s in service.subjects(other)] == [(tenant_b.org_id, stranger)]
    with pytest.raises(PermissionDenied):
        service.subjects(tenant_a.users["admin"][0])  # no verified identity, nothing to look up


# --- the command line ---------------------------------------------------------------------------------


def run_cli(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QORGAU_DATA_DIR": str(data_dir), "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("QORGAU_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "qorgau.cli", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)


def test_the_cli_issues_codes_from_stdin_and_never_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "var"
    assert run_cli(data, "init", "--demo").returncode == 0
    refused = run_cli(data, "citizens", "enroll", "--iin", IIN)
    assert refused.returncode == 2 and "--iin -" in refused.stderr and IIN not in refused.stderr + refused.stdout
    bad = run_cli(data, "citizens", "enroll", "--iin", "-", stdin="791028302729\n")
    assert bad.returncode == 2 and "[--iin]" in bad.stderr and "791028302729" not in bad.stderr
    made = run_cli(data, "citizens", "enroll", "--iin", "-", "--user", "demo-citizen", "--valid-hours", "2",
                   stdin=IIN + "\n")
    assert made.returncode == 0, made.stderr
    code = made.stdout.split("shown once):", 1)[1].split()[0]
    assert parse_code(code) and IIN not in made.stdout
    selector = code.replace("-", "")[:8]
    listed = run_cli(data, "citizens", "codes").stdout
    assert selector in listed and "pending" in listed and code not in listed
    assert "revoked" in run_cli(data, "citizens", "revoke", selector).stdout
    status = run_cli(data, "citizens", "status", "demo-citizen")  # the demo seeded a verified identity
    assert status.returncode == 0 and "method demo" in status.stdout and "******" in status.stdout
    assert run_cli(data, "citizens", "unlink", "demo-citizen").returncode == 0
    assert run_cli(data, "citizens", "status", "demo-citizen").returncode == 1
    assert run_cli(data, "citizens", "unlink", "demo-citizen").returncode == 2
    assert "0 expired" in run_cli(data, "citizens", "purge").stdout
    for stored in data.glob("qorgau.db*"):  # the database, its WAL and shared-memory files
        assert IIN.encode() not in stored.read_bytes(), stored.name
