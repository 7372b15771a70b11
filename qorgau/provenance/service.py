"""Label AI-generated content and verify labels (issue 9; L-AI-LABEL, L-AI-DEF, L-FINE-AI).

**Labeling** a file of an operator's AI system:

1. The format comes from the bytes (:func:`qorgau.provenance.formats.sniff`), never from the name alone.
2. The warning the format allows is added first (a band drawn into the picture or every video frame, a spoken
   notice before a WAV's sound, a band on every PDF page, a first paragraph in a Word document, a disclosure
   line for text), so the signature below covers it: removing the warning breaks the label.
3. A C2PA manifest is embedded and signed with the operator's certificate: a ``c2pa.actions`` assertion with the
   IPTC digital source type ``trainedAlgorithmicMedia`` (``compositeWithTrainedAlgorithmicMedia`` for an edit of
   real content), and qorgau's ``kz.qorgau.ai-label`` assertion naming the AI system's register number, the
   operator and its BIN, the label's reference and the warning applied. Text gets qorgau's signed inline marker
   instead (:mod:`qorgau.provenance.text`): C2PA has no embedding for plain text.
4. A :class:`~qorgau.provenance.models.LabelRecord` keeps the output's SHA-256 and size (never the file's name or
   content), and the audit log an entry with ids only.

The operator's certificate is its imported one, or else one issued on first use by the installation's **local
test CA** (:mod:`qorgau.provenance.ca`) — enough to label and verify end to end, and reported as such.

**Verifying** any file, by anyone: *trusted* (valid, and the signer chains to a configured trust anchor),
*untrusted* (valid signature and content, unknown signer), *invalid* (the content or manifest changed after
signing, with the failing assertion first), or *unlabeled*. The report names the AI system and operator, and says
whether the visible warning is still there: for pictures and video by checking the band's pixels against the
fingerprint the signed manifest recorded, so a band painted over shows even when the file was re-signed.

Sessions: :meth:`Labels.label`, :meth:`Labels.signer`, :meth:`Labels.import_signer` and :meth:`Labels.records`
take a session bound to the operator (``db.transaction(org)``); nothing here commits. :meth:`Labels.verify` needs
no organization.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cryptography import x509
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..core import audit
from ..core.auth import SYSTEM_ACTOR, Organization, Principal
from ..core.calendar import local_date
from ..core.db import tenant_of, utcnow
from ..core.errors import InvalidInput, NotFound, PermissionDenied
from ..core.platform import shared
from . import ca
from .formats import Format, sniff
from .models import LabelAuthority, LabelRecord, LabelSigner
from .texts import AI_SOURCE_TYPES, COMPOSITE, TRAINED

if TYPE_CHECKING:
    from ..core.platform import Platform
    from .overlay import WarningStyle

__all__ = ["AnchorView", "LabelResult", "Labels", "RecordView", "SignerView", "VerifyReport", "labels_for"]

ASSERTION = "kz.qorgau.ai-label"
LABEL_ROLES = ("admin", "dpo")
_REGISTER_ID = re.compile(r"KZ-AI-\d{4}-\d{6,}")
_REFERENCE = re.compile(r"KZ-LBL-\d{4}-\d{6,}")
_CA_PURPOSE = "provenance-ca"
_SIGNER_PURPOSE = "provenance-signer"
State = Literal["trusted", "untrusted", "invalid", "unlabeled"]
# Failure codes that mean "we don't know the signer", not "the content changed".
_TRUST_CODES = {"signingCredential.untrusted"}
_SUFFIX_ALIASES = {".jpg": (".jpg", ".jpeg", ".jpe", ".jfif"), ".tif": (".tif", ".tiff"),
                   ".txt": (".txt", ".md", ".markdown", ".text", ".csv", ".html", ".htm", ".json")}
_IMAGE_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "tiff": "TIFF", "gif": "GIF"}


@functools.cache
def _version() -> str:
    try:
        from importlib.metadata import version

        return version("qorgau")
    except Exception:  # pragma: no cover - running from a plain checkout
        return "0"


@dataclass(frozen=True)
class SignerView:
    fingerprint: str
    subject: str
    issuer: str
    not_after: datetime
    local_test_ca: bool
    algorithm: str
    created_at: datetime


@dataclass(frozen=True)
class AnchorView:
    subject: str
    fingerprint: str
    pem: str
    local_test: bool


@dataclass(frozen=True)
class RecordView:
    record_id: str
    created_at: datetime
    media_type: str
    register_id: str
    system_name: str | None
    warning_kind: str
    size: int
    sha256: str


@dataclass(frozen=True)
class LabelResult:
    data: bytes = field(repr=False)
    media_type: str
    extension: str
    record_id: str
    manifest_label: str | None
    register_id: str
    operator_bin: str
    digital_source_type: str
    warning: dict[str, Any]
    signer_local_test_ca: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def filename_for(self, original: str | None) -> str:
        """``photo.png`` → ``photo.ai.png``. The original's extension stays when it names the written format
        (``.jpeg``, ``.md``); otherwise the written format's (a MOV comes back as ``.mp4``)."""
        name = Path(original).name if original else ""
        suffix = Path(name).suffix
        stem = name[: -len(suffix)] if suffix else name
        keep = suffix.lower() in _SUFFIX_ALIASES.get(self.extension, (self.extension,))
        return f"{stem or 'labeled'}.ai{suffix if keep else self.extension}"

    def summary(self) -> dict[str, Any]:
        """What adapters return about a label besides the bytes."""
        return {"record_id": self.record_id, "media_type": self.media_type, "manifest_label": self.manifest_label,
                "register_id": self.register_id, "operator_bin": self.operator_bin,
                "digital_source_type": self.digital_source_type, "warning": self.warning, "sha256": self.sha256,
                "size": len(self.data), "local_test_ca": self.signer_local_test_ca}


@dataclass(frozen=True)
class VerifyReport:
    state: State
    media_type: str | None = None
    manifest_label: str | None = None
    register_id: str | None = None
    system_name: str | None = None
    operator_bin: str | None = None
    operator_name: str | None = None
    signer: dict[str, Any] | None = None
    signed_at: str | None = None
    digital_source_type: str | None = None
    ai_generated: bool | None = None
    warning_present: bool | None = None
    warning_kind: str | None = None
    record_id: str | None = None
    failures: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _digital_source(composite: bool) -> str:
    return COMPOSITE if composite else TRAINED


class Labels:
    """The labeling service of one platform (:func:`labels_for`)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        settings = platform.settings
        self.max_bytes: int = settings.labels_max_bytes
        self._thumbnail = settings.labels_thumbnail
        self._trust_local = settings.labels_trust_local_test_ca
        self._anchor_file = settings.labels_trust_anchors
        self._lock = threading.Lock()
        self._credentials: dict[str, ca.Credential] = {}   # fingerprint → unsealed credential (process memory only)
        self._anchors: list[AnchorView] | None = None
        self._verify_context: Any = None
        self._sign_context: Any = None

    def __repr__(self) -> str:
        return f"Labels(max_bytes={self.max_bytes}, trust_local_test_ca={self._trust_local})"

    # -- credentials ---------------------------------------------------------------------------------------

    def _authority(self, session: Session) -> ca.Credential:
        """The local test CA's root, created (and sealed) on first use."""
        row = session.scalar(select(LabelAuthority).where(LabelAuthority.kind == "local-test")
                             .order_by(LabelAuthority.id.desc()).limit(1))
        if row is not None:
            cached = self._credentials.get(row.fingerprint)
            if cached is None:
                key = ca.load_key_der(self.platform.keyring.decrypt(session, row.key_sealed, b"label-authority"))
                cached = ca.Credential(ca.load_pem_chain(row.cert_pem), key, "ES256")  # type: ignore[arg-type]
                self._credentials[row.fingerprint] = cached
            return cached
        root = ca.new_root()
        key_id = self.platform.keyring.create_data_key(session, _CA_PURPOSE)
        row = LabelAuthority(kind="local-test", subject=ca.describe(root.leaf.subject), fingerprint=root.fingerprint,
                             cert_pem=root.chain_pem().decode(), data_key_id=key_id,
                             key_sealed=self.platform.keyring.encrypt(session, key_id, root.key_der(), b"label-authority"),
                             not_after=root.leaf.not_valid_after_utc)
        session.add(row)
        session.flush()
        audit.record(session, actor=SYSTEM_ACTOR, action="label.test_ca_created", object_type="label_authority", object_id=str(row.id),
                     details={"fingerprint_b64": _b64(root.fingerprint)})
        self._credentials[root.fingerprint] = root
        with self._lock:
            self._anchors = None
            self._verify_context = None
        return root

    def _organization(self, session: Session) -> Organization:
        org_id = tenant_of(session)
        if org_id is None:
            raise PermissionDenied("labels belong to an organization: open the session for one")
        org = session.get(Organization, org_id)
        if org is None:  # pragma: no cover - a session bound to a deleted organization
            raise NotFound("organization not found")
        return org

    def _active_signer_row(self, session: Session, actor: str) -> LabelSigner:
        row = session.scalar(select(LabelSigner).where(LabelSigner.active.is_(True))
                             .order_by(LabelSigner.id.desc()).limit(1))
        if row is not None:
            return row
        org = self._organization(session)
        credential = ca.issue_operator(self._authority(session), operator_name=org.name, bin=org.bin)
        return self._store_signer(session, credential, kind="local-test", actor=actor)

    def _store_signer(self, session: Session, credential: ca.Credential, *, kind: str, actor: str) -> LabelSigner:
        org_id = tenant_of(session)
        if session.scalar(select(LabelSigner.id).where(LabelSigner.fingerprint == credential.fingerprint)) is not None:
            raise InvalidInput("this certificate is already a signer here", field="chain")
        session.execute(update(LabelSigner).where(LabelSigner.organization_id == org_id,
                                                  LabelSigner.active.is_(True))
                        .values(active=False, retired_at=utcnow()))
        key_id = self.platform.keyring.create_data_key(session, _SIGNER_PURPOSE)
        leaf = credential.leaf
        row = LabelSigner(organization_id=org_id, kind=kind, algorithm=credential.algorithm,
                          subject=ca.describe(leaf.subject)[:500], issuer=ca.describe(leaf.issuer)[:500],
                          fingerprint=credential.fingerprint, serial_number=str(leaf.serial_number),
                          chain_pem=credential.chain_pem().decode(), data_key_id=key_id,
                          key_sealed=self.platform.keyring.encrypt(session, key_id, credential.key_der(),
                                                                   b"label-signer"),
                          not_after=leaf.not_valid_after_utc, active=True, created_by=actor)
        session.add(row)
        session.flush()
        audit.record(session, actor=actor, action="label.signer_added", object_type="label_signer",
                     object_id=str(row.id), organization_id=org_id,
                     details={"kind": kind, "fingerprint_b64": _b64(credential.fingerprint),
                              "algorithm": credential.algorithm})
        self._credentials[credential.fingerprint] = credential
        return row

    def _credential(self, session: Session, row: LabelSigner) -> ca.Credential:
        cached = self._credentials.get(row.fingerprint)
        if cached is None:
            key = ca.load_key_der(self.platform.keyring.decrypt(session, row.key_sealed, b"label-signer"))
            cached = ca.Credential(ca.load_pem_chain(row.chain_pem), key, row.algorithm)  # type: ignore[arg-type]
            self._credentials[row.fingerprint] = cached
        return cached

    @staticmethod
    def _signer_view(row: LabelSigner) -> SignerView:
        return SignerView(fingerprint=row.fingerprint, subject=row.subject, issuer=row.issuer, not_after=row.not_after,
                          local_test_ca=row.kind == "local-test", algorithm=row.algorithm, created_at=row.created_at)

    def signer(self, session: Session, *, actor: str = "system") -> SignerView:
        """The organization's active signing certificate, issued by the local test CA if it has none yet."""
        return self._signer_view(self._active_signer_row(session, actor))

    def import_signer(self, session: Session, principal: Principal, *, chain_pem: bytes, key_pem: bytes,
                      password: bytes | None = None) -> SignerView:
        """Make an operator's own certificate (from a real CA) its signer; the previous one is retired."""
        principal.require("admin")
        credential = ca.load_imported(chain_pem, key_pem, password)
        row = self._store_signer(session, credential, kind="imported", actor=principal.actor)
        return self._signer_view(row)

    def signers(self, session: Session) -> list[SignerView]:
        rows = session.scalars(select(LabelSigner).order_by(LabelSigner.id.desc())).all()
        return [self._signer_view(r) for r in rows]

    # -- trust ---------------------------------------------------------------------------------------------

    def trust_anchors(self) -> list[AnchorView]:
        """The roots whose labels count as trusted: the configured bundle, plus the local test CA if enabled."""
        with self._lock:
            if self._anchors is not None:
                return self._anchors
        anchors: list[AnchorView] = []
        if self._anchor_file is not None:
            path = Path(self._anchor_file)
            try:
                certs = ca.load_pem_chain(path.read_bytes())
            except (OSError, ValueError):
                raise InvalidInput(f"labels_trust_anchors: {path} is not a readable PEM bundle",
                                   field="labels_trust_anchors") from None
            for cert in certs:
                anchors.append(AnchorView(ca.describe(cert.subject), ca.fingerprint(cert),
                                          cert.public_bytes(ca.serialization.Encoding.PEM).decode(), False))
        complete = True
        if self._trust_local:
            with self.platform.db.reader() as session:
                rows = session.scalars(select(LabelAuthority).where(LabelAuthority.kind == "local-test")).all()
            anchors.extend(AnchorView(row.subject, row.fingerprint, row.cert_pem, True) for row in rows)
            complete = bool(rows)  # the local test CA is made on first use (maybe in a transaction not yet committed)
        if complete:
            with self._lock:
                self._anchors = anchors
        return anchors

    def _anchor_certs(self) -> list[x509.Certificate]:
        return [cert for a in self.trust_anchors() for cert in ca.load_pem_chain(a.pem)]

    def _signing_context(self) -> Any:
        import c2pa

        with self._lock:
            if self._sign_context is None:
                self._sign_context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": bool(self._thumbnail)}}})
            return self._sign_context

    def _verifying_context(self) -> Any:
        """c2pa settings with the trust anchors; rebuilt while the anchor list may still grow (see above)."""
        import c2pa

        with self._lock:
            if self._verify_context is not None:
                return self._verify_context
        anchors = self.trust_anchors()
        verify: dict[str, Any] = {"verify": {"verify_trust": True}}
        if anchors:
            verify["trust"] = {"trust_anchors": "".join(a.pem for a in anchors)}
        context = c2pa.Context.from_dict(verify)
        with self._lock:
            if self._anchors is not None:  # the list is final: keep the context too
                self._verify_context = context
        return context

    # -- labeling ------------------------------------------------------------------------------------------

    def _check_size(self, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidInput("the file must be bytes", field="file")
        if len(data) > self.max_bytes:
            raise InvalidInput(f"the file is larger than {self.max_bytes} bytes (labels_max_bytes)", field="file")

    def _system(self, session: Session, system: str) -> tuple[int, str, str]:
        """(ai_systems.id, register id, name) of the session organization's system ``system``."""
        from ..aisystems.models import AiSystem, AiSystemProfile

        if not isinstance(system, str) or not system.strip():
            raise InvalidInput("name the AI system (its code or register number KZ-AI-…)", field="system")
        system = system.strip()
        if _REGISTER_ID.fullmatch(system):
            row = session.execute(select(AiSystem, AiSystemProfile)
                                  .join(AiSystemProfile, AiSystemProfile.ai_system_id == AiSystem.id)
                                  .where(AiSystemProfile.register_id == system)).first()
        else:
            row = session.execute(select(AiSystem, AiSystemProfile)
                                  .outerjoin(AiSystemProfile, AiSystemProfile.ai_system_id == AiSystem.id)
                                  .where(AiSystem.code == system)).first()
        if row is None:
            raise NotFound("no AI system with this code or register number in this organization", field="system")
        ai, profile = row
        if profile is None or not _REGISTER_ID.fullmatch(profile.register_id or ""):
            raise InvalidInput("this AI system has no register number yet: register it first "
                               "(qorgau ai-systems register); labels name the register number", field="system")
        if ai.status != "active" or not ai.active:
            raise InvalidInput("this AI system is not active", field="system")
        return ai.id, profile.register_id, ai.name

    def label(self, session: Session, principal: Principal, *, data: bytes, filename: str | None, system: str,
              warning: WarningStyle | None = None, composite: bool = False) -> LabelResult:
        """Add the warning the format allows and a signed marking naming ``system``; record it (see module doc)."""
        from .overlay import WarningStyle

        principal.require(*LABEL_ROLES)
        self._check_size(data)
        data = bytes(data)
        style = warning or WarningStyle()
        style.validate()
        fmt = sniff(data, filename)
        org = self._organization(session)
        ai_system_id, register_id, system_name = self._system(session, system)
        signer_row = self._active_signer_row(session, principal.actor)
        credential = self._credential(session, signer_row)
        source_type = _digital_source(composite)
        now = _now()
        if fmt.kind == "text":
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput("a text file must be UTF-8", field="file") from None
            payload, info, out_fmt = data, {"kind": "disclosure-line", "languages": list(style.languages)}, fmt
        else:
            payload, info, out_fmt = self._apply_warning(data, fmt, style)  # all the decoding: fails before any row
        # The record's id gives the reference the signed claims carry; a savepoint keeps a failed signing from
        # leaving a half-made record behind even when the caller goes on to commit.
        with session.begin_nested():
            record = LabelRecord(organization_id=org.id, reference=audit.random_object_id("pending"),
                                 signer_id=signer_row.id, ai_system_id=ai_system_id, register_id=register_id,
                                 media_type=out_fmt.media_type, digital_source_type=source_type, sha256="", size=0,
                                 warning=info, created_by=principal.actor)
            session.add(record)
            session.flush()
            reference = record.reference = f"KZ-LBL-{local_date(now).year}-{record.id:06d}"
            claims: dict[str, Any] = {
                "register_id": register_id, "system_name": system_name, "operator_bin": org.bin,
                "operator_name": org.name, "record_id": reference, "labeled_at": now.isoformat(timespec="seconds"),
                "digital_source_type": source_type, "law": ["L-AI-LABEL"]}
            if fmt.kind == "text":
                from .text import TextSigner, label_text

                signer = TextSigner(chain=list(credential.chain), key=credential.key, algorithm=credential.algorithm)
                out = label_text(text, signer=signer, claims=claims, languages=style.languages,
                                 texts=dict(style.texts) if style.texts else None).encode("utf-8")
                manifest_label = None
            else:
                claims["warning"] = _for_manifest(info)
                out, manifest_label = self._sign(payload, out_fmt, credential, claims, source_type)
            digest = hashlib.sha256(out).hexdigest()
            record.manifest_label, record.sha256, record.size = manifest_label, digest, len(out)
            session.flush()
            audit.record(session, actor=principal.actor, action="label.issued", object_type="label",
                         object_id=reference, organization_id=org.id,
                         details={"register_id": register_id, "media_type": out_fmt.media_type,
                                  "warning": info.get("kind"), "sha256_b64": _b64(digest),
                                  "signer_b64": _b64(signer_row.fingerprint)})
        return LabelResult(data=out, media_type=out_fmt.media_type, extension=out_fmt.extension, record_id=reference,
                           manifest_label=manifest_label, register_id=register_id, operator_bin=org.bin,
                           digital_source_type=source_type, warning=info,
                           signer_local_test_ca=signer_row.kind == "local-test")

    def _apply_warning(self, data: bytes, fmt: Format, style: WarningStyle) -> tuple[bytes, dict[str, Any], Format]:
        if fmt.warning == "band":
            return self._band_image(data, fmt, style)
        if fmt.warning == "video-band":
            from .formats import FORMATS
            from .media import burn_video

            out, info = burn_video(data, style)
            return out, info, FORMATS["mp4"]
        if fmt.warning == "audible":
            from .media import audible_notice_wav

            out, info = audible_notice_wav(data, tuple(style.languages))
            return out, info, fmt
        if fmt.warning == "pdf-band":
            from .overlay import stamp_pdf

            out, info = stamp_pdf(data, style)
            return out, info, fmt
        if fmt.warning == "docx-notice":
            from .overlay import notice_docx

            out, info = notice_docx(data, style)
            return out, info, fmt
        return data, {"kind": "none", "reason": "format-allows-no-notice-without-re-encoding"}, fmt

    @staticmethod
    def _band_image(data: bytes, fmt: Format, style: WarningStyle) -> tuple[bytes, dict[str, Any], Format]:
        from PIL import Image, UnidentifiedImageError

        from .overlay import render_band

        try:
            with Image.open(io.BytesIO(data)) as image:
                if getattr(image, "n_frames", 1) > 1:
                    raise InvalidInput("animated images aren't labeled: convert to MP4 (every frame gets the warning)",
                                       field="file")
                image.load()
                icc = image.info.get("icc_profile")
                banded, info = render_band(image, style)
        except InvalidInput:
            raise
        except Image.DecompressionBombError:
            raise InvalidInput("the image has too many pixels to label safely", field="file") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise InvalidInput(f"the {fmt.name.upper()} file is corrupt or truncated", field="file") from None
        out = io.BytesIO()
        options: dict[str, Any] = {}
        if icc:
            options["icc_profile"] = icc  # colours stay right; EXIF (camera, GPS) is deliberately not carried over
        if fmt.name == "jpeg":
            options.update(quality=92, subsampling=0 if banded.mode != "L" else None)
            options = {k: v for k, v in options.items() if v is not None}
            if banded.mode not in ("RGB", "L", "CMYK"):
                banded = banded.convert("RGB")
        elif fmt.name == "png":
            options["compress_level"] = 6
        elif fmt.name == "webp":
            options.update(quality=92)
        banded.save(out, _IMAGE_FORMATS[fmt.name], **options)
        return out.getvalue(), info, fmt

    def _sign(self, payload: bytes, fmt: Format, credential: ca.Credential, claims: Mapping[str, Any],
              source_type: str) -> tuple[bytes, str | None]:
        import c2pa

        sign_context = self._signing_context()
        action = {"action": "c2pa.created", "digitalSourceType": source_type,
                  "softwareAgent": {"name": "qorgau", "version": _version()}}
        label = f"urn:c2pa:{uuid.uuid4()}"
        manifest = {
            "label": label,
            "claim_generator_info": [{"name": "qorgau", "version": _version()}],
            "title": f"AI-generated content {claims['record_id']}",
            "format": fmt.media_type,
            "assertions": [
                {"label": "c2pa.actions", "data": {"actions": [action]}},
                {"label": ASSERTION, "data": dict(claims)},
            ],
        }
        alg = {"ES256": c2pa.C2paSigningAlg.ES256, "ES384": c2pa.C2paSigningAlg.ES384,
               "ES512": c2pa.C2paSigningAlg.ES512, "PS256": c2pa.C2paSigningAlg.PS256,
               "Ed25519": c2pa.C2paSigningAlg.ED25519}[credential.algorithm]
        try:
            signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg, credential.chain_pem(), credential.key_pem(), None))
            with signer, c2pa.Builder(manifest, context=sign_context) as builder:
                out = io.BytesIO()
                builder.sign(signer, fmt.media_type, io.BytesIO(payload), out)
        except c2pa.C2paError as exc:
            raise InvalidInput(f"the {fmt.name.upper()} file could not carry a C2PA manifest "
                               f"({type(exc).__name__})", field="file") from None
        signed = out.getvalue()
        return signed, label

    # -- verification --------------------------------------------------------------------------------------

    def verify(self, data: bytes, *, filename: str | None = None) -> VerifyReport:
        """Is ``data`` labeled, by whom, and is it intact? Works for anyone; needs no organization."""
        self._check_size(data)
        data = bytes(data)
        fmt = sniff(data, filename)
        if fmt.kind == "text":
            return self._verify_text(data)
        import c2pa

        context = self._verifying_context()
        try:
            reader = c2pa.Reader.try_create(fmt.media_type, io.BytesIO(data), None, context)
        except c2pa.C2paError as exc:
            return VerifyReport(state="invalid", media_type=fmt.media_type, failures=[
                {"code": "manifest.unreadable", "assertion": "c2pa.manifest",
                 "explanation": f"the C2PA manifest can't be read ({type(exc).__name__})"}])
        if reader is None:
            return VerifyReport(state="unlabeled", media_type=fmt.media_type)
        with reader:
            state_raw = reader.get_validation_state() or "Invalid"
            results = reader.get_validation_results() or {}
            active = reader.get_active_manifest() or {}
        return self._report(fmt, data, state_raw, results, active)

    def _report(self, fmt: Format, data: bytes, state_raw: str, results: Mapping[str, Any],
                active: Mapping[str, Any]) -> VerifyReport:
        failures = [{"code": f.get("code", ""), "assertion": _assertion_of(f.get("url", "")),
                     "explanation": f.get("explanation", "")}
                    for f in (results.get("activeManifest") or {}).get("failure", [])]
        failures.sort(key=lambda f: f["code"] in _TRUST_CODES)  # what changed first, then who signed
        state: State = {"Trusted": "trusted", "Valid": "untrusted"}.get(state_raw, "invalid")  # type: ignore[assignment]
        if state != "invalid" and any(f["code"] not in _TRUST_CODES for f in failures):
            state = "invalid"
        claims: dict[str, Any] = {}
        source_type = None
        for assertion in active.get("assertions", []):
            label = assertion.get("label", "")
            if label == ASSERTION and isinstance(assertion.get("data"), dict):
                claims = assertion["data"]
            elif label.startswith("c2pa.actions"):
                for action in (assertion.get("data") or {}).get("actions", []):
                    source_type = source_type or action.get("digitalSourceType")
        info = active.get("signature_info") or {}
        signer = {"common_name": info.get("common_name"), "organization": info.get("issuer"),
                  "issuer": info.get("issuer"), "serial_number": info.get("cert_serial_number"),
                  "algorithm": info.get("alg"), "fingerprint": None, "local_test_ca": False}
        known = self._known_signer(str(info.get("cert_serial_number") or ""))
        operator_bin = claims.get("operator_bin")
        if known is not None:
            signer.update(fingerprint=known["fingerprint"], local_test_ca=known["local_test_ca"],
                          subject=known["subject"], issuer=known["issuer"])
            if known["bin"] and operator_bin and known["bin"] != operator_bin:
                failures.insert(0, {"code": "kz.qorgau.operator.mismatch", "assertion": ASSERTION,
                                    "explanation": "the label names another operator than the certificate that "
                                                   "signed it"})
                state = "invalid"
        warning = _from_manifest(claims["warning"]) if isinstance(claims.get("warning"), dict) else None
        if warning is not None:
            claims = {**claims, "warning": warning}
        warning_kind = warning.get("kind") if warning else None
        present = self._warning_present(fmt, data, warning, state)
        return VerifyReport(
            state=state, media_type=fmt.media_type, manifest_label=active.get("label"),
            register_id=claims.get("register_id"), system_name=claims.get("system_name"),
            operator_bin=operator_bin, operator_name=claims.get("operator_name"), signer=signer,
            signed_at=claims.get("labeled_at"), digital_source_type=source_type,
            ai_generated=(source_type in AI_SOURCE_TYPES) if source_type else None,
            warning_present=present, warning_kind=warning_kind, record_id=claims.get("record_id"),
            failures=failures)

    def _known_signer(self, serial: str) -> dict[str, Any] | None:
        """A signer this platform issued or imported, by certificate serial number (what C2PA readers report)."""
        if not serial:
            return None
        with self.platform.db.reader() as session:
            row = session.execute(select(LabelSigner, Organization.bin)
                                  .join(Organization, Organization.id == LabelSigner.organization_id)
                                  .where(LabelSigner.serial_number == serial)).first()
        if row is None:
            return None
        signer, org_bin = row
        return {"fingerprint": signer.fingerprint, "local_test_ca": signer.kind == "local-test",
                "subject": signer.subject, "issuer": signer.issuer, "bin": org_bin}

    @staticmethod
    def _warning_present(fmt: Format, data: bytes, warning: Mapping[str, Any] | None, state: State) -> bool | None:
        """Checked in the pixels for pictures and video (the band's fingerprint); for other formats a valid
        signature proves the notice qorgau added is unchanged, and an invalid one leaves it unknown."""
        if not warning:
            return None
        kind = warning.get("kind")
        if kind == "none":
            return False
        if kind == "band":
            from PIL import Image

            from .overlay import band_present

            try:
                with Image.open(io.BytesIO(data)) as image:
                    image.load()
                    return bool(band_present(image, warning))
            except Exception:
                return None
        if kind == "video-band":
            try:
                from .overlay import band_present

                frame = warning.get("frame") if isinstance(warning.get("frame"), Mapping) else warning
                return bool(band_present(_first_frame(data), frame))
            except Exception:
                return None
        return True if state in ("trusted", "untrusted") else None

    def _verify_text(self, data: bytes) -> VerifyReport:
        from .text import verify_text

        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("a text file must be UTF-8", field="file") from None
        result = verify_text(text, certificate_for=self._chain_by_fingerprint, anchors=self._anchor_certs())
        found = result.to_dict()
        claims = found.get("claims") or {}
        fingerprint = found.get("fingerprint")
        known = self._signer_by_fingerprint(fingerprint) if fingerprint else None
        signer = None
        if found.get("state") != "unlabeled":
            signer = {"common_name": found.get("signer_common_name") or found.get("common_name"),
                      "organization": found.get("signer_organization") or found.get("organization"),
                      "issuer": (known or {}).get("issuer"), "fingerprint": fingerprint,
                      "local_test_ca": bool(known and known["local_test_ca"])}
        failures = [{"code": f.get("code", ""), "assertion": f.get("assertion", "text"),
                     "explanation": f.get("explanation", "")} for f in found.get("failures", [])]
        state = found.get("state", "invalid")
        if known and known["bin"] and claims.get("operator_bin") and known["bin"] != claims.get("operator_bin"):
            failures.insert(0, {"code": "kz.qorgau.operator.mismatch", "assertion": "text.claims",
                                "explanation": "the label names another operator than the certificate that signed it"})
            state = "invalid"
        source_type = claims.get("digital_source_type")
        return VerifyReport(
            state=state, media_type="text/plain", register_id=claims.get("register_id"),
            system_name=claims.get("system_name"), operator_bin=claims.get("operator_bin"),
            operator_name=claims.get("operator_name"), signer=signer,
            signed_at=found.get("signed_at") or claims.get("labeled_at"), digital_source_type=source_type,
            ai_generated=(source_type in AI_SOURCE_TYPES) if source_type else None,
            warning_present=found.get("disclosure_present") if state != "unlabeled" else None,
            warning_kind="disclosure-line" if state != "unlabeled" else None, record_id=claims.get("record_id"),
            failures=failures)

    def _signer_by_fingerprint(self, fingerprint: str) -> dict[str, Any] | None:
        with self.platform.db.reader() as session:
            row = session.execute(select(LabelSigner, Organization.bin)
                                  .join(Organization, Organization.id == LabelSigner.organization_id)
                                  .where(LabelSigner.fingerprint == fingerprint)).first()
        if row is None:
            return None
        signer, org_bin = row
        return {"fingerprint": signer.fingerprint, "local_test_ca": signer.kind == "local-test",
                "subject": signer.subject, "issuer": signer.issuer, "bin": org_bin, "chain_pem": signer.chain_pem}

    def _chain_by_fingerprint(self, fingerprint: str) -> list[x509.Certificate] | None:
        known = self._signer_by_fingerprint(fingerprint)
        return list(ca.load_pem_chain(known["chain_pem"])) if known else None

    # -- records -------------------------------------------------------------------------------------------

    def records(self, session: Session, *, limit: int = 100, offset: int = 0) -> list[RecordView]:
        """The organization's labels, newest first."""
        from ..aisystems.models import AiSystem

        if not 1 <= int(limit) <= 1000:
            raise InvalidInput("limit must be 1–1000", field="limit")
        if int(offset) < 0:
            raise InvalidInput("offset must be ≥ 0", field="offset")
        rows = session.execute(select(LabelRecord, AiSystem.name)
                               .join(AiSystem, AiSystem.id == LabelRecord.ai_system_id)
                               .order_by(LabelRecord.id.desc()).limit(int(limit)).offset(int(offset))).all()
        return [RecordView(record_id=r.reference, created_at=r.created_at, media_type=r.media_type,
                           register_id=r.register_id, system_name=name, warning_kind=(r.warning or {}).get("kind", ""),
                           size=r.size, sha256=r.sha256) for r, name in rows]

    def record(self, session: Session, reference: str) -> RecordView:
        if not isinstance(reference, str) or not _REFERENCE.fullmatch(reference):
            raise InvalidInput("a label reference looks like KZ-LBL-2026-000001", field="record_id")
        for view in self._records_where(session, LabelRecord.reference == reference):
            return view
        raise NotFound("no label with this reference in this organization", field="record_id")

    def _records_where(self, session: Session, condition: Any) -> Sequence[RecordView]:
        from ..aisystems.models import AiSystem

        rows = session.execute(select(LabelRecord, AiSystem.name)
                               .join(AiSystem, AiSystem.id == LabelRecord.ai_system_id).where(condition)).all()
        return [RecordView(record_id=r.reference, created_at=r.created_at, media_type=r.media_type,
                           register_id=r.register_id, system_name=name, warning_kind=(r.warning or {}).get("kind", ""),
                           size=r.size, sha256=r.sha256) for r, name in rows]


def _b64(hex_digest: str) -> str:
    """A SHA-256 as base64url for audit details: hex digests hold long digit runs that the audit log's
    personal-data guard would take for an IIN or a card number now and then (a 64-character hex string has a
    12-digit run about once in seven); base64url practically never does."""
    import base64

    return base64.urlsafe_b64encode(bytes.fromhex(hex_digest)).rstrip(b"=").decode()


def _first_frame(data: bytes) -> Any:
    """The first picture of a video, as Pillow sees it (where the burned-in band's fingerprint was taken)."""
    import av

    with av.open(io.BytesIO(data), mode="r") as container:
        for frame in container.decode(video=0):
            return frame.to_image()
    raise ValueError("no video frame")


_BOXES = {"box": ("x0", "y0", "x1", "y1"), "size": ("width", "height")}


def _for_manifest(info: Mapping[str, Any]) -> dict[str, Any]:
    """c2pa-rs writes a JSON array of small integers into CBOR as a byte string (and reads it back as base64), so
    the band's box and the picture's size travel as named fields; other integer lists as space-separated text."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) for v in value):
            names = _BOXES.get(key)
            out[key] = dict(zip(names, value)) if names and len(names) == len(value) else " ".join(map(str, value))
        elif isinstance(value, Mapping):
            out[key] = _for_manifest(value)
        else:
            out[key] = value
    return out


def _from_manifest(info: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: _from_manifest(v) if isinstance(v, Mapping) and k not in _BOXES else v for k, v in info.items()}
    for key, names in _BOXES.items():
        value = out.get(key)
        if isinstance(value, dict) and all(isinstance(value.get(n), int) for n in names):
            out[key] = [value[n] for n in names]
    return out


def _assertion_of(url: str) -> str:
    """``self#jumbf=/c2pa/urn:…/c2pa.assertions/c2pa.hash.data`` → ``c2pa.hash.data``."""
    if "c2pa.assertions/" in url:
        return url.rsplit("c2pa.assertions/", 1)[1]
    if url.endswith("c2pa.signature"):
        return "c2pa.signature"
    return url.rsplit("/", 1)[-1] if url else ""


def labels_for(platform: Platform) -> Labels:
    return shared(platform, "_labels", Labels)
