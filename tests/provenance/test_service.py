"""The labeling service end to end with real c2pa-python, Pillow and the local test CA (issue 9; L-AI-LABEL).

Every state a verifier can report is produced from real files: trusted, untrusted (another CA, or trust in the
local test CA turned off), invalid (one flipped byte, the failing assertion named first), unlabeled (manifest
stripped by a plain re-encode)."""

from __future__ import annotations

import hashlib
import io
import json
import struct
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from PIL import Image
from sqlalchemy import select

from qorgau.core.audit import AuditEntry
from qorgau.core.errors import InvalidInput, NotFound, PermissionDenied
from qorgau.core.platform import Platform
from qorgau.provenance import ca
from qorgau.provenance.models import LabelRecord
from qorgau.provenance.overlay import WarningStyle
from qorgau.provenance.service import Labels, labels_for
from qorgau.provenance.texts import COMPOSITE, TRAINED
from tests.conftest import Tenant
from tests.provenance.conftest import GenAiSystem, principal_of, register_generator, two_level_chain
from tests.provenance import media_fixtures as media


def _label(platform: Platform, system: GenAiSystem, data: bytes, filename: str | None = "picture.png", **kw):
    with platform.db.transaction(system.tenant.org_id) as s:
        return labels_for(platform).label(s, principal_of(system.tenant), data=data, filename=filename,
                                          system=system.code, **kw)


def _photo(w: int = 320, h: int = 240, fmt: str = "PNG") -> bytes:
    image = Image.radial_gradient("L").resize((w, h)).convert("RGB")
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def _strip_png(data: bytes) -> bytes:
    """The PNG without its C2PA chunk (caBX): what a careless re-publisher's pipeline leaves."""
    out, i = bytearray(data[:8]), 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        if data[i + 4:i + 8] != b"caBX":
            out += data[i:i + 12 + n]
        i += 12 + n
    return bytes(out)


def _pixel_offset(data: bytes) -> int:
    """An offset inside the first IDAT chunk (picture data, not the manifest)."""
    i = 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        if data[i + 4:i + 8] == b"IDAT":
            return i + 8 + n // 2
        i += 12 + n
    raise AssertionError("no IDAT")


def test_png_label_is_trusted_and_names_system_operator_and_warning(platform: Platform, generator: GenAiSystem) -> None:
    original = _photo()
    result = _label(platform, generator, original)
    assert result.media_type == "image/png" and result.record_id.startswith("KZ-LBL-")
    assert result.register_id == generator.register_id and result.operator_bin == generator.tenant.bin
    assert result.digital_source_type == TRAINED and result.warning["kind"] == "band"
    assert result.signer_local_test_ca is True
    assert result.filename_for("Айгерим photo.png") == "Айгерим photo.ai.png"

    report = labels_for(platform).verify(result.data)
    assert report.state == "trusted", report.failures
    assert report.register_id == generator.register_id and report.system_name == generator.name
    assert report.operator_bin == generator.tenant.bin and report.operator_name == "Org alpha"
    assert report.ai_generated is True and report.digital_source_type == TRAINED
    assert report.warning_present is True and report.warning_kind == "band"
    assert report.signer and report.signer["local_test_ca"] is True and report.signer["fingerprint"]
    assert report.record_id == result.record_id and report.failures == []
    json.dumps(report.to_dict())  # JSON-able for the API


def test_the_original_bytes_are_not_touched_and_the_picture_changed_only_by_the_warning(
        platform: Platform, generator: GenAiSystem) -> None:
    original = _photo()
    copy = bytes(original)
    result = _label(platform, generator, original)
    assert original == copy
    labeled = Image.open(io.BytesIO(result.data))
    assert labeled.size == Image.open(io.BytesIO(original)).size


def test_one_flipped_pixel_byte_is_invalid_with_the_data_hash_named(platform: Platform, generator: GenAiSystem) -> None:
    data = bytearray(_label(platform, generator, _photo()).data)
    data[_pixel_offset(bytes(data))] ^= 0x01
    report = labels_for(platform).verify(bytes(data))
    assert report.state == "invalid"
    assert report.failures[0]["code"].startswith("assertion.dataHash")
    assert report.failures[0]["assertion"] == "c2pa.hash.data"
    assert report.register_id == generator.register_id  # still says who claimed it


def test_stripped_manifest_and_plain_reencode_are_unlabeled(platform: Platform, generator: GenAiSystem) -> None:
    labeled = _label(platform, generator, _photo()).data
    assert labels_for(platform).verify(_strip_png(labeled)).state == "unlabeled"
    reencoded = io.BytesIO()
    Image.open(io.BytesIO(labeled)).save(reencoded, "JPEG", quality=85)
    assert labels_for(platform).verify(reencoded.getvalue()).state == "unlabeled"
    assert labels_for(platform).verify(_photo()).state == "unlabeled"


@pytest.mark.parametrize("maker,media_type", [
    (lambda: _photo(fmt="JPEG"), "image/jpeg"),
    (lambda: _photo(fmt="WEBP"), "image/webp"),
    (lambda: media.wav(), "audio/wav"),
    (lambda: media.pdf(pages=2), "application/pdf"),
    (lambda: media.docx(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    (lambda: media.mp4(), "video/mp4"),
])
def test_every_supported_format_labels_and_verifies_trusted(platform: Platform, generator: GenAiSystem,
                                                            maker, media_type: str) -> None:
    result = _label(platform, generator, maker(), filename=None)
    assert result.media_type == media_type
    assert result.warning["kind"] != "none"
    report = labels_for(platform).verify(result.data)
    assert report.state == "trusted", report.failures
    assert report.warning_present is True
    tampered = bytearray(result.data)
    tampered[len(tampered) // 3] ^= 0x01
    assert labels_for(platform).verify(bytes(tampered)).state in ("invalid", "unlabeled")


def test_text_gets_a_disclosure_line_and_a_signed_marker(platform: Platform, generator: GenAiSystem) -> None:
    text = "Сәлеметсіз бе! Бұл жауапты чат-бот жазды.\nЭтот ответ написал чат-бот.\n"
    result = _label(platform, generator, text.encode(), filename="answer.txt")
    labeled = result.data.decode()
    assert "Жасанды интеллект жасаған мазмұн" in labeled and text.strip() in labeled
    report = labels_for(platform).verify(result.data, filename="answer.txt")
    assert report.state == "trusted", report.failures
    assert report.register_id == generator.register_id and report.warning_present is True
    changed = labeled.replace("чат-бот.", "человек.")
    assert labels_for(platform).verify(changed.encode(), filename="answer.txt").state == "invalid"
    crlf = labeled.replace("\n", "\r\n")
    assert labels_for(platform).verify(crlf.encode(), filename="answer.txt").state == "trusted"


def test_composite_content_carries_the_composite_source_type(platform: Platform, generator: GenAiSystem) -> None:
    result = _label(platform, generator, _photo(), composite=True)
    report = labels_for(platform).verify(result.data)
    assert report.state == "trusted" and report.digital_source_type == COMPOSITE and report.ai_generated is True


def test_a_signer_under_another_ca_is_untrusted_until_its_root_is_an_anchor(
        platform: Platform, generator: GenAiSystem, tmp_path: Path) -> None:
    root, chain, key = two_level_chain(bin_=generator.tenant.bin)
    with platform.db.transaction(generator.tenant.org_id) as s:
        view = labels_for(platform).import_signer(s, principal_of(generator.tenant, "admin"),
                                                  chain_pem=chain, key_pem=key)
    assert view.local_test_ca is False and view.algorithm == "ES256"
    result = _label(platform, generator, _photo())
    assert result.signer_local_test_ca is False
    report = labels_for(platform).verify(result.data)
    assert report.state == "untrusted"
    assert [f["code"] for f in report.failures] == ["signingCredential.untrusted"]

    bundle = tmp_path / "anchors.pem"
    bundle.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    trusting = Labels(_with_settings(platform, labels_trust_anchors=bundle))
    assert trusting.verify(result.data).state == "trusted"


def test_turning_off_the_local_test_ca_makes_its_labels_untrusted(platform: Platform, generator: GenAiSystem) -> None:
    data = _label(platform, generator, _photo()).data
    strict = Labels(_with_settings(platform, labels_trust_local_test_ca=False))
    assert strict.verify(data).state == "untrusted"
    assert all(not a.local_test for a in strict.trust_anchors())
    assert any(a.local_test for a in labels_for(platform).trust_anchors())


def test_operators_get_their_own_certificate_naming_their_bin(platform: Platform, generator: GenAiSystem,
                                                               tenant_b: Tenant) -> None:
    other = register_generator(platform, tenant_b, code="photo-gen")
    a = _label(platform, generator, _photo())
    b = _label(platform, other, _photo())
    ra, rb = labels_for(platform).verify(a.data), labels_for(platform).verify(b.data)
    assert ra.signer and rb.signer and ra.signer["fingerprint"] != rb.signer["fingerprint"]
    assert (ra.operator_bin, rb.operator_bin) == (generator.tenant.bin, tenant_b.bin)
    with platform.db.reader(generator.tenant.org_id) as s:
        refs = {r.record_id for r in labels_for(platform).records(s)}
    assert a.record_id in refs and b.record_id not in refs


def test_another_operators_system_is_not_found_and_roles_are_checked(platform: Platform, generator: GenAiSystem,
                                                                      tenant_b: Tenant) -> None:
    with platform.db.transaction(tenant_b.org_id) as s, pytest.raises(NotFound) as err:
        labels_for(platform).label(s, principal_of(tenant_b), data=_photo(), filename=None, system=generator.code)
    assert err.value.field == "system"
    with platform.db.transaction(tenant_b.org_id) as s, pytest.raises(NotFound):
        labels_for(platform).label(s, principal_of(tenant_b), data=_photo(), filename=None,
                                   system=generator.register_id)
    with platform.db.transaction(generator.tenant.org_id) as s, pytest.raises(PermissionDenied):
        labels_for(platform).label(s, principal_of(generator.tenant, "reviewer"), data=_photo(), filename=None,
                                   system=generator.code)


def test_bad_input_names_the_field_and_stores_nothing(platform: Platform, generator: GenAiSystem) -> None:
    cases = [
        (dict(data=b"", filename=None), "file"),
        (dict(data=b"\x00\x01garbage\x00" * 10, filename="blob.bin"), "file"),
        (dict(data=b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, filename="broken.png"), "file"),
        (dict(data=_photo(), filename=None, system="no-such-system"), "system"),
        (dict(data=_photo(), filename=None, warning=WarningStyle(position="left")), "position"),  # type: ignore[arg-type]
    ]
    for kwargs, field in cases:
        kwargs.setdefault("system", generator.code)
        with platform.db.transaction(generator.tenant.org_id) as s, pytest.raises((InvalidInput, NotFound)) as err:
            labels_for(platform).label(s, principal_of(generator.tenant), **kwargs)
        assert err.value.field == field, (kwargs.get("filename"), err.value.message)
        assert "garbage" not in err.value.message
    with platform.db.reader(generator.tenant.org_id) as s:
        assert s.scalar(select(LabelRecord.id)) is None


def test_too_large_files_are_refused_before_any_work(platform: Platform, generator: GenAiSystem) -> None:
    small = Labels(_with_settings(platform, labels_max_bytes=4096))
    with platform.db.transaction(generator.tenant.org_id) as s, pytest.raises(InvalidInput) as err:
        small.label(s, principal_of(generator.tenant), data=_photo(800, 800), filename=None, system=generator.code)
    assert err.value.field == "file" and "labels_max_bytes" in err.value.message
    with pytest.raises(InvalidInput):
        small.verify(b"x" * 5000)


def test_a_system_without_a_register_number_cannot_label(platform: Platform, tenant_a: Tenant) -> None:
    from qorgau.aisystems.models import AiSystem

    with platform.db.transaction(tenant_a.org_id) as s:
        s.add(AiSystem(code="declared-only", name="Declared only", risk_class="minimal", autonomy="low",
                       created_by="test"))
    with platform.db.transaction(tenant_a.org_id) as s, pytest.raises(InvalidInput) as err:
        labels_for(platform).label(s, principal_of(tenant_a), data=_photo(), filename=None, system="declared-only")
    assert err.value.field == "system" and "register" in err.value.message


def test_records_and_audit_hold_no_file_names_and_no_content(platform: Platform, generator: GenAiSystem) -> None:
    secret_name = "Жаксылыков_Ерлан_870412300415.png"
    result = _label(platform, generator, _photo(), filename=secret_name)
    with platform.db.reader() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action.like("label.%"))).all()
        record = s.scalar(select(LabelRecord).where(LabelRecord.reference == result.record_id))
    assert record is not None and record.sha256 == hashlib.sha256(result.data).hexdigest()
    dumped = json.dumps([e.details for e in entries], ensure_ascii=False) + repr(record) + repr(result)
    for needle in ("Жаксылыков", "Ерлан", "870412300415"):
        assert needle not in dumped
    assert {"label.issued", "label.signer_added", "label.test_ca_created"} <= {e.action for e in entries}


def test_label_claiming_another_operators_bin_is_invalid(platform: Platform, generator: GenAiSystem,
                                                          tenant_b: Tenant) -> None:
    """A signer known to this platform can't speak for another operator: the claimed BIN must be its own."""
    import c2pa

    with platform.db.transaction(generator.tenant.org_id) as s:
        labels_for(platform).signer(s)
    service = labels_for(platform)
    with platform.db.reader(generator.tenant.org_id) as s:
        from qorgau.provenance.models import LabelSigner

        row = s.scalar(select(LabelSigner).where(LabelSigner.active.is_(True)))
        credential = service._credential(s, row)
    fmt = __import__("qorgau.provenance.formats", fromlist=["FORMATS"]).FORMATS["png"]
    forged, _ = service._sign(_photo(), fmt, credential, {"register_id": generator.register_id,
                                                          "operator_bin": tenant_b.bin, "record_id": "KZ-LBL-2026-999999"},
                              TRAINED)
    report = service.verify(forged)
    assert report.state == "invalid" and report.failures[0]["code"] == "kz.qorgau.operator.mismatch"
    assert c2pa  # the forged file is a well-formed C2PA asset; only the BIN check catches it


def test_importing_bad_credentials_names_the_field(platform: Platform, generator: GenAiSystem) -> None:
    root, chain, key = two_level_chain(bin_=generator.tenant.bin)
    other_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    own_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Self-signed content signing")])
    now = datetime.now(timezone.utc)
    self_signed = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(own_key.public_key())
                   .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=9))
                   .sign(own_key, hashes.SHA256())).public_bytes(serialization.Encoding.PEM)
    own_key_pem = own_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    cases = [(b"not pem", key, "chain"), (chain, b"not a key", "key"), (chain, other_key, "key"),
             (self_signed, own_key_pem, "chain"), (root.public_bytes(serialization.Encoding.PEM), key, "key")]
    for chain_pem, key_pem, field in cases:
        with platform.db.transaction(generator.tenant.org_id) as s, pytest.raises(InvalidInput) as err:
            labels_for(platform).import_signer(s, principal_of(generator.tenant, "admin"), chain_pem=chain_pem,
                                               key_pem=key_pem)
        assert err.value.field == field
    with platform.db.transaction(generator.tenant.org_id) as s, pytest.raises(PermissionDenied):
        labels_for(platform).import_signer(s, principal_of(generator.tenant, "dpo"), chain_pem=chain, key_pem=key)


def test_credential_reprs_never_show_keys() -> None:
    root = ca.new_root()
    operator = ca.issue_operator(root, operator_name="Bank", bin="123456789012")
    assert "PRIVATE" not in repr(operator) and "key=" not in repr(operator)
    assert ca.bin_of(operator.leaf) == "123456789012"


# -- helpers ---------------------------------------------------------------------------------------------------


def _with_settings(platform: Platform, **changes):
    """The same platform (database, keys) seen with other label settings."""
    import copy

    clone = copy.copy(platform)
    object.__setattr__(clone, "settings", platform.settings.model_copy(update=changes))
    return clone
