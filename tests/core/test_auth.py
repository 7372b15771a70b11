"""Organizations, users, sessions, API keys and the one place tenant isolation is enforced."""

from __future__ import annotations

import os

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from conftest import Tenant, make_bin
from qorgau.core import auth
from qorgau.core.db import utcnow
from qorgau.core.errors import AuthenticationRequired, Conflict, InvalidInput, PermissionDenied
from qorgau.core.platform import Platform


def test_an_organization_needs_a_valid_bin(platform: Platform) -> None:
    with platform.db.transaction() as s:
        with pytest.raises(InvalidInput) as err:
            auth.create_organization(s, name="Bad", bin="940140000386", actor="test")
    assert err.value.field == "bin" and "check digit" in err.value.message


def test_two_organizations_cannot_share_a_bin(platform: Platform) -> None:
    with platform.db.transaction() as s:
        auth.create_organization(s, name="One", bin=make_bin(5), actor="test")
    with platform.db.transaction() as s:
        with pytest.raises(Conflict):
            auth.create_organization(s, name="Two", bin=make_bin(5), actor="test")


def test_a_failed_create_writes_nothing(platform: Platform, tenant_a: Tenant) -> None:
    with platform.db.reader() as s:
        before = auth.count_users(s)
    with pytest.raises(InvalidInput):
        with platform.db.transaction() as s:
            auth.create_user(s, organization_id=tenant_a.org_id, username="ok-user", display_name="A",
                             roles=["dpo"], actor="test")
            auth.create_user(s, organization_id=tenant_a.org_id, username="bad-user", display_name="B",
                             roles=["wizard"], actor="test")
    with platform.db.reader() as s:
        assert auth.count_users(s) == before


def test_passwords_are_stored_as_argon2_hashes(platform: Platform, tenant_a: Tenant) -> None:
    with platform.db.reader() as s:
        user = auth.find_user(s, "alpha-dpo")
    assert user.password_hash.startswith("$argon2id$")
    assert "password" not in repr(user) and user.display_name not in repr(user)


def test_login_with_the_right_password_opens_a_session(platform: Platform, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["dpo"]
    with platform.db.transaction() as s:
        user = auth.authenticate_password(s, username, password)
        token = auth.open_session(s, user, hours=1)
    with platform.db.reader() as s:
        principal = auth.resolve_session(s, token)
    assert principal.organization_id == tenant_a.org_id and principal.roles == {"dpo"}
    assert principal.csrf_token and principal.csrf_token not in repr(principal)


def test_a_wrong_password_and_an_unknown_user_give_the_same_answer(platform: Platform, tenant_a: Tenant) -> None:
    messages = []
    for username in ("alpha-dpo", "nobody-here"):
        with pytest.raises(AuthenticationRequired) as err:
            with platform.db.transaction() as s:
                auth.authenticate_password(s, username, "wrong-password-123")
        messages.append(err.value.message)
    assert messages[0] == messages[1]


def test_an_expired_session_is_refused(platform: Platform, tenant_a: Tenant) -> None:
    _, username, password = tenant_a.users["dpo"]
    with platform.db.transaction() as s:
        token = auth.open_session(s, auth.authenticate_password(s, username, password), hours=1)
        s.execute(update(auth.WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    with platform.db.reader() as s:
        with pytest.raises(AuthenticationRequired, match="expired"):
            auth.resolve_session(s, token)


def test_a_one_time_password_must_be_changed(platform: Platform, tenant_a: Tenant) -> None:
    with platform.db.transaction() as s:
        user, one_time = auth.create_user(s, organization_id=tenant_a.org_id, username="fresh", display_name="F",
                                          roles=["reviewer"], actor="test")
    assert one_time and user.must_change_password
    with platform.db.transaction() as s:
        with pytest.raises(InvalidInput) as err:
            auth.change_password(s, user.id, one_time, "short")
        assert err.value.field == "new_password"
    with platform.db.transaction() as s:
        auth.change_password(s, user.id, one_time, "a-much-better-passphrase")
    with platform.db.transaction() as s:
        assert not auth.authenticate_password(s, "fresh", "a-much-better-passphrase").must_change_password


def test_an_api_key_is_shown_once_and_stored_only_as_a_hash(platform: Platform, tenant_a: Tenant) -> None:
    with platform.db.reader() as s:
        key = auth.get_api_key(s, tenant_a.api_key_id)
        principal = auth.resolve_api_key(s, tenant_a.api_key)
    secret = tenant_a.api_key.rsplit("_", 1)[1]
    assert secret not in key.secret_hash and principal.organization_id == tenant_a.org_id
    with platform.db.reader() as s:
        with pytest.raises(AuthenticationRequired):
            auth.resolve_api_key(s, tenant_a.api_key[:-1] + ("A" if tenant_a.api_key[-1] != "A" else "B"))


def test_a_tenant_session_never_loads_another_organizations_rows(platform: Platform, tenant_a: Tenant,
                                                                 tenant_b: Tenant) -> None:
    with platform.db.reader(tenant_a.org_id) as s:
        users = s.scalars(select(auth.User)).all()
        keys = auth.list_api_keys(s)
        with pytest.raises(Exception, match="not found"):
            auth.get_user(s, tenant_b.users["admin"][0])
        with pytest.raises(Exception, match="not found"):
            auth.get_api_key(s, tenant_b.api_key_id)
    assert {u.organization_id for u in users} == {tenant_a.org_id}
    assert {k.organization_id for k in keys} == {tenant_a.org_id}


def test_a_tenant_session_refuses_to_write_another_organizations_rows(platform: Platform, tenant_a: Tenant,
                                                                      tenant_b: Tenant) -> None:
    with pytest.raises(PermissionDenied):
        with platform.db.transaction(tenant_a.org_id) as s:
            s.add(auth.ApiKey(organization_id=tenant_b.org_id, name="sneaky", prefix="kabc", secret_hash="0" * 64,
                              roles=["admin"], created_by="test"))


def test_a_tenant_session_cannot_bulk_update_another_organizations_rows(platform: Platform, tenant_a: Tenant,
                                                                        tenant_b: Tenant) -> None:
    with platform.db.transaction(tenant_a.org_id) as s:
        s.execute(update(auth.ApiKey).values(revoked_at=utcnow()))
    with platform.db.reader() as s:
        assert auth.get_api_key(s, tenant_b.api_key_id).revoked_at is None
        assert auth.get_api_key(s, tenant_a.api_key_id).revoked_at is not None


def test_roles_are_checked_by_name(platform: Platform) -> None:
    principal = auth.Principal("user", 1, 1, frozenset({"reviewer"}))
    principal.require("reviewer", "admin")
    with pytest.raises(PermissionDenied, match="admin, dpo"):
        principal.require(auth.Role.ADMIN, auth.Role.DPO)


def test_changing_the_language_and_logging_out_are_audited(platform: Platform, tenant_a: Tenant) -> None:
    from qorgau.core import audit

    user_id, username, password = tenant_a.users["reviewer"]
    with platform.db.transaction() as s:
        token = auth.open_session(s, auth.authenticate_password(s, username, password), hours=1)
        auth.set_language(s, user_id, "kk")
        auth.close_session(s, token)
    with platform.db.reader(tenant_a.org_id) as s:
        actions = [e.action for e in audit.list_entries(s, limit=3)]
    assert actions == ["auth.logout", "user.language", "auth.login"]


def test_the_production_profile_is_argon2ids_default_and_the_test_profile_only_with_its_variable() -> None:
    """The suite hashes with minimal parameters (tests/conftest.py); a process without the variable must not."""
    import subprocess
    import sys

    code = ("from qorgau.core import auth; h = auth._hasher.hash('correct horse battery'); "
            "print(h.split('$')[3]); print(auth._hasher.verify(h, 'correct horse battery'))")
    env = {k: v for k, v in os.environ.items() if k != "QORGAU_TEST_FAST_PASSWORD_HASHING"}
    strong = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert strong.stdout.split() == ["m=65536,t=3,p=4", "True"]
    fast = subprocess.run([sys.executable, "-c", code], env={**env, "QORGAU_TEST_FAST_PASSWORD_HASHING": "1"},
                          capture_output=True, text=True, check=True)
    assert fast.stdout.split() == ["m=1024,t=1,p=1", "True"]
