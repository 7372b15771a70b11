"""Keys: envelope encryption, key ids on everything, rotation without data loss, crypto-shredding."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from qorgau.core.errors import IntegrityFailure
from qorgau.core.keys import FileKeyProvider, KeyFileError, parse_ciphertext, rotate_master_key
from qorgau.core.platform import Platform


def test_the_master_key_file_is_created_with_mode_0600(platform: Platform) -> None:
    mode = stat.S_IMODE(platform.settings.master_key_path.stat().st_mode)
    assert mode == 0o600


def test_a_master_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    FileKeyProvider.create(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        FileKeyProvider(path)


def test_a_malformed_key_file_is_refused_without_printing_it(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b'{"active": "mk-1", "keys": {"mk-1": {"key": "c2VjcmV0"}}}')
    os.close(fd)
    with pytest.raises(KeyFileError) as err:
        FileKeyProvider(path)
    assert "c2VjcmV0" not in str(err.value)


def test_create_never_overwrites_an_existing_key_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    first = FileKeyProvider.create(path).active_key_id
    assert FileKeyProvider.create(path).active_key_id == first


def test_ciphertexts_name_their_data_key(platform: Platform) -> None:
    with platform.db.transaction() as s:
        kid = platform.keyring.create_data_key(s, "test")
        blob = platform.keyring.encrypt(s, kid, "Айгерім".encode(), aad=b"subject:1")
        assert parse_ciphertext(blob)[0] == kid
        assert platform.keyring.decrypt(s, blob, aad=b"subject:1").decode() == "Айгерім"


def test_a_ciphertext_moved_to_another_context_fails(platform: Platform) -> None:
    with platform.db.transaction() as s:
        kid = platform.keyring.create_data_key(s, "test")
        blob = platform.keyring.encrypt(s, kid, b"secret", aad=b"subject:1")
        with pytest.raises(IntegrityFailure):
            platform.keyring.decrypt(s, blob, aad=b"subject:2")


def test_data_survives_master_key_rotation_and_the_old_master_key_is_gone(platform: Platform) -> None:
    blobs = []
    with platform.db.transaction() as s:
        for i in range(1201):  # more than one re-wrap batch
            kid = platform.keyring.create_data_key(s, "test")
            blobs.append((platform.keyring.encrypt(s, kid, f"value {i}".encode()), i))
    old = platform.keys.active_key_id
    report = rotate_master_key(platform.db, platform.keys)
    assert report.rewrapped >= 1201 and old in report.retired
    assert platform.keys.key_ids() == [report.new_master_key_id]
    # a fresh process reading the key file decrypts everything
    reopened = Platform.open(platform.settings)
    with reopened.db.reader() as s:
        for blob, i in blobs:
            assert reopened.keyring.decrypt(s, blob) == f"value {i}".encode()
    assert old not in json.loads(platform.settings.master_key_path.read_text())["keys"]
    reopened.close()


def test_an_interrupted_rotation_can_be_finished_by_running_it_again(platform: Platform) -> None:
    with platform.db.transaction() as s:
        kid = platform.keyring.create_data_key(s, "test")
        blob = platform.keyring.encrypt(s, kid, b"kept")
    platform.keys.rotate()  # a rotation that died right after creating the new master key
    with platform.db.reader() as s:
        assert platform.keyring.decrypt(s, blob) == b"kept"  # old master key still unwraps
    rotate_master_key(platform.db, platform.keys)
    with platform.db.reader() as s:
        assert platform.keyring.decrypt(s, blob) == b"kept"
    assert len(platform.keys.key_ids()) == 1


def test_destroying_a_data_key_makes_its_data_unreadable(platform: Platform) -> None:
    with platform.db.transaction() as s:
        kid = platform.keyring.create_data_key(s, "subject")
        blob = platform.keyring.encrypt(s, kid, b"identity")
        platform.keyring.destroy_data_key(s, kid)
    with platform.db.reader() as s:
        with pytest.raises(IntegrityFailure, match="destroyed"):
            platform.keyring.decrypt(s, blob)


def test_reprs_never_show_key_material(platform: Platform) -> None:
    raw = json.loads(platform.settings.master_key_path.read_text())
    secret = next(iter(raw["keys"].values()))["key"]
    assert secret not in repr(platform.keys) and secret not in repr(platform.keyring) and secret not in repr(platform)
