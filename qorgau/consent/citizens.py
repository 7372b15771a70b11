"""Citizens: a platform account linked to a verified IIN, so a person sees their consents at every operator.

Vault pseudonyms are per organization and unlinkable (L-PD-SPLIT). The platform, which holds every
organization's keys, can still find one person's subjects: it computes each organization's blind index
of the person's *verified* IIN (:meth:`qorgau.vault.Vault.lookup` in that organization's session). What
makes this safe is the verification — a citizen account sees only the subjects of the IIN it proved.

The tables (platform-level, not tenant-scoped: a citizen deals with every operator):

* ``citizen_identities`` — user id → IIN sealed (AES-256-GCM) with a platform data key, a platform-keyed
  blind index (HMAC-SHA256) that is UNIQUE, so one IIN has one citizen identity, the verification method,
  the provider's reference and the time.
* ``citizen_enrollments`` — one-time enrollment codes (the embedded identity provider): a *selector*
  (public, finds the row) and a *verifier* stored only as SHA-256, the IIN the code is for (sealed, erased
  once redeemed or expired), an expiry, a per-code attempt counter.
* ``citizen_redeem_throttle`` — failed redemptions per user in a sliding day, so codes cannot be guessed.
* ``citizen_subject_links`` — the subjects a citizen withdrew a consent of through the portal. A
  withdrawal may crypto-shred the subject (vault lookups are deleted, L-PD-RETENTION), after which the IIN
  no longer finds it; the link keeps the citizen's own history and receipts visible to them (L-PD-RIGHTS).

**Identity providers.** Production deployments verify through eGov (the e-government IdP or an NCA RK
digital signature): implement :class:`IdentityProvider` and register it with
:meth:`Citizens.register_provider` at start-up (see ``docs/consent.md`` § Citizen identity). The embedded
default, :class:`EnrollmentCodeProvider`, lets an administrator or DPO who checked a person's ID document
issue a one-time code for the IIN (``qorgau citizens enroll --iin -`` or the web form); the person redeems
it once from their citizen account.

Nothing here logs, prints or audits an IIN: errors name the field, audit details hold ids, the method and
the code's selector, and every object masks the IIN in ``repr``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..core import audit, auth
from ..core.auth import Role, User
from ..core.db import TENANT_KEY, Base, utcnow
from ..core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, QorgauError
from ..identifiers import IdentifierError, parse_iin
from ..identifiers.iin import mask_iin
from ..core.platform import shared

if TYPE_CHECKING:
    from ..core.platform import Platform

__all__ = [
    "CODE_ALPHABET", "ENROLLMENT_METHOD", "CitizenEnrollment", "CitizenIdentity", "CitizenRedeemThrottle",
    "CitizenSubject", "CitizenSubjectLink", "Citizens", "EnrollmentCodeProvider", "IdentityNotVerified",
    "IdentityProvider", "IssuedCode", "VerificationOutcome", "VerifiedIdentity", "citizens_for", "format_code",
    "parse_code",
]

# --- constants ------------------------------------------------------------------------------------

SEAL_KEY_ID = "dk-citizen-seal"            # AES-256-GCM key sealing IINs (platform data key, wrapped)
INDEX_KEY_ID = "dk-citizen-index"          # HMAC-SHA256 key of the platform's blind index of IINs
SEAL_KEY_PURPOSE = "citizen-identity"
INDEX_KEY_PURPOSE = "citizen-blind-index"

ENROLLMENT_METHOD = "enrollment_code"
# Crockford's base32: no I, L, O, U, so a code read aloud or typed from paper is unambiguous.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SELECTOR_CHARS = 8      # 40 bits, public: finds the row (unique)
VERIFIER_CHARS = 16     # 80 bits, secret: stored only as SHA-256
CODE_CHARS = SELECTOR_CHARS + VERIFIER_CHARS
DEFAULT_CODE_VALIDITY = timedelta(hours=72)
MAX_CODE_VALIDITY = timedelta(days=30)
MAX_CODE_ATTEMPTS = 5            # wrong verifiers for one selector, then the code is burned
MAX_USER_FAILURES = 10           # failed redemptions per user ...
FAILURE_WINDOW = timedelta(hours=24)  # ... within this window
_TYPO_MAP = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = str.maketrans("", "", " -\t")
MAX_REFERENCE_CHARS = 200
_METHOD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-.")


# --- tables ---------------------------------------------------------------------------------------


class CitizenIdentity(Base):
    """A citizen account's verified IIN. Platform-level: the citizen is nobody's tenant."""

    __tablename__ = "citizen_identities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    iin_index: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    iin_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    method: Mapped[str] = mapped_column(String(40))
    reference: Mapped[str | None] = mapped_column(String(MAX_REFERENCE_CHARS))
    verified_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"CitizenIdentity(id={self.id}, user={self.user_id}, method={self.method!r})"


class CitizenEnrollment(Base):
    """A one-time enrollment code. ``iin_sealed`` is NULL once the code is redeemed, burned or revoked."""

    __tablename__ = "citizen_enrollments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    selector: Mapped[str] = mapped_column(String(SELECTOR_CHARS), unique=True)
    verifier_hash: Mapped[str] = mapped_column(String(64))
    iin_index: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    iin_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    issued_by: Mapped[str] = mapped_column(String(64))
    issuer_organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    # Optionally bound to one account: then only that account can redeem it.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    redeemed_at: Mapped[datetime | None]
    redeemed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"CitizenEnrollment(id={self.id}, selector={self.selector!r}, status={self.status()!r})"

    def status(self, now: datetime | None = None) -> str:
        """``pending`` | ``redeemed`` | ``revoked`` | ``locked`` (too many wrong codes) | ``expired``."""
        if self.redeemed_at is not None:
            return "redeemed"
        if self.revoked_at is not None:
            return "revoked"
        if self.attempts >= MAX_CODE_ATTEMPTS:
            return "locked"
        if self.expires_at <= (now or utcnow()):
            return "expired"
        return "pending"


class CitizenRedeemThrottle(Base):
    """Failed redemptions of one account in the current window, so codes cannot be guessed or scanned."""

    __tablename__ = "citizen_redeem_throttle"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime]

    def __repr__(self) -> str:
        return f"CitizenRedeemThrottle(user={self.user_id}, failures={self.failures})"


class CitizenSubjectLink(Base):
    """A subject (at one operator) a citizen acted on through the portal; kept after the subject is shredded."""

    __tablename__ = "citizen_subject_links"
    __table_args__ = (UniqueConstraint("user_id", "organization_id", "subject_id",
                                       name="uq_citizen_subject_links_user_org_subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    subject_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"CitizenSubjectLink(user={self.user_id}, org={self.organization_id}, subject={self.subject_id})"


# --- shapes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedIdentity:
    """What an identity provider proved: this person holds this IIN. ``repr`` masks the IIN."""

    iin: str = field(repr=False)
    method: str
    reference: str | None = None

    def __repr__(self) -> str:
        return f"VerifiedIdentity(iin={mask_iin(self.iin)!r}, method={self.method!r})"


@dataclass(frozen=True)
class VerificationOutcome:
    """A provider's answer. ``reason`` is a machine code when ``identity`` is None:
    ``unknown_code``, ``wrong_code``, ``expired``, ``used``, ``revoked``, ``locked``, ``not_for_you``,
    ``throttled`` (or a provider's own)."""

    identity: VerifiedIdentity | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.identity is not None


@runtime_checkable
class IdentityProvider(Protocol):
    """The plug point for proving that the person behind a citizen account holds an IIN.

    ``verify`` runs inside the write transaction that links the identity: whatever it records (a code
    consumed, a counter raised) commits with the link — or, on a *refusal* (an outcome without identity),
    commits alone, so failed attempts are counted. It must never raise for a wrong credential (return
    ``VerificationOutcome(None, reason)``), and must never log or return the credential.

    Production (eGov): ``credential`` is the authorization code of the e-government IdP's OpenID Connect
    flow, or a CMS signature (NCALayer) over a server-issued nonce. The provider exchanges the code / checks
    the signature chain against the NCA RK root certificates and the revocation list, reads the IIN from
    the certificate subject's ``SERIALNUMBER`` (``IIN…``), and returns ``VerifiedIdentity(iin, "egov_ds",
    reference=<certificate serial>)``. Nothing in qorgau fetches anything at run time; the deployment
    supplies the IdP endpoint and trust anchors.
    """

    method: str

    def verify(self, session: Session, user_id: int, credential: str) -> VerificationOutcome: ...


class IdentityNotVerified(QorgauError):
    """A redemption or verification was refused; ``reason`` is the provider's machine code."""

    code = "identity_not_verified"
    status = 422

    def __init__(self, message: str, *, reason: str, field: str | None = "code") -> None:
        super().__init__(message, field=field)
        self.reason = reason


@dataclass(frozen=True)
class IssuedCode:
    """A freshly issued enrollment code: shown once, to be handed to the person. ``repr`` hides the code."""

    enrollment_id: int
    code: str = field(repr=False)
    selector: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"IssuedCode(enrollment_id={self.enrollment_id}, selector={self.selector!r})"


@dataclass(frozen=True)
class CitizenSubject:
    """The citizen's subject at one operator (an organization)."""

    organization_id: int
    organization_name: str
    organization_bin: str
    subject_id: int
    found_by: str  # "iin" (the vault's blind index) | "link" (remembered after a portal withdrawal)
    organization_is_demo: bool = False


@dataclass(frozen=True)
class IdentitySummary:
    """What the portal may show about the verified identity: masked IIN, method, time."""

    user_id: int
    masked_iin: str
    method: str
    verified_at: datetime


REASON_MESSAGES: dict[str, str] = {
    "unknown_code": "this enrollment code does not exist; check it and try again",
    "wrong_code": "this enrollment code is wrong; check it and try again",
    "expired": "this enrollment code has expired; ask for a new one",
    "used": "this enrollment code was already used",
    "revoked": "this enrollment code was revoked; ask for a new one",
    "locked": "this enrollment code was blocked after too many wrong attempts; ask for a new one",
    "not_for_you": "this enrollment code was issued for another account",
    "throttled": "too many failed attempts; try again later",
}


# --- codes ----------------------------------------------------------------------------------------


def _random_chars(count: int) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(count))


def format_code(selector: str, verifier: str) -> str:
    """``ABCD-EFGH-JKMN-PQRS-TVWX-YZ01``: six groups of four."""
    raw = selector + verifier
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def parse_code(code: str) -> tuple[str, str]:
    """Normalize a typed code (case, spaces, dashes, O/0 and I/L/1 mix-ups) into (selector, verifier)."""
    if not isinstance(code, str) or not code.strip():
        raise InvalidInput("enter the enrollment code", field="code")
    if len(code) > 64:
        raise InvalidInput(f"an enrollment code has {CODE_CHARS} letters and digits", field="code")
    cleaned = code.upper().translate(_SEPARATORS).translate(_TYPO_MAP)
    if len(cleaned) != CODE_CHARS or any(ch not in CODE_ALPHABET for ch in cleaned):
        raise InvalidInput(f"an enrollment code has {CODE_CHARS} letters and digits, in groups of four",
                           field="code")
    return cleaned[:SELECTOR_CHARS], cleaned[SELECTOR_CHARS:]


def _verifier_hash(verifier: str) -> str:
    # 80 random bits: reversing a stolen hash takes ~2**79 SHA-256s, and online each code allows only
    # MAX_CODE_ATTEMPTS tries, so a slow password hash would add nothing (as for session tokens).
    return hashlib.sha256(b"qorgau-citizen-enrollment/v1\x00" + verifier.encode()).hexdigest()


def _check_iin(iin: str) -> str:
    if not isinstance(iin, str) or not iin.strip():
        raise InvalidInput("the IIN is required", field="iin")
    if len(iin) > 64:
        raise InvalidInput("an IIN has 12 digits", field="iin")
    try:
        return parse_iin(iin.strip()).value
    except IdentifierError as exc:
        raise InvalidInput(f"not a valid IIN: {exc.reason}", field="iin") from None


def _check_method(method: str) -> str:
    if not method or len(method) > 40 or not set(method) <= _METHOD_CHARS:
        raise InvalidInput("an identity provider's method is 1–40 lowercase letters, digits, '_', '-', '.'",
                           field="method")
    return method


# --- the service ----------------------------------------------------------------------------------

_KEY_CACHE: dict[tuple[str, str], bytes] = {}
_KEY_LOCK = threading.Lock()


class EnrollmentCodeProvider:
    """The embedded identity provider: a one-time code an administrator or DPO issued for an IIN.

    Redemption rules: the code exists, is not used, revoked, expired or locked, was not issued for
    another account, and the verifier matches (constant-time). A wrong verifier raises the code's
    attempt counter (locked at :data:`MAX_CODE_ATTEMPTS`); every failure raises the account's counter
    (refused for the rest of :data:`FAILURE_WINDOW` after :data:`MAX_USER_FAILURES`).
    """

    method = ENROLLMENT_METHOD

    def __init__(self, citizens: "Citizens") -> None:
        self._citizens = citizens

    def __repr__(self) -> str:
        return "EnrollmentCodeProvider()"

    def verify(self, session: Session, user_id: int, credential: str) -> VerificationOutcome:
        selector, verifier = parse_code(credential)  # malformed input is not an attempt
        now = utcnow()
        throttle = session.get(CitizenRedeemThrottle, user_id, with_for_update=True)
        if throttle is not None and throttle.window_started_at + FAILURE_WINDOW <= now:
            throttle.failures, throttle.window_started_at = 0, now
        if throttle is not None and throttle.failures >= MAX_USER_FAILURES:
            return VerificationOutcome(None, "throttled")
        row = session.scalar(select(CitizenEnrollment).where(CitizenEnrollment.selector == selector)
                             .with_for_update())
        reason = self._refusal(row, user_id, verifier, now)
        if reason is not None:
            if reason == "wrong_code" and row is not None:
                row.attempts += 1
                if row.attempts >= MAX_CODE_ATTEMPTS:
                    row.iin_sealed = None  # burned: the IIN is no longer needed
            self._count_failure(session, throttle, user_id, now)
            audit.record(session, actor=f"user:{user_id}", action="citizens.redeem_failed",
                         object_type="citizen_enrollment", object_id=str(row.id) if row is not None else "-",
                         organization_id=self._citizens._user_org(session, user_id), details={"reason": reason})
            return VerificationOutcome(None, reason)
        assert row is not None and row.iin_sealed is not None
        iin = self._citizens._unseal(session, row.iin_sealed, _enrollment_aad(row.selector))
        row.redeemed_at, row.redeemed_by, row.iin_sealed = now, user_id, None
        return VerificationOutcome(VerifiedIdentity(iin, ENROLLMENT_METHOD, reference=f"enrollment:{row.id}"))

    @staticmethod
    def _refusal(row: CitizenEnrollment | None, user_id: int, verifier: str, now: datetime) -> str | None:
        if row is None:
            return "unknown_code"
        status = row.status(now)
        if status != "pending":
            return {"redeemed": "used"}.get(status, status)
        if not hmac.compare_digest(row.verifier_hash, _verifier_hash(verifier)):
            return "wrong_code"
        if row.user_id is not None and row.user_id != user_id:
            return "not_for_you"
        return None

    @staticmethod
    def _count_failure(session: Session, throttle: CitizenRedeemThrottle | None, user_id: int,
                       now: datetime) -> None:
        if throttle is None:
            session.add(CitizenRedeemThrottle(user_id=user_id, failures=1, window_started_at=now))
        else:
            throttle.failures += 1


def _enrollment_aad(selector: str) -> bytes:
    return b"qorgau-citizen/v1\x00enrollment=" + selector.encode()


def _identity_aad(user_id: int) -> bytes:
    return b"qorgau-citizen/v1\x00user=%d" % user_id


class Citizens:
    """Citizen identities of one platform. Share one per process (:func:`citizens_for`)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.providers: dict[str, IdentityProvider] = {}
        self.register_provider(EnrollmentCodeProvider(self))
        from .oidc import provider_from_settings  # production: OpenID Connect when oidc_issuer is set (docs/oidc.md)

        oidc = provider_from_settings(self)
        if oidc is not None:
            self.register_provider(oidc)

    def __repr__(self) -> str:
        return f"Citizens(providers={sorted(self.providers)})"

    def register_provider(self, provider: IdentityProvider) -> None:
        """Plug in an identity provider (eGov, a digital-signature check…) under its ``method`` name."""
        if not isinstance(provider, IdentityProvider):
            raise TypeError("an identity provider needs a `method` and a `verify(session, user_id, credential)`")
        self.providers[_check_method(provider.method)] = provider

    # -- keys ----------------------------------------------------------------------------------

    def _key(self, session: Session, key_id: str, purpose: str, *, create: bool) -> bytes | None:
        slot = (self.platform.db.url, key_id)
        key = _KEY_CACHE.get(slot)
        if key is not None:
            return key
        keyring = self.platform.keyring
        try:
            key = keyring.data_key(session, key_id)
        except NotFound:
            if not create:
                return None
            try:
                with session.begin_nested():
                    keyring.create_data_key(session, purpose, key_id=key_id)
            except IntegrityError:
                pass  # a concurrent transaction created it first
            key = keyring.data_key(session, key_id)
        with _KEY_LOCK:
            _KEY_CACHE[slot] = key
        return key

    def _index(self, session: Session, iin: str, *, create: bool) -> bytes | None:
        key = self._key(session, INDEX_KEY_ID, INDEX_KEY_PURPOSE, create=create)
        if key is None:
            return None
        return hmac.digest(key, b"KZ_IIN:" + iin.encode(), "sha256")

    def _seal(self, session: Session, iin: str, aad: bytes) -> bytes:
        self._key(session, SEAL_KEY_ID, SEAL_KEY_PURPOSE, create=True)
        return self.platform.keyring.encrypt(session, SEAL_KEY_ID, iin.encode(), aad)

    def _unseal(self, session: Session, blob: bytes, aad: bytes) -> str:
        return self.platform.keyring.decrypt(session, bytes(blob), aad).decode()

    @staticmethod
    def _user_org(session: Session, user_id: int) -> int | None:
        return session.scalar(select(User.organization_id).where(User.id == user_id)
                              .execution_options(qorgau_cross_tenant=True))

    @staticmethod
    def _citizen_user(session: Session, user_id: int) -> User:
        user = session.scalar(select(User).where(User.id == user_id).execution_options(qorgau_cross_tenant=True))
        if user is None or not user.is_active:
            raise NotFound("user not found", field="user_id")
        if Role.CITIZEN.value not in (user.roles or []):
            raise PermissionDenied("only citizen accounts can link an identity", field="user_id")
        return user

    # -- enrollment codes (the embedded provider) -------------------------------------------------

    def issue_enrollment(self, session: Session, iin: str, *, actor: str, organization_id: int | None = None,
                         valid_for: timedelta = DEFAULT_CODE_VALIDITY, user_id: int | None = None) -> IssuedCode:
        """Issue a one-time enrollment code for ``iin`` (checked by the issuer against an ID document).

        ``organization_id`` is the issuer's organization (None: the platform operator, e.g. the CLI);
        ``user_id`` binds the code to one citizen account. The code is returned once and stored only as
        a SHA-256 of its secret part; the IIN is sealed until the code is redeemed, revoked or expires.
        """
        normalized = _check_iin(iin)
        if not (timedelta(minutes=5) <= valid_for <= MAX_CODE_VALIDITY):
            raise InvalidInput("a code is valid for 5 minutes to 30 days", field="valid_hours")
        if user_id is not None:
            self._citizen_user(session, user_id)
        index = self._index(session, normalized, create=True)
        assert index is not None
        for _ in range(8):
            selector = _random_chars(SELECTOR_CHARS)
            if session.scalar(select(CitizenEnrollment.id).where(CitizenEnrollment.selector == selector)) is None:
                break
        else:  # 2^40 selectors: eight collisions in a row mean something is badly wrong
            raise Conflict("could not allocate an enrollment code; try again", field="code")
        verifier = _random_chars(VERIFIER_CHARS)
        now = utcnow()
        row = CitizenEnrollment(selector=selector, verifier_hash=_verifier_hash(verifier), iin_index=index,
                                iin_sealed=self._seal(session, normalized, _enrollment_aad(selector)),
                                issued_by=actor[:64], issuer_organization_id=organization_id, user_id=user_id,
                                created_at=now, expires_at=now + valid_for, attempts=0)
        session.add(row)
        session.flush()
        audit.record(session, actor=actor, action="citizens.enrollment_issue", object_type="citizen_enrollment",
                     object_id=str(row.id), organization_id=organization_id,
                     details={"selector": selector, "expires_at": row.expires_at.isoformat(),
                              "bound_to_user": user_id})
        return IssuedCode(row.id, format_code(selector, verifier), selector, row.expires_at)

    def revoke_enrollment(self, session: Session, selector: str, *, actor: str,
                          organization_id: int | None = None) -> CitizenEnrollment:
        """Revoke a pending code (by its selector, the first eight characters). An organization can revoke
        only the codes it issued; the platform operator (``organization_id=None``) any."""
        selector = (selector or "").upper().translate(_SEPARATORS).translate(_TYPO_MAP)[:SELECTOR_CHARS]
        query = select(CitizenEnrollment).where(CitizenEnrollment.selector == selector)
        if organization_id is not None:
            query = query.where(CitizenEnrollment.issuer_organization_id == organization_id)
        row = session.scalar(query.with_for_update())
        if row is None:
            raise NotFound("no enrollment code with this selector", field="selector")
        if row.status() == "pending":
            row.revoked_at, row.iin_sealed = utcnow(), None
            audit.record(session, actor=actor, action="citizens.enrollment_revoke", object_type="citizen_enrollment",
                         object_id=str(row.id), organization_id=organization_id, details={"selector": row.selector})
        return row

    def list_enrollments(self, session: Session, *, organization_id: int | None = None,
                         limit: int = 50) -> list[CitizenEnrollment]:
        query = select(CitizenEnrollment).order_by(CitizenEnrollment.id.desc()).limit(max(1, min(limit, 500)))
        if organization_id is not None:
            query = query.where(CitizenEnrollment.issuer_organization_id == organization_id)
        return list(session.scalars(query))

    def purge_enrollments(self, session: Session, *, actor: str) -> int:
        """Erase the sealed IIN of every code that can no longer be redeemed (expired); L-PD-RETENTION."""
        now = utcnow()
        rows = session.scalars(select(CitizenEnrollment).where(
            CitizenEnrollment.iin_sealed.is_not(None), CitizenEnrollment.expires_at <= now)).all()
        for row in rows:
            row.iin_sealed = None
        if rows:
            audit.record(session, actor=actor, action="citizens.enrollment_purge", object_type="citizen_enrollment",
                         object_id="expired", details={"count": len(rows)})
        return len(rows)

    # -- verification ----------------------------------------------------------------------------

    def verify(self, user_id: int, credential: str, *, actor: str,
               method: str = ENROLLMENT_METHOD) -> IdentitySummary:
        """Verify the citizen behind ``user_id`` with a provider and link the IIN it proved.

        One transaction: the provider's bookkeeping (a code consumed) and the link commit together; a
        refusal commits only the provider's failure counters and raises :class:`IdentityNotVerified`.
        """
        provider = self.providers.get(method)
        if provider is None:
            raise InvalidInput(f"unknown identity provider; known: {', '.join(sorted(self.providers))}",
                               field="method")
        with self.platform.db.transaction() as session:
            self._citizen_user(session, user_id)
            outcome = provider.verify(session, user_id, credential)
            summary = self._link(session, user_id, outcome.identity, actor=actor) if outcome.ok else None
        if summary is None:
            reason = outcome.reason or "refused"
            raise IdentityNotVerified(REASON_MESSAGES.get(reason, "the identity could not be verified"),
                                      reason=reason)
        return summary

    def link_verified(self, session: Session, user_id: int, identity: VerifiedIdentity, *,
                      actor: str) -> IdentitySummary:
        """Link an identity a provider verified outside :meth:`verify` (e.g. an eGov callback handler)."""
        self._citizen_user(session, user_id)
        return self._link(session, user_id, identity, actor=actor)

    def _link(self, session: Session, user_id: int, identity: VerifiedIdentity | None, *,
              actor: str) -> IdentitySummary:
        assert identity is not None
        iin = _check_iin(identity.iin)
        method = _check_method(identity.method)
        reference = (identity.reference or None) and identity.reference[:MAX_REFERENCE_CHARS]
        index = self._index(session, iin, create=True)
        assert index is not None
        now = utcnow()
        holder = session.scalar(select(CitizenIdentity).where(CitizenIdentity.iin_index == index))
        if holder is not None and holder.user_id != user_id:
            # One IIN, one citizen identity: a second account for the same person is refused.
            raise Conflict("this IIN is already linked to another citizen account; ask the platform operator "
                           "to unlink it first", field="code")
        mine = session.scalar(select(CitizenIdentity).where(CitizenIdentity.user_id == user_id))
        org = self._user_org(session, user_id)
        if mine is not None and mine.iin_index != index:
            raise Conflict("this account is already linked to another IIN", field="code")
        if mine is not None:
            mine.method, mine.reference, mine.verified_at = method, reference, now
            action = "citizens.reverify"
        else:
            mine = CitizenIdentity(user_id=user_id, iin_index=index, method=method, reference=reference,
                                   verified_at=now, created_at=now,
                                   iin_sealed=self._seal(session, iin, _identity_aad(user_id)))
            session.add(mine)
            action = "citizens.verify"
        session.flush()
        audit.record(session, actor=actor, action=action, object_type="citizen_identity", object_id=str(mine.id),
                     organization_id=org, details={"user_id": user_id, "method": method})
        return IdentitySummary(user_id, mask_iin(iin), method, now)

    def unlink(self, session: Session, user_id: int, *, actor: str) -> bool:
        """Remove an account's verified identity (and its remembered subjects). True if there was one."""
        mine = session.scalar(select(CitizenIdentity).where(CitizenIdentity.user_id == user_id))
        if mine is None:
            return False
        session.execute(delete(CitizenSubjectLink).where(CitizenSubjectLink.user_id == user_id))
        session.delete(mine)
        audit.record(session, actor=actor, action="citizens.unlink", object_type="citizen_identity",
                     object_id=str(mine.id), organization_id=self._user_org(session, user_id),
                     details={"user_id": user_id})
        return True

    # -- reading ---------------------------------------------------------------------------------

    def identity(self, session: Session, user_id: int) -> IdentitySummary | None:
        """The account's verified identity (masked), or None."""
        row = session.scalar(select(CitizenIdentity).where(CitizenIdentity.user_id == user_id))
        if row is None:
            return None
        iin = self._unseal(session, row.iin_sealed, _identity_aad(user_id))
        return IdentitySummary(user_id, mask_iin(iin), row.method, row.verified_at)

    def verified_iin(self, session: Session, user_id: int) -> str:
        """The account's verified IIN, unsealed (for lookups only; never shown, logged or stored)."""
        row = session.scalar(select(CitizenIdentity).where(CitizenIdentity.user_id == user_id))
        if row is None:
            raise PermissionDenied("this account has no verified identity", field="user_id")
        return self._unseal(session, row.iin_sealed, _identity_aad(user_id))

    def is_verified(self, session: Session, user_id: int) -> bool:
        return session.scalar(select(CitizenIdentity.id).where(CitizenIdentity.user_id == user_id)) is not None

    def subjects(self, user_id: int, *, organizations: Iterable[int] | None = None) -> list[CitizenSubject]:
        """The citizen's subjects at every operator: each organization's blind index of the verified IIN
        (:meth:`Vault.lookup` in that organization's own read session), plus the subjects remembered
        after a portal withdrawal (:class:`CitizenSubjectLink`), in organization order."""
        from ..vault import vault_for

        vault = vault_for(self.platform)
        with self.platform.db.reader() as session:
            iin = self.verified_iin(session, user_id)
            query = select(auth.Organization).order_by(auth.Organization.id)
            if organizations is not None:
                query = query.where(auth.Organization.id.in_(list(organizations)))
            orgs = [(o.id, o.name, o.bin, o.is_demo) for o in session.scalars(query)]
            links = {(link.organization_id, link.subject_id) for link in session.scalars(
                select(CitizenSubjectLink).where(CitizenSubjectLink.user_id == user_id))}
        found: list[CitizenSubject] = []
        # One read transaction (one consistent snapshot) scoped to each organization in turn: the session's
        # tenant is what makes it "that organization's session" (Vault.lookup adds organization_id =
        # tenant_of(session) to its query). A session per organization costs ~70x the lookup itself
        # (bench/citizen_portal.py).
        with self.platform.db.reader() as session:
            lookups = []
            try:
                for org_id, *_ in orgs:
                    session.info[TENANT_KEY] = org_id
                    lookups.append(vault.lookup(session, "KZ_IIN", iin))
            finally:
                session.info.pop(TENANT_KEY, None)
        for (org_id, name, bin_, demo), subject_id in zip(orgs, lookups):
            if subject_id is not None:
                found.append(CitizenSubject(org_id, name, bin_, subject_id, "iin", demo))
            for linked_org, linked_subject in sorted(links):
                if linked_org == org_id and linked_subject != subject_id:
                    found.append(CitizenSubject(org_id, name, bin_, linked_subject, "link", demo))
        return found

    def remember_subject(self, session: Session, user_id: int, organization_id: int, subject_id: int) -> None:
        """Remember (idempotently) that this citizen acted on this subject; call it in the transaction of
        the action (a withdrawal through the portal), so the history survives a crypto-shred."""
        exists = session.scalar(select(CitizenSubjectLink.id).where(
            CitizenSubjectLink.user_id == user_id, CitizenSubjectLink.organization_id == organization_id,
            CitizenSubjectLink.subject_id == subject_id))
        if exists is None:
            session.add(CitizenSubjectLink(user_id=user_id, organization_id=organization_id, subject_id=subject_id))
            session.flush()


_CITIZENS_ATTRIBUTE = "_qorgau_citizens"


def citizens_for(platform: Platform) -> Citizens:
    """The platform's one :class:`Citizens` (the web UI and the CLI share it, and its providers)."""
    return shared(platform, _CITIZENS_ATTRIBUTE, Citizens)
