"""The consent service (L-PD-CONSENT, L-PD-CONSENT-FIELDS, L-PD-WITHDRAW, L-PD-TRANSFER).

Every method that changes something takes a tenant-scoped session (``platform.db.transaction(org_id)``);
the operator is :func:`qorgau.core.db.tenant_of` of it. Nothing here commits: the change, its status-history
event, its audit entry and (for a withdrawal) the vault shred, the receipt and the outbox messages commit or
roll back together. Errors name the field, never the value.

* :meth:`ConsentService.give` — a consent with the eight Art.8 p.4 fields; the subject goes into the vault
  (their identifier and full name are sealed there; the consent keeps the vault subject id). A new consent
  for the same subject and purpose supersedes the previous one.
* :meth:`ConsentService.check` — the decision point (:mod:`qorgau.consent.decision`), linearizable with
  withdrawal.
* :meth:`ConsentService.withdraw` — see its docstring: stops processing at once, refuses with the legal
  basis the law allows, crypto-shreds the subject when nothing of this operator's remains, signs a receipt,
  tells every counterparty that received the data through the outbox. Idempotent.
* :meth:`ConsentService.record_transfer` / :meth:`ConsentService.confirm_stopped` — transfers (10 working
  days to tell the subject) and processors' "stopped" confirmations (15 working days).

The vault's re-identification hook is registered here (:func:`_reidentification_check`): re-identifying
subjects for a purpose of the consent taxonomy needs, per subject, an active consent or a legal basis.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from ..core import audit, auth
from ..core.calendar import add_working_days, local_date
from ..rules import deadlines
from ..core.db import tenant_of, utcnow
from ..core.errors import AuthenticationRequired, Conflict, InvalidInput, NotFound, PermissionDenied
from ..identifiers import IdentifierError, parse_bin
from ..vault import crypto as vault_crypto
from ..vault.lookup import lookups_of
from ..vault.models import ERASED, VaultPseudonym, VaultSubject
from ..vault.service import (
    DEFAULT_DOMAIN,
    RowProblem,
    SubjectErased,
    SubjectRecord,
    Token,
    UnknownPseudonym,
    Vault,
    register_reidentification_check,
    vault_for,
)
from . import outbox, receipts
from .decision import Decision, DecisionPoint, SubjectRef
from .models import (
    ACTIVE,
    CHANNELS,
    COUNTERPARTY_KINDS,
    EVENT_EXPIRED,
    EVENT_GIVEN,
    EVENT_SUBJECT_NOTIFIED,
    EVENT_SUPERSEDED,
    EVENT_TRANSFER,
    EVENT_WITHDRAWAL_REFUSED,
    EVENT_WITHDRAWN,
    EXPIRED,
    LEGAL_BASIS_KINDS,
    SUPERSEDED,
    THIRD_PARTY,
    WITHDRAWAL_BLOCKING_KINDS,
    WITHDRAWN,
    Consent,
    ConsentEvent,
    ConsentWithdrawal,
    Counterparty,
    ErasedLookup,
    LegalBasis,
    OrganizationPurpose,
    ProcessorNotification,
    Transfer,
)
from .purposes import (
    LANGS,
    MAX_DESCRIPTION,
    MAX_NAME,
    DataCategory,
    Purpose,
    Taxonomy,
    TaxonomyError,
    ancestors,
    check_categories,
    check_purpose_code,
    default_taxonomy,
    parent_of,
    parse_taxonomy,
)
from ..core.platform import shared

if TYPE_CHECKING:
    from ..core.platform import Platform

__all__ = [
    "WEBHOOK_TOPIC", "ConsentService",
    "CounterpartyCreated", "Decision", "LegalBasisRef", "NotificationInfo", "SubjectRef", "Withdrawal",
    "consent_for", "expire_all",
]

WEBHOOK_TOPIC = "consent.withdrawn"
KANTARA_VERSION = "KI-CR-v1.1.0"
TOKEN_PREFIX = "qcp_"
MAX_OTHER = 2000
MAX_REFERENCE = 300
MAX_FULL_NAME = 300
MAX_IDEMPOTENCY_KEY = 100
SHRED_REASON = "consent withdrawn; no other consent or legal basis of the operator remains"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_IDEMPOTENCY = re.compile(r"[A-Za-z0-9._:-]{1,100}")


# --- shapes returned to callers -------------------------------------------------------------------


@dataclass(frozen=True)
class LegalBasisRef:
    id: int
    kind: str
    purpose: str
    reference: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "purpose": self.purpose, "reference": self.reference}


@dataclass(frozen=True)
class NotificationInfo:
    id: int
    counterparty_id: int
    deadline: date
    outbox_message_id: int | None
    confirmed_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "counterparty_id": self.counterparty_id, "deadline": self.deadline.isoformat(),
                "outbox_message_id": self.outbox_message_id, "confirmed_at": self.confirmed_at}


@dataclass(frozen=True)
class Withdrawal:
    """The outcome of :meth:`ConsentService.withdraw` (the same object again for a repeated withdrawal).

    ``refused``: the consent is withdrawn, but the operator keeps processing under ``basis`` (a reasoned
    refusal to stop, L-PD-WITHDRAW); ``check`` answers with that basis. ``receipt`` is the signed receipt.
    """

    consent_id: int
    withdrawal_id: int
    withdrawn_at: datetime
    channel: str
    actor: str
    refused: bool
    basis: LegalBasisRef | None
    shredded: bool
    erasure_certificate_id: str | None
    receipt: dict[str, Any]
    receipt_text: str
    notifications: tuple[NotificationInfo, ...]
    repeated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"consent_id": self.consent_id, "withdrawal_id": self.withdrawal_id,
                "withdrawn_at": self.withdrawn_at, "channel": self.channel, "refused": self.refused,
                "basis": self.basis.to_dict() if self.basis else None, "shredded": self.shredded,
                "erasure_certificate_id": self.erasure_certificate_id, "repeated": self.repeated,
                "notifications": [n.to_dict() for n in self.notifications], "receipt": self.receipt}


@dataclass(frozen=True)
class CounterpartyCreated:
    """A new counterparty and its two secrets, shown once: the webhook signing secret and the API token it
    confirms "stopped" with. ``repr`` hides both."""

    counterparty: Counterparty
    webhook_secret: str | None
    token: str

    def __repr__(self) -> str:
        return f"CounterpartyCreated(counterparty={self.counterparty!r}, secrets=<hidden>)"


# --- small validators -------------------------------------------------------------------------------


def _text(value: Any, field: str, limit: int, *, required: bool = False, no_pd: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(f"{field} is required", field=field)
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text", field=field)
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"{field} must be at most {limit} characters", field=field)
    if no_pd:
        try:
            audit.assert_no_personal_data({field: value})
        except InvalidInput as exc:
            raise InvalidInput(exc.message.replace("audit details", field), field=field) from None
    return value


def _actor(actor: Any) -> str:
    if not isinstance(actor, str) or not actor.strip() or len(actor) > 64:
        raise InvalidInput("actor must be 1–64 characters (an id such as 'user:12', never a name)", field="actor")
    return actor


def _aware(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInput(f"{field} must be a timestamp", field=field)
    if value.tzinfo is None:
        raise InvalidInput(f"{field} must carry a timezone (e.g. 2026-12-31T23:59:59+05:00)", field=field)
    return value.astimezone(timezone.utc)


def _channel(channel: Any) -> str:
    if channel not in CHANNELS:
        raise InvalidInput(f"channel must be one of: {', '.join(CHANNELS)} (L-PD-CONSENT)", field="channel")
    return channel


def _countries(values: Any, field: str = "countries") -> list[str]:
    from babel import Locale

    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InvalidInput("give a list of ISO 3166-1 alpha-2 country codes", field=field)
    known = _territories(Locale)
    out: list[str] = []
    for i, code in enumerate(values):
        if not isinstance(code, str) or not _COUNTRY.fullmatch(code.strip().upper()) or code.strip().upper() not in known:
            raise InvalidInput("not an ISO 3166-1 alpha-2 country code (e.g. 'RU', 'DE')", field=f"{field}.{i}")
        code = code.strip().upper()
        if code not in out:
            out.append(code)
    return out


_TERRITORIES: set[str] = set()


def _territories(locale_cls: Any) -> set[str]:
    if not _TERRITORIES:
        _TERRITORIES.update(code for code in locale_cls.parse("en").territories if _COUNTRY.fullmatch(code))
    return _TERRITORIES


def _country(value: Any, field: str = "country") -> str:
    return _countries([value], field)[0] if value is not None else "KZ"


def check_webhook_url(url: Any, *, allow_http: bool, field: str = "webhook_url") -> str | None:
    """A webhook URL: https (plain http only to loopback, or when the setting allows it), a host, no
    credentials in it (secrets belong in the signing secret, not in URLs that end up in logs)."""
    if url is None or (isinstance(url, str) and not url.strip()):
        return None
    if not isinstance(url, str) or len(url) > 2000:
        raise InvalidInput("webhook URL must be text of at most 2000 characters", field=field)
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput("webhook URL is not a valid URL", field=field) from None
    del port
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput("webhook URL must be an https:// URL with a host", field=field)
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("webhook URL must not carry credentials; the webhook is signed instead", field=field)
    if parts.fragment:
        raise InvalidInput("webhook URL must not have a #fragment", field=field)
    if parts.scheme == "http" and not allow_http and not _loopback(parts.hostname):
        raise InvalidInput("webhook URL must use https (plain http is allowed to loopback only; "
                           "QORGAU_CONSENT_WEBHOOK_ALLOW_HTTP changes that)", field=field)
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="microseconds") if value is not None else None


_BUMP = text("INSERT INTO consent_decision_versions (organization_id, subject_id, version) VALUES (:o, :s, 1) "
             "ON CONFLICT (organization_id, subject_id) DO UPDATE SET version = consent_decision_versions.version + 1")


def _tombstone(session: Session, organization_id: int, entity_type: str, blind_index: bytes, at: datetime) -> None:
    """Record that this blind index found a subject now erased (kept once: a later erasure changes nothing)."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(ErasedLookup.__table__).values(
        organization_id=organization_id, entity_type=entity_type, blind_index=blind_index, erased_at=at)
        .on_conflict_do_nothing())


def bump_decision_versions(session: Session, organization_id: int, subject_ids: Sequence[int]) -> None:
    """Increment the decision versions of ``subject_ids`` (0: the operator's row, for blanket legal bases) in the
    caller's transaction. Every change that can alter a check's answer calls this: it is what makes the
    decision point's remembered allows safe (:mod:`qorgau.consent.decision`). Sorted, so concurrent
    transactions lock rows in one order."""
    for subject_id in sorted(set(subject_ids)):
        session.execute(_BUMP, {"o": organization_id, "s": subject_id})


# --- the vault's re-identification hook -------------------------------------------------------------

_MODE_ATTRIBUTE = "_qorgau_consent_reidentification"


def _configured_mode() -> str:
    """The mode from the environment / qorgau.toml, for a platform whose ConsentService was never built."""
    from ..core.settings import SettingsError, get_settings

    try:
        return get_settings().consent_reidentification
    except SettingsError:
        return "taxonomy"


def _reidentification_check(session: Session, request: Any) -> Mapping[int, str] | None:
    """Registered with the vault: before subjects are re-identified for ``request.purpose``, each needs an
    active consent or a live legal basis for that purpose (or a broader one) at this operator.

    Purposes outside the consent taxonomy pass through to the vault's own controls (roles, audit) unless
    ``QORGAU_CONSENT_REIDENTIFICATION=strict``, which refuses them.
    """
    # The mode of the platform this session belongs to, kept on its connection pool (shared by its writer and
    # reader sessions) by ConsentService; "taxonomy" for a platform without one.
    mode = getattr(session.get_bind().pool, _MODE_ATTRIBUTE, None) or _configured_mode()
    purpose = request.purpose
    org = request.organization_id
    known = default_taxonomy().has_purpose(purpose) or session.scalar(
        select(OrganizationPurpose.id).where(OrganizationPurpose.organization_id == org,
                                             OrganizationPurpose.code == purpose,
                                             OrganizationPurpose.active.is_(True))) is not None
    if not known:
        if mode == "strict":
            reason = f"'{purpose}' is not a processing purpose of this operator (consent taxonomy)"
            return {sid: reason for sid in request.subject_ids}
        return None
    chain = ancestors(purpose)
    now = utcnow()
    bases = session.execute(select(LegalBasis.subject_id).where(
        LegalBasis.organization_id == org, LegalBasis.purpose.in_(chain), LegalBasis.revoked_at.is_(None),
        LegalBasis.valid_from <= now, or_(LegalBasis.valid_until.is_(None), LegalBasis.valid_until > now))).scalars().all()
    if any(b is None for b in bases):
        return None  # a legal basis for everyone (e.g. a law) covers every subject
    allowed = set(bases)
    ids = list(dict.fromkeys(request.subject_ids))
    for start in range(0, len(ids), 500):
        allowed.update(session.execute(select(Consent.subject_id).where(
            Consent.organization_id == org, Consent.subject_id.in_(ids[start:start + 500]),
            Consent.purpose.in_(chain), Consent.status == ACTIVE,
            or_(Consent.valid_until.is_(None), Consent.valid_until > now))).scalars())
    reason = f"no active consent or legal basis for purpose '{purpose}'"
    return {sid: reason for sid in ids if sid not in allowed} or None


register_reidentification_check(_reidentification_check)


# --- the service ------------------------------------------------------------------------------------


class ConsentService:
    """Consent of one platform. Thread-safe; share one per process (:func:`consent_for`)."""

    def __init__(self, platform: Platform, vault: Vault | None = None) -> None:
        self.platform = platform
        self.vault = vault or vault_for(platform)
        self.decisions = DecisionPoint(platform, self.vault)
        setattr(platform.db.engine.pool, _MODE_ATTRIBUTE, platform.settings.consent_reidentification)

    def __repr__(self) -> str:
        return f"ConsentService(db={self.platform.db.dialect})"

    def working_days(self, code: str, at: datetime) -> int:
        """The legal deadline in working days on ``at``'s day, from the rule packs (L-PD-WITHDRAW: processors stop
        and confirm within 15 working days; L-PD-TRANSFER: the subject is told within 10)."""
        return deadlines.working_days(code, local_date(at), stricter=self.platform.settings.rules_stricter_profile)

    def close(self) -> None:
        self.decisions.close()

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _org(session: Session) -> int:
        org = tenant_of(session)
        if org is None:
            raise PermissionDenied("consent needs a session scoped to one organization", field="organization_id")
        return org

    def taxonomy(self, session: Session) -> Taxonomy:
        """The platform's purposes and categories plus this operator's own purposes."""
        self._org(session)
        rows = session.scalars(select(OrganizationPurpose).where(OrganizationPurpose.active.is_(True))
                               .order_by(OrganizationPurpose.code)).all()
        return default_taxonomy().merged(
            Purpose(r.code, {"kk": r.name_kk, "ru": r.name_ru, "en": r.name_en}, r.description, r.organization_id)
            for r in rows)

    def _purpose(self, session: Session, code: Any, field: str = "purpose") -> str:
        code = check_purpose_code(code, field)
        if not self.taxonomy(session).has_purpose(code):
            raise InvalidInput("unknown purpose: not in the platform's taxonomy nor this operator's purposes "
                               "(see GET /api/v1/consent/purposes)", field=field)
        return code

    def _resolve_subject(self, session: Session, subject: SubjectRef, *, create: bool, actor: str = "system",
                         full_name: str | None = None) -> int | None:
        """The vault subject id of ``subject`` (created when ``create`` and given by identifier)."""
        if not isinstance(subject, SubjectRef):
            raise InvalidInput("subject must be a SubjectRef", field="subject")
        if subject.pseudonym is not None:
            if full_name is not None:
                raise InvalidInput("full_name can be given only with an identifier (a pseudonym names a subject "
                                   "the vault already holds)", field="full_name")
            if not isinstance(subject.pseudonym, str) or len(subject.pseudonym) != 29:
                raise InvalidInput("pseudonym must be 'ps_' followed by 26 letters a-z", field="subject.pseudonym")
            row = session.execute(
                select(VaultPseudonym.subject_id, VaultSubject.status, VaultSubject.erased_at)
                .join(VaultSubject, VaultSubject.id == VaultPseudonym.subject_id)
                .where(VaultPseudonym.domain == subject.domain, VaultPseudonym.pseudonym == subject.pseudonym)).first()
            if row is None:
                if create:
                    raise UnknownPseudonym(field="subject.pseudonym")
                return None
            if create and row.status == ERASED:
                raise SubjectErased(row.erased_at, field="subject.pseudonym")
            return int(row.subject_id)
        entity_type, value = subject.identifier_type or "", subject.identifier or ""
        if not create:
            try:
                return self.vault.lookup(session, entity_type, value)
            except InvalidInput as exc:
                raise InvalidInput(exc.message, field="subject.identifier" if exc.field == "value"
                                   else "subject.identifier_type") from None
        identifiers: dict[str, str] = {entity_type: value}
        if full_name is not None:
            identifiers["PERSON"] = full_name
        try:
            result = self.vault.tokenize_many(session, [SubjectRecord(identifiers)], domain=subject.domain, actor=actor)
        except InvalidInput as exc:
            raise InvalidInput(exc.message, field="subject.domain" if exc.field == "domain" else "subject") from None
        outcome = result[0]
        if isinstance(outcome, RowProblem):
            if outcome.field == "PERSON":
                raise InvalidInput(f"full name: {outcome.reason}", field="full_name")
            if outcome.field == entity_type:
                raise InvalidInput(outcome.reason, field="subject.identifier")
            raise InvalidInput(outcome.reason, field="subject.identifier_type")
        assert isinstance(outcome, Token)
        return outcome.subject_id

    def _pseudonym(self, session: Session, subject_id: int, actor: str = auth.SYSTEM_ACTOR) -> str:
        existing = session.scalar(select(VaultPseudonym.pseudonym).where(
            VaultPseudonym.subject_id == subject_id, VaultPseudonym.domain == DEFAULT_DOMAIN))
        if existing is not None:
            return existing
        return self.vault.pseudonym_for(session, subject_id, DEFAULT_DOMAIN, actor=actor)

    def pseudonyms_of(self, session: Session, subject_ids: Sequence[int]) -> dict[int, str]:
        """Subject id → pseudonym in domain "default", for many subjects in one query (display, lists)."""
        self._org(session)
        ids = list(dict.fromkeys(subject_ids))
        out: dict[int, str] = {}
        for start in range(0, len(ids), 500):
            out.update(session.execute(select(VaultPseudonym.subject_id, VaultPseudonym.pseudonym).where(
                VaultPseudonym.domain == DEFAULT_DOMAIN, VaultPseudonym.subject_id.in_(ids[start:start + 500]))).all())
        return out

    def subject_pseudonym(self, session: Session, consent: Consent) -> str | None:
        """The consent subject's pseudonym (domain "default"); ``None`` if the subject was erased before one
        was ever made (pseudonyms made before an erasure are kept)."""
        try:
            return self._pseudonym(session, consent.subject_id)
        except SubjectErased:
            return None

    @staticmethod
    def _event(session: Session, consent: Consent, event: str, actor: str, to_status: str, *,
               from_status: str | None = None, channel: str | None = None, details: dict[str, Any] | None = None,
               at: datetime | None = None) -> None:
        session.add(ConsentEvent(organization_id=consent.organization_id, consent_id=consent.id, at=at or utcnow(),
                                 event=event, actor=actor, channel=channel, from_status=from_status,
                                 to_status=to_status, details=details or {}))

    # -- purposes and categories -----------------------------------------------------------------

    def purposes(self, session: Session) -> list[Purpose]:
        return list(self.taxonomy(session).purposes.values())

    @staticmethod
    def categories() -> list[DataCategory]:
        return list(default_taxonomy().categories.values())

    def add_purpose(self, session: Session, *, code: str, names: Mapping[str, str], description: str | None = None,
                    actor: str) -> Purpose:
        """Add (or rename) one of this operator's purposes. The parent (``code`` minus its last segment) must
        exist. A platform default's code may be reused to give it this operator's own names."""
        org = self._org(session)
        actor = _actor(actor)
        code = check_purpose_code(code, "code")
        parent = parent_of(code)
        if parent is not None and not self.taxonomy(session).has_purpose(parent):
            raise InvalidInput(f"the parent purpose '{parent}' does not exist; add it first", field="code")
        if not isinstance(names, Mapping):
            raise InvalidInput("names must map kk, ru and en to text", field="names")
        clean: dict[str, str] = {}
        for lang in LANGS:
            clean[lang] = _text(names.get(lang), f"names.{lang}", MAX_NAME, required=True) or ""
        unknown = sorted(set(names) - set(LANGS))
        if unknown:
            raise InvalidInput("names are given in kk, ru and en only", field=f"names.{unknown[0]}")
        description = _text(description, "description", MAX_DESCRIPTION)
        return self._upsert_purposes(session, org, [Purpose(code, clean, description, org)], actor, single=True)[0]

    def import_purposes(self, session: Session, text: str, *, source: str = "<upload>", actor: str) -> list[Purpose]:
        """Add or update this operator's purposes from a purposes file (``purposes:`` list, the format of
        ``purposes.yaml``); all or nothing, errors name the file and line. Returns what was imported."""
        org = self._org(session)
        actor = _actor(actor)
        taxonomy = parse_taxonomy(text, source, organization_id=org)
        if taxonomy.categories:
            raise TaxonomyError(source, None, "data_categories", "data categories are the platform's; "
                                "import purposes only")
        known = self.taxonomy(session)
        for purpose in taxonomy.purposes.values():
            parent = purpose.parent
            if parent is not None and not known.has_purpose(parent) and parent not in taxonomy.purposes:
                raise TaxonomyError(source, None, f"purposes.{purpose.code}",
                                    f"parent purpose '{parent}' is neither in the file nor in the taxonomy")
        return self._upsert_purposes(session, org, list(taxonomy.purposes.values()), actor, single=False)

    def _upsert_purposes(self, session: Session, org: int, items: list[Purpose], actor: str, *,
                         single: bool) -> list[Purpose]:
        existing = {r.code: r for r in session.scalars(select(OrganizationPurpose).where(
            OrganizationPurpose.code.in_([p.code for p in items])))}
        created = updated = 0
        for item in items:
            row = existing.get(item.code)
            if row is None:
                session.add(OrganizationPurpose(organization_id=org, code=item.code, parent=item.parent,
                                                name_kk=item.names["kk"], name_ru=item.names["ru"],
                                                name_en=item.names["en"], description=item.description,
                                                active=True, created_by=actor))
                created += 1
            else:
                row.name_kk, row.name_ru, row.name_en = item.names["kk"], item.names["ru"], item.names["en"]
                row.description, row.active = item.description, True
                updated += 1
        session.flush()
        audit.record(session, actor=actor, action="consent.purpose_add" if single else "consent.purposes_import",
                     object_type="consent_purpose", object_id=items[0].code if single else f"{len(items)} purposes",
                     organization_id=org,
                     details={"codes": [p.code for p in items][:200], "created": created, "updated": updated})
        return [Purpose(p.code, p.names, p.description, org) for p in items]

    # -- counterparties ----------------------------------------------------------------------------

    def add_counterparty(self, session: Session, *, name: str, kind: str, bin: str | None = None,
                         foreign_registration: str | None = None, country: str | None = None,
                         webhook_url: str | None = None, actor: str) -> CounterpartyCreated:
        """Register a processor or third party. Returns its webhook signing secret (when it has a webhook) and
        its confirmation token, both shown once."""
        org = self._org(session)
        actor = _actor(actor)
        name = _text(name, "name", 300, required=True, no_pd=False) or ""
        if kind not in COUNTERPARTY_KINDS:
            raise InvalidInput(f"kind must be one of: {', '.join(COUNTERPARTY_KINDS)}", field="kind")
        country = _country(country)
        foreign_registration = _text(foreign_registration, "foreign_registration", 100)
        if country == "KZ":
            if not bin:
                raise InvalidInput("a Kazakhstani counterparty needs its BIN", field="bin")
            try:
                bin = parse_bin(bin).value
            except IdentifierError as exc:
                raise InvalidInput(f"BIN is invalid: {exc.reason}", field="bin") from None
        else:
            if bin:
                raise InvalidInput("a BIN is for Kazakhstani entities; give foreign_registration instead", field="bin")
            if not foreign_registration:
                raise InvalidInput("a foreign counterparty needs its registration number", field="foreign_registration")
            bin = None
        url = check_webhook_url(webhook_url, allow_http=self.platform.settings.consent_webhook_allow_http)
        if session.scalar(select(Counterparty.id).where(Counterparty.name == name)) is not None:
            raise Conflict("a counterparty with this name exists already", field="name")
        secret = outbox.new_webhook_secret() if url else None
        sealed = outbox.seal_secret(session, self.platform.keyring, org, secret) if secret else None
        prefix, token_secret = "c" + secrets.token_hex(5), secrets.token_urlsafe(32)
        row = Counterparty(organization_id=org, name=name, kind=kind, bin=bin, foreign_registration=foreign_registration,
                           country=country, webhook_url=url, webhook_secret_sealed=sealed, token_prefix=prefix,
                           token_hash=_sha256(token_secret), active=True, created_by=actor)
        session.add(row)
        session.flush()
        audit.record(session, actor=actor, action="consent.counterparty_add", object_type="consent_counterparty",
                     object_id=str(row.id), organization_id=org,
                     details={"kind": kind, "country": country, "webhook": url is not None, "token_prefix": prefix})
        return CounterpartyCreated(row, secret, f"{TOKEN_PREFIX}{prefix}_{token_secret}")

    def list_counterparties(self, session: Session, *, include_inactive: bool = True) -> list[Counterparty]:
        self._org(session)
        stmt = select(Counterparty).order_by(Counterparty.name)
        if not include_inactive:
            stmt = stmt.where(Counterparty.active.is_(True))
        return list(session.scalars(stmt))

    def get_counterparty(self, session: Session, counterparty_id: int) -> Counterparty:
        self._org(session)
        row = session.scalar(select(Counterparty).where(Counterparty.id == counterparty_id))
        if row is None:
            raise NotFound("no counterparty with this id", field="counterparty_id")
        return row

    def update_counterparty(self, session: Session, counterparty_id: int, *, actor: str,
                            webhook_url: str | None = None, clear_webhook: bool = False,
                            active: bool | None = None) -> tuple[Counterparty, str | None]:
        """Change the webhook URL (a new signing secret is issued and returned when there was none) or the
        active flag. Returns the counterparty and a new secret if one was made."""
        org = self._org(session)
        actor = _actor(actor)
        row = self.get_counterparty(session, counterparty_id)
        new_secret = None
        changes: dict[str, Any] = {}
        if clear_webhook:
            row.webhook_url, row.webhook_secret_sealed = None, None
            changes["webhook"] = "cleared"
        elif webhook_url is not None:
            row.webhook_url = check_webhook_url(webhook_url, allow_http=self.platform.settings.consent_webhook_allow_http)
            if row.webhook_url and row.webhook_secret_sealed is None:
                new_secret = outbox.new_webhook_secret()
                row.webhook_secret_sealed = outbox.seal_secret(session, self.platform.keyring, org, new_secret)
            changes["webhook"] = "set"
        if active is not None:
            row.active = bool(active)
            changes["active"] = row.active
        session.flush()
        audit.record(session, actor=actor, action="consent.counterparty_update", object_type="consent_counterparty",
                     object_id=str(row.id), organization_id=org, details=changes)
        return row, new_secret

    def rotate_counterparty_secret(self, session: Session, counterparty_id: int, *, actor: str) -> str:
        """A new webhook signing secret (shown once). Messages already in the outbox keep the old one."""
        org = self._org(session)
        row = self.get_counterparty(session, counterparty_id)
        if not row.webhook_url:
            raise InvalidInput("this counterparty has no webhook URL", field="webhook_url")
        secret = outbox.new_webhook_secret()
        row.webhook_secret_sealed = outbox.seal_secret(session, self.platform.keyring, org, secret)
        audit.record(session, actor=_actor(actor), action="consent.counterparty_secret_rotate",
                     object_type="consent_counterparty", object_id=str(row.id), organization_id=org, details={})
        return secret

    def rotate_counterparty_token(self, session: Session, counterparty_id: int, *, actor: str) -> str:
        """A new confirmation token (shown once); the old one stops working at once."""
        org = self._org(session)
        row = self.get_counterparty(session, counterparty_id)
        prefix, token_secret = "c" + secrets.token_hex(5), secrets.token_urlsafe(32)
        row.token_prefix, row.token_hash = prefix, _sha256(token_secret)
        audit.record(session, actor=_actor(actor), action="consent.counterparty_token_rotate",
                     object_type="consent_counterparty", object_id=str(row.id), organization_id=org,
                     details={"token_prefix": prefix})
        return f"{TOKEN_PREFIX}{prefix}_{token_secret}"

    @staticmethod
    def counterparty_by_token(session: Session, token: str) -> Counterparty:
        """The counterparty a ``qcp_…`` token belongs to (an unscoped session: the token names its operator)."""
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or token.count("_") < 2:
            raise AuthenticationRequired("malformed counterparty token")
        prefix, _, secret = token[len(TOKEN_PREFIX):].partition("_")
        row = session.scalar(select(Counterparty).where(Counterparty.token_prefix == prefix)
                             .execution_options(qorgau_cross_tenant=True))
        if row is None or row.token_hash is None or not hmac.compare_digest(row.token_hash, _sha256(secret)):
            raise AuthenticationRequired("unknown counterparty token")
        return row

    # -- legal bases -------------------------------------------------------------------------------

    def add_legal_basis(self, session: Session, *, kind: str, purpose: str, reference: str,
                        subject: SubjectRef | None = None, description: str | None = None,
                        valid_from: datetime | None = None, valid_until: datetime | None = None,
                        actor: str) -> LegalBasis:
        """Record a ground other than consent (PD law Art.9): for every subject, or for one. ``reference``
        names the law and article, court decision or contract number (no personal data: it is shown to
        subjects when a withdrawal is refused)."""
        org = self._org(session)
        actor = _actor(actor)
        if kind not in LEGAL_BASIS_KINDS:
            raise InvalidInput(f"kind must be one of: {', '.join(LEGAL_BASIS_KINDS)}", field="kind")
        purpose = self._purpose(session, purpose)
        reference = _text(reference, "reference", MAX_REFERENCE, required=True) or ""
        description = _text(description, "description", MAX_DESCRIPTION)
        start = _aware(valid_from, "valid_from") or utcnow()
        end = _aware(valid_until, "valid_until")
        if end is not None and end <= start:
            raise InvalidInput("valid_until must be after valid_from", field="valid_until")
        subject_id = None
        if subject is not None:
            subject_id = self._resolve_subject(session, subject, create=True, actor=actor)
        row = LegalBasis(organization_id=org, kind=kind, purpose=purpose, subject_id=subject_id, reference=reference,
                         description=description, valid_from=start, valid_until=end, created_by=actor)
        session.add(row)
        session.flush()
        bump_decision_versions(session, org, [subject_id or 0])
        audit.record(session, actor=actor, action="consent.legal_basis_add", object_type="consent_legal_basis",
                     object_id=str(row.id), organization_id=org,
                     details={"kind": kind, "purpose": purpose, "per_subject": subject_id is not None,
                              "valid_until": _iso(end)})
        return row

    def list_legal_bases(self, session: Session, *, purpose: str | None = None,
                         include_revoked: bool = False) -> list[LegalBasis]:
        self._org(session)
        stmt = select(LegalBasis).order_by(LegalBasis.id)
        if purpose is not None:
            stmt = stmt.where(LegalBasis.purpose == check_purpose_code(purpose))
        if not include_revoked:
            stmt = stmt.where(LegalBasis.revoked_at.is_(None))
        return list(session.scalars(stmt))

    def get_legal_basis(self, session: Session, basis_id: int) -> LegalBasis:
        self._org(session)
        row = session.scalar(select(LegalBasis).where(LegalBasis.id == basis_id))
        if row is None:
            raise NotFound("no legal basis with this id", field="basis_id")
        return row

    def revoke_legal_basis(self, session: Session, basis_id: int, *, actor: str) -> LegalBasis:
        """End a legal basis now (checks stop answering with it at once)."""
        org = self._org(session)
        row = self.get_legal_basis(session, basis_id)
        if row.revoked_at is None:
            row.revoked_at, row.revoked_by = utcnow(), _actor(actor)
            session.flush()
            bump_decision_versions(session, org, [row.subject_id or 0])
            audit.record(session, actor=actor, action="consent.legal_basis_revoke", object_type="consent_legal_basis",
                         object_id=str(row.id), organization_id=org, details={"kind": row.kind, "purpose": row.purpose})
        return row

    def _live_bases(self, session: Session, *, purposes: Sequence[str], subject_id: int | None,
                    now: datetime, blocking_only: bool = False, blanket: bool = True) -> list[LegalBasis]:
        subject_filter = [LegalBasis.subject_id == subject_id]
        if blanket:
            subject_filter.append(LegalBasis.subject_id.is_(None))
        stmt = select(LegalBasis).where(
            LegalBasis.revoked_at.is_(None), LegalBasis.valid_from <= now,
            or_(LegalBasis.valid_until.is_(None), LegalBasis.valid_until > now), or_(*subject_filter))
        if purposes:
            stmt = stmt.where(LegalBasis.purpose.in_(list(purposes)))
        if blocking_only:
            stmt = stmt.where(LegalBasis.kind.in_(sorted(WITHDRAWAL_BLOCKING_KINDS)))
        rows = list(session.scalars(stmt.order_by(LegalBasis.id)))
        rank = {code: i for i, code in enumerate(purposes)}
        # The most specific purpose first, then a basis naming this subject before a blanket one.
        rows.sort(key=lambda b: (rank.get(b.purpose, 99), 0 if b.subject_id is not None else 1, b.id))
        return rows

    # -- consents ------------------------------------------------------------------------------

    def give(self, session: Session, subject: SubjectRef, *, purpose: str, data_categories: Sequence[str],
             valid_until: datetime | None, third_party_transfer: bool, counterparties: Sequence[int],
             cross_border: bool, countries: Sequence[str], public_sources: bool, other: str | None,
             channel: str, evidence_ref: str | None, evidence_sha256: str | None, actor: str,
             full_name: str | None = None, notify_on_transfer: bool | None = None) -> Consent:
        """Record a consent (L-PD-CONSENT-FIELDS, Art.8 p.4 (1)–(8)); see the module docstring.

        ``full_name`` is sealed in the vault as the subject's PERSON attribute (item (2)); the consent stores
        only the vault subject id. ``notify_on_transfer`` (L-PD-TRANSFER: the consent says the subject is told
        of transfers to third parties) defaults to True for consents given through the state service
        (L-PD-STATE-SERVICE: it notifies of every transfer), else False.
        """
        org = self._org(session)
        actor = _actor(actor)
        now = utcnow()
        taxonomy = self.taxonomy(session)
        purpose = check_purpose_code(purpose)
        if not taxonomy.has_purpose(purpose):
            raise InvalidInput("unknown purpose: not in the platform's taxonomy nor this operator's purposes "
                               "(see GET /api/v1/consent/purposes)", field="purpose")
        categories = check_categories(data_categories, taxonomy)
        until = _aware(valid_until, "valid_until")
        if until is not None and until <= now:
            raise InvalidInput("valid_until is in the past: a consent's term must end in the future", field="valid_until")
        channel = _channel(channel)
        if not isinstance(third_party_transfer, bool):
            raise InvalidInput("third_party_transfer must be true or false", field="third_party_transfer")
        if not isinstance(cross_border, bool):
            raise InvalidInput("cross_border must be true or false", field="cross_border")
        if not isinstance(public_sources, bool):
            raise InvalidInput("public_sources must be true or false", field="public_sources")
        country_list = _countries(countries)
        if cross_border and not country_list:
            raise InvalidInput("a cross-border transfer names its countries (Art.8 p.4 (5))", field="countries")
        if not cross_border and country_list:
            raise InvalidInput("countries are given only with cross_border: true", field="countries")
        if "KZ" in country_list:
            raise InvalidInput("Kazakhstan is not a cross-border destination", field=f"countries.{country_list.index('KZ')}")
        other = _text(other, "other", MAX_OTHER)
        evidence_ref = _text(evidence_ref, "evidence_ref", MAX_REFERENCE)
        if evidence_sha256 is not None:
            if not isinstance(evidence_sha256, str) or not _HEX64.fullmatch(evidence_sha256.strip().lower()):
                raise InvalidInput("evidence_sha256 must be 64 hexadecimal characters (SHA-256 of the signed document)",
                                   field="evidence_sha256")
            evidence_sha256 = evidence_sha256.strip().lower()
        if full_name is not None:
            full_name = _text(full_name, "full_name", MAX_FULL_NAME, no_pd=False)
        if notify_on_transfer is None:
            notify_on_transfer = channel == "state_service"
        elif not isinstance(notify_on_transfer, bool):
            raise InvalidInput("notify_on_transfer must be true or false", field="notify_on_transfer")
        if isinstance(counterparties, (str, bytes)) or not isinstance(counterparties, Sequence):
            raise InvalidInput("counterparties is a list of counterparty ids", field="counterparties")
        ids: list[int] = []
        for i, cp in enumerate(counterparties):
            if type(cp) is not int:
                raise InvalidInput("a counterparty id is an integer", field=f"counterparties.{i}")
            if cp not in ids:
                ids.append(cp)
        found = {c.id: c for c in session.scalars(select(Counterparty).where(Counterparty.id.in_(ids)))} if ids else {}
        for i, cp in enumerate(ids):
            row = found.get(cp)
            if row is None:
                raise InvalidInput("unknown counterparty (not one of this operator's)", field=f"counterparties.{i}")
            if row.kind == THIRD_PARTY and not third_party_transfer:
                raise InvalidInput("this counterparty is a third party: the consent must allow third-party transfer "
                                   "(Art.8 p.4 (4))", field="third_party_transfer")
            if row.country != "KZ" and row.country not in country_list:
                raise InvalidInput(f"this counterparty is in {row.country}: the consent must allow cross-border "
                                   f"transfer to it (Art.8 p.4 (5), L-PD-LOCAL)", field=f"counterparties.{i}")

        subject_id = self._resolve_subject(session, subject, create=True, actor=actor, full_name=full_name)
        assert subject_id is not None
        sensitive = any(taxonomy.categories[c].sensitive for c in categories)
        consent = Consent(
            organization_id=org, receipt_id="cr_" + vault_crypto.random_letters(), subject_id=subject_id,
            purpose=purpose, data_categories=categories, valid_until=until, third_party_transfer=third_party_transfer,
            counterparty_ids=ids, cross_border=cross_border, countries=country_list, public_sources=public_sources,
            other=other, channel=channel, evidence_ref=evidence_ref, evidence_sha256=evidence_sha256,
            notify_on_transfer=notify_on_transfer, sensitive=sensitive, status=ACTIVE, version=1, given_at=now,
            given_by=actor, updated_at=now)
        session.add(consent)
        session.flush()
        superseded = []
        for old in session.scalars(select(Consent).where(
                Consent.subject_id == subject_id, Consent.purpose == purpose, Consent.status == ACTIVE,
                Consent.id != consent.id).with_for_update()):
            old.status, old.superseded_by_id, old.updated_at = SUPERSEDED, consent.id, now
            self._event(session, old, EVENT_SUPERSEDED, actor, SUPERSEDED, from_status=ACTIVE, at=now,
                        details={"superseded_by": consent.id})
            superseded.append(old.id)
            consent.version = max(consent.version, old.version + 1)
        self._event(session, consent, EVENT_GIVEN, actor, ACTIVE, channel=channel, at=now,
                    details={"superseded": superseded} if superseded else {})
        self._pseudonym(session, subject_id, actor)  # the receipt's piiPrincipalId exists from the start
        session.flush()
        bump_decision_versions(session, org, [subject_id])
        audit.record(session, actor=actor, action="consent.give", object_type="consent", object_id=str(consent.id),
                     organization_id=org,
                     details={"purpose": purpose, "channel": channel, "data_categories": categories,
                              "valid_until": _iso(until), "third_party_transfer": third_party_transfer,
                              "counterparties": ids, "cross_border": cross_border, "countries": country_list,
                              "public_sources": public_sources, "evidence": evidence_sha256 is not None,
                              "superseded": superseded, "receipt_id": consent.receipt_id})
        return consent

    def check(self, subject: SubjectRef, *, organization_id: int, purpose: str,
              data_categories: Sequence[str] = (), at: datetime | None = None) -> Decision:
        """May ``organization_id`` process ``subject`` for ``purpose`` (and these data categories) at ``at``?

        Allow when an active consent within its term covers the purpose (or a broader one) and every listed
        category, or else when a legal basis covers it. Opens its own read — one SQL statement on committed
        state, no cache — so it is linearizable with :meth:`withdraw` (:mod:`qorgau.consent.decision`).
        ``at`` moves the clock for terms (``valid_until``, legal bases' validity); statuses are always the
        current ones (a withdrawal is not undone by asking about the past).
        """
        return self.decisions.check(subject, organization_id=organization_id, purpose=purpose,
                                    data_categories=data_categories, at=at)

    def get_consent(self, session: Session, consent_id: int) -> Consent:
        self._org(session)
        if type(consent_id) is not int:
            raise InvalidInput("consent id is an integer", field="consent_id")
        row = session.scalar(select(Consent).where(Consent.id == consent_id))
        if row is None:
            raise NotFound("no consent with this id", field="consent_id")
        return row

    def list_consents(self, session: Session, *, purpose: str | None = None, status: str | None = None,
                      limit: int = 100, before: int | None = None) -> list[Consent]:
        """This operator's consents, newest first (``before``: a consent id, for paging)."""
        self._org(session)
        stmt = select(Consent).order_by(Consent.id.desc()).limit(max(1, min(int(limit), 1000)))
        if purpose is not None:
            stmt = stmt.where(Consent.purpose == check_purpose_code(purpose))
        if status is not None:
            if status not in (ACTIVE, WITHDRAWN, EXPIRED, SUPERSEDED):
                raise InvalidInput("status must be one of active, withdrawn, expired, superseded", field="status")
            stmt = stmt.where(Consent.status == status)
        if before is not None:
            stmt = stmt.where(Consent.id < before)
        return list(session.scalars(stmt))

    def consents_of_subject(self, session: Session, subject: SubjectRef) -> list[Consent]:
        """Every consent of one subject at this operator, newest first ([] for a subject the vault doesn't know)."""
        self._org(session)
        subject_id = self._resolve_subject(session, subject, create=False)
        if subject_id is None:
            return []
        return self.consents_of_subject_id(session, subject_id)

    def consents_of_subject_id(self, session: Session, subject_id: int) -> list[Consent]:
        self._org(session)
        return list(session.scalars(select(Consent).where(Consent.subject_id == subject_id)
                                    .order_by(Consent.given_at.desc(), Consent.id.desc())))

    def history(self, session: Session, consent_id: int) -> list[ConsentEvent]:
        """The consent's status history, oldest first."""
        self.get_consent(session, consent_id)
        return list(session.scalars(select(ConsentEvent).where(ConsentEvent.consent_id == consent_id)
                                    .order_by(ConsentEvent.at, ConsentEvent.id)))

    def expire_due(self, session: Session, *, actor: str = auth.SYSTEM_ACTOR, now: datetime | None = None,
                   limit: int = 1000) -> int:
        """Mark consents whose term ended as ``expired`` (the decision point already denies them from
        ``valid_until`` on; this brings the stored status and the history up to date)."""
        org = self._org(session)
        now = now or utcnow()
        rows = list(session.scalars(select(Consent).where(
            Consent.status == ACTIVE, Consent.valid_until.is_not(None), Consent.valid_until <= now)
            .order_by(Consent.id).limit(limit).with_for_update()))
        for row in rows:
            row.status, row.updated_at = EXPIRED, now
            self._event(session, row, EVENT_EXPIRED, actor, EXPIRED, from_status=ACTIVE, at=row.valid_until,
                        details={})
        if rows:
            session.flush()
            bump_decision_versions(session, org, [r.subject_id for r in rows])
            audit.record(session, actor=actor, action="consent.expire", object_type="consent",
                         object_id=str(rows[0].id) if len(rows) == 1 else f"{len(rows)} consents",
                         organization_id=org, details={"consent_ids": [r.id for r in rows][:500], "count": len(rows)})
        return len(rows)

    # -- withdrawal ------------------------------------------------------------------------------

    def withdraw(self, session: Session, consent_id: int, *, channel: str, actor: str,
                 idempotency_key: str | None = None) -> Withdrawal:
        """Withdraw a consent (L-PD-WITHDRAW), in the caller's transaction:

        1. The consent's status becomes ``withdrawn`` (who, when, channel in its history): from the commit on,
           every check denies — or, when a legal basis covers the purpose, answers with that basis.
        2. **Refusal**: when a live legal basis of a kind that lets the operator refuse (``law``,
           ``contract``, ``court_order``: "a law requires the processing or an obligation is unfulfilled")
           covers the purpose — for every subject or this one —, the withdrawal is recorded but processing
           continues under that basis: ``refused`` is True, ``basis`` names it, the receipt states it.
        3. **Crypto-shredding** (vault): the subject's key is destroyed when, after this withdrawal, the
           operator has (a) no refusal, (b) no other active consent of the subject within its term, for any
           purpose, and (c) no live legal basis naming this subject. Blanket legal bases for *other*
           purposes do not keep a subject's identity (they make processing lawful for whoever is in that
           population; they do not put this subject in it).
        4. An audit entry, a signed withdrawal receipt (Ed25519).
        5. One outbox message per counterparty that received the subject's data under this consent
           (recorded transfers), each with a 15-working-day deadline for its "stopped" confirmation. When
           the withdrawal is refused, only third parties are told (they received the data on the strength
           of the consent; processors act for the operator, whose processing continues under the basis).

        Idempotent: withdrawing a withdrawn consent returns the first withdrawal (``repeated=True``); an
        ``idempotency_key`` used for another consent is refused.
        """
        org = self._org(session)
        actor = _actor(actor)
        channel = _channel(channel)
        if idempotency_key is not None and (not isinstance(idempotency_key, str)
                                            or not _IDEMPOTENCY.fullmatch(idempotency_key)):
            raise InvalidInput("idempotency_key: 1–100 characters of letters, digits and . _ : -",
                               field="idempotency_key")
        if type(consent_id) is not int:
            raise InvalidInput("consent id is an integer", field="consent_id")
        consent = session.scalar(select(Consent).where(Consent.id == consent_id).with_for_update())
        if consent is None:
            raise NotFound("no consent with this id", field="consent_id")
        if idempotency_key is not None:
            earlier = session.scalar(select(ConsentWithdrawal).where(ConsentWithdrawal.idempotency_key == idempotency_key))
            if earlier is not None and earlier.consent_id != consent_id:
                raise Conflict("this idempotency key was used for another consent's withdrawal", field="idempotency_key")
        existing = session.scalar(select(ConsentWithdrawal).where(ConsentWithdrawal.consent_id == consent_id))
        if existing is not None:
            return self._withdrawal_of(session, existing, repeated=True)
        now = utcnow()
        status = consent.status_at(now)
        if status != ACTIVE:
            raise Conflict(f"the consent is {status}, not active: there is nothing to withdraw", field="consent_id")

        chain = ancestors(consent.purpose)
        blocking = self._live_bases(session, purposes=chain, subject_id=consent.subject_id, now=now, blocking_only=True)
        basis = blocking[0] if blocking else None
        refused = basis is not None

        consent.status, consent.withdrawn_at, consent.updated_at = WITHDRAWN, now, now
        self._event(session, consent, EVENT_WITHDRAWAL_REFUSED if refused else EVENT_WITHDRAWN, actor, WITHDRAWN,
                    from_status=ACTIVE, channel=channel, at=now,
                    details={"legal_basis_id": basis.id, "kind": basis.kind} if basis else {})
        session.flush()
        # From this transaction's commit on, no remembered allow about the subject is valid anywhere.
        bump_decision_versions(session, org, [consent.subject_id])

        pseudonym = self._pseudonym(session, consent.subject_id, actor)
        organization = auth.get_organization(session, org)
        recipients = self._recipients(session, consent, third_parties_only=refused)

        shredded, certificate_id = False, None
        if not refused and self._nothing_remains(session, consent, now):
            lookups = lookups_of(session, consent.subject_id)
            try:
                certificate = self.vault.shred_subject(session, consent.subject_id, reason=SHRED_REASON, actor=actor)
                shredded, certificate_id = True, certificate.certificate_id
                # Tombstones: a check by one of the subject's identifiers answers "subject_erased" from now on
                # (the vault deleted the blind indexes; these rows keep no subject id — see ErasedLookup).
                for entity_type, blind in lookups:
                    _tombstone(session, org, entity_type, blind, now)
            except SubjectErased:
                shredded = False  # erased earlier (e.g. on the subject's demand): nothing left to destroy

        deadline = add_working_days(now, self.working_days(deadlines.WITHDRAWAL_STOP, now))
        receipt_id = "wr_" + vault_crypto.random_letters()
        taxonomy = self.taxonomy(session)
        body = {
            "type": receipts.WITHDRAWAL_RECEIPT_TYPE,
            "version": KANTARA_VERSION,
            "jurisdiction": "KZ",
            "law": "Law 94-V Art.8 p.7 (L-PD-WITHDRAW)",
            "withdrawalReceiptID": receipt_id,
            "consentReceiptID": consent.receipt_id,
            "consent_id": consent.id,
            "organization_id": org,
            "piiPrincipalId": pseudonym,
            "piiControllers": [{"piiController": organization.name, "bin": organization.bin}],
            "purpose": {"code": consent.purpose, "names": _names(taxonomy, consent.purpose)},
            "withdrawn_at": _iso(now),
            "collectionMethod": channel,
            "recorded_by": actor,
            "outcome": "withdrawal_refused" if refused else "processing_stopped",
            "legal_basis": ({"kind": basis.kind, "purpose": basis.purpose, "reference": basis.reference}
                            if basis else None),
            "erasure": {"shredded": shredded, "certificate_id": certificate_id},
            "counterparties_notified": [{"name": c.name, "kind": c.kind, "country": c.country} for c in recipients],
            "confirmation_deadline": deadline.isoformat(),
        }
        document = receipts.sign(body, receipts.signing_key(session, self.platform.keyring))
        text = receipts.text_of(document)
        withdrawal = ConsentWithdrawal(
            organization_id=org, consent_id=consent.id, withdrawn_at=now, actor=actor, channel=channel,
            idempotency_key=idempotency_key, refused=refused, legal_basis_id=basis.id if basis else None,
            shredded=shredded, erasure_certificate_id=certificate_id, receipt_id=receipt_id, receipt=text)
        session.add(withdrawal)
        session.flush()
        notifications = self._notify(session, org, organization, consent, withdrawal, recipients, pseudonym,
                                     deadline, now)
        audit.record(session, actor=actor, action="consent.withdraw", object_type="consent", object_id=str(consent.id),
                     organization_id=org,
                     details={"purpose": consent.purpose, "channel": channel, "refused": refused,
                              "legal_basis_id": basis.id if basis else None, "shredded": shredded,
                              "erasure_certificate_id": certificate_id, "receipt_id": receipt_id,
                              "notifications": [n.id for n in notifications]})
        return Withdrawal(consent.id, withdrawal.id, now, channel, actor, refused,
                          _basis_ref(basis) if basis else None, shredded, certificate_id, document, text,
                          tuple(_notification_info(n) for n in notifications))

    def _recipients(self, session: Session, consent: Consent, *, third_parties_only: bool) -> list[Counterparty]:
        """Counterparties that received the subject's data under this consent (recorded transfers)."""
        stmt = (select(Counterparty).where(Counterparty.id.in_(
            select(Transfer.counterparty_id).where(Transfer.consent_id == consent.id))).order_by(Counterparty.id))
        if third_parties_only:
            stmt = stmt.where(Counterparty.kind == THIRD_PARTY)
        return list(session.scalars(stmt))

    def _nothing_remains(self, session: Session, consent: Consent, now: datetime) -> bool:
        other = session.scalar(select(Consent.id).where(
            Consent.subject_id == consent.subject_id, Consent.id != consent.id, Consent.status == ACTIVE,
            or_(Consent.valid_until.is_(None), Consent.valid_until > now)).limit(1))
        if other is not None:
            return False
        return not self._live_bases(session, purposes=(), subject_id=consent.subject_id, now=now, blanket=False)

    def _notify(self, session: Session, org: int, organization: Any, consent: Consent, withdrawal: ConsentWithdrawal,
                recipients: list[Counterparty], pseudonym: str, deadline: date,
                now: datetime) -> list[ProcessorNotification]:
        settings = self.platform.settings
        rows: list[ProcessorNotification] = []
        for counterparty in recipients:
            row = ProcessorNotification(organization_id=org, consent_id=consent.id, withdrawal_id=withdrawal.id,
                                        counterparty_id=counterparty.id, created_at=now, deadline=deadline)
            session.add(row)
            rows.append(row)
        session.flush()
        outgoing: list[tuple[ProcessorNotification, outbox.Outgoing]] = []
        for row, counterparty in zip(rows, recipients):
            if not counterparty.webhook_url or counterparty.webhook_secret_sealed is None:
                continue  # no webhook: the notification is tracked (deadline, overdue) and told by other means
            key = f"{WEBHOOK_TOPIC}:{withdrawal.receipt_id}:{counterparty.id}"
            payload = {
                "type": WEBHOOK_TOPIC,
                "id": key,
                "created_at": _iso(now),
                "operator": {"bin": organization.bin, "name": organization.name},
                "notification_id": row.id,
                "counterparty_id": counterparty.id,
                "consent": {"receipt_id": consent.receipt_id, "purpose": consent.purpose,
                            "data_categories": list(consent.data_categories)},
                "subject": {"pseudonym": pseudonym},
                "withdrawn_at": _iso(now),
                "action": "stop_processing",
                "confirm": {"method": "POST", "path": f"/api/v1/consent/notifications/{row.id}/confirm",
                            "deadline": deadline.isoformat(), "law": "L-PD-WITHDRAW (Law 94-V Art.8 p.7)"},
            }
            outgoing.append((row, outbox.Outgoing(WEBHOOK_TOPIC, counterparty.webhook_url, payload,
                                                  bytes(counterparty.webhook_secret_sealed), key,
                                                  "consent_notification", str(row.id))))
        if outgoing:
            from datetime import timedelta

            messages = outbox.enqueue(session, [o for _, o in outgoing],
                                      max_attempts=settings.consent_webhook_max_attempts,
                                      max_age=timedelta(hours=settings.consent_webhook_max_age_hours), now=now)
            for (row, _), message in zip(outgoing, messages):
                row.outbox_message_id = message.id
            session.flush()
        return rows

    def withdrawal_of(self, session: Session, consent_id: int) -> Withdrawal | None:
        self.get_consent(session, consent_id)
        row = session.scalar(select(ConsentWithdrawal).where(ConsentWithdrawal.consent_id == consent_id))
        return None if row is None else self._withdrawal_of(session, row, repeated=False)

    def _withdrawal_of(self, session: Session, row: ConsentWithdrawal, *, repeated: bool) -> Withdrawal:
        basis = session.get(LegalBasis, row.legal_basis_id) if row.legal_basis_id else None
        notifications = session.scalars(select(ProcessorNotification).where(
            ProcessorNotification.withdrawal_id == row.id).order_by(ProcessorNotification.id)).all()
        document = receipts.parse(row.receipt)
        return Withdrawal(row.consent_id, row.id, row.withdrawn_at, row.channel, row.actor, row.refused,
                          _basis_ref(basis) if basis else None, row.shredded, row.erasure_certificate_id, document,
                          row.receipt, tuple(_notification_info(n) for n in notifications), repeated)

    # -- receipts ----------------------------------------------------------------------------------

    def receipt(self, session: Session, consent_id: int) -> dict[str, Any]:
        """The consent's signed receipt (ISO/IEC TS 27560 / Kantara fields + Art.8 p.4), as it stands now:
        the fields as given, the current status and the history. No personal data: the subject is their
        pseudonym."""
        org = self._org(session)
        consent = self.get_consent(session, consent_id)
        taxonomy = self.taxonomy(session)
        organization = auth.get_organization(session, org)
        counterparties = ({c.id: c for c in session.scalars(select(Counterparty).where(
            Counterparty.id.in_(consent.counterparty_ids)))} if consent.counterparty_ids else {})
        now = utcnow()
        categories = list(consent.data_categories)
        spi = [c for c in categories if (cat := taxonomy.category(c)) is not None and cat.sensitive]
        history = [{"event": e.event, "at": _iso(e.at), "channel": e.channel, "to_status": e.to_status}
                   for e in self.history(session, consent_id)]
        body = {
            "type": receipts.CONSENT_RECEIPT_TYPE,
            "version": KANTARA_VERSION,
            "jurisdiction": "KZ",
            "law": "Law 94-V Art.8 p.4 (L-PD-CONSENT-FIELDS)",
            "consentReceiptID": consent.receipt_id,
            "consent_id": consent.id,
            "organization_id": org,
            "consentTimestamp": int(consent.given_at.timestamp()),
            "given_at": _iso(consent.given_at),
            "collectionMethod": consent.channel,
            "piiPrincipalId": self.subject_pseudonym(session, consent),
            "piiControllers": [{"piiController": organization.name, "bin": organization.bin, "country": "KZ"}],
            "services": [{
                "service": consent.purpose,
                "purposes": [{
                    "purpose": _names(taxonomy, consent.purpose).get("en", consent.purpose),
                    "purposeCode": consent.purpose,
                    "names": _names(taxonomy, consent.purpose),
                    "consentType": "EXPLICIT",
                    "piiCategory": categories,
                    "primaryPurpose": True,
                    "termination": _iso(consent.valid_until) or "until the purpose is achieved",
                    "thirdPartyDisclosure": consent.third_party_transfer,
                    "thirdPartyName": [counterparties[i].name for i in consent.counterparty_ids if i in counterparties],
                }],
            }],
            "sensitive": consent.sensitive,
            "spiCat": spi,
            "art8": {  # Law 94-V Art.8 p.4, items (3)–(8); (1) is piiControllers, (2) is in the vault
                "term": _iso(consent.valid_until),
                "third_party_transfer": consent.third_party_transfer,
                "counterparties": [{"name": c.name, "kind": c.kind, "country": c.country,
                                    "bin": c.bin, "registration": c.foreign_registration}
                                   for i in consent.counterparty_ids if (c := counterparties.get(i)) is not None],
                "cross_border": consent.cross_border,
                "countries": list(consent.countries),
                "public_sources": consent.public_sources,
                "data_categories": categories,
                "other": consent.other,
            },
            "evidence": {"reference": consent.evidence_ref, "sha256": consent.evidence_sha256},
            "notify_on_transfer": consent.notify_on_transfer,
            "status": consent.status_at(now),
            "history": history,
            "issued_at": _iso(now),
        }
        return receipts.sign(body, receipts.signing_key(session, self.platform.keyring))

    def receipt_public_key(self, session: Session) -> str:
        return receipts.public_key_hex(session, self.platform.keyring)

    # -- transfers (L-PD-TRANSFER) ---------------------------------------------------------------

    def record_transfer(self, session: Session, consent_id: int, counterparty_id: int, *,
                        data_categories: Sequence[str], actor: str) -> Transfer:
        """Record that data of the consent's subject went to a counterparty. The consent must be active, list
        the counterparty (and allow third-party / cross-border transfer when it is one) and cover the
        categories. When the consent asks for it and the counterparty is a third party, the subject must be
        told within 10 working days (``notify_deadline``)."""
        org = self._org(session)
        actor = _actor(actor)
        consent = self.get_consent(session, consent_id)
        now = utcnow()
        if consent.status_at(now) != ACTIVE:
            raise Conflict(f"the consent is {consent.status_at(now)}: no data may be transferred under it",
                           field="consent_id")
        if type(counterparty_id) is not int:
            raise InvalidInput("counterparty id is an integer", field="counterparty_id")
        counterparty = session.scalar(select(Counterparty).where(Counterparty.id == counterparty_id))
        if counterparty is None:
            raise NotFound("no counterparty with this id", field="counterparty_id")
        if not counterparty.active:
            raise Conflict("this counterparty is inactive", field="counterparty_id")
        if counterparty.id not in consent.counterparty_ids:
            raise InvalidInput("the consent does not name this counterparty (Art.8 p.4 (4))", field="counterparty_id")
        if counterparty.kind == THIRD_PARTY and not consent.third_party_transfer:
            raise InvalidInput("the consent does not allow transfer to third parties", field="counterparty_id")
        cross_border = counterparty.country != "KZ"
        if cross_border and counterparty.country not in consent.countries:
            raise InvalidInput("the consent does not allow cross-border transfer to this country", field="counterparty_id")
        taxonomy = self.taxonomy(session)
        categories = check_categories(data_categories, taxonomy)
        for i, code in enumerate(categories):
            if code not in consent.data_categories:
                raise InvalidInput("the consent does not cover this data category", field=f"data_categories.{i}")
        notify = consent.notify_on_transfer and counterparty.kind == THIRD_PARTY
        row = Transfer(organization_id=org, consent_id=consent.id, counterparty_id=counterparty.id,
                       data_categories=categories, transferred_at=now, actor=actor, country=counterparty.country,
                       cross_border=cross_border, notify_subject=notify,
                       notify_deadline=add_working_days(now, self.working_days(deadlines.TRANSFER_NOTICE, now)) if notify else None)
        session.add(row)
        session.flush()
        self._event(session, consent, EVENT_TRANSFER, actor, consent.status, from_status=consent.status, at=now,
                    details={"transfer_id": row.id, "counterparty_id": counterparty.id})
        audit.record(session, actor=actor, action="consent.transfer", object_type="consent_transfer",
                     object_id=str(row.id), organization_id=org,
                     details={"consent_id": consent.id, "counterparty_id": counterparty.id, "kind": counterparty.kind,
                              "country": counterparty.country, "data_categories": categories,
                              "notify_subject": notify,
                              "notify_deadline": row.notify_deadline.isoformat() if row.notify_deadline else None})
        return row

    def list_transfers(self, session: Session, *, consent_id: int | None = None, pending_only: bool = False,
                       limit: int = 200) -> list[Transfer]:
        """Transfers, newest first; ``pending_only``: the subject must still be told."""
        self._org(session)
        stmt = select(Transfer).order_by(Transfer.id.desc()).limit(max(1, min(int(limit), 1000)))
        if consent_id is not None:
            stmt = stmt.where(Transfer.consent_id == consent_id)
        if pending_only:
            stmt = stmt.where(Transfer.notify_subject.is_(True), Transfer.subject_notified_at.is_(None))
        return list(session.scalars(stmt))

    def mark_subject_notified(self, session: Session, transfer_id: int, *, actor: str) -> Transfer:
        """The subject was told of the transfer (L-PD-TRANSFER). Idempotent."""
        org = self._org(session)
        actor = _actor(actor)
        row = session.scalar(select(Transfer).where(Transfer.id == transfer_id))
        if row is None:
            raise NotFound("no transfer with this id", field="transfer_id")
        if not row.notify_subject:
            raise InvalidInput("this transfer needs no notice to the subject", field="transfer_id")
        if row.subject_notified_at is None:
            now = utcnow()
            row.subject_notified_at, row.subject_notified_by = now, actor
            consent = session.get(Consent, row.consent_id)
            assert consent is not None
            late = row.notify_deadline is not None and local_date(now) > row.notify_deadline
            self._event(session, consent, EVENT_SUBJECT_NOTIFIED, actor, consent.status, from_status=consent.status,
                        at=now, details={"transfer_id": row.id, "late": late})
            audit.record(session, actor=actor, action="consent.transfer_notified", object_type="consent_transfer",
                         object_id=str(row.id), organization_id=org, details={"late": late})
        return row

    # -- processors' confirmations (L-PD-WITHDRAW) ---------------------------------------------------

    def get_notification(self, session: Session, notification_id: int) -> ProcessorNotification:
        self._org(session)
        if type(notification_id) is not int:
            raise InvalidInput("notification id is an integer", field="notification_id")
        row = session.scalar(select(ProcessorNotification).where(ProcessorNotification.id == notification_id))
        if row is None:
            raise NotFound("no notification with this id", field="notification_id")
        return row

    def list_notifications(self, session: Session, *, open_only: bool = False, overdue_only: bool = False,
                           counterparty_id: int | None = None, limit: int = 200,
                           today: date | None = None) -> list[ProcessorNotification]:
        """Notifications, newest first. ``overdue_only``: unconfirmed after the 15-working-day deadline."""
        self._org(session)
        stmt = select(ProcessorNotification).order_by(ProcessorNotification.id.desc()).limit(max(1, min(int(limit), 1000)))
        if open_only or overdue_only:
            stmt = stmt.where(ProcessorNotification.confirmed_at.is_(None))
        if overdue_only:
            stmt = stmt.where(ProcessorNotification.deadline < (today or local_date(utcnow())))
        if counterparty_id is not None:
            stmt = stmt.where(ProcessorNotification.counterparty_id == counterparty_id)
        return list(session.scalars(stmt))

    def confirm_stopped(self, session: Session, notification_id: int, *, actor: str,
                        counterparty_id: int | None = None) -> None:
        """A counterparty confirms it stopped processing (L-PD-WITHDRAW). Idempotent (a second confirmation
        changes nothing). With ``counterparty_id`` (a counterparty's own token) only its notifications are
        found. Late confirmations (after the 15-working-day deadline) are accepted and marked late."""
        org = self._org(session)
        actor = _actor(actor)
        row = self.get_notification(session, notification_id)
        if counterparty_id is not None and row.counterparty_id != counterparty_id:
            raise NotFound("no notification with this id", field="notification_id")
        if row.confirmed_at is not None:
            return
        now = utcnow()
        row.confirmed_at, row.confirmed_by = now, actor
        late = local_date(now) > row.deadline
        session.flush()
        audit.record(session, actor=actor, action="consent.confirm_stopped", object_type="consent_notification",
                     object_id=str(row.id), organization_id=org,
                     details={"consent_id": row.consent_id, "counterparty_id": row.counterparty_id, "late": late,
                              "seconds_to_stop": round((now - row.created_at).total_seconds(), 3)})

    # -- statistics (for the API and dashboards) ----------------------------------------------------

    def counts_by_purpose(self, session: Session) -> dict[str, dict[str, int]]:
        """purpose → status → consents (stored status)."""
        self._org(session)
        out: dict[str, dict[str, int]] = {}
        for purpose, status, n in session.execute(select(Consent.purpose, Consent.status, func.count())
                                                  .group_by(Consent.purpose, Consent.status)):
            out.setdefault(purpose, {})[status] = int(n)
        return out


def _names(taxonomy: Taxonomy, code: str) -> dict[str, str]:
    purpose = taxonomy.purpose(code)
    return dict(purpose.names) if purpose else {"en": code}


def _basis_ref(basis: LegalBasis) -> LegalBasisRef:
    return LegalBasisRef(basis.id, basis.kind, basis.purpose, basis.reference)


def _notification_info(row: ProcessorNotification) -> NotificationInfo:
    return NotificationInfo(row.id, row.counterparty_id, row.deadline, row.outbox_message_id, row.confirmed_at)


_ATTRIBUTE = "_qorgau_consent"


def consent_for(platform: Platform) -> ConsentService:
    """The platform's one :class:`ConsentService` (API, web and CLI share it, and its decision point)."""
    return shared(platform, _ATTRIBUTE, ConsentService)


def expire_all(platform: Platform, *, actor: str = "system:consent-expiry") -> int:
    """Run :meth:`ConsentService.expire_due` for every organization that has consents past their term
    (the dispatcher thread does this every minute; the decision point never waits for it)."""
    now = utcnow()
    with platform.db.reader() as session:
        orgs = session.execute(select(Consent.organization_id).where(
            Consent.status == ACTIVE, Consent.valid_until.is_not(None), Consent.valid_until <= now)
            .distinct()).scalars().all()
    service = consent_for(platform)
    total = 0
    for org in orgs:
        with platform.db.transaction(org) as session:
            total += service.expire_due(session, actor=actor, now=now)
    return total
