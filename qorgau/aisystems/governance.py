"""AI governance (issue 7, part 4): audits and trusted lists of high-risk systems, the regulatory sandbox and
the organization's maturity index.

* **Audits and trusted lists** (L-AI-TRUSTED; AI law Art.19–20, DC Art.100 p.4). An operator records audits of
  its systems (:meth:`AiGovernance.record_audit`) and asks for a system's inclusion in a sector's list of trusted
  systems (:meth:`AiGovernance.request_trusted`) — only for a system whose *current* classification is high risk
  and not prohibited, with a passed audit that covers training data and found no prohibited functionality. The
  regulator includes or refuses it (:meth:`AiGovernance.decide_trusted`) and may remove it later; the public
  sees the included entries (:meth:`AiGovernance.trusted_list`).
* **Regulatory sandbox** (L-AI-SANDBOX [plan]). An operator applies with some of its systems and the
  obligations it asks to relax — only obligation rules marked ``relaxable: true`` in the rule book. The
  regulator approves (with an end date at most 24 months after the start, conditions, and the relaxations it
  grants) or rejects. While an approved sandbox runs, :meth:`AiGovernance.active_relaxations` tells the
  register's classification which obligations are ``relaxed``; after an approval, a withdrawal or an expiry the
  member systems are re-classified so their obligations flip.
* **Maturity index** (L-AI-MATURITY [plan]): :mod:`qorgau.aisystems.maturity` (formula, components).

Who may do what: operator methods take a session bound to the operator's organization
(``platform.db.transaction(organization_id=…)``). Regulator methods (:meth:`decide_trusted`,
:meth:`remove_trusted`, :meth:`decide_sandbox`, :meth:`close_sandbox`, and the cross-organization listings) take
an *unscoped* session and the acting principal (a :class:`~qorgau.core.auth.Principal`, a
:class:`~qorgau.core.auth.User`, or an actor string ``user:N`` / ``apikey:N`` looked up here), check the
``regulator`` role themselves, and refuse to decide on the regulator's own organization's systems: an operator
can never include its own system, even with a key that carries the regulator role.

Audit entries carry ids, codes, dates and statuses only — never reasons, summaries or conditions (free text).
Nothing here commits: callers own the transaction.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..core import audit
from ..core.auth import ApiKey, Organization, Principal, Role, User
from ..core.calendar import local_date
from ..core.db import TENANT_KEY, tenant_of, utcnow
from ..core.auth import require_authority
from ..core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..core.platform import shared
from .maturity import FORMULA_VERSION, MATURITY_FORMULA, MaturityComponent, MaturityView, compute_maturity
from .checks import text as _text
from .models import (
    AUDIT_RESULTS,
    SANDBOX_STATUSES,
    TRUSTED_STATUSES,
    AiAudit,
    AiClassification,
    AiObligation,
    AiSystem,
    AiSystemProfile,
    MaturitySnapshot,
    SandboxApplication,
    SandboxMember,
    TrustedListEntry,
)

if TYPE_CHECKING:
    from ..core.platform import Platform

__all__ = [
    "FORMULA_VERSION", "MATURITY_FORMULA", "MAX_SANDBOX_MONTHS", "AiGovernance", "AuditView", "MaturityComponent",
    "MaturityView", "SandboxView", "TrustedEntryView", "add_months", "governance_for", "snapshot_all",
]

MAX_SANDBOX_MONTHS = 24
MAX_AUDITOR = 300
MAX_TEXT = 4000
MAX_DESCRIPTION = 10000
MAX_TITLE = 300
OPERATOR_ROLES: frozenset[str] = frozenset({Role.ADMIN.value, Role.DPO.value})
REGULATOR_ROLE = Role.REGULATOR.value
SANDBOX_ACTOR = "system:sandbox"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SECTOR = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_ACTOR_REF = re.compile(r"(user|apikey):([0-9]{1,12})")


# --- views ---------------------------------------------------------------------------------------------


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class AuditView:
    """An audit of a system (DC Art.100 p.4). ``summary`` is the operator's text: shown, never logged."""

    id: int
    system_id: int
    auditor: str
    audited_on: date
    covers_training_data: bool
    prohibited_functionality_found: bool
    result: str
    summary: str | None
    report_sha256: str | None
    created_at: datetime
    created_by: str

    def __repr__(self) -> str:
        return f"AuditView(id={self.id}, system={self.system_id}, result={self.result!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "system_id": self.system_id, "auditor": self.auditor,
                "audited_on": _iso(self.audited_on), "covers_training_data": self.covers_training_data,
                "prohibited_functionality_found": self.prohibited_functionality_found, "result": self.result,
                "summary": self.summary, "report_sha256": self.report_sha256,
                "created_at": _iso(self.created_at), "created_by": self.created_by}


@dataclass(frozen=True)
class TrustedEntryView:
    """A trusted-list request or entry (L-AI-TRUSTED) with the system, its operator and the audit behind it."""

    id: int
    organization_id: int
    operator_name: str
    operator_bin: str
    system_id: int
    system_code: str
    system_name: str
    register_id: str | None
    sector: str
    status: str
    audit_id: int
    auditor: str
    audited_on: date
    requested_at: datetime
    requested_by: str
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None

    def __repr__(self) -> str:
        return f"TrustedEntryView(id={self.id}, system={self.system_id}, status={self.status!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "organization_id": self.organization_id, "operator_name": self.operator_name,
                "operator_bin": self.operator_bin, "system_id": self.system_id, "system_code": self.system_code,
                "system_name": self.system_name, "register_id": self.register_id, "sector": self.sector,
                "status": self.status, "audit_id": self.audit_id, "auditor": self.auditor,
                "audited_on": _iso(self.audited_on), "requested_at": _iso(self.requested_at),
                "requested_by": self.requested_by, "decided_at": _iso(self.decided_at),
                "decided_by": self.decided_by, "reason": self.reason}

    def to_public_dict(self) -> dict[str, Any]:
        """What the public trusted list shows: no internal actor ids, no reasons."""
        return {"id": self.id, "operator_name": self.operator_name, "operator_bin": self.operator_bin,
                "system_code": self.system_code, "system_name": self.system_name, "register_id": self.register_id,
                "sector": self.sector, "status": self.status, "auditor": self.auditor,
                "audited_on": _iso(self.audited_on), "included_on": _iso(self.decided_at)}


@dataclass(frozen=True)
class SandboxView:
    """A sandbox application. ``active`` is True when it is approved and ``today`` lies in
    [starts_on, ends_on]; ``expired`` when it is approved and ended before today (it relaxes nothing)."""

    id: int
    organization_id: int
    title: str
    description: str
    status: str
    system_ids: list[int]
    requested_relaxations: list[str]
    granted_relaxations: list[str]
    starts_on: date | None
    ends_on: date | None
    conditions: str | None
    submitted_at: datetime
    submitted_by: str
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None
    active: bool
    expired: bool

    def __repr__(self) -> str:
        return f"SandboxView(id={self.id}, org={self.organization_id}, status={self.status!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "organization_id": self.organization_id, "title": self.title,
                "description": self.description, "status": self.status, "system_ids": list(self.system_ids),
                "requested_relaxations": list(self.requested_relaxations),
                "granted_relaxations": list(self.granted_relaxations), "starts_on": _iso(self.starts_on),
                "ends_on": _iso(self.ends_on), "conditions": self.conditions,
                "submitted_at": _iso(self.submitted_at), "submitted_by": self.submitted_by,
                "decided_at": _iso(self.decided_at), "decided_by": self.decided_by,
                "decision_reason": self.decision_reason, "active": self.active, "expired": self.expired}


# --- small validators ----------------------------------------------------------------------------------


def _today() -> date:
    return local_date(utcnow())


def _int_id(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput("must be a positive integer id", field=field)
    return value


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput("must be true or false", field=field)
    return value


def _date(value: Any, field: str, *, required: bool = False) -> date | None:
    if value is None:
        if required:
            raise InvalidInput("is required", field=field)
        return None
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            raise InvalidInput("must be a date (YYYY-MM-DD)", field=field) from None
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidInput("must be a date (YYYY-MM-DD)", field=field)
    return value


def add_months(day: date, months: int) -> date:
    """``day`` plus whole months; the 29th–31st fall back to the month's last day."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, d))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _actor_name(actor: Any) -> str:
    if isinstance(actor, Principal):
        return actor.actor
    if isinstance(actor, User):
        return f"user:{actor.id}"
    if not isinstance(actor, str) or not actor.strip() or len(actor) > 64:
        raise InvalidInput("actor must be 1–64 characters (an id such as 'user:12', never a name)", field="actor")
    return actor


def _sector(value: Any) -> str:
    """A sector code: one of the questionnaire's ``system.sector`` values when the rule book knows them."""
    if not isinstance(value, str) or not _SECTOR.fullmatch(value.strip()):
        raise InvalidInput("sector is a code of 1–64 lowercase letters, digits, '_', '.', '-'", field="sector")
    value = value.strip()
    known = _known_sectors()
    if known and value not in known:
        raise InvalidInput(f"sector is one of: {', '.join(known)}", field="sector")
    return value


def _known_sectors() -> tuple[str, ...]:
    try:
        from ..rules import rulebook

        fact = rulebook().facts.fact("ai_system", "system.sector")
        return tuple(fact.values or ())
    except (ImportError, LookupError, NotFound, AttributeError):
        return ()


def _relaxable(rule_id: Any, field: str) -> str:
    """A rule id the sandbox may relax: an obligation rule with ``relaxable: true`` in the rule book."""
    from ..rules import rulebook

    if not isinstance(rule_id, str) or not rule_id.strip():
        raise InvalidInput("a relaxation is a rule id", field=field)
    try:
        rule = rulebook().rule(rule_id.strip())
    except NotFound:
        raise InvalidInput("no rule with this id in the rule book", field=field) from None
    if (rule.effect or {}).get("type") != "obligation":
        raise InvalidInput("only obligation rules can be relaxed", field=field)
    if not rule.relaxable:
        raise InvalidInput("this obligation is not relaxable (the rule book says relaxable: false)", field=field)
    return rule.id


def _relaxations(values: Any, field: str, *, required: bool = True) -> list[str]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InvalidInput("give a list of rule ids", field=field)
    if required and not values:
        raise InvalidInput("name at least one obligation rule to relax", field=field)
    if len(values) > 200:
        raise InvalidInput("at most 200 rule ids", field=field)
    out: list[str] = []
    for i, value in enumerate(values):
        rule_id = _relaxable(value, f"{field}.{i}")
        if rule_id not in out:
            out.append(rule_id)
    return out


@contextlib.contextmanager
def _as_tenant(session: Session, organization_id: int) -> Iterator[Session]:
    """Bind an unscoped session to one organization for the duration of the block (the register's methods take
    a tenant-bound session; the regulator's transaction is one and must stay one)."""
    previous = session.info.get(TENANT_KEY)
    if previous is not None and previous != organization_id:
        raise PermissionDenied("the session belongs to another organization", field="organization_id")
    session.flush()
    session.info[TENANT_KEY] = organization_id
    try:
        yield session
    finally:
        session.flush()
        if previous is None:
            session.info.pop(TENANT_KEY, None)
        else:
            session.info[TENANT_KEY] = previous


# --- the service ---------------------------------------------------------------------------------------


class AiGovernance:
    """Audits, trusted lists, sandboxes and the maturity index of one platform (:func:`governance_for`)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def __repr__(self) -> str:
        return f"AiGovernance(db={self.platform.db.dialect})"

    # -- who is acting --------------------------------------------------------------------------------

    @staticmethod
    def _org(session: Session) -> int:
        org = tenant_of(session)
        if org is None:
            raise PermissionDenied("this action needs a session scoped to one organization", field="organization_id")
        return org

    @staticmethod
    def _operator(actor: Any, org: int) -> str:
        """The operator's actor id; a Principal or User given is checked (admin or dpo of this organization)."""
        if isinstance(actor, (Principal, User)):
            roles = actor.roles if isinstance(actor, Principal) else frozenset(actor.roles or ())
            active = actor.is_active if isinstance(actor, User) else True
            if actor.organization_id != org or not active:
                raise PermissionDenied("this action needs an active user of this organization", field="actor")
            if not set(roles) & OPERATOR_ROLES:
                raise PermissionDenied("this action needs one of the roles: admin, dpo", field="actor")
        return _actor_name(actor)

    @staticmethod
    def _regulator(session: Session, actor: Any) -> tuple[str, int]:
        """The regulator's actor id and own organization; PermissionDenied unless it holds the regulator role."""
        if tenant_of(session) is not None:
            raise PermissionDenied("regulator actions take a session not bound to one organization", field="session")
        if isinstance(actor, Principal):
            roles, org, name = actor.roles, actor.organization_id, actor.actor
        elif isinstance(actor, User):
            if not actor.is_active:
                raise PermissionDenied("this user is not active", field="actor")
            roles, org, name = frozenset(actor.roles or ()), actor.organization_id, f"user:{actor.id}"
        elif isinstance(actor, str) and (m := _ACTOR_REF.fullmatch(actor.strip())):
            kind, ident = m.group(1), int(m.group(2))
            row: User | ApiKey | None = session.get(User if kind == "user" else ApiKey, ident)
            if row is None or (isinstance(row, User) and not row.is_active) \
                    or (isinstance(row, ApiKey) and row.revoked_at is not None):
                raise PermissionDenied("no active user or API key with this id", field="actor")
            roles, org, name = frozenset(row.roles or ()), row.organization_id, f"{kind}:{ident}"
        else:
            raise PermissionDenied("a regulator action needs the acting user or API key ('user:N', 'apikey:N')",
                                   field="actor")
        if REGULATOR_ROLE not in roles:
            raise PermissionDenied("this action needs the role: regulator", field="actor")
        require_authority(session, org)  # the regulator role counts only in the authorized body's organization
        return name, org

    @staticmethod
    def _not_own(regulator: tuple[str, int], target_org: int) -> str:
        name, own = regulator
        if own == target_org:
            raise PermissionDenied("an operator cannot decide on its own systems, even with the regulator role",
                                   field="actor")
        return name

    # -- rows -----------------------------------------------------------------------------------------

    @staticmethod
    def _system(session: Session, system_id: Any, field: str = "system_id") -> AiSystem:
        system_id = _int_id(system_id, field)
        row = session.scalar(select(AiSystem).where(AiSystem.id == system_id))
        if row is None:
            raise NotFound("no AI system with this id", field=field)
        return row

    @staticmethod
    def _current_classification(session: Session, system_id: int) -> AiClassification | None:
        return session.scalar(select(AiClassification).where(AiClassification.ai_system_id == system_id)
                              .order_by(AiClassification.seq.desc()).limit(1))

    @staticmethod
    def _audit_view(row: AiAudit) -> AuditView:
        return AuditView(row.id, row.ai_system_id, row.auditor, row.audited_on, row.covers_training_data,
                         row.prohibited_functionality_found, row.result, row.summary, row.report_sha256,
                         row.created_at, row.created_by)

    def _entry_views(self, session: Session, rows: Sequence[TrustedListEntry]) -> list[TrustedEntryView]:
        if not rows:
            return []
        # Keyed by the ids of rows the caller may already see, so reading them across tenants is safe (the
        # public trusted list is read with any session).
        cross = {"qorgau_cross_tenant": True}
        system_ids = {r.ai_system_id for r in rows}
        systems = {s.id: s for s in session.scalars(select(AiSystem).where(AiSystem.id.in_(system_ids))
                                                    .execution_options(**cross))}
        register_ids = dict(session.execute(select(AiSystemProfile.ai_system_id, AiSystemProfile.register_id)
                                            .where(AiSystemProfile.ai_system_id.in_(system_ids))
                                            .execution_options(**cross)).all())
        audits = {a.id: a for a in session.scalars(select(AiAudit).where(AiAudit.id.in_({r.audit_id for r in rows}))
                                                   .execution_options(**cross))}
        orgs = {o.id: o for o in session.scalars(select(Organization).where(
            Organization.id.in_({r.organization_id for r in rows})))}
        out = []
        for r in rows:
            system, org, aud = systems[r.ai_system_id], orgs[r.organization_id], audits[r.audit_id]
            out.append(TrustedEntryView(
                id=r.id, organization_id=r.organization_id, operator_name=org.name, operator_bin=org.bin,
                system_id=r.ai_system_id, system_code=system.code, system_name=system.name,
                register_id=register_ids.get(r.ai_system_id), sector=r.sector, status=r.status, audit_id=r.audit_id,
                auditor=aud.auditor, audited_on=aud.audited_on, requested_at=r.requested_at,
                requested_by=r.requested_by, decided_at=r.decided_at, decided_by=r.decided_by, reason=r.reason))
        return out

    def _entry_row(self, session: Session, entry_id: Any, *, lock: bool = False) -> TrustedListEntry:
        entry_id = _int_id(entry_id, "entry_id")
        stmt = select(TrustedListEntry).where(TrustedListEntry.id == entry_id)
        # A decision locks the row (PostgreSQL): of two regulators deciding at once, the second sees the first's
        # status and gets Conflict. SQLite's write transactions are serialized already.
        row = session.scalar(stmt.with_for_update() if lock else stmt)
        if row is None:
            raise NotFound("no trusted-list entry with this id", field="entry_id")
        return row

    @staticmethod
    def _audit_entry(session: Session, actor: str, action: str, row: TrustedListEntry, **extra: Any) -> None:
        details = {"entry_id": row.id, "system_id": row.ai_system_id, "sector": row.sector, "status": row.status,
                   "audit_id": row.audit_id, **extra}
        audit.record(session, actor=actor, action=action, object_type="ai_trusted_entry", object_id=str(row.id),
                     organization_id=row.organization_id, details=details)

    # -- audits (DC Art.100 p.4) ----------------------------------------------------------------------

    def record_audit(self, session: Session, system_id: int, *, auditor: str, audited_on: date,
                     covers_training_data: bool, prohibited_functionality_found: bool, result: str,
                     summary: str | None = None, report_sha256: str | None = None, actor: Any) -> AuditView:
        """Record an audit of one of the operator's systems. An audit that found prohibited functionality
        cannot be ``passed`` (DC Art.100 p.4: the audit checks its absence)."""
        org = self._org(session)
        actor = self._operator(actor, org)
        system = self._system(session, system_id)
        auditor_text = _text(auditor, "auditor", MAX_AUDITOR, required=True)
        day = _date(audited_on, "audited_on", required=True)
        assert day is not None and auditor_text is not None
        if day > _today():
            raise InvalidInput("an audit date cannot be in the future", field="audited_on")
        covers = _bool(covers_training_data, "covers_training_data")
        found = _bool(prohibited_functionality_found, "prohibited_functionality_found")
        if not isinstance(result, str) or result not in AUDIT_RESULTS:
            raise InvalidInput(f"result is one of: {', '.join(AUDIT_RESULTS)}", field="result")
        if result == "passed" and found:
            raise InvalidInput("an audit that found prohibited functionality cannot pass (DC Art.100 p.4)",
                               field="result")
        summary_text = _text(summary, "summary", MAX_TEXT)
        digest = None
        if report_sha256 is not None:
            if not isinstance(report_sha256, str) or not _HEX64.fullmatch(report_sha256.strip().lower()):
                raise InvalidInput("report_sha256 is 64 hexadecimal characters (SHA-256 of the report)",
                                   field="report_sha256")
            digest = report_sha256.strip().lower()
        row = AiAudit(organization_id=org, ai_system_id=system.id, auditor=auditor_text, audited_on=day,
                      covers_training_data=covers, prohibited_functionality_found=found, result=result,
                      summary=summary_text, report_sha256=digest, created_at=utcnow(), created_by=actor)
        session.add(row)
        session.flush()
        audit.record(session, actor=actor, action="aisystems.audit_recorded", object_type="ai_audit",
                     object_id=str(row.id), organization_id=org,
                     details={"system_id": system.id, "result": result, "covers_training_data": covers,
                              "prohibited_functionality_found": found, "audited_on": day.isoformat()})
        return self._audit_view(row)

    def audits(self, session: Session, system_id: int) -> list[AuditView]:
        """A system's audits, newest first."""
        self._org(session)
        system = self._system(session, system_id)
        rows = session.scalars(select(AiAudit).where(AiAudit.ai_system_id == system.id)
                               .order_by(AiAudit.audited_on.desc(), AiAudit.id.desc()))
        return [self._audit_view(r) for r in rows]

    # -- trusted lists (L-AI-TRUSTED) -----------------------------------------------------------------

    def _check_eligible(self, session: Session, system: AiSystem, aud: AiAudit) -> None:
        """The conditions of L-AI-TRUSTED (AI law Art.19–20, DC Art.100 p.4); each refusal names its field."""
        if system.status == "retired":
            raise InvalidInput("a retired system cannot be on a trusted list", field="system_id")
        current = self._current_classification(session, system.id)
        if current is None:
            raise InvalidInput("the system has no classification by the rule packs yet", field="classification")
        if current.prohibited:
            raise InvalidInput("the system's current classification finds a prohibited practice", field="prohibited")
        if current.risk_level != "high":
            raise InvalidInput("only high-risk systems go on trusted lists (the current classification is not "
                               "high risk)", field="risk_level")
        if aud.result != "passed":
            raise InvalidInput("the audit did not pass", field="audit.result")
        if not aud.covers_training_data:
            raise InvalidInput("the audit must cover the training data (L-AI-TRUSTED)",
                               field="audit.covers_training_data")
        if aud.prohibited_functionality_found:
            raise InvalidInput("the audit found prohibited functionality (DC Art.100 p.4)",
                               field="audit.prohibited_functionality_found")

    def request_trusted(self, session: Session, system_id: int, *, sector: str, audit_id: int,
                        actor: Any) -> TrustedEntryView:
        """Ask the regulator to include a high-risk system in a sector's trusted list."""
        org = self._org(session)
        actor = self._operator(actor, org)
        system = self._system(session, system_id)
        sector = _sector(sector)
        audit_id = _int_id(audit_id, "audit_id")
        aud = session.scalar(select(AiAudit).where(AiAudit.id == audit_id, AiAudit.ai_system_id == system.id))
        if aud is None:
            raise NotFound("no audit of this system with this id", field="audit_id")
        self._check_eligible(session, system, aud)
        existing = session.scalar(select(TrustedListEntry.id).where(
            TrustedListEntry.ai_system_id == system.id, TrustedListEntry.sector == sector,
            TrustedListEntry.status.in_(("requested", "included"))).limit(1))
        if existing is not None:
            raise Conflict("this system already has a pending request or an entry in this sector's list",
                           field="sector")
        row = TrustedListEntry(organization_id=org, ai_system_id=system.id, audit_id=aud.id, sector=sector,
                               status="requested", requested_at=utcnow(), requested_by=actor)
        session.add(row)
        session.flush()
        self._audit_entry(session, actor, "aisystems.trusted_requested", row)
        return self._entry_views(session, [row])[0]

    def decide_trusted(self, session: Session, entry_id: int, *, include: bool, reason: str | None = None,
                       actor: Any) -> TrustedEntryView:
        """The regulator includes (``include=True``) or refuses a request. Inclusion re-checks the conditions
        against the system's classification and audit as they are now; a refusal needs a reason."""
        include = _bool(include, "include")
        regulator = self._regulator(session, actor)
        row = self._entry_row(session, entry_id, lock=True)
        actor = self._not_own(regulator, row.organization_id)
        reason_text = _text(reason, "reason", MAX_TEXT, required=not include)
        if row.status != "requested":
            raise Conflict(f"this entry is {row.status}, not awaiting a decision", field="status")
        if include:  # the conditions again, as they are now (a re-classification may have changed them)
            system, aud = session.get(AiSystem, row.ai_system_id), session.get(AiAudit, row.audit_id)
            assert system is not None and aud is not None
            self._check_eligible(session, system, aud)
        row.status = "included" if include else "refused"
        row.decided_at, row.decided_by, row.reason = utcnow(), actor, reason_text
        session.flush()
        self._audit_entry(session, actor, "aisystems.trusted_" + row.status, row)
        return self._entry_views(session, [row])[0]

    def remove_trusted(self, session: Session, entry_id: int, *, reason: str, actor: Any) -> TrustedEntryView:
        """The regulator removes an included system from the list (a reason is required)."""
        regulator = self._regulator(session, actor)
        row = self._entry_row(session, entry_id, lock=True)
        actor = self._not_own(regulator, row.organization_id)
        reason_text = _text(reason, "reason", MAX_TEXT, required=True)
        if row.status != "included":
            raise Conflict(f"this entry is {row.status}, not on the list", field="status")
        row.status, row.decided_at, row.decided_by, row.reason = "removed", utcnow(), actor, reason_text
        session.flush()
        self._audit_entry(session, actor, "aisystems.trusted_removed", row)
        return self._entry_views(session, [row])[0]

    def trusted_requests(self, session: Session, *, status: str | None = None,
                         actor: Any = None) -> list[TrustedEntryView]:
        """Requests and entries, newest first. A tenant-bound session: the operator's own. An unscoped session:
        every organization's — the regulator's view; ``actor`` must then hold the regulator role."""
        if tenant_of(session) is None:
            self._regulator(session, actor)
        stmt = select(TrustedListEntry).order_by(TrustedListEntry.id.desc())
        if status is not None:
            if status not in TRUSTED_STATUSES:
                raise InvalidInput(f"status is one of: {', '.join(TRUSTED_STATUSES)}", field="status")
            stmt = stmt.where(TrustedListEntry.status == status)
        return self._entry_views(session, list(session.scalars(stmt.limit(5000))))

    def trusted_entry(self, session: Session, entry_id: int, *, actor: Any = None) -> TrustedEntryView:
        """One request or entry (tenant-bound session: the operator's own; unscoped: the regulator's, with actor)."""
        if tenant_of(session) is None:
            self._regulator(session, actor)
        return self._entry_views(session, [self._entry_row(session, entry_id)])[0]

    def trusted_list(self, session: Session, *, sector: str | None = None) -> list[TrustedEntryView]:
        """Public: the systems included in trusted lists, by sector then name (any session; cross-tenant)."""
        stmt = (select(TrustedListEntry).where(TrustedListEntry.status == "included")
                .execution_options(qorgau_cross_tenant=True))
        if sector is not None:
            stmt = stmt.where(TrustedListEntry.sector == _sector(sector))
        views = self._entry_views(session, list(session.scalars(stmt)))
        return sorted(views, key=lambda v: (v.sector, v.system_name, v.id))

    # -- regulatory sandbox (L-AI-SANDBOX [plan]) ----------------------------------------------------------

    def _sandbox_views(self, session: Session, rows: Sequence[SandboxApplication],
                       today: date | None = None) -> list[SandboxView]:
        if not rows:
            return []
        today = today or _today()
        members: dict[int, list[int]] = {}
        for app_id, system_id in session.execute(
                select(SandboxMember.application_id, SandboxMember.ai_system_id)
                .where(SandboxMember.application_id.in_([r.id for r in rows])).order_by(SandboxMember.ai_system_id)
                .execution_options(qorgau_cross_tenant=tenant_of(session) is None)):
            members.setdefault(app_id, []).append(system_id)
        out = []
        for r in rows:
            approved = r.status == "approved" and r.starts_on is not None and r.ends_on is not None
            out.append(SandboxView(
                id=r.id, organization_id=r.organization_id, title=r.title, description=r.description,
                status=r.status, system_ids=members.get(r.id, []),
                requested_relaxations=list(r.requested_relaxations or []),
                granted_relaxations=list(r.granted_relaxations or []), starts_on=r.starts_on, ends_on=r.ends_on,
                conditions=r.conditions, submitted_at=r.submitted_at, submitted_by=r.submitted_by,
                decided_at=r.decided_at, decided_by=r.decided_by, decision_reason=r.decision_reason,
                active=approved and r.starts_on <= today <= r.ends_on,  # type: ignore[operator]
                expired=approved and r.ends_on < today))  # type: ignore[operator]
        return out

    def _application_row(self, session: Session, application_id: Any, *, lock: bool = False) -> SandboxApplication:
        application_id = _int_id(application_id, "application_id")
        stmt = select(SandboxApplication).where(SandboxApplication.id == application_id)
        row = session.scalar(stmt.with_for_update() if lock else stmt)
        if row is None:
            raise NotFound("no sandbox application with this id", field="application_id")
        return row

    def _member_ids(self, session: Session, application_id: int) -> list[int]:
        return list(session.scalars(select(SandboxMember.ai_system_id)
                                    .where(SandboxMember.application_id == application_id)
                                    .order_by(SandboxMember.ai_system_id)))

    @staticmethod
    def _audit_sandbox(session: Session, actor: str, action: str, row: SandboxApplication,
                       system_ids: list[int], **extra: Any) -> None:
        details = {"application_id": row.id, "status": row.status, "system_ids": system_ids, **extra}
        audit.record(session, actor=actor, action=action, object_type="ai_sandbox", object_id=str(row.id),
                     organization_id=row.organization_id, details=details)

    def reclassify(self, session: Session, organization_id: int, system_ids: Sequence[int], *,
                   actor: str) -> int:
        """Ask the register to re-classify systems (their obligations flip between ``relaxed`` and ``open``),
        in the caller's transaction. Returns how many were re-classified (0 while the register is absent)."""
        try:
            from .register import register_for
        except ImportError:  # the register service is built alongside; without it nothing stores obligations
            return 0
        register = register_for(self.platform)
        done = 0
        with _as_tenant(session, organization_id):
            for system_id in system_ids:
                system = session.get(AiSystem, system_id)
                if system is None or system.status == "retired" or session.scalar(select(AiSystemProfile.id).where(
                        AiSystemProfile.ai_system_id == system_id)) is None:
                    continue  # no questionnaire (declared by oversight only): no obligations to flip
                register.classify(session, system_id, trigger="manual", actor=actor)
                done += 1
        return done

    def apply_sandbox(self, session: Session, *, title: str, description: str, system_ids: list[int],
                      requested_relaxations: list[str], actor: Any) -> SandboxView:
        """Apply to the regulatory sandbox with some of the operator's systems, naming the obligation rules to
        relax (only rules marked ``relaxable: true``)."""
        org = self._org(session)
        actor = self._operator(actor, org)
        title_text = _text(title, "title", MAX_TITLE, required=True)
        description_text = _text(description, "description", MAX_DESCRIPTION, required=True)
        if isinstance(system_ids, (str, bytes)) or not isinstance(system_ids, Sequence) or not system_ids:
            raise InvalidInput("name at least one AI system", field="system_ids")
        if len(system_ids) > 100:
            raise InvalidInput("at most 100 systems", field="system_ids")
        ids: list[int] = []
        for i, value in enumerate(system_ids):
            system = self._system(session, value, f"system_ids.{i}")
            if system.status == "retired":
                raise InvalidInput("a retired system cannot enter a sandbox", field=f"system_ids.{i}")
            if system.id not in ids:
                ids.append(system.id)
        relaxations = _relaxations(requested_relaxations, "requested_relaxations")
        row = SandboxApplication(organization_id=org, title=title_text, description=description_text,
                                 requested_relaxations=relaxations, granted_relaxations=[], status="submitted",
                                 submitted_at=utcnow(), submitted_by=actor)
        session.add(row)
        session.flush()
        for system_id in ids:
            session.add(SandboxMember(organization_id=org, application_id=row.id, ai_system_id=system_id))
        session.flush()
        self._audit_sandbox(session, actor, "aisystems.sandbox_applied", row, ids, relaxations=relaxations)
        return self._sandbox_views(session, [row])[0]

    def decide_sandbox(self, session: Session, application_id: int, *, approve: bool, starts_on: date | None = None,
                       ends_on: date | None = None, conditions: str | None = None,
                       granted_relaxations: list[str] | None = None, reason: str | None = None,
                       actor: Any) -> SandboxView:
        """The regulator approves or rejects a submitted application. Approval: ``starts_on`` (default today),
        ``ends_on`` (required, at most 24 months after the start), the relaxations granted (default: all
        requested; a subset of them). Rejection needs a reason. An approval re-classifies the member systems."""
        approve = _bool(approve, "approve")
        regulator = self._regulator(session, actor)
        row = self._application_row(session, application_id, lock=True)
        actor = self._not_own(regulator, row.organization_id)
        if row.status != "submitted":
            raise Conflict(f"this application is {row.status}, not awaiting a decision", field="status")
        reason_text = _text(reason, "reason", MAX_TEXT, required=not approve)
        members = self._member_ids(session, row.id)
        if approve:
            start = _date(starts_on, "starts_on") or _today()
            end = _date(ends_on, "ends_on", required=True)
            assert end is not None
            if end < start:
                raise InvalidInput("ends_on is before starts_on", field="ends_on")
            if end > add_months(start, MAX_SANDBOX_MONTHS):
                raise InvalidInput(f"a sandbox lasts at most {MAX_SANDBOX_MONTHS} months after starts_on",
                                   field="ends_on")
            if end < _today():
                raise InvalidInput("ends_on is in the past", field="ends_on")
            requested = list(row.requested_relaxations or [])
            if granted_relaxations is None:
                granted = _relaxations(requested, "granted_relaxations")
            else:
                granted = _relaxations(granted_relaxations, "granted_relaxations")
                for i, rule_id in enumerate(granted):
                    if rule_id not in requested:
                        raise InvalidInput("only requested relaxations can be granted",
                                           field=f"granted_relaxations.{i}")
            row.status, row.starts_on, row.ends_on, row.granted_relaxations = "approved", start, end, granted
            row.conditions = _text(conditions, "conditions", MAX_TEXT)
        else:
            row.status = "rejected"
        row.decided_at, row.decided_by, row.decision_reason = utcnow(), actor, reason_text
        session.flush()
        if approve:
            self._audit_sandbox(session, actor, "aisystems.sandbox_approved", row, members,
                                starts_on=row.starts_on.isoformat(),  # type: ignore[union-attr]
                                ends_on=row.ends_on.isoformat(),  # type: ignore[union-attr]
                                granted=list(row.granted_relaxations))
            self.reclassify(session, row.organization_id, members, actor=actor)
        else:
            self._audit_sandbox(session, actor, "aisystems.sandbox_rejected", row, members)
        return self._sandbox_views(session, [row])[0]

    def withdraw_sandbox(self, session: Session, application_id: int, *, actor: Any) -> SandboxView:
        """The operator withdraws its submitted or approved application; relaxations stop at once (member
        systems are re-classified)."""
        org = self._org(session)
        actor = self._operator(actor, org)
        row = self._application_row(session, application_id, lock=True)
        if row.status not in ("submitted", "approved"):
            raise Conflict(f"this application is {row.status}; only submitted or approved ones can be withdrawn",
                           field="status")
        was_approved = row.status == "approved"
        row.status = "withdrawn"
        session.flush()
        members = self._member_ids(session, row.id)
        self._audit_sandbox(session, actor, "aisystems.sandbox_withdrawn", row, members)
        if was_approved:
            self.reclassify(session, org, members, actor=actor)
        return self._sandbox_views(session, [row])[0]

    def close_sandbox(self, session: Session, application_id: int, *, reason: str, actor: Any) -> SandboxView:
        """The regulator ends an approved sandbox early (status ``closed``; a reason is required)."""
        regulator = self._regulator(session, actor)
        row = self._application_row(session, application_id, lock=True)
        actor = self._not_own(regulator, row.organization_id)
        reason_text = _text(reason, "reason", MAX_TEXT, required=True)
        if row.status != "approved":
            raise Conflict(f"this application is {row.status}, not running", field="status")
        row.status, row.decision_reason = "closed", reason_text
        session.flush()
        members = self._member_ids(session, row.id)
        self._audit_sandbox(session, actor, "aisystems.sandbox_closed", row, members, cause="regulator")
        self.reclassify(session, row.organization_id, members, actor=actor)
        return self._sandbox_views(session, [row])[0]

    def sandboxes(self, session: Session, *, status: str | None = None, actor: Any = None) -> list[SandboxView]:
        """Applications, newest first. A tenant-bound session: the operator's own; an unscoped session: every
        organization's — the regulator's view (``actor`` must hold the regulator role)."""
        if tenant_of(session) is None:
            self._regulator(session, actor)
        stmt = select(SandboxApplication).order_by(SandboxApplication.id.desc())
        if status is not None:
            if status not in SANDBOX_STATUSES:
                raise InvalidInput(f"status is one of: {', '.join(SANDBOX_STATUSES)}", field="status")
            stmt = stmt.where(SandboxApplication.status == status)
        return self._sandbox_views(session, list(session.scalars(stmt.limit(5000))))

    def sandbox(self, session: Session, application_id: int, *, actor: Any = None) -> SandboxView:
        """One application (tenant-bound session: the operator's own; unscoped: the regulator's, with actor)."""
        if tenant_of(session) is None:
            self._regulator(session, actor)
        return self._sandbox_views(session, [self._application_row(session, application_id)])[0]

    def active_relaxations(self, session: Session, system_id: int, on: date) -> dict[str, int]:
        """rule id → sandbox application id, for the obligations relaxed for ``system_id`` on day ``on``: those
        granted by an approved application the system is a member of with ``starts_on <= on <= ends_on``
        (the lowest application id when several grant the same rule). Withdrawn, rejected, closed and expired
        applications relax nothing. The register's classification reads this."""
        system_id = _int_id(system_id, "system_id")
        on = _date(on, "on", required=True)  # type: ignore[assignment]
        rows = session.execute(
            select(SandboxApplication.id, SandboxApplication.granted_relaxations)
            .join(SandboxMember, SandboxMember.application_id == SandboxApplication.id)
            .where(SandboxMember.ai_system_id == system_id, SandboxApplication.status == "approved",
                   SandboxApplication.starts_on <= on, SandboxApplication.ends_on >= on)
            .order_by(SandboxApplication.id)).all()
        out: dict[str, int] = {}
        for app_id, granted in rows:
            for rule_id in granted or []:
                out.setdefault(rule_id, app_id)
        return out

    def sweep_sandboxes(self, session: Session, *, on: date | None = None, actor: str = SANDBOX_ACTOR) -> dict[str, int]:
        """For a periodic job (any session; unscoped: every organization): approved applications that ended
        before ``on`` become ``closed``, and every member system whose stored obligations disagree with
        :meth:`active_relaxations` on ``on`` (a sandbox started, ended or was closed) is re-classified."""
        day = _date(on, "on") or _today()
        cross = {"qorgau_cross_tenant": tenant_of(session) is None}
        closed = 0
        for row in session.scalars(select(SandboxApplication).where(
                SandboxApplication.status == "approved", SandboxApplication.ends_on < day)
                .order_by(SandboxApplication.id).execution_options(**cross)):
            row.status = "closed"
            session.flush()
            self._audit_sandbox(session, actor, "aisystems.sandbox_closed", row,
                                self._member_ids(session, row.id), cause="expired")
            closed += 1
        systems = session.execute(select(SandboxMember.organization_id, SandboxMember.ai_system_id).distinct()
                                  .execution_options(**cross)).all()
        stale: dict[int, list[int]] = {}
        for org, system_id in systems:
            relaxed = self.active_relaxations(session, system_id, day)
            for rule_id, status in session.execute(
                    select(AiObligation.rule_id, AiObligation.status)
                    .where(AiObligation.ai_system_id == system_id, AiObligation.status.in_(("open", "relaxed")))
                    .execution_options(**cross)):
                if (status == "relaxed") != (rule_id in relaxed):
                    stale.setdefault(org, []).append(system_id)
                    break
        reclassified = sum(self.reclassify(session, org, ids, actor=actor) for org, ids in sorted(stale.items()))
        return {"closed": closed, "reclassified": reclassified}

    # -- maturity index (L-AI-MATURITY [plan]) --------------------------------------------------------------

    def maturity(self, session: Session, *, on: date | None = None) -> MaturityView:
        """The organization's maturity index as of ``on`` (default today); see :mod:`qorgau.aisystems.maturity`."""
        org = self._org(session)
        day = _date(on, "on") or _today()
        if day > _today():
            raise InvalidInput("the index cannot be computed for a future day", field="on")
        return compute_maturity(self.platform, session, org, day)

    def snapshot_maturity(self, session: Session, *, on: date | None = None) -> MaturityView:
        """Compute the index and keep it as the day's snapshot (one per organization and day: a second call the
        same day replaces it). A day with no component to judge has no score and stores nothing."""
        view = self.maturity(session, on=on)
        if view.score is None:
            return view
        return self._store_snapshot(session, view)

    @staticmethod
    def _store_snapshot(session: Session, view: MaturityView) -> MaturityView:
        """Upsert the day's snapshot of ``view`` (the session's organization)."""
        org = view.organization_id
        for attempt in range(2):
            row = session.scalar(select(MaturitySnapshot).where(MaturitySnapshot.computed_on == view.computed_on))
            try:
                with session.begin_nested():
                    if row is None:
                        row = MaturitySnapshot(organization_id=org, computed_on=view.computed_on)
                        session.add(row)
                    row.score, row.formula_version = view.score, view.formula_version
                    row.breakdown, row.created_at = view.breakdown(), utcnow()
                break
            except IntegrityError:  # another transaction stored the same day first: update theirs
                if attempt:
                    raise
        return MaturityView(org, view.computed_on, view.score, view.formula_version, view.components, stored=True)

    def maturity_trend(self, session: Session, *, days: int = 365) -> list[tuple[date, float]]:
        """The stored snapshots of the last ``days`` days (today included), oldest first."""
        self._org(session)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
            raise InvalidInput("days is 1–3660", field="days")
        since = _today() - timedelta(days=days - 1)
        return [(d, float(s)) for d, s in session.execute(
            select(MaturitySnapshot.computed_on, MaturitySnapshot.score)
            .where(MaturitySnapshot.computed_on >= since).order_by(MaturitySnapshot.computed_on))]

    def maturity_snapshots(self, session: Session, *, days: int = 365) -> list[MaturityView]:
        """The stored snapshots with their breakdowns, oldest first (for the chart's tooltips)."""
        self._org(session)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
            raise InvalidInput("days is 1–3660", field="days")
        since = _today() - timedelta(days=days - 1)
        out = []
        for row in session.scalars(select(MaturitySnapshot).where(MaturitySnapshot.computed_on >= since)
                                   .order_by(MaturitySnapshot.computed_on)):
            comps = [MaturityComponent(**c) for c in (row.breakdown or {}).get("components", [])]
            out.append(MaturityView(row.organization_id, row.computed_on, row.score, row.formula_version, comps,
                                    stored=True))
        return out


def governance_for(platform: Platform) -> AiGovernance:
    """The platform's one :class:`AiGovernance` (API, web and CLI share it)."""
    return shared(platform, "aisystems_governance", AiGovernance)


def snapshot_all(platform: Platform, *, on: date | None = None) -> dict[int, float | None]:
    """:meth:`AiGovernance.snapshot_maturity` for every organization, each in its own transaction (for a daily
    job). Returns organization id → score (None: nothing to judge, nothing stored)."""
    from ..core.auth import list_organizations

    with platform.db.reader() as session:
        orgs = [o.id for o in list_organizations(session)]
    service = governance_for(platform)
    out: dict[int, float | None] = {}
    for org in orgs:
        with platform.db.transaction(org) as session:
            out[org] = service.snapshot_maturity(session, on=on).score
    return out


def run_periodic(platform: Platform) -> None:
    """The server's hourly governance job: close ended sandboxes (re-opening the obligations they relaxed) and
    store today's maturity index of every organization (an upsert per day, for the trend)."""
    with platform.db.transaction() as session:
        governance_for(platform).sweep_sandboxes(session)
    snapshot_all(platform)
