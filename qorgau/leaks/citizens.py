"""Citizens and the leak register: verified identifiers, "check my data", subscriptions, notifications (issue 8).

L-PD-RIGHTS (a person's right to know what happened to their data) meets L-PD-BREACH / L-PD-LEAK-REGISTER (the
operator's breach notice names the affected people's IIN and phone "so they can be told"). The register answers
a citizen **only about identifiers they proved are theirs**, so it can never be asked "is IIN X leaked?":

* **IIN** — only from the citizen identity an identity provider verified (:func:`qorgau.consent.citizens.
  citizens_for` ``.verified_iin``; the embedded enrollment code, eGov/OIDC in production). :meth:`ensure_iin`
  keeps the ``LeakCitizenIdentifier`` row in step with that identity.
* **phone** — a 6-digit one-time code by SMS (:meth:`start_phone` / :meth:`confirm_phone`): 5 wrong codes burn
  it, it expires after ``leaks_otp_minutes``.
* **email** — a link with a 192-bit secret (:meth:`start_email` / :meth:`confirm_email`), opened by the same
  signed-in citizen.

Only the register's keyed token (``qorgau.leaks.register``) and a mask are stored; a challenge's secret only as
SHA-256 of (selector, secret). Every lookup path is rate-limited (``leaks.citizen_lookup`` per citizen;
``leaks.otp_start`` per citizen and ``leaks.otp_value`` per phone/e-mail token, so one phone cannot be flooded
from many accounts), with :class:`~qorgau.core.ratelimit.RateLimited` → HTTP 429 + ``Retry-After``.

**Notifications.** After a segment is published the ingest calls :meth:`notify_new_tokens` with the segment's
tokens: one vectorized join (:func:`join_tokens`) against the subscribed identifiers' tokens (a sorted matrix
cached until a subscription changes), one ``LeakNotification`` per (citizen, incident) — the unique constraint
and ``ON CONFLICT DO NOTHING`` make a second call or a second segment of the same incident a no-op — then a
message through the :mod:`~qorgau.leaks.messenger` that names the operator and links the portal, never a value.
Messages need an address: a :class:`ContactDirectory` gives it. The default, :class:`SealedContacts`, opens
the phone or e-mail the citizen verified, kept only sealed (AES-256-GCM, platform data key) next to its token
(docs/leaks-citizens.md § Delivery); the IIN has no address, so an IIN-only match waits in the portal (channel
``portal``), as does every notice when no address is known.

Visibility (shared-interfaces.md): a citizen sees every incident containing their identifiers whose status is
not ``fabricated`` — with its status, operator, reference, discovered date, nature, data classes and advice —
never a leaked value.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ..core import audit, i18n
from ..core.auth import Organization, Role, User
from ..core.db import utcnow
from ..core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, QorgauError
from ..core.platform import shared
from ..core.ratelimit import Limit
from .messenger import Messenger, messenger_for
from .models import LeakCitizenIdentifier, LeakIncident, LeakNotification, LeakVerification
from .register import leak_index_for, leak_keys_for, leak_limiter_for, mask, normalize
from .segments import Index, as_tokens

if TYPE_CHECKING:
    from ..core.platform import Platform

__all__ = ["CitizenIdentifier", "CitizenIncident", "CitizenNotification", "ContactDirectory", "LeakCitizens", "SealedContacts",
           "StartedVerification", "VerificationFailed", "join_tokens", "leak_citizens_for"]

log = logging.getLogger("qorgau.leaks.citizens")

LOOKUP_SCOPE = "leaks.citizen_lookup"
OTP_START_SCOPE = "leaks.otp_start"
OTP_VALUE_SCOPE = "leaks.otp_value"
OTP_CONFIRM_SCOPE = "leaks.otp_confirm"
MAX_ATTEMPTS = 5                 # wrong codes / secrets for one challenge, then it is burned
CODE_DIGITS = 6
SELECTOR_BYTES = 12              # 16 url-safe characters: finds the row, not secret
EMAIL_SECRET_BYTES = 24          # 192 bits (>= 128 required)
MAX_SECRET_CHARS = 64
REFRESH_SECONDS = 1.0            # lookups refresh the index at most once per second
LOOKUP_LIMIT = 500               # incidents shown per lookup
INSERT_CHUNK = 500
CHANNELS = ("sms", "email", "portal")

# Texts of messages (translated in the leaks_portal catalog; i18n.gettext picks the citizen's language).
SMS_CODE_TEXT = "qorgau: your code is %(code)s. It expires in %(minutes)s min. Never tell it to anyone."
EMAIL_LINK_SUBJECT = "qorgau: confirm your e-mail address"
EMAIL_LINK_TEXT = ("Someone (we hope you) asked the qorgau leak register to check this address for you.\n\n"
                   "Open this link while signed in to your qorgau account to confirm it is yours:\n%(link)s\n\n"
                   "The link expires in %(hours)s h. If you did not ask for this, ignore this message.")
NOTICE_SMS_TEXT = ("qorgau: your data appears in an incident reported by %(operator)s (%(reference)s). "
                   "See %(link)s")
NOTICE_EMAIL_SUBJECT = "qorgau: your data appears in a reported leak"
NOTICE_EMAIL_TEXT = ("Your data appears in an incident reported by %(operator)s (reference %(reference)s).\n\n"
                     "Sign in to see what is known and what to do: %(link)s\n\n"
                     "qorgau never sends leaked data in messages and never asks for codes or passwords.")
DEFAULT_ADVICE = ("Be careful with calls, SMS and e-mails that mention this incident or ask for codes, passwords "
                  "or card details. Change passwords you used with this operator; ask your bank to watch your "
                  "accounts if card or account data leaked.")


class VerificationFailed(QorgauError):
    """A one-time code or link was refused. ``reason``: ``wrong_code`` (422), ``burned`` (too many wrong codes),
    ``expired``, ``used`` (409 each); the API's error ``code`` is ``wrong_code``, ``code_burned``,
    ``code_expired`` or ``code_used``."""

    code = "verification_failed"

    def __init__(self, message: str, *, reason: str, field: str | None = "code") -> None:
        super().__init__(message, field=field)
        self.reason = reason
        self.status = 422 if reason == "wrong_code" else 409
        self.code = reason if reason == "wrong_code" else f"code_{reason}"

    def to_dict(self) -> dict[str, object]:
        body = super().to_dict()
        body["reason"] = self.reason
        return body


# --- shapes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CitizenIdentifier:
    """One verified identifier as the citizen sees it: kind and mask, never the value."""

    id: int
    kind: str
    mask: str
    verified_via: str
    verified_at: datetime
    subscribed: bool

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "mask": self.mask, "verified_via": self.verified_via,
                "verified_at": self.verified_at.isoformat(), "subscribed": self.subscribed}


@dataclass(frozen=True)
class StartedVerification:
    """A challenge sent: ``selector`` names it in the confirm call (not secret)."""

    id: int
    kind: str
    selector: str
    mask: str
    expires_at: datetime
    sink: bool  # the demo sink got it: nothing was sent

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "selector": self.selector, "mask": self.mask,
                "expires_at": self.expires_at.isoformat(), "demo_sink": self.sink}


@dataclass(frozen=True)
class CitizenIncident:
    """An incident that contains one of the citizen's verified identifiers (never a leaked value)."""

    incident_id: int
    reference: str
    operator: str
    operator_is_demo: bool
    sector: str
    title: str
    discovered_on: date
    nature: str
    data_classes: tuple[str, ...]
    status: str
    published: bool
    advice: str
    matched: tuple[tuple[str, str], ...]   # (kind, mask) of the citizen's own identifiers found in it

    def to_dict(self) -> dict[str, object]:
        return {"incident_id": self.incident_id, "reference": self.reference, "operator": self.operator,
                "operator_is_demo": self.operator_is_demo, "sector": self.sector, "title": self.title,
                "discovered_on": self.discovered_on.isoformat(), "nature": self.nature,
                "data_classes": list(self.data_classes), "status": self.status, "published": self.published,
                "advice": self.advice, "matched": [{"kind": k, "mask": m} for k, m in self.matched]}


@dataclass(frozen=True)
class CitizenNotification:
    id: int
    incident_id: int
    reference: str
    operator: str
    kinds: tuple[str, ...]
    created_at: datetime
    sent_at: datetime | None
    channel: str | None
    seen_at: datetime | None

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "incident_id": self.incident_id, "reference": self.reference,
                "operator": self.operator, "kinds": list(self.kinds), "created_at": self.created_at.isoformat(),
                "sent_at": self.sent_at.isoformat() if self.sent_at else None, "channel": self.channel,
                "seen_at": self.seen_at.isoformat() if self.seen_at else None}


@runtime_checkable
class ContactDirectory(Protocol):
    """Where to send a notice for a citizen's identifier: an E.164 phone for ``phone``, an address for ``email``,
    or None (the notice then waits in the portal). The register itself stores no address (docs § Delivery)."""

    def address(self, user_id: int, identifier_id: int, kind: str) -> str | None: ...


class NoContacts:
    """No addresses known: notices are shown in the portal only (for deployments that must not send any)."""

    def address(self, user_id: int, identifier_id: int, kind: str) -> str | None:
        return None


CONTACT_KEY_ID = "dk-leaks-contact"
CONTACT_KEY_PURPOSE = "leak-register-contact"


def _contact_aad(user_id: int, kind: str) -> bytes:
    """Binds a sealed contact to its citizen and kind: a blob copied to another row does not open."""
    return f"qorgau/leak-contact/v1:{user_id}:{kind}".encode()


class SealedContacts:
    """The default: the phone or address the citizen verified, kept sealed (AES-256-GCM under the platform data
    key ``dk-leaks-contact``) in ``leak_citizen_identifiers.contact_sealed`` and opened only to send a notice."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def __repr__(self) -> str:
        return "SealedContacts()"

    def seal(self, session: Session, user_id: int, kind: str, value: str) -> bytes:
        self.platform.keyring.get_or_create(session, CONTACT_KEY_ID, CONTACT_KEY_PURPOSE)
        return self.platform.keyring.encrypt(session, CONTACT_KEY_ID, value.encode(), _contact_aad(user_id, kind))

    def address(self, user_id: int, identifier_id: int, kind: str) -> str | None:
        with self.platform.db.reader() as session:
            blob = session.scalar(select(LeakCitizenIdentifier.contact_sealed).where(
                LeakCitizenIdentifier.id == identifier_id, LeakCitizenIdentifier.user_id == user_id,
                LeakCitizenIdentifier.kind == kind))
            if not blob:
                return None
            return self.platform.keyring.decrypt(session, blob, _contact_aad(user_id, kind)).decode()


@dataclass
class _Subscribers:
    signature: tuple[object, ...]
    tokens: np.ndarray           # (m, 32) uint8, sorted by the first 64 bits
    identifier_ids: np.ndarray   # int64, parallel to tokens
    user_ids: np.ndarray
    kinds: list[str] = field(default_factory=list)


# --- the join ---------------------------------------------------------------------------------------


def _prefix64(tokens: np.ndarray) -> np.ndarray:
    return tokens.view(">u8")[:, 0].astype(np.uint64)


_FILTER_BITS = 24  # a 16 MiB presence table over the top bits: one gather per prefix instead of a binary search


def _members(prefixes: np.ndarray, common: np.ndarray) -> np.ndarray:
    """Positions of ``prefixes`` whose value is in the sorted, small array ``common``: a presence table over the top
    24 bits rules out almost every position with one lookup, a binary search confirms the few that remain."""
    shift = np.uint64(64 - _FILTER_BITS)
    table = np.zeros(1 << _FILTER_BITS, dtype=np.bool_)
    table[common >> shift] = True
    candidates = np.flatnonzero(table[prefixes >> shift])
    if not candidates.size:
        return candidates
    values = prefixes[candidates]
    pos = np.searchsorted(common, values)
    pos[pos == len(common)] = 0
    return candidates[common[pos] == values]


def join_tokens(new: np.ndarray, subscribers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(i, j)`` with ``new[i] == subscribers[j]`` (all 32 bytes), ordered by ``i`` then ``j``.

    Vectorized, in three passes on the first 64 bits, none of which needs a full permutation (an ``argsort`` of
    10⁷ keys costs four times a ``sort``):

    1. sort both prefix arrays and ``searchsorted`` one into the other (sorted queries: each binary search starts
       near the previous one) — the values both sides share, a small array;
    2. find the positions holding a shared value on each side by searching that small, cache-resident array;
    3. join those few candidates (one subscriber token may belong to several citizens, so ranges are expanded)
       and confirm each pair on the full token (4 × u64).

    bench/leaks.py measures 10⁷ × 10⁷ against a bare sort + ``searchsorted`` floor."""
    a = as_tokens(new, field="new")
    b = as_tokens(subscribers, field="subscribers")
    empty = np.zeros(0, np.int64)
    if not len(a) or not len(b):
        return empty, empty.copy()
    ap, bp = _prefix64(a), _prefix64(b)
    a_sorted, b_sorted = np.sort(ap), np.sort(bp)
    pos = np.searchsorted(b_sorted, a_sorted)
    pos[pos == len(b_sorted)] = 0
    common = np.unique(a_sorted[b_sorted[pos] == a_sorted])
    if not common.size:
        return empty, empty.copy()
    ia, jb = _members(ap, common), _members(bp, common)
    # The candidates: few (shared prefixes only), so an argsort here is cheap.
    jb = jb[np.argsort(bp[jb], kind="stable")]
    sub_prefix = bp[jb]
    left = np.searchsorted(sub_prefix, ap[ia], side="left")
    right = np.searchsorted(sub_prefix, ap[ia], side="right")
    c = right - left
    total = int(c.sum())
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(c) - c, c)
    i = np.repeat(ia, c)
    j = jb[np.repeat(left, c) + offsets]
    a64 = np.ascontiguousarray(a).view(np.uint64)
    b64 = np.ascontiguousarray(b).view(np.uint64)
    equal = (a64[i] == b64[j]).all(axis=1)
    i, j = i[equal].astype(np.int64), j[equal].astype(np.int64)
    ranked = np.lexsort((j, i))
    return i[ranked], j[ranked]


# --- helpers ----------------------------------------------------------------------------------------


def _secret_hash(kind: str, selector: str, secret: str) -> str:
    return hashlib.sha256(f"qorgau-leak-{kind}/v1\x00{selector}\x00{secret}".encode()).hexdigest()


def _value_principal(token: bytes) -> str:
    # The rate limiter keys on an opaque string: a hash of the (already keyed) token, never the value.
    return "t:" + hashlib.sha256(b"qorgau-leak-otp-value\x00" + token).hexdigest()[:32]


def _check_selector(selector: str) -> str:
    if not isinstance(selector, str) or not 8 <= len(selector) <= 32 or not selector.isascii() or \
            not all(ch.isalnum() or ch in "-_" for ch in selector):
        raise InvalidInput("the verification selector is not valid", field="selector")
    return selector


def _advice(incident: LeakIncident, lang: str) -> str:
    advice = incident.advice or {}
    for choice in (lang, "en", "ru", "kk"):
        text = advice.get(choice) if isinstance(advice, dict) else None
        if isinstance(text, str) and text.strip():
            return text.strip()
    return i18n.gettext(lang, DEFAULT_ADVICE)


def _lang(lang: str | None) -> str:
    return lang if lang in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE


class LeakCitizens:
    """The citizen side of the leak register; one per platform (:func:`leak_citizens_for`)."""

    def __init__(self, platform: Platform, *, messenger: Messenger | None = None,
                 contacts: ContactDirectory | None = None) -> None:
        self.platform = platform
        self.settings = platform.settings
        self._messenger = messenger
        self._sealed = SealedContacts(platform)
        self.contacts: ContactDirectory = contacts or self._sealed
        self.keys = leak_keys_for(platform)
        self.limiter = leak_limiter_for(platform)
        s = platform.settings
        self.limiter.configure(LOOKUP_SCOPE, Limit(s.leaks_citizen_lookups_per_hour, 3600.0))
        self.limiter.configure(OTP_START_SCOPE, Limit(s.leaks_otp_starts_per_hour, 3600.0))
        self.limiter.configure(OTP_VALUE_SCOPE, Limit(s.leaks_otp_starts_per_hour, 3600.0))
        self.limiter.configure(OTP_CONFIRM_SCOPE, Limit(6 * MAX_ATTEMPTS, 3600.0))
        self._lock = threading.Lock()
        self._generation = 0
        self._subscribers: _Subscribers | None = None
        self._last_refresh = 0.0

    def __repr__(self) -> str:
        return f"LeakCitizens(key_version={self.keys.key_version})"

    @property
    def messenger(self) -> Messenger:
        return self._messenger if self._messenger is not None else messenger_for(self.platform)

    def portal_url(self, path: str = "/me/leaks") -> str:
        base = self.settings.leaks_portal_url or f"http://{self.settings.host}:{self.settings.port}"
        return base.rstrip("/") + path

    # -- accounts --------------------------------------------------------------------------------

    @staticmethod
    def _citizen(session: Session, user_id: int) -> User:
        user = session.scalar(select(User).where(User.id == user_id).execution_options(qorgau_cross_tenant=True))
        if user is None or not user.is_active:
            raise NotFound("user not found", field="user_id")
        if Role.CITIZEN.value not in (user.roles or []):
            raise PermissionDenied("only citizen accounts have leak-register identifiers", field="user_id")
        return user

    def _changed(self) -> None:
        with self._lock:
            self._generation += 1
            self._subscribers = None

    # -- identifiers ------------------------------------------------------------------------------

    def ensure_iin(self, user_id: int) -> LeakCitizenIdentifier | None:
        """Keep the citizen's IIN identifier in step with their verified identity (an identity provider proved
        it; L-PD-RIGHTS): create it, replace it after a re-link, or drop it when the identity was unlinked."""
        from ..consent.citizens import citizens_for

        citizens = citizens_for(self.platform)
        with self.platform.db.reader() as session:
            self._citizen(session, user_id)
            verified = citizens.is_verified(session, user_id)
            token = mask_ = None
            if verified:
                iin = citizens.verified_iin(session, user_id)
                token, mask_ = self.keys.token("iin", iin), mask("iin", iin)
                del iin
            rows = list(session.scalars(select(LeakCitizenIdentifier).where(
                LeakCitizenIdentifier.user_id == user_id, LeakCitizenIdentifier.kind == "iin")))
        current = [r for r in rows if token is not None and bytes(r.token) == token
                   and r.key_version == self.keys.key_version]
        if current and len(rows) == 1:
            return current[0]
        if not rows and token is None:
            return None
        with self.platform.db.transaction() as session:
            stale = [r.id for r in rows if not (token is not None and bytes(r.token) == token
                                                and r.key_version == self.keys.key_version)]
            if stale:
                session.execute(delete(LeakCitizenIdentifier).where(LeakCitizenIdentifier.id.in_(stale)))
                audit.record(session, actor="system", action="leaks.citizen_identifier_remove",
                             object_type="leak_citizen_identifier", object_id=",".join(map(str, stale))[:64],
                             details={"user_id": user_id, "kind": "iin", "reason": "identity_changed"})
            row = None
            if token is not None:
                row = session.scalar(select(LeakCitizenIdentifier).where(
                    LeakCitizenIdentifier.user_id == user_id, LeakCitizenIdentifier.kind == "iin",
                    LeakCitizenIdentifier.token == token))
                if row is None:
                    row = LeakCitizenIdentifier(user_id=user_id, kind="iin", token=token, mask=mask_,
                                                verified_via="identity_provider", verified_at=utcnow(),
                                                subscribed=False, key_version=self.keys.key_version)
                    session.add(row)
                    session.flush()
                    audit.record(session, actor="system", action="leaks.citizen_identifier_add",
                                 object_type="leak_citizen_identifier", object_id=str(row.id),
                                 details={"user_id": user_id, "kind": "iin", "via": "identity_provider"})
        self._changed()
        return row

    def identifiers(self, user_id: int) -> list[CitizenIdentifier]:
        """The citizen's verified identifiers (IIN first, then phones and e-mails in the order verified)."""
        self.ensure_iin(user_id)
        order = {"iin": 0, "phone": 1, "email": 2}
        with self.platform.db.reader() as session:
            rows = list(session.scalars(select(LeakCitizenIdentifier).where(
                LeakCitizenIdentifier.user_id == user_id).order_by(LeakCitizenIdentifier.id)))
        rows.sort(key=lambda r: (order.get(r.kind, 9), r.id))
        return [CitizenIdentifier(r.id, r.kind, r.mask, r.verified_via, r.verified_at, r.subscribed) for r in rows]

    def subscribe(self, user_id: int, identifier_id: int, on: bool, *, actor: str | None = None) -> CitizenIdentifier:
        """Turn notifications for one of the citizen's identifiers on or off."""
        with self.platform.db.transaction() as session:
            self._citizen(session, user_id)
            row = self._own_identifier(session, user_id, identifier_id)
            if row.subscribed != bool(on):
                row.subscribed = bool(on)
                row.subscribed_at = utcnow() if on else None
                audit.record(session, actor=actor or f"user:{user_id}", action="leaks.citizen_subscribe"
                             if on else "leaks.citizen_unsubscribe", object_type="leak_citizen_identifier",
                             object_id=str(row.id), details={"user_id": user_id, "kind": row.kind})
            view = CitizenIdentifier(row.id, row.kind, row.mask, row.verified_via, row.verified_at, row.subscribed)
        self._changed()
        return view

    def remove(self, user_id: int, identifier_id: int, *, actor: str | None = None) -> None:
        """Forget a verified phone or e-mail (the IIN follows the verified identity and cannot be removed here)."""
        with self.platform.db.transaction() as session:
            self._citizen(session, user_id)
            row = self._own_identifier(session, user_id, identifier_id)
            if row.kind == "iin":
                raise Conflict("the IIN comes from your verified identity; turn its notifications off instead",
                               field="identifier_id")
            session.delete(row)
            audit.record(session, actor=actor or f"user:{user_id}", action="leaks.citizen_identifier_remove",
                         object_type="leak_citizen_identifier", object_id=str(identifier_id),
                         details={"user_id": user_id, "kind": row.kind, "reason": "citizen"})
        self._changed()

    @staticmethod
    def _own_identifier(session: Session, user_id: int, identifier_id: int) -> LeakCitizenIdentifier:
        row = session.scalar(select(LeakCitizenIdentifier).where(
            LeakCitizenIdentifier.id == identifier_id, LeakCitizenIdentifier.user_id == user_id))
        if row is None:  # another citizen's identifier is "not found", exactly like a missing one
            raise NotFound("identifier not found", field="identifier_id")
        return row

    # -- phone and e-mail verification -----------------------------------------------------------

    def start_phone(self, user_id: int, raw_phone: str, *, lang: str | None = None,
                    actor: str | None = None) -> StartedVerification:
        """Send a 6-digit one-time code by SMS to prove the citizen holds ``raw_phone``."""
        lang = _lang(lang)
        phone = normalize("phone", raw_phone, field="phone")
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        minutes = self.settings.leaks_otp_minutes
        started = self._start(user_id, "phone", phone, code, timedelta(minutes=minutes), actor=actor)
        text = i18n.gettext(lang, SMS_CODE_TEXT) % {"code": code, "minutes": minutes}
        self._send(started, lambda m: m.send_sms(phone, text))
        return self._with_sink(started, self.messenger.sms_is_sink)

    def start_email(self, user_id: int, raw_email: str, *, lang: str | None = None, base_url: str | None = None,
                    actor: str | None = None) -> StartedVerification:
        """Send a link with a selector and a 192-bit secret; :meth:`confirm_email` checks it for the same citizen."""
        lang = _lang(lang)
        email = normalize("email", raw_email, field="email")
        secret = secrets.token_urlsafe(EMAIL_SECRET_BYTES)
        hours = self.settings.leaks_email_link_hours
        started = self._start(user_id, "email", email, secret, timedelta(hours=hours), actor=actor)
        base = (base_url or self.portal_url("")).rstrip("/")
        link = f"{base}/me/leaks/email/{started.selector}?secret={secret}"
        text = i18n.gettext(lang, EMAIL_LINK_TEXT) % {"link": link, "hours": hours}
        subject = i18n.gettext(lang, EMAIL_LINK_SUBJECT)
        self._send(started, lambda m: m.send_email(email, subject, text))
        return self._with_sink(started, self.messenger.email_is_sink)

    @staticmethod
    def _with_sink(started: StartedVerification, sink: bool) -> StartedVerification:
        return StartedVerification(started.id, started.kind, started.selector, started.mask, started.expires_at, sink)

    def _start(self, user_id: int, kind: str, normalized: str, secret: str, valid_for: timedelta, *,
               actor: str | None) -> StartedVerification:
        token = self.keys.token(kind, normalized)
        shown = mask(kind, normalized)
        with self.platform.db.reader() as session:
            self._citizen(session, user_id)
            mine = session.scalar(select(LeakCitizenIdentifier.id).where(
                LeakCitizenIdentifier.user_id == user_id, LeakCitizenIdentifier.kind == kind,
                LeakCitizenIdentifier.token == token))
        if mine is not None:
            raise Conflict(f"this {kind} is already verified for your account", field=kind)
        # Per citizen, then per value: one phone cannot be flooded with codes from many accounts.
        self.limiter.hit(OTP_START_SCOPE, f"u:{user_id}")
        self.limiter.hit(OTP_VALUE_SCOPE, _value_principal(token))
        now = utcnow()
        with self.platform.db.transaction() as session:
            # A new challenge replaces the citizen's pending ones for the same value.
            session.execute(update(LeakVerification).where(
                LeakVerification.user_id == user_id, LeakVerification.kind == kind,
                LeakVerification.token == token, LeakVerification.status == "pending").values(
                status="expired", contact_sealed=None))
            selector = secrets.token_urlsafe(SELECTOR_BYTES)
            row = LeakVerification(user_id=user_id, kind=kind, selector=selector,
                                   secret_sha256=_secret_hash(kind, selector, secret), token=token, mask=shown,
                                   status="pending", attempts=0, created_at=now, expires_at=now + valid_for,
                                   contact_sealed=self._sealed.seal(session, user_id, kind, normalized))
            session.add(row)
            session.flush()
            audit.record(session, actor=actor or f"user:{user_id}", action="leaks.citizen_verification_start",
                         object_type="leak_verification", object_id=str(row.id),
                         details={"user_id": user_id, "kind": kind})
            return StartedVerification(row.id, kind, selector, shown, row.expires_at, False)

    def _send(self, started: StartedVerification, deliver: Callable[[Messenger], None]) -> None:
        try:
            deliver(self.messenger)
        except QorgauError:
            with self.platform.db.transaction() as session:  # a code nobody received must not stay usable
                session.execute(update(LeakVerification).where(LeakVerification.id == started.id)
                                .values(status="expired", contact_sealed=None))
            raise

    def confirm_phone(self, user_id: int, selector: str, code: str, *, actor: str | None = None) -> CitizenIdentifier:
        """Check the SMS code; the phone becomes a verified identifier of the citizen."""
        code = (code or "").strip().replace(" ", "")
        if not (len(code) == CODE_DIGITS and code.isascii() and code.isdigit()):
            raise InvalidInput(f"the code has {CODE_DIGITS} digits", field="code")
        return self._confirm(user_id, "phone", selector, code, via="sms_code", actor=actor)

    def confirm_email(self, user_id: int, selector: str, secret: str, *, actor: str | None = None) -> CitizenIdentifier:
        """Check the e-mail link's secret for the signed-in citizen who asked for it."""
        if not isinstance(secret, str) or not 16 <= len(secret) <= MAX_SECRET_CHARS:
            raise InvalidInput("the link is incomplete; open it again from the e-mail", field="secret")
        return self._confirm(user_id, "email", selector, secret, via="email_link", actor=actor)

    def _confirm(self, user_id: int, kind: str, selector: str, secret: str, *, via: str,
                 actor: str | None) -> CitizenIdentifier:
        selector = _check_selector(selector)
        self.limiter.hit(OTP_CONFIRM_SCOPE, f"u:{user_id}")
        failure: VerificationFailed | None = None
        view: CitizenIdentifier | None = None
        who = actor or f"user:{user_id}"
        with self.platform.db.transaction() as session:
            self._citizen(session, user_id)
            row = session.scalar(select(LeakVerification).where(
                LeakVerification.selector == selector, LeakVerification.kind == kind,
                LeakVerification.user_id == user_id).with_for_update())
            if row is None:  # another citizen's challenge is "not found", like a missing one
                raise NotFound("no such verification for this account", field="selector")
            now = utcnow()
            if row.status == "pending" and row.expires_at <= now:
                row.status = "expired"
            if row.status != "pending":
                row.contact_sealed = None
                reason = {"verified": "used", "burned": "burned"}.get(row.status, "expired")
                failure = VerificationFailed(_FAILURE_MESSAGES[reason], reason=reason)
            elif not hmac.compare_digest(row.secret_sha256, _secret_hash(kind, selector, secret)):
                row.attempts += 1
                reason = "wrong_code"
                if row.attempts >= MAX_ATTEMPTS:
                    row.status, reason = "burned", "burned"
                    row.contact_sealed = None
                audit.record(session, actor=who, action="leaks.citizen_verification_fail",
                             object_type="leak_verification", object_id=str(row.id),
                             details={"user_id": user_id, "kind": kind, "attempts": row.attempts})
                failure = VerificationFailed(_FAILURE_MESSAGES[reason], reason=reason)
            else:
                row.status, row.verified_at = "verified", now
                ident = session.scalar(select(LeakCitizenIdentifier).where(
                    LeakCitizenIdentifier.user_id == user_id, LeakCitizenIdentifier.kind == kind,
                    LeakCitizenIdentifier.token == row.token))
                if ident is None:
                    ident = LeakCitizenIdentifier(user_id=user_id, kind=kind, token=row.token, mask=row.mask,
                                                  verified_via=via, verified_at=now, subscribed=False,
                                                  key_version=self.keys.key_version,
                                                  contact_sealed=row.contact_sealed)
                    session.add(ident)
                else:
                    ident.verified_at, ident.verified_via = now, via
                    ident.contact_sealed = row.contact_sealed or ident.contact_sealed
                row.contact_sealed = None
                session.flush()
                audit.record(session, actor=who, action="leaks.citizen_identifier_add",
                             object_type="leak_citizen_identifier", object_id=str(ident.id),
                             details={"user_id": user_id, "kind": kind, "via": via, "verification_id": row.id})
                view = CitizenIdentifier(ident.id, ident.kind, ident.mask, ident.verified_via, ident.verified_at,
                                         ident.subscribed)
        if failure is not None:  # raised after the commit: wrong attempts are counted
            raise failure
        assert view is not None
        self._changed()
        return view

    def pending(self, user_id: int, selector: str, kind: str) -> LeakVerification:
        """The citizen's challenge named by ``selector`` (for the code-entry page); NotFound otherwise."""
        selector = _check_selector(selector)
        with self.platform.db.reader() as session:
            row = session.scalar(select(LeakVerification).where(
                LeakVerification.selector == selector, LeakVerification.kind == kind,
                LeakVerification.user_id == user_id))
            if row is None:
                raise NotFound("no such verification for this account", field="selector")
            session.expunge(row)
            return row

    # -- lookups ----------------------------------------------------------------------------------

    def _index(self) -> Index:
        index = leak_index_for(self.platform)
        now = time.monotonic()
        if now - self._last_refresh >= REFRESH_SECONDS:
            self._last_refresh = now
            index.refresh()
        return index

    def lookup(self, user_id: int, *, lang: str | None = None) -> list[CitizenIncident]:
        """The incidents containing any of the citizen's verified identifiers, newest discovery first.

        There is no value parameter: the register answers only about identifiers the citizen proved are theirs
        (L-PD-LEAK-REGISTER). Fabricated incidents are never shown; unverified ones say so (status)."""
        lang = _lang(lang)
        with self.platform.db.reader() as session:
            self._citizen(session, user_id)
        self.limiter.hit(LOOKUP_SCOPE, f"u:{user_id}")
        self.ensure_iin(user_id)
        with self.platform.db.reader() as session:
            rows = list(session.execute(select(LeakCitizenIdentifier.kind, LeakCitizenIdentifier.mask,
                                               LeakCitizenIdentifier.token).where(
                LeakCitizenIdentifier.user_id == user_id,
                LeakCitizenIdentifier.key_version == self.keys.key_version)))
        if not rows:
            return []
        index = self._index()
        matches = index.lookup_many([bytes(r.token) for r in rows])
        matched: dict[int, set[tuple[str, str]]] = defaultdict(set)
        for q, incident in zip(matches.query.tolist(), matches.incidents.tolist()):
            matched[int(incident)].add((rows[q].kind, rows[q].mask))
        if not matched:
            return []
        found: list[CitizenIncident] = []
        order = {"iin": 0, "phone": 1, "email": 2}
        with self.platform.db.reader() as session:  # unscoped: incidents of every operator
            for chunk in _chunks(sorted(matched), INSERT_CHUNK):
                for incident, org in session.execute(
                        select(LeakIncident, Organization).join(Organization,
                                                                Organization.id == LeakIncident.organization_id)
                        .where(LeakIncident.id.in_(chunk), LeakIncident.status != "fabricated")):
                    found.append(CitizenIncident(
                        incident.id, incident.reference, org.name, org.is_demo, incident.sector, incident.title,
                        incident.discovered_at.date(), incident.nature, tuple(incident.data_classes or ()),
                        incident.status, incident.published, _advice(incident, lang),
                        tuple(sorted(matched[incident.id], key=lambda km: (order.get(km[0], 9), km[1])))))
        found.sort(key=lambda c: (c.discovered_on, c.incident_id), reverse=True)
        return found[:LOOKUP_LIMIT]

    def lookups_left(self, user_id: int) -> int:
        return self.limiter.remaining(LOOKUP_SCOPE, f"u:{user_id}")

    # -- subscriptions and notifications ---------------------------------------------------------

    def _signature(self, session: Session) -> tuple[object, ...]:
        count, latest, top = session.execute(select(
            func.count(LeakCitizenIdentifier.id), func.max(LeakCitizenIdentifier.subscribed_at),
            func.max(LeakCitizenIdentifier.id)).where(LeakCitizenIdentifier.subscribed.is_(True))).one()
        return (count, latest, top)

    def subscriber_tokens(self) -> _Subscribers:
        """The subscribed identifiers' tokens as a matrix sorted by prefix, cached until a subscription changes
        (this process: a generation counter; other processes: count, newest subscription time and id)."""
        with self.platform.db.reader() as session:
            signature = (self._generation, *self._signature(session))
            cached = self._subscribers
            if cached is not None and cached.signature == signature:
                return cached
            rows = list(session.execute(select(LeakCitizenIdentifier.id, LeakCitizenIdentifier.user_id,
                                               LeakCitizenIdentifier.kind, LeakCitizenIdentifier.token).where(
                LeakCitizenIdentifier.subscribed.is_(True),
                LeakCitizenIdentifier.key_version == self.keys.key_version)))
        if rows:
            tokens = np.frombuffer(b"".join(bytes(r.token) for r in rows), np.uint8).reshape(-1, 32)
            order = np.argsort(_prefix64(tokens), kind="stable")
            snapshot = _Subscribers(signature, np.ascontiguousarray(tokens[order]),
                                    np.array([r.id for r in rows], np.int64)[order],
                                    np.array([r.user_id for r in rows], np.int64)[order],
                                    [rows[k].kind for k in order.tolist()])
        else:
            snapshot = _Subscribers(signature, np.zeros((0, 32), np.uint8), np.zeros(0, np.int64),
                                    np.zeros(0, np.int64), [])
        with self._lock:
            if self._generation == signature[0]:
                self._subscribers = snapshot
        return snapshot

    def notify_new_tokens(self, incident_id: int, tokens: np.ndarray) -> int:
        """Tell every subscriber whose identifier is among ``tokens`` (a new segment of ``incident_id``), once
        per (citizen, incident); returns the number of new notifications. Idempotent: a second call, or a
        second segment of the same incident, adds nothing. Called outside any transaction."""
        matrix = as_tokens(tokens)
        with self.platform.db.reader() as session:
            row = session.execute(select(LeakIncident.status, LeakIncident.reference, Organization.name).join(
                Organization, Organization.id == LeakIncident.organization_id).where(
                LeakIncident.id == int(incident_id))).first()
        if row is None:
            raise NotFound("incident not found", field="incident_id")
        status, reference, operator = row
        if status == "fabricated":
            return 0
        subs = self.subscriber_tokens()
        _, j = join_tokens(matrix, subs.tokens)
        if not j.size:
            return 0
        per_user: dict[int, dict[str, int]] = defaultdict(dict)
        for k in np.unique(j).tolist():
            per_user[int(subs.user_ids[k])].setdefault(subs.kinds[k], int(subs.identifier_ids[k]))
        created: list[tuple[int, int]] = []  # (notification id, user id)
        now = utcnow()
        with self.platform.db.transaction() as session:
            users = sorted(per_user)
            for chunk in _chunks(users, INSERT_CHUNK):
                values = [{"user_id": u, "incident_id": int(incident_id), "kinds": sorted(per_user[u]),
                           "created_at": now} for u in chunk]
                created.extend(_insert_new(session, values))
            if created:
                audit.record(session, actor="system", action="leaks.citizens_notified", object_type="leak_incident",
                             object_id=str(int(incident_id)),
                             details={"incident_id": int(incident_id), "notifications": len(created)})
        if created:
            self._deliver([(nid, uid, per_user[uid]) for nid, uid in created], reference, operator)
        return len(created)

    def _deliver(self, items: Sequence[tuple[int, int, dict[str, int]]], reference: str, operator: str) -> None:
        """Send each new notice by SMS or e-mail when an address is known, else leave it in the portal."""
        link = self.portal_url("/me/leaks")
        sent: dict[str, list[int]] = defaultdict(list)
        failed = 0
        langs = self._languages([uid for _, uid, _ in items])
        for nid, uid, kinds in items:
            lang = langs.get(uid, i18n.DEFAULT_LANGUAGE)
            values = {"operator": operator, "reference": reference, "link": link}
            channel = "portal"
            try:
                for kind, via in (("phone", "sms"), ("email", "email")):
                    if kind not in kinds:
                        continue
                    address = self.contacts.address(uid, kinds[kind], kind)
                    if not address:
                        continue
                    if via == "sms":
                        self.messenger.send_sms(address, i18n.gettext(lang, NOTICE_SMS_TEXT) % values)
                    else:
                        self.messenger.send_email(address, i18n.gettext(lang, NOTICE_EMAIL_SUBJECT),
                                                  i18n.gettext(lang, NOTICE_EMAIL_TEXT) % values)
                    channel = via
                    break
            except QorgauError:
                failed += 1
                continue  # stays unsent (sent_at NULL): deliver_pending() retries
            sent[channel].append(nid)
        if failed:
            log.warning("%d leak notices could not be sent", failed)
        if sent:
            with self.platform.db.transaction() as session:
                now = utcnow()
                for channel, ids in sent.items():
                    for chunk in _chunks(ids, INSERT_CHUNK):
                        session.execute(update(LeakNotification).where(LeakNotification.id.in_(chunk))
                                        .values(sent_at=now, channel=channel))

    def deliver_pending(self) -> int:
        """Retry notices whose message failed (sent_at NULL); returns how many were handled."""
        with self.platform.db.reader() as session:
            rows = list(session.execute(select(LeakNotification.id, LeakNotification.user_id,
                                               LeakNotification.incident_id).where(
                LeakNotification.sent_at.is_(None)).order_by(LeakNotification.id).limit(10000)))
        by_incident: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for nid, uid, iid in rows:
            by_incident[iid].append((nid, uid))
        for iid, items in by_incident.items():
            with self.platform.db.reader() as session:
                reference, operator = session.execute(select(LeakIncident.reference, Organization.name).join(
                    Organization, Organization.id == LeakIncident.organization_id)
                    .where(LeakIncident.id == iid)).one()
                per_user: dict[int, dict[str, int]] = defaultdict(dict)
                for r in session.execute(select(LeakCitizenIdentifier.user_id, LeakCitizenIdentifier.kind,
                                                LeakCitizenIdentifier.id).where(
                        LeakCitizenIdentifier.user_id.in_([u for _, u in items]))):
                    per_user[r.user_id].setdefault(r.kind, r.id)
            self._deliver([(nid, uid, per_user.get(uid, {})) for nid, uid in items], reference, operator)
        return len(rows)

    def _languages(self, user_ids: Iterable[int]) -> dict[int, str]:
        ids = sorted(set(user_ids))
        found: dict[int, str] = {}
        with self.platform.db.reader() as session:
            for chunk in _chunks(ids, INSERT_CHUNK):
                for uid, lang in session.execute(select(User.id, User.language).where(User.id.in_(chunk))
                                                 .execution_options(qorgau_cross_tenant=True)):
                    found[uid] = _lang(lang or self.settings.default_language)
        return found

    def notifications(self, user_id: int, *, limit: int = 100) -> list[CitizenNotification]:
        """The citizen's notices, newest first (incidents later found fabricated are not shown)."""
        with self.platform.db.reader() as session:
            self._citizen(session, user_id)
            result = session.execute(
                select(LeakNotification, LeakIncident.reference, Organization.name)
                .join(LeakIncident, LeakIncident.id == LeakNotification.incident_id)
                .join(Organization, Organization.id == LeakIncident.organization_id)
                .where(LeakNotification.user_id == user_id, LeakIncident.status != "fabricated")
                .order_by(LeakNotification.id.desc()).limit(max(1, min(limit, 500))))
            return [CitizenNotification(n.id, n.incident_id, ref, name, tuple(n.kinds or ()), n.created_at,
                                        n.sent_at, n.channel, n.seen_at) for n, ref, name in result]

    def unseen(self, user_id: int) -> int:
        with self.platform.db.reader() as session:
            return int(session.scalar(select(func.count(LeakNotification.id)).where(
                LeakNotification.user_id == user_id, LeakNotification.seen_at.is_(None))) or 0)

    def mark_seen(self, user_id: int, notification_id: int, *, actor: str | None = None) -> CitizenNotification:
        with self.platform.db.transaction() as session:
            self._citizen(session, user_id)
            row = session.scalar(select(LeakNotification).where(LeakNotification.id == notification_id,
                                                                LeakNotification.user_id == user_id))
            if row is None:
                raise NotFound("notification not found", field="notification_id")
            if row.seen_at is None:
                row.seen_at = utcnow()
                audit.record(session, actor=actor or f"user:{user_id}", action="leaks.citizen_notification_seen",
                             object_type="leak_notification", object_id=str(row.id),
                             details={"user_id": user_id, "incident_id": row.incident_id})
        for item in self.notifications(user_id, limit=500):
            if item.id == notification_id:
                return item
        raise NotFound("notification not found", field="notification_id")


_FAILURE_MESSAGES = {
    "wrong_code": "the code is wrong; check it and try again",
    "burned": "too many wrong codes: this code no longer works; ask for a new one",
    "expired": "this code or link has expired; ask for a new one",
    "used": "this code or link was already used",
}


def _chunks(items: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _insert_new(session: Session, values: list[dict[str, object]]) -> list[tuple[int, int]]:
    """INSERT … ON CONFLICT (user_id, incident_id) DO NOTHING RETURNING id, user_id (SQLite and PostgreSQL)."""
    if not values:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(LeakNotification).values(values).on_conflict_do_nothing(
        index_elements=["user_id", "incident_id"]).returning(LeakNotification.id, LeakNotification.user_id)
    return [(int(a), int(b)) for a, b in session.execute(stmt)]


def leak_citizens_for(platform: Platform) -> LeakCitizens:
    """The platform's one :class:`LeakCitizens` (API, web pages, ingest and CLI share it)."""
    return shared(platform, "_leak_citizens", LeakCitizens)
