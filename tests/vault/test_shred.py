"""Crypto-shredding: the key goes, every copy of the identity becomes unreadable, a signed certificate proves it."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select, text, update

from qorgau.core import audit
from qorgau.core.errors import IntegrityFailure, InvalidInput
from qorgau.core.keys import DataKey, FileKeyProvider, KeyFileError, parse_ciphertext, rotate_master_key
from qorgau.core.platform import Platform
from qorgau.vault import certificates
from qorgau.vault.models import ErasureCertificateRecord, VaultLookup, VaultPseudonym, VaultSubject
from qorgau.vault.service import SubjectErased, SubjectRecord, UnknownPseudonym, Vault

from .conftest import IIN, NAME, PHONE, principal


def make_subject(platform: Platform, vault: Vault, org: int, **identifiers: str):
    with platform.db.transaction(org) as s:
        token, = vault.tokenize_many(s, [SubjectRecord(identifiers or {"KZ_IIN": IIN, "PERSON": NAME,
                                                                       "PHONE_NUMBER": PHONE})], actor="test")
    return token


def shred(platform: Platform, vault: Vault, org: int, pseudonym: str, reason: str = "consent withdrawn"):
    with platform.db.transaction(org) as s:
        return vault.shred(s, pseudonym, reason=reason, actor="user:9")


def test_after_a_shred_the_subject_is_erased_everywhere_but_the_pseudonym_still_answers(platform, vault, tenant_a) -> None:
    token = make_subject(platform, vault, tenant_a.org_id)
    certificate = shred(platform, vault, tenant_a.org_id, token.pseudonym)
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    with pytest.raises(SubjectErased) as caught, platform.db.transaction(tenant_a.org_id) as s:
        vault.detokenize(s, token.pseudonym, purpose="customer-request", principal=principal(tenant_a.org_id, "dpo"))
    assert f"erased on {today}" in caught.value.message and caught.value.status == 410
    assert caught.value.erased_at == certificate.erased_at
    with platform.db.transaction(tenant_a.org_id) as s:
        many = vault.detokenize_many(s, [token.pseudonym], purpose="x", principal=principal(tenant_a.org_id, "dpo"))
        assert isinstance(many[token.pseudonym], SubjectErased)
        assert vault.lookup(s, "KZ_IIN", IIN) is None and vault.lookup(s, "PHONE_NUMBER", PHONE) is None
        subject = s.get(VaultSubject, token.subject_id)
        assert subject.status == "erased" and subject.sealed is None
        assert s.scalar(select(func.count()).select_from(VaultLookup)) == 0
        assert s.scalar(select(VaultPseudonym.pseudonym)) == token.pseudonym  # kept: "erased", not "unknown"
        key = s.get(DataKey, subject.key_id)
        assert key.wrapped is None and key.destroyed_at is not None
        with pytest.raises(SubjectErased):
            vault.pseudonym_for(s, token.subject_id, "another-domain")


def test_the_same_identifier_tokenized_again_is_a_new_subject(platform, vault, tenant_a) -> None:
    old = make_subject(platform, vault, tenant_a.org_id)
    shred(platform, vault, tenant_a.org_id, old.pseudonym)
    with platform.db.transaction(tenant_a.org_id) as s:
        new = vault.tokenize(s, "KZ_IIN", IIN, actor="test")
    assert new.created and new.subject_id != old.subject_id and new.pseudonym != old.pseudonym


def test_the_erasure_certificate_is_signed_and_proves_the_audit_entry(platform, vault, tenant_a) -> None:
    token = make_subject(platform, vault, tenant_a.org_id)
    certificate = shred(platform, vault, tenant_a.org_id, token.pseudonym)
    body = certificate.body
    assert body["pseudonym"] == token.pseudonym and body["organization_bin"] == tenant_a.bin
    assert body["key_destroyed"] and body["key_id"].startswith("dk-vs-") and body["lookups_deleted"] == 2
    for value in (IIN, NAME, "7012345678"):
        assert value not in certificate.text
    with platform.db.reader(tenant_a.org_id) as s:
        entry = audit.get_entry(s, certificate.audit_entry_id)
        keys = vault.certificate_keys(s)
        head = audit.tree_head_at(s, body["audit"]["tree_head"]["tree_size"])
    assert entry.action == "vault.shred" and entry.object_id == token.pseudonym and entry.actor == "user:9"
    assert entry.details["certificate_id"] == certificate.certificate_id and entry.details["reason"] == "consent withdrawn"
    assert head is not None and head.root_hash.hex() == body["audit"]["tree_head"]["root_hash"]
    offline = certificates.verify_certificate(certificate.text, **keys)
    assert offline.ok, offline.to_dict()
    assert {c.name for c in offline.checks} >= {"certificate signature", "inclusion proof", "tree head signature",
                                                 "audit details digest", "certificate key pinned", "audit key pinned"}
    with platform.db.reader(tenant_a.org_id) as s:
        assert vault.verify_certificate(s, certificate).ok
        listed = vault.list_certificates(s)
        stored = vault.get_certificate(s, certificate.certificate_id)
    assert [c.certificate_id for c in listed] == [certificate.certificate_id]
    assert stored.text == certificate.text


@pytest.mark.parametrize("tamper, failing", [
    (lambda d: d["certificate"].update(pseudonym="ps_" + "z" * 26), {"certificate signature", "audit entry names this erasure"}),
    (lambda d: d["certificate"]["audit"]["details"].update(reason="other"), {"certificate signature", "audit details digest"}),
    (lambda d: d["certificate"]["audit"]["inclusion_proof"]["path"].reverse(), {"certificate signature", "inclusion proof"}),
    (lambda d: d["signature"].update(value="00" * 64), {"certificate signature"}),
])
def test_a_tampered_certificate_fails_verification(platform, vault, tenant_a, tamper, failing) -> None:
    make_subject(platform, vault, tenant_a.org_id, KZ_IIN="061211600012")
    token = make_subject(platform, vault, tenant_a.org_id)
    certificate = shred(platform, vault, tenant_a.org_id, token.pseudonym)
    doc = json.loads(certificate.text)
    tamper(doc)
    result = certificates.verify_certificate(json.dumps(doc))
    assert not result.ok
    assert failing <= {c.name for c in result.checks if not c.ok}, result.to_dict()


def test_a_certificate_signed_with_someone_elses_keys_fails_when_keys_are_pinned(platform, vault, tenant_a) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    token = make_subject(platform, vault, tenant_a.org_id)
    certificate = shred(platform, vault, tenant_a.org_id, token.pseudonym)
    forged = certificates.sign(dict(certificate.body), Ed25519PrivateKey.generate())
    assert certificates.verify_certificate(forged.text).ok  # self-consistent …
    with platform.db.reader() as s:
        keys = vault.certificate_keys(s)
    pinned = certificates.verify_certificate(forged.text, **keys)
    assert not pinned.ok and [c.name for c in pinned.checks if not c.ok] == ["certificate key pinned"]
    for garbage in ("", "{}", "[1]", '{"certificate": {}, "signature": {}}', "\xff"):
        assert not certificates.verify_certificate(garbage).ok


def test_a_shred_needs_a_reason_without_personal_data_and_changes_nothing_otherwise(platform, vault, tenant_a) -> None:
    token = make_subject(platform, vault, tenant_a.org_id)
    for reason, message in (("", "required"), ("asked by " + IIN, "IIN"), ("x" * 201, "200")):
        with pytest.raises(InvalidInput) as caught, platform.db.transaction(tenant_a.org_id) as s:
            vault.shred(s, token.pseudonym, reason=reason, actor="test")
        assert caught.value.field == "reason" and message in caught.value.message and IIN not in caught.value.message
    with pytest.raises(UnknownPseudonym), platform.db.transaction(tenant_a.org_id) as s:
        vault.shred(s, "ps_" + "a" * 26, reason="x", actor="test")
    with platform.db.reader(tenant_a.org_id) as s:
        assert s.get(VaultSubject, token.subject_id).status == "active"
        assert vault.lookup(s, "KZ_IIN", IIN) == token.subject_id
    shred(platform, vault, tenant_a.org_id, token.pseudonym)
    with pytest.raises(SubjectErased), platform.db.transaction(tenant_a.org_id) as s:
        vault.shred(s, token.pseudonym, reason="again", actor="test")


def test_shred_subject_by_id_for_erasure_on_demand(platform, vault, tenant_a) -> None:
    token = make_subject(platform, vault, tenant_a.org_id)
    with platform.db.transaction(tenant_a.org_id) as s:
        subject_id = vault.lookup(s, "KZ_IIN", IIN)
        certificate = vault.shred_subject(s, subject_id, reason="subject's request", actor="test")
    assert certificate.pseudonym == token.pseudonym and certificate.body["subject_id"] == token.subject_id


def test_a_restored_backup_without_the_key_table_decrypts_nothing(platform, vault, tenant_a) -> None:
    """Take a backup of the vault's data rows, shred, put the backup's rows back: every copy stays unreadable."""
    token = make_subject(platform, vault, tenant_a.org_id)
    other = make_subject(platform, vault, tenant_a.org_id, KZ_IIN="061211600012")
    with platform.db.reader() as s:  # the "backup": every vault data row, as stored
        backup = {model: [dict(r._mapping) for r in s.execute(select(model.__table__))]
                  for model in (VaultSubject, VaultLookup)}
    shred(platform, vault, tenant_a.org_id, token.pseudonym)
    with platform.db.transaction() as s:  # restore the data rows of the backup (not the key table)
        for row in backup[VaultSubject]:
            s.execute(update(VaultSubject.__table__).where(VaultSubject.__table__.c.id == row["id"])
                      .values(sealed=row["sealed"], status=row["status"], erased_at=None))
        s.execute(VaultLookup.__table__.delete())
        s.execute(VaultLookup.__table__.insert(), backup[VaultLookup])
    with platform.db.transaction(tenant_a.org_id) as s:
        assert vault.lookup(s, "KZ_IIN", IIN) == token.subject_id  # the restored index still points at it …
        with pytest.raises(SubjectErased):  # … but nothing opens it
            vault.detokenize(s, token.pseudonym, purpose="restore-test", principal=principal(tenant_a.org_id, "admin"))
        sealed = next(r["sealed"] for r in backup[VaultSubject] if r["id"] == token.subject_id)
        key_id, nonce, body = parse_ciphertext(bytes(sealed))
        with pytest.raises(IntegrityFailure):
            platform.keyring.data_key(s, key_id)
        every_key = [platform.keyring.data_key(s, k) for k in s.scalars(
            select(DataKey.id).where(DataKey.wrapped.is_not(None)))]
        for key in every_key:  # no key that still exists opens the shredded subject's identifiers
            with pytest.raises(InvalidTag):
                AESGCM(key).decrypt(nonce, body, None)
        assert vault.detokenize(s, other.pseudonym, purpose="restore-test",
                                principal=principal(tenant_a.org_id, "admin")).identifiers == {"KZ_IIN": ["061211600012"]}


def test_master_key_rotation_rewraps_subject_keys_and_keeps_shredded_ones_destroyed(platform, vault, tenant_a) -> None:
    kept = make_subject(platform, vault, tenant_a.org_id)
    gone = make_subject(platform, vault, tenant_a.org_id, KZ_IIN="061211600012")
    shred(platform, vault, tenant_a.org_id, gone.pseudonym)
    old_master = platform.keys.active_key_id
    report = rotate_master_key(platform.db, platform.keys)
    assert old_master in report.retired and old_master not in platform.keys.key_ids()
    reopened = Platform.open(platform.settings)
    try:
        fresh = Vault(reopened)
        with reopened.db.transaction(tenant_a.org_id) as s:
            assert fresh.detokenize(s, kept.pseudonym, purpose="rotation-check",
                                    principal=principal(tenant_a.org_id, "dpo")).identifiers["KZ_IIN"] == [IIN]
            rows = s.execute(select(DataKey.purpose, DataKey.master_key_id, DataKey.wrapped)).all()
            with pytest.raises(SubjectErased):
                fresh.detokenize(s, gone.pseudonym, purpose="rotation-check", principal=principal(tenant_a.org_id, "dpo"))
    finally:
        reopened.close()
    live = [r for r in rows if r.wrapped is not None]
    assert {r.master_key_id for r in live} == {report.new_master_key_id}
    assert sum(1 for r in rows if r.purpose == "vault-subject" and r.wrapped is None) == 1


def test_a_wrong_master_key_file_is_a_clear_startup_error(platform, vault, tenant_a, tmp_path) -> None:
    make_subject(platform, vault, tenant_a.org_id)
    key_file = platform.settings.master_key_path
    original = key_file.read_text()
    foreign = FileKeyProvider.create(tmp_path / "other.key")
    key_file.write_text(foreign.path.read_text())
    try:
        reopened = Platform.open(platform.settings)
        with pytest.raises(KeyFileError) as caught:
            Vault(reopened)
        assert "wrong or replaced master key file" in str(caught.value) and str(key_file) in str(caught.value)
        from qorgau.api.app import create_app

        with pytest.raises(KeyFileError):
            create_app(reopened)
        reopened.close()
        # Same key id, other bytes: the file was edited or mixed up.
        doc = json.loads(original)
        active = doc["active"]
        doc["keys"][active]["key"] = json.loads(foreign.path.read_text())["keys"][foreign.active_key_id]["key"]
        key_file.write_text(json.dumps(doc))
        reopened = Platform.open(platform.settings)
        with pytest.raises(KeyFileError) as caught:
            Vault(reopened)
        assert "does not open this database's data keys" in str(caught.value)
        reopened.close()
    finally:
        key_file.write_text(original)
    Vault(platform)  # the right file again: no error


def test_certificates_are_per_organization(platform, vault, tenant_a, tenant_b) -> None:
    token = make_subject(platform, vault, tenant_a.org_id)
    certificate = shred(platform, vault, tenant_a.org_id, token.pseudonym)
    with platform.db.reader(tenant_b.org_id) as s:
        assert vault.list_certificates(s) == []
        from qorgau.core.errors import NotFound

        with pytest.raises(NotFound):
            vault.get_certificate(s, certificate.certificate_id)
        assert not vault.verify_certificate(s, certificate).ok  # B's log does not hold A's entry
    with platform.db.reader() as s:
        assert s.scalar(select(func.count()).select_from(ErasureCertificateRecord)) == 1
        assert s.execute(text("SELECT count(*) FROM vault_erasure_certificates WHERE organization_id = :o"),
                         {"o": tenant_a.org_id}).scalar() == 1
