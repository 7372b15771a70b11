"""The per-process token cache: fast, and never a way back to a shredded subject.

A shred in this process is seen at once; a shred in another process within ``cache_ttl`` seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from qorgau.core.platform import Platform
from qorgau.vault.service import SubjectRecord, Token, Vault, vault_for

from .conftest import IIN


def tokenize(platform: Platform, vault: Vault, org: int, value: str = IIN) -> Token:
    with platform.db.transaction(org) as s:
        return vault.tokenize(s, "KZ_IIN", value, actor="test")


def test_a_warm_tokenize_comes_from_the_cache_only_after_commit(platform, tenant_a) -> None:
    vault = Vault(platform, cache_ttl=3600)
    with platform.db.transaction(tenant_a.org_id) as s:
        first = vault.tokenize(s, "KZ_IIN", IIN, actor="test")
        assert len(vault._cache) == 0  # not before the commit
    assert len(vault._cache) == 1
    with platform.db.transaction(tenant_a.org_id) as s:
        from sqlalchemy import delete

        from qorgau.vault.models import VaultLookup

        s.execute(delete(VaultLookup))  # the database no longer knows the value: only the cache can answer
    assert tokenize(platform, vault, tenant_a.org_id) == Token(first.pseudonym, first.subject_id, False)


def test_a_rolled_back_tokenize_leaves_nothing_in_the_cache(platform, vault, tenant_a) -> None:
    with pytest.raises(RuntimeError), platform.db.transaction(tenant_a.org_id) as s:
        ghost = vault.tokenize(s, "KZ_IIN", IIN, actor="test")
        # a later batch in the same transaction releases SAVEPOINTs: that is not a commit either
        vault.tokenize_many(s, [SubjectRecord({"KZ_IIN": "061211600012"})], actor="test")
        raise RuntimeError("the caller's transaction fails")
    assert len(vault._cache) == 0
    real = tokenize(platform, vault, tenant_a.org_id)
    assert real.created  # the subject of the rolled-back call never existed
    with platform.db.transaction(tenant_a.org_id) as s:
        assert vault.lookup(s, "KZ_IIN", IIN) == real.subject_id
    assert ghost.pseudonym != real.pseudonym


def test_a_shred_in_this_process_is_seen_at_once(platform, vault, tenant_a) -> None:
    old = tokenize(platform, vault, tenant_a.org_id)
    assert tokenize(platform, vault, tenant_a.org_id) == Token(old.pseudonym, old.subject_id, False)  # warm
    other = Vault(platform, cache_ttl=3600)  # a second vault object in this process shares the cache
    with platform.db.transaction(tenant_a.org_id) as s:
        other.shred(s, old.pseudonym, reason="consent withdrawn", actor="test")
    new = tokenize(platform, vault, tenant_a.org_id)
    assert new.created and new.subject_id != old.subject_id
    assert tokenize(platform, other, tenant_a.org_id).subject_id == new.subject_id


def test_a_shred_inside_the_same_transaction_as_a_tokenize_never_caches_the_erased_subject(platform, vault, tenant_a) -> None:
    with platform.db.transaction(tenant_a.org_id) as s:
        old = vault.tokenize(s, "KZ_IIN", IIN, actor="test")
        vault.shred(s, old.pseudonym, reason="test", actor="test")
    assert old.subject_id not in [v[1] for v in vault._cache._entries.values()]
    assert tokenize(platform, vault, tenant_a.org_id).created


def test_a_shred_in_another_process_is_seen_within_the_cache_ttl(platform, tenant_a, settings) -> None:
    ttl = 0.5
    vault = Vault(platform, cache_ttl=ttl)
    old = tokenize(platform, vault, tenant_a.org_id)
    assert tokenize(platform, vault, tenant_a.org_id).subject_id == old.subject_id  # warm in this process
    script = textwrap.dedent(f"""
        from pathlib import Path
        from qorgau.core.platform import Platform
        from qorgau.core.settings import Settings
        from qorgau.vault.service import vault_for
        platform = Platform.open(Settings(data_dir=Path({str(settings.data_dir)!r}),
                                          database_url={settings.database_url!r}, sth_interval_seconds=0))
        with platform.db.transaction({tenant_a.org_id}) as s:
            vault_for(platform).shred(s, {old.pseudonym!r}, reason="another process", actor="test")
        print("shredded")
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QORGAU_")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and "shredded" in done.stdout, done.stderr
    shredded_at = time.monotonic()
    # Within the TTL this process may still hand out the old token (the documented bound) …
    time.sleep(max(0.0, ttl - (time.monotonic() - shredded_at)) + 0.1)
    # … after it, never again.
    new = tokenize(platform, vault, tenant_a.org_id)
    assert new.created and new.subject_id != old.subject_id and new.pseudonym != old.pseudonym


def test_stale_entries_are_rechecked_against_the_database(platform, tenant_a) -> None:
    vault = Vault(platform, cache_ttl=0.0)  # every hit re-checked: the cache can never be stale
    old = tokenize(platform, vault, tenant_a.org_id)
    with platform.db.transaction(tenant_a.org_id) as s:
        # Simulate another process's shred: straight in the database, bypassing this process's cache.
        from sqlalchemy import delete

        from qorgau.vault.models import VaultLookup

        s.execute(delete(VaultLookup))
    assert tokenize(platform, vault, tenant_a.org_id).subject_id != old.subject_id


def test_caches_are_per_database(platform, tenant_a, tmp_path) -> None:
    vault = vault_for(platform)
    tokenize(platform, vault, tenant_a.org_id)
    from qorgau.core.settings import Settings

    other = Platform.initialize(Settings(data_dir=tmp_path / "other", database_url=f"sqlite:///{tmp_path / 'other' / 'q.db'}",
                                         sth_interval_seconds=0))
    try:
        assert vault_for(other)._cache is not vault._cache and len(vault_for(other)._cache) == 0
    finally:
        other.close()


def test_organization_keys_from_a_rolled_back_transaction_are_never_remembered(platform, vault, tenant_a) -> None:
    from qorgau.vault import service

    with pytest.raises(RuntimeError), platform.db.transaction(tenant_a.org_id) as s:
        vault.tokenize(s, "KZ_IIN", IIN, actor="test")  # creates the organization's keys in this transaction
        raise RuntimeError("rolled back")
    assert (vault._namespace, tenant_a.org_id) not in service._ORG_KEYS
    token = tokenize(platform, vault, tenant_a.org_id)
    service._ORG_KEYS.clear()  # what a restart (or another process) sees: only the committed keys
    vault._cache.clear()
    with platform.db.reader(tenant_a.org_id) as s:
        assert vault.lookup(s, "KZ_IIN", IIN) == token.subject_id
