"""The AI systems register (issue 7; L-AI-RISK, L-AI-AUTONOMY, L-AI-PROHIBITED, L-AI-DUTIES).

An operator registers a system by answering the questionnaire (the facts catalogue ``qorgau/rules/facts.yaml``,
subject ``ai_system``). The rule packs — the law as code, :mod:`qorgau.rules` — classify it: risk level,
autonomy, prohibited practices, obligations and notices, each with its article. Classifications are kept with
the packs they were made under and a diff against the previous one; obligations outlive re-classifications
while their rule still fires (``void`` when it stops, ``relaxed`` while a regulatory sandbox relaxes it).

Integration with oversight (:mod:`qorgau.oversight.service`), which reads ``AiSystem.risk_class``/``autonomy``
to decide whether a decision about a person needs a human: every stored classification writes its risk level
and autonomy there with ``classified_by = "rules:<first 12 hex of the packs digest>"``. While facts are missing
to decide, the values the system already had are kept (``"minimal"``/``"low"`` for a new system): leaving a
question unanswered never lowers a class. A system found to do something the law prohibits (any prohibition
or autonomy violation) is ``suspended``: oversight refuses every decision a suspended system submits. When a
later classification no longer finds a prohibition, a system the rules suspended becomes ``active`` again; a
system someone suspended or retired by hand stays as it was.

Sessions: operator methods take a session bound to the operator's organization
(``platform.db.transaction(organization_id=…)``); the public methods take any session and read public rows of
every organization. Nothing here commits. Audit entries carry ids, codes and levels — never names,
descriptions, questionnaire answers or evidence.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..core import audit
from ..core.auth import Organization
from ..core.calendar import add_working_days, local_date
from ..core.db import tenant_of, utcnow
from ..core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, QorgauError
from ..core.platform import shared
from .checks import text as _text
from .models import (
    CLASSIFICATION_TRIGGERS,
    OBLIGATION_STATUSES,
    RISK_CLASSES,
    AiClassification,
    AiObligation,
    AiSystem,
    AiSystemProfile,
    RulePackVersion,
    SandboxApplication,
    SandboxMember,
    TrustedListEntry,
)
from .views import (
    ClassificationView,
    FactGroupView,
    FactView,
    ObligationView,
    PublicPage,
    PublicSystemView,
    ReclassifyReport,
    SystemRecord,
    SystemSummary,
)

if TYPE_CHECKING:
    from ..core.platform import Platform

log = logging.getLogger(__name__)

SUBJECT = "ai_system"
LANGUAGES = ("kk", "ru", "en")
PACK_CHANGE_ACTOR = "system:rules"
MAX_STRING_FACT = 2000
MAX_LIST_FACT = 50
MAX_PUBLIC_LIMIT = 1000
CSV_PAGE = 500
CSV_COLUMNS = ("register_id", "operator_name", "operator_bin", "name", "purpose", "sector", "state_system",
               "status", "risk_level", "autonomy_level", "prohibited", "prohibited_practices", "obligations",
               "trusted_status", "sandbox", "classified_on", "packs")
_SYSTEM_CODE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_REGISTER_ID = re.compile(r"KZ-AI-\d{4}-\d{6,}")
_FORMULA_CHARS = ("=", "+", "-", "@", "\t", "\r")


# --- small checks ---------------------------------------------------------------------------------------


def _actor(actor: Any) -> str:
    if not isinstance(actor, str) or not actor.strip() or len(actor) > 64:
        raise InvalidInput("actor must be 1–64 characters (an id such as 'user:12', never a name)", field="actor")
    return actor


def _org(session: Session) -> int:
    org = tenant_of(session)
    if org is None:
        raise PermissionDenied("the AI systems register needs a session scoped to one organization",
                               field="organization_id")
    return org


def _id(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput("must be a positive integer id", field=field)
    return value


def _today() -> date:
    return local_date(utcnow())


def _lang(lang: Any) -> str:
    if lang not in LANGUAGES:
        raise InvalidInput(f"lang must be one of: {', '.join(LANGUAGES)}", field="lang")
    return lang


def _rules() -> Any:
    from ..rules import rulebook

    return rulebook()


def _citation(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if hasattr(value, "to_dict"):
        return dict(value.to_dict())
    return {k: getattr(value, k, None) for k in ("law", "article", "paragraph", "legal_id")}


def _localized(value: Any) -> dict[str, str]:
    return dict(value) if isinstance(value, Mapping) else {}


def _csv_cell(value: Any) -> str:
    """Open data is opened in spreadsheets: a cell starting like a formula is quoted with an apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_CHARS) else text


# --- the questionnaire's facts ----------------------------------------------------------------------------


def _catalog_facts(book: Any) -> dict[str, Any]:
    """path -> Fact of the ai_system subject, in questionnaire order."""
    subject = book.facts.subjects[SUBJECT]
    return {fact.path: fact for group in subject.groups for fact in group.facts}


def _flatten(facts: Any, prefix: str = "") -> dict[str, Any]:
    """Nested ({"functions": {"emotion_recognition": True}}) or flat ({"functions.emotion_recognition": True})
    answers, as flat paths. A dict under a known namespace is nested; a dict elsewhere is a bad value."""
    if not isinstance(facts, Mapping):
        raise InvalidInput("facts must be an object of fact paths", field=prefix.rstrip(".") or "facts")
    flat: dict[str, Any] = {}
    for key, value in facts.items():
        if not isinstance(key, str) or not key:
            raise InvalidInput("fact paths are text", field=(prefix or "facts.").rstrip("."))
        path = prefix + key
        if isinstance(value, Mapping):
            flat.update(_flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def _check_fact(fact: Any, value: Any, field: str) -> Any:
    """The stored form of one answer (JSON: bools, ints, strings, lists; dates as ISO text), or an error
    naming ``facts.<path>`` (never the value)."""
    kind = fact.type
    values = tuple(fact.values or ())
    if kind == "bool":
        if not isinstance(value, bool):
            raise InvalidInput("must be true or false", field=field)
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput("must be a whole number", field=field)
        return value
    if kind == "enum":
        if not isinstance(value, str) or value not in values:
            raise InvalidInput(f"must be one of: {', '.join(values)}", field=field)
        return value
    if kind == "enum_list":
        if not isinstance(value, (list, tuple)) or len(value) > MAX_LIST_FACT:
            raise InvalidInput(f"must be a list of: {', '.join(values)}", field=field)
        out: list[str] = []
        for item in value:
            if not isinstance(item, str) or item not in values:
                raise InvalidInput(f"every item must be one of: {', '.join(values)}", field=field)
            if item not in out:
                out.append(item)
        return out
    if kind == "string":
        return _text(value, field, MAX_STRING_FACT, required=True)
    if kind == "date":
        if isinstance(value, datetime):
            raise InvalidInput("must be a date (YYYY-MM-DD)", field=field)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                pass
        raise InvalidInput("must be a date (YYYY-MM-DD)", field=field)
    raise InvalidInput(f"has a type the register does not know ({kind})", field=field)


def _engine_facts(flat: Mapping[str, Any], catalog: Mapping[str, Any]) -> dict[str, Any]:
    """The stored answers as the engine reads them: nested, dates as dates."""
    from ..rules import facts_from_flat

    values: dict[str, Any] = {}
    for path, value in flat.items():
        fact = catalog.get(path)
        if fact is None or value is None:
            continue  # a fact the catalogue dropped since: not asked any more
        if fact.type == "date" and isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                continue
        values[path] = value
    return facts_from_flat(values)


# --- obligations and sandboxes ----------------------------------------------------------------------------


def _active_relaxations(platform: Platform, session: Session, system_id: int, on: date) -> dict[str, int]:
    """rule_id -> sandbox application id for the relaxations an approved sandbox grants ``system_id`` on
    ``on`` (L-AI-SANDBOX). Through the governance service when it offers it; else read from this module's
    sandbox tables (same rule: approved, started, not ended, system a member)."""
    try:
        from .governance import governance_for
    except ImportError:
        governance_for = None  # type: ignore[assignment]
    if governance_for is not None:
        service = governance_for(platform)
        if hasattr(service, "active_relaxations"):
            return dict(service.active_relaxations(session, system_id, on))
    rows = session.execute(
        select(SandboxApplication.id, SandboxApplication.granted_relaxations, SandboxApplication.starts_on,
               SandboxApplication.ends_on)
        .join(SandboxMember, SandboxMember.application_id == SandboxApplication.id)
        .where(SandboxMember.ai_system_id == system_id, SandboxApplication.status == "approved")
        .order_by(SandboxApplication.id)).all()
    found: dict[str, int] = {}
    for app_id, granted, starts_on, ends_on in rows:
        if (starts_on is not None and starts_on > on) or (ends_on is not None and ends_on < on):
            continue
        for rule_id in granted or ():
            found.setdefault(str(rule_id), app_id)
    return found


def _due_on(effect: Mapping[str, Any], as_of: date) -> date | None:
    """L-AI-DUTIES deadlines in working days (Kazakhstan's calendar) from the classification's date; a
    deadline counted from an event (``from: event``) has no date until the event happens."""
    deadline = effect.get("deadline")
    if not isinstance(deadline, Mapping):
        return None
    days = deadline.get("working_days")
    if deadline.get("from", "classification") != "classification" or not isinstance(days, int):
        return None
    return add_working_days(as_of, days)


def _finding(f: Any) -> dict[str, Any]:
    return {"rule_id": f.rule_id, "pack_id": getattr(f, "pack_id", None), "citation": _citation(f.citation),
            "status": getattr(f, "status", None), "title": _localized(f.title),
            "explanation": _localized(getattr(f, "explanation", None)), "effect": dict(f.effect)}


def _obligation_key(item: Mapping[str, Any]) -> tuple[str, str]:
    return item["rule_id"], str(item["effect"].get("code") or item["rule_id"])


def _diff(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """The contract's diff between two classification results (``old`` None: the first classification)."""
    old = old or {}
    diff: dict[str, Any] = {}
    for key in ("risk_level", "autonomy_level"):
        if old.get(key) != new.get(key):
            diff[key] = [old.get(key), new.get(key)]
    for key, ids in (("prohibitions", lambda r: [f["rule_id"] for f in r.get("prohibitions", [])]
                      + [f["rule_id"] for f in r.get("autonomy_violations", [])]),
                     ("obligations", lambda r: [f["rule_id"] for f in r.get("obligations", [])]),
                     ("missing_facts", lambda r: [m["path"] for m in r.get("missing_facts", [])])):
        before, after = set(ids(old)), set(ids(new))
        if before != after:
            diff[key] = {"added": sorted(after - before), "removed": sorted(before - after)}
    return diff


# --- the service ------------------------------------------------------------------------------------------


class AiRegister:
    """The register of AI systems: questionnaire, classification by the rule packs, obligations, public
    register. One instance per platform: :func:`register_for`."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def __repr__(self) -> str:
        return "AiRegister()"

    # -- the questionnaire ---------------------------------------------------------------------------------

    def questionnaire(self, lang: str) -> list[FactGroupView]:
        """The questionnaire's sections and questions in ``lang`` (kk, ru, en), from the facts catalogue."""
        lang = _lang(lang)
        groups = []
        for group in _rules().facts.subjects[SUBJECT].groups:
            facts = tuple(FactView(
                path=f.path, type=f.type, values=tuple(f.values or ()),
                question=_localized(f.question).get(lang) or f.path,
                help=_localized(f.help).get(lang) if f.help else None, required=bool(f.required),
                public=bool(f.public)) for f in group.facts)
            groups.append(FactGroupView(id=group.id, title=_localized(group.title).get(lang) or group.id,
                                        facts=facts))
        return groups

    def check_facts(self, facts: Any) -> dict[str, Any]:
        """The questionnaire's answers (nested or flat paths) checked against the catalogue, as flat paths
        (``None`` or an empty string: not answered / cleared). Errors name ``facts.<path>``: an unknown path, a
        wrong type, a value outside an enum, personal data in a text answer — never the value."""
        catalog = _catalog_facts(_rules())
        flat = _flatten(facts if facts is not None else {}, "")
        checked: dict[str, Any] = {}
        for path in sorted(flat):
            field = f"facts.{path}"
            fact = catalog.get(path)
            if fact is None:
                raise InvalidInput("is not a question of the AI systems questionnaire (unknown fact)", field=field)
            value = flat[path]
            if isinstance(value, str) and not value.strip():
                value = None  # an empty form field: not answered
            checked[path] = None if value is None else _check_fact(fact, value, field)
        return checked

    # -- registration --------------------------------------------------------------------------------------

    def register_system(self, session: Session, *, code: str, name: str, description: str | None = None,
                        facts: dict[str, Any], public: bool | None = None, webhook_url: str | None = None,
                        actor: str) -> SystemRecord:
        """Register an AI system with its questionnaire and classify it at once.

        A code that oversight registered before (``classified_by = "declared"``, no questionnaire yet) is
        taken over: its questionnaire is added and the rules classify it. A state system is always public;
        others are public only when ``public`` is true."""
        org = _org(session)
        actor = _actor(actor)
        if not isinstance(code, str) or not _SYSTEM_CODE.fullmatch(code):
            raise InvalidInput("a system code is 1–64 characters a-z, 0-9, '_', '.', '-'", field="code")
        name = _text(name, "name", 300, required=True) or ""
        description = _text(description, "description", 4000)
        if public is not None and not isinstance(public, bool):
            raise InvalidInput("public is true, false or omitted", field="public")
        answers = {k: v for k, v in self.check_facts(facts).items() if v is not None}
        from ..consent import outbox
        from ..consent.service import check_webhook_url

        url = check_webhook_url(webhook_url, allow_http=self.platform.settings.consent_webhook_allow_http)
        now = utcnow()
        row = session.scalar(select(AiSystem).where(AiSystem.code == code))
        secret = None
        if row is not None:
            if row.classified_by != "declared" or session.scalar(
                    select(AiSystemProfile.id).where(AiSystemProfile.ai_system_id == row.id)) is not None:
                raise Conflict("an AI system with this code is registered already", field="code")
            row.name, row.description, row.updated_at = name, description, now
            if url is not None and url != row.webhook_url:
                secret = outbox.new_webhook_secret()
                row.webhook_url = url
                row.webhook_secret_sealed = outbox.seal_secret(session, self.platform.keyring, org, secret)
            session.flush()
        else:
            secret = outbox.new_webhook_secret() if url else None
            sealed = outbox.seal_secret(session, self.platform.keyring, org, secret) if secret else None
            row = AiSystem(organization_id=org, code=code, name=name, description=description,
                           risk_class="minimal", autonomy="low", classified_by="declared", status="active",
                           webhook_url=url, webhook_secret_sealed=sealed, active=True, created_by=actor,
                           created_at=now, updated_at=now)
            try:
                with session.begin_nested():
                    session.add(row)
                    session.flush()
            except IntegrityError:
                raise Conflict("an AI system with this code is registered already", field="code") from None
        state = bool(answers.get("system.state_system"))
        profile = AiSystemProfile(
            organization_id=org, ai_system_id=row.id, register_id=audit.random_object_id("pending"),
            facts=answers, version=1, public=True if state else bool(public),
            sector=answers.get("system.sector"), state_system=state, created_at=now, updated_at=now,
            updated_by=actor)
        session.add(profile)
        session.flush()
        # The register number: the year of registration and the profile's own id (unique platform-wide).
        profile.register_id = f"KZ-AI-{local_date(now).year}-{profile.id:06d}"
        session.flush()
        audit.record(session, actor=actor, action="aisystems.registered", object_type="ai_system",
                     object_id=str(row.id), organization_id=org,
                     details={"code": code, "register_id": profile.register_id, "public": profile.public,
                              "state_system": state, "facts_answered": len(answers),
                              "webhook": row.webhook_url is not None})
        self._classify(session, row, profile, as_of=_today(), trigger="questionnaire", actor=actor, persist=True)
        record = self._record(session, row)
        return _with_secret(record, secret)

    def update_questionnaire(self, session: Session, system_id: int, *, facts: dict[str, Any],
                             public: bool | None = None, expected_version: int | None = None,
                             actor: str) -> SystemRecord:
        """Change answers (merged into the stored ones; a path given as ``None`` clears that answer) and
        re-classify. ``expected_version`` (the questionnaire version the caller saw) guards against
        overwriting someone else's save: a stale one is a :class:`Conflict` and nothing changes."""
        org = _org(session)
        actor = _actor(actor)
        row = self._system_row(session, system_id)
        if public is not None and not isinstance(public, bool):
            raise InvalidInput("public is true, false or omitted", field="public")
        if expected_version is not None and (isinstance(expected_version, bool)
                                             or not isinstance(expected_version, int)):
            raise InvalidInput("expected_version is the questionnaire's version number", field="expected_version")
        changes = self.check_facts(facts)
        profile = self._profile(session, row.id)
        if profile is None:
            raise NotFound("this AI system has no questionnaire yet: register it with its questionnaire",
                           field="system_id")
        if expected_version is not None and expected_version != profile.version:
            raise Conflict("the questionnaire was changed since you loaded it; reload it", field="expected_version")
        answers = dict(profile.facts or {})
        for path, value in changes.items():
            if value is None:
                answers.pop(path, None)
            else:
                answers[path] = value
        was_state = profile.state_system
        state = bool(answers.get("system.state_system"))
        new_public = profile.public if public is None else public
        if state:
            new_public = True
        changed_paths = sorted(p for p, v in changes.items() if (profile.facts or {}).get(p) != v)
        # Optimistic concurrency on the version column: of two saves of the same version, one wins.
        result = session.execute(
            update(AiSystemProfile)
            .where(AiSystemProfile.id == profile.id, AiSystemProfile.version == profile.version)
            .values(facts=answers, version=profile.version + 1, public=new_public,
                    sector=answers.get("system.sector"), state_system=state, updated_at=utcnow(),
                    updated_by=actor)
            .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            raise Conflict("the questionnaire was changed since you loaded it; reload it", field="expected_version")
        session.refresh(profile)
        audit.record(session, actor=actor, action="aisystems.questionnaire_updated", object_type="ai_system",
                     object_id=str(row.id), organization_id=org,
                     details={"version": profile.version, "facts_changed": changed_paths,
                              "public": profile.public, "state_system": state, "was_state_system": was_state})
        self._classify(session, row, profile, as_of=_today(), trigger="questionnaire", actor=actor, persist=True)
        return self._record(session, row)

    # -- reading -------------------------------------------------------------------------------------------

    def system(self, session: Session, system_id: int) -> SystemRecord:
        """A system of the session's organization: register entry, current classification, obligations."""
        _org(session)
        return self._record(session, self._system_row(session, system_id))

    def system_by_code(self, session: Session, code: str) -> SystemRecord:
        _org(session)
        if not isinstance(code, str) or not _SYSTEM_CODE.fullmatch(code):
            raise InvalidInput("a system code is 1–64 characters a-z, 0-9, '_', '.', '-'", field="code")
        row = session.scalar(select(AiSystem).where(AiSystem.code == code))
        if row is None:
            raise NotFound("no AI system with this code in this organization", field="code")
        return self._record(session, row)

    def every_operators_systems(self, *, risk: str | None = None, prohibited: bool | None = None,
                                q: str | None = None) -> list[tuple[Organization, SystemSummary]]:
        """The regulator's view: :meth:`systems` of every organization, each read in a session bound to it (the
        caller checks the regulator's authority first)."""
        with self.platform.db.reader() as session:
            organizations = list(session.scalars(select(Organization).order_by(Organization.id)))
            session.expunge_all()
        found: list[tuple[Organization, SystemSummary]] = []
        for org in organizations:
            with self.platform.db.reader(org.id) as session:
                found.extend((org, summary) for summary in self.systems(session, risk=risk, prohibited=prohibited,
                                                                          q=q))
        return found

    def systems(self, session: Session, *, risk: str | None = None, prohibited: bool | None = None,
                q: str | None = None) -> list[SystemSummary]:
        """The organization's systems (those only oversight knows too), filtered by the current risk level
        (or declared class), prohibited or not, and ``q`` in the code or name."""
        _org(session)
        if risk is not None and risk not in RISK_CLASSES:
            raise InvalidInput(f"risk must be one of: {', '.join(RISK_CLASSES)}", field="risk")
        if prohibited is not None and not isinstance(prohibited, bool):
            raise InvalidInput("prohibited is true, false or omitted", field="prohibited")
        needle = _text(q, "q", 200)
        stmt = select(AiSystem).order_by(AiSystem.code)
        if needle:
            like = f"%{needle.lower()}%"
            stmt = stmt.where(or_(func.lower(AiSystem.code).like(like), func.lower(AiSystem.name).like(like)))
        rows = list(session.scalars(stmt))
        ids = [r.id for r in rows]
        profiles = {p.ai_system_id: p for p in session.scalars(
            select(AiSystemProfile).where(AiSystemProfile.ai_system_id.in_(ids)))} if ids else {}
        current = self._current_classifications(session, ids)
        today = _today()
        counts: dict[int, list[int]] = {}
        if ids:
            for sid, status, due in session.execute(
                    select(AiObligation.ai_system_id, AiObligation.status, AiObligation.due_on)
                    .where(AiObligation.ai_system_id.in_(ids), AiObligation.status == "open")):
                c = counts.setdefault(sid, [0, 0])
                c[0] += 1
                if due is not None and due < today:
                    c[1] += 1
        out = []
        for r in rows:
            p, c = profiles.get(r.id), current.get(r.id)
            level = c.risk_level if c is not None else None
            is_prohibited = bool(c.prohibited) if c is not None else False
            if risk is not None and (level or (r.risk_class if c is None else None)) != risk:
                continue
            if prohibited is not None and is_prohibited != prohibited:
                continue
            open_, overdue = counts.get(r.id, [0, 0])
            out.append(SystemSummary(
                id=r.id, code=r.code, name=r.name, status=r.status, register_id=p.register_id if p else None,
                sector=p.sector if p else None, public=bool(p.public) if p else False, risk_level=level,
                autonomy_level=c.autonomy_level if c is not None else None, risk_class=r.risk_class,
                autonomy=r.autonomy, classified_by=r.classified_by, prohibited=is_prohibited,
                missing_facts=len(c.missing_facts or []) if c is not None else 0, open_obligations=open_,
                overdue_obligations=overdue, classified_on=c.as_of if c is not None else None))
        return out

    def history(self, session: Session, system_id: int) -> list[ClassificationView]:
        """Every stored classification of a system, newest first, each with its diff against the one before."""
        _org(session)
        row = self._system_row(session, system_id)
        return [self._classification_view(c) for c in session.scalars(
            select(AiClassification).where(AiClassification.ai_system_id == row.id)
            .order_by(AiClassification.seq.desc()))]

    def classification(self, session: Session, classification_id: int) -> ClassificationView:
        _org(session)
        _id(classification_id, "classification_id")
        c = session.scalar(select(AiClassification).where(AiClassification.id == classification_id))
        if c is None:
            raise NotFound("no such classification in this organization", field="classification_id")
        return self._classification_view(c)

    # -- classification ------------------------------------------------------------------------------------

    def classify(self, session: Session, system_id: int, *, as_of: date | None = None, trigger: str = "manual",
                 actor: str, persist: bool = True, stricter: bool | None = None) -> ClassificationView:
        """Classify a system by the rule packs in force on ``as_of`` (today in Kazakhstan by default).

        ``persist=False`` is a preview "under the law as of <date>": nothing is stored, no audit entry, the
        diff is against the current classification. ``stricter`` adds the opt-in ``stricter`` profile (the
        [plan] proposals); None: the platform's setting ``rules_stricter_profile``."""
        _org(session)
        actor = _actor(actor)
        if trigger not in CLASSIFICATION_TRIGGERS:
            raise InvalidInput(f"trigger must be one of: {', '.join(CLASSIFICATION_TRIGGERS)}", field="trigger")
        if as_of is not None and (isinstance(as_of, datetime) or not isinstance(as_of, date)):
            raise InvalidInput("as_of is a date (YYYY-MM-DD)", field="as_of")
        if stricter is not None and not isinstance(stricter, bool):
            raise InvalidInput("stricter is true, false or omitted", field="stricter")
        row = self._system_row(session, system_id)
        profile = self._profile(session, row.id)
        if profile is None:
            raise NotFound("this AI system has no questionnaire yet: register it with its questionnaire",
                           field="system_id")
        return self._classify(session, row, profile, as_of=as_of or _today(), trigger=trigger, actor=actor,
                              persist=bool(persist), stricter=stricter)

    def _profiles(self, stricter: bool | None) -> tuple[str, ...]:
        if stricter is None:
            stricter = bool(getattr(self.platform.settings, "rules_stricter_profile", False))
        return ("law", "stricter") if stricter else ("law",)

    def _classify(self, session: Session, row: AiSystem, profile: AiSystemProfile, *, as_of: date, trigger: str,
                  actor: str, persist: bool, stricter: bool | None = None,
                  book: Any = None) -> ClassificationView:
        book = book or _rules()
        catalog = _catalog_facts(book)
        profiles = self._profiles(stricter)
        answers = dict(profile.facts or {})
        evaluation = book.evaluate(_engine_facts(answers, catalog), subject=SUBJECT, as_of=as_of,
                                   profiles=profiles)
        relaxations = _active_relaxations(self.platform, session, row.id, as_of)
        obligations = []
        for f in evaluation.obligations:
            item = _finding(f)
            due = _due_on(item["effect"], as_of)
            sandbox = relaxations.get(f.rule_id) if item["effect"].get("relaxable") else None
            item.update(due_on=due.isoformat() if due else None,
                        obligation_status="relaxed" if sandbox is not None else "open", sandbox_id=sandbox)
            obligations.append(item)
        decides: dict[str, list[str]] = {}
        for rule_id, paths in evaluation.undecided:
            for path in paths:
                decides.setdefault(path, []).append(rule_id)
        missing_paths = set(evaluation.missing_facts)
        missing_paths |= {p for p, fact in catalog.items() if fact.required and answers.get(p) is None}
        order = {p: i for i, p in enumerate(catalog)}
        missing = []
        for path in sorted(missing_paths, key=lambda p: (order.get(p, len(order)), p)):
            fact = catalog.get(path)
            missing.append({"path": path, "question": _localized(fact.question) if fact else {},
                            "required": bool(fact.required) if fact else False,
                            "decides": sorted(decides.get(path, []))})
        result: dict[str, Any] = {
            "risk_level": evaluation.risk_level, "autonomy_level": evaluation.autonomy_level,
            "prohibited": bool(evaluation.prohibited),
            "prohibitions": [_finding(f) for f in evaluation.prohibitions],
            "autonomy_violations": [_finding(f) for f in evaluation.autonomy_violations],
            "obligations": obligations, "notices": [_finding(f) for f in evaluation.notices],
            "risk_reasons": [_finding(f) for f in evaluation.risk_reasons],
            "autonomy_reasons": [_finding(f) for f in evaluation.autonomy_reasons],
            "missing_facts": missing,
            "undecided": [{"rule_id": r, "missing": list(p)} for r, p in evaluation.undecided],
            "law_in_force": evaluation.law_in_force,  # False: no risk rule in force that day (before the AI law)
        }
        packs = [{"id": p.id, "version": p.version, "digest": p.digest} for p in book.packs]
        previous = self._current(session, row.id)
        diff = _diff(previous.result if previous is not None else None, result)
        if not persist:
            return _view(None, row.id, None, as_of, profile.version, result, packs, book.digest, list(profiles),
                         diff, trigger, None, None, persisted=False)
        now = utcnow()
        seq = (previous.seq if previous is not None else 0) + 1
        # Oversight reads the class and autonomy (decisions of high-risk or autonomous systems need a human).
        if evaluation.risk_level is not None:
            row.risk_class = evaluation.risk_level
        if evaluation.autonomy_level is not None:
            row.autonomy = evaluation.autonomy_level
        row.classified_by = f"rules:{book.digest[:12]}"
        status_before = row.status
        suspended_before = bool(previous is not None and (previous.result or {}).get("suspended_by_rules"))
        if result["prohibited"]:
            if row.status == "active":
                row.status, row.active = "suspended", False
                result["suspended_by_rules"] = True
            else:
                result["suspended_by_rules"] = row.status == "suspended" and suspended_before
        elif row.status == "suspended" and suspended_before:
            row.status, row.active = "active", True
        row.updated_at = now
        classification = AiClassification(
            organization_id=row.organization_id, ai_system_id=row.id, seq=seq, as_of=as_of,
            profile_version=profile.version, packs=packs, packs_digest=book.digest, profiles=list(profiles),
            risk_level=evaluation.risk_level, autonomy_level=evaluation.autonomy_level,
            prohibited=result["prohibited"], result=result, missing_facts=missing, diff=diff, trigger=trigger,
            created_at=now, created_by=actor)
        try:
            with session.begin_nested():
                session.add(classification)
                session.flush()
        except IntegrityError:
            raise Conflict("the system was classified at the same moment by someone else; reload it",
                           field="system_id") from None
        counts = self._reconcile(session, row, classification, obligations, as_of)
        audit.record(session, actor=actor, action="aisystems.classified", object_type="ai_system",
                     object_id=str(row.id), organization_id=row.organization_id,
                     details={"classification_id": classification.id, "seq": seq, "trigger": trigger,
                              "as_of": as_of.isoformat(), "risk_level": evaluation.risk_level,
                              "autonomy_level": evaluation.autonomy_level, "prohibited": result["prohibited"],
                              "prohibitions": [f["rule_id"] for f in result["prohibitions"]]
                              + [f["rule_id"] for f in result["autonomy_violations"]],
                              "missing_facts": len(missing), "status": [status_before, row.status],
                              "obligations": counts, "changed": sorted(diff)})
        return self._classification_view(classification)

    def _reconcile(self, session: Session, row: AiSystem, classification: AiClassification,
                   obligations: list[dict[str, Any]], as_of: date) -> dict[str, int]:
        """Obligations after a classification: kept (still fired: state and due date unchanged, relaxed or
        re-opened as the sandbox says), new (first fired, or fired again after being void), void (no longer
        fired; a met one stays met — its evidence is history)."""
        existing = {(o.rule_id, o.code): o for o in session.scalars(
            select(AiObligation).where(AiObligation.ai_system_id == row.id))}
        counts = {"new": 0, "kept": 0, "void": 0}
        fired = set()
        for item in obligations:
            key = _obligation_key(item)
            fired.add(key)
            due = date.fromisoformat(item["due_on"]) if item["due_on"] else None
            sandbox = item["sandbox_id"]
            o = existing.get(key)
            if o is None:
                session.add(AiObligation(
                    organization_id=row.organization_id, ai_system_id=row.id, rule_id=key[0], code=key[1],
                    status="relaxed" if sandbox is not None else "open", due_on=due,
                    classification_id=classification.id, sandbox_id=sandbox, created_at=utcnow()))
                counts["new"] += 1
            elif o.status == "void":
                o.status, o.due_on, o.classification_id = ("relaxed" if sandbox is not None else "open"), due, \
                    classification.id
                o.sandbox_id, o.met_at, o.met_by, o.evidence = sandbox, None, None, None
                counts["new"] += 1
            else:
                if o.status in ("open", "relaxed"):
                    o.status, o.sandbox_id = ("relaxed", sandbox) if sandbox is not None else ("open", None)
                counts["kept"] += 1
        for key, o in existing.items():
            if key not in fired and o.status in ("open", "relaxed"):
                o.status, o.sandbox_id = "void", None
                counts["void"] += 1
        session.flush()
        return counts

    # -- obligations ---------------------------------------------------------------------------------------

    def obligations(self, session: Session, *, system_id: int | None = None,
                    status: str | None = None) -> list[ObligationView]:
        """The organization's obligations (of one system, in one state), soonest due first."""
        _org(session)
        stmt = select(AiObligation, AiSystem.code).join(AiSystem, AiSystem.id == AiObligation.ai_system_id)
        if system_id is not None:
            stmt = stmt.where(AiObligation.ai_system_id == self._system_row(session, system_id).id)
        if status is not None:
            if status not in OBLIGATION_STATUSES:
                raise InvalidInput(f"status must be one of: {', '.join(OBLIGATION_STATUSES)}", field="status")
            stmt = stmt.where(AiObligation.status == status)
        rows = session.execute(stmt.order_by(AiObligation.due_on.is_(None), AiObligation.due_on,
                                             AiObligation.id)).all()
        return [self._obligation_view(session, o, code) for o, code in rows]

    def mark_obligation_met(self, session: Session, obligation_id: int, *, evidence: str,
                            actor: str) -> ObligationView:
        """Record that an obligation is met, with a reference to the evidence (a document number or URL —
        no personal data). A void or already met obligation is a :class:`Conflict`."""
        org = _org(session)
        actor = _actor(actor)
        _id(obligation_id, "obligation_id")
        evidence = _text(evidence, "evidence", 2000, required=True)
        o = session.scalar(select(AiObligation).where(AiObligation.id == obligation_id))
        if o is None:
            raise NotFound("no such obligation in this organization", field="obligation_id")
        if o.status not in ("open", "relaxed"):
            raise Conflict(f"the obligation is {o.status}", field="obligation_id")
        now = utcnow()
        o.status, o.met_at, o.met_by, o.evidence = "met", now, actor, evidence
        session.flush()
        on_time = o.due_on is None or local_date(now) <= o.due_on
        audit.record(session, actor=actor, action="aisystems.obligation_met", object_type="ai_obligation",
                     object_id=str(o.id), organization_id=org,
                     details={"system_id": o.ai_system_id, "rule_id": o.rule_id, "code": o.code,
                              "on_time": on_time})
        code = session.scalar(select(AiSystem.code).where(AiSystem.id == o.ai_system_id)) or ""
        return self._obligation_view(session, o, code)

    # -- pack changes --------------------------------------------------------------------------------------

    def reclassify_if_packs_changed(self, platform_or_session: Any, *,
                                    actor: str = PACK_CHANGE_ACTOR) -> ReclassifyReport:
        """After the law as code changed (server start, ``qorgau rules reload``): record pack versions seen
        for the first time (:class:`RulePackVersion`) and re-classify, as of today with trigger
        ``pack_change``, every registered system whose current classification was made under other packs
        (another digest). Unchanged packs re-run nothing.

        Given the platform, each system is re-classified in its own transaction at its organization (one
        failure does not stop the others; it is counted in ``errors`` and logged by id). Given a session, all
        of it happens in that session (unscoped: every organization; tenant-bound: that one)."""
        actor = _actor(actor)
        book = _rules()
        from ..core.platform import Platform

        if isinstance(platform_or_session, Platform):
            platform = platform_or_session
            with platform.db.transaction() as session:
                new_versions = self._record_versions(session, book)
                stale = self._stale_systems(session, book.digest)
            done: list[dict[str, Any]] = []
            errors = 0
            for org, system_id in stale:
                try:
                    with platform.db.transaction(org) as session:
                        item = self._reclassify_one(session, system_id, book, actor)
                except Exception as exc:  # one system's failure must not stop the others
                    errors += 1
                    log.warning("re-classification of AI system %s failed: %s", system_id, type(exc).__name__)
                    continue
                if item is not None:
                    done.append(item)
        else:
            session = platform_or_session
            new_versions = self._record_versions(session, book)
            done, errors = [], 0
            for _org_id, system_id in self._stale_systems(session, book.digest):
                item = self._reclassify_one(session, system_id, book, actor)
                if item is not None:
                    done.append(item)
        return ReclassifyReport(changed=bool(new_versions or done), new_versions=new_versions,
                                packs_digest=book.digest, reclassified=len(done),
                                changed_systems=sum(1 for d in done if d["diff"]), errors=errors, systems=done)

    @staticmethod
    def _record_versions(session: Session, book: Any) -> list[dict[str, str]]:
        seen = {(p, d) for p, d in session.execute(select(RulePackVersion.pack_id, RulePackVersion.digest))}
        new = []
        for pack in book.packs:
            if (pack.id, pack.digest) in seen:
                continue
            try:
                with session.begin_nested():
                    session.add(RulePackVersion(pack_id=pack.id, version=str(pack.version), digest=pack.digest,
                                                first_seen_at=utcnow()))
                    session.flush()
            except IntegrityError:
                continue  # another process recorded it at the same moment
            new.append({"id": pack.id, "version": str(pack.version), "digest": pack.digest})
        return new

    @staticmethod
    def _stale_systems(session: Session, digest: str) -> list[tuple[int, int]]:
        """(organization, system) of every system with a questionnaire whose newest classification was made
        under another packs digest (or that was never classified)."""
        latest = (select(AiClassification.ai_system_id, func.max(AiClassification.seq).label("seq"))
                  .group_by(AiClassification.ai_system_id).subquery())
        rows = session.execute(
            select(AiSystemProfile.organization_id, AiSystemProfile.ai_system_id, AiClassification.packs_digest)
            .outerjoin(latest, latest.c.ai_system_id == AiSystemProfile.ai_system_id)
            .outerjoin(AiClassification, (AiClassification.ai_system_id == latest.c.ai_system_id)
                       & (AiClassification.seq == latest.c.seq))
            .order_by(AiSystemProfile.organization_id, AiSystemProfile.ai_system_id)).all()
        return [(org, sid) for org, sid, d in rows if d != digest]

    def _reclassify_one(self, session: Session, system_id: int, book: Any, actor: str) -> dict[str, Any] | None:
        row = session.scalar(select(AiSystem).where(AiSystem.id == system_id))
        profile = self._profile(session, system_id)
        if row is None or profile is None:
            return None
        current = self._current(session, system_id)
        if current is not None and current.packs_digest == book.digest:
            return None  # someone re-classified it meanwhile
        view = self._classify(session, row, profile, as_of=_today(), trigger="pack_change", actor=actor,
                              persist=True, book=book)
        return {"organization_id": row.organization_id, "system_id": row.id, "code": row.code,
                "classification_id": view.id, "diff": view.diff}

    # -- the public register -------------------------------------------------------------------------------

    def public_register(self, session: Session, *, sector: str | None = None, risk: str | None = None,
                        q: str | None = None, operator_bin: str | None = None, limit: int = 100,
                        offset: int = 0) -> PublicPage:
        """The public register (public): systems whose operators made them public, and every state system."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PUBLIC_LIMIT:
            raise InvalidInput(f"limit is 1–{MAX_PUBLIC_LIMIT}", field="limit")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInput("offset is 0 or more", field="offset")
        stmt = self._public_query(sector=sector, risk=risk, q=q, operator_bin=operator_bin)
        total = session.scalar(select(func.count()).select_from(stmt.subquery())
                               .execution_options(qorgau_cross_tenant=True)) or 0
        rows = session.execute(stmt.order_by(AiSystemProfile.register_id).limit(limit).offset(offset)
                               .execution_options(qorgau_cross_tenant=True)).all()
        return PublicPage(items=self._public_views(session, rows), total=int(total), limit=limit, offset=offset)

    def public_system(self, session: Session, register_id: str) -> PublicSystemView:
        """One system of the public register by its register number (public); NotFound unless public."""
        if not isinstance(register_id, str) or not _REGISTER_ID.fullmatch(register_id):
            raise InvalidInput("a register number looks like KZ-AI-2026-000042", field="register_id")
        rows = session.execute(self._public_query().where(AiSystemProfile.register_id == register_id)
                               .execution_options(qorgau_cross_tenant=True)).all()
        if not rows:
            raise NotFound("no AI system with this number in the public register", field="register_id")
        return self._public_views(session, rows)[0]

    def public_csv(self, session: Session, **filters: Any) -> Iterator[str]:
        """The public register as CSV open data (public): a header line, then one line per system, produced
        page by page so a large register streams. Filters as :meth:`public_register` (no limit/offset)."""
        unknown = set(filters) - {"sector", "risk", "q", "operator_bin"}
        if unknown:
            raise InvalidInput("unknown filter", field=sorted(unknown)[0])
        self._public_query(**filters)  # check the filters before the first line goes out
        return self._csv_lines(session, filters)

    def public_csv_stream(self, **filters: Any) -> Iterator[str]:
        """:meth:`public_csv` with its own read-only session, opened when the first line is asked for and
        closed after the last — for an HTTP streaming response that outlives the request handler's session.
        Filters are checked at once (bad ones raise here, before any response starts)."""
        unknown = set(filters) - {"sector", "risk", "q", "operator_bin"}
        if unknown:
            raise InvalidInput("unknown filter", field=sorted(unknown)[0])
        self._public_query(**filters)
        return self._stream(filters)

    def _stream(self, filters: dict[str, Any]) -> Iterator[str]:
        with self.platform.db.reader() as session:
            yield from self._csv_lines(session, filters)

    def _csv_lines(self, session: Session, filters: dict[str, Any]) -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")

        def line(values: list[Any]) -> str:
            buffer.seek(0)
            buffer.truncate()
            writer.writerow([_csv_cell(v) for v in values])
            return buffer.getvalue()

        yield line(list(CSV_COLUMNS))
        offset = 0
        while True:
            page = self.public_register(session, limit=CSV_PAGE, offset=offset, **filters)
            for v in page.items:
                yield line([
                    v.register_id, v.operator_name, v.operator_bin, v.name, v.purpose, v.sector,
                    "true" if v.state_system else "false", v.status, v.risk_level, v.autonomy_level,
                    "true" if v.prohibited else "false", ";".join(p["rule_id"] for p in v.prohibited_practices),
                    ";".join(f"{o['code']}:{o['status']}" for o in v.obligations), v.trusted_status,
                    ";".join(f"{s['application_id']}:{s['status']}" for s in v.sandboxes),
                    v.classified_on.isoformat() if v.classified_on else None,
                    ";".join(f"{p['id']}@{p['version']}" for p in v.packs)])
            offset += len(page.items)
            if len(page.items) < CSV_PAGE:
                return

    @staticmethod
    def _public_query(*, sector: str | None = None, risk: str | None = None, q: str | None = None,
                      operator_bin: str | None = None) -> Any:
        stmt = (select(AiSystemProfile, AiSystem, Organization.name, Organization.bin)
                .join(AiSystem, AiSystem.id == AiSystemProfile.ai_system_id)
                .join(Organization, Organization.id == AiSystemProfile.organization_id)
                .where(or_(AiSystemProfile.public.is_(True), AiSystemProfile.state_system.is_(True)))
                .execution_options(qorgau_cross_tenant=True))
        if sector is not None:
            if not isinstance(sector, str) or not re.fullmatch(r"[a-z0-9_]{1,64}", sector):
                raise InvalidInput("sector is a sector code", field="sector")
            stmt = stmt.where(AiSystemProfile.sector == sector)
        if risk is not None:
            if risk not in RISK_CLASSES:
                raise InvalidInput(f"risk must be one of: {', '.join(RISK_CLASSES)}", field="risk")
            stmt = stmt.where(AiSystem.risk_class == risk)
        if operator_bin is not None:
            if not isinstance(operator_bin, str) or not re.fullmatch(r"\d{12}", operator_bin):
                raise InvalidInput("operator_bin is a 12-digit BIN", field="operator_bin")
            stmt = stmt.where(Organization.bin == operator_bin)
        if q is not None and (not isinstance(q, str) or len(q) > 200):
            raise InvalidInput("q is text of at most 200 characters", field="q")
        if q and q.strip():
            like = f"%{q.strip().lower()}%"
            stmt = stmt.where(or_(func.lower(AiSystem.name).like(like), func.lower(Organization.name).like(like),
                                  func.lower(AiSystemProfile.register_id).like(like)))
        return stmt

    def _public_views(self, session: Session, rows: list[Any]) -> list[PublicSystemView]:
        ids = [profile.ai_system_id for profile, *_ in rows]
        if not ids:
            return []
        cross = {"qorgau_cross_tenant": True}
        latest = (select(AiClassification.ai_system_id, func.max(AiClassification.seq).label("seq"))
                  .where(AiClassification.ai_system_id.in_(ids)).group_by(AiClassification.ai_system_id).subquery())
        current = {c.ai_system_id: c for c in session.scalars(
            select(AiClassification).join(latest, (latest.c.ai_system_id == AiClassification.ai_system_id)
                                          & (latest.c.seq == AiClassification.seq)).execution_options(**cross))}
        obligations: dict[int, list[dict[str, Any]]] = {}
        for o in session.scalars(select(AiObligation).where(AiObligation.ai_system_id.in_(ids),
                                                            AiObligation.status != "void")
                                 .order_by(AiObligation.code).execution_options(**cross)):
            obligations.setdefault(o.ai_system_id, []).append({"code": o.code, "status": o.status})
        trusted: dict[int, str] = {}
        for t in session.scalars(select(TrustedListEntry).where(TrustedListEntry.ai_system_id.in_(ids))
                                 .order_by(TrustedListEntry.id).execution_options(**cross)):
            trusted[t.ai_system_id] = t.status  # the newest entry wins
        sandboxes: dict[int, list[dict[str, Any]]] = {}
        today = _today()
        for member, app in session.execute(
                select(SandboxMember, SandboxApplication)
                .join(SandboxApplication, SandboxApplication.id == SandboxMember.application_id)
                .where(SandboxMember.ai_system_id.in_(ids), SandboxApplication.status == "approved")
                .execution_options(**cross)).all():
            if app.ends_on is not None and app.ends_on < today:
                continue
            sandboxes.setdefault(member.ai_system_id, []).append(
                {"application_id": app.id, "status": app.status,
                 "starts_on": app.starts_on.isoformat() if app.starts_on else None,
                 "ends_on": app.ends_on.isoformat() if app.ends_on else None})
        catalog = _catalog_facts(_rules())
        public_paths = [p for p, f in catalog.items() if f.public]
        out = []
        for profile, system, org_name, org_bin in rows:
            c = current.get(system.id)
            result = (c.result or {}) if c is not None else {}
            facts = profile.facts or {}
            practices = [{"rule_id": f["rule_id"], "title": f.get("title", {})}
                         for f in result.get("prohibitions", []) + result.get("autonomy_violations", [])]
            out.append(PublicSystemView(
                register_id=profile.register_id, operator_name=org_name, operator_bin=org_bin, name=system.name,
                purpose=facts.get("system.purpose"), sector=profile.sector, state_system=bool(profile.state_system),
                status=system.status, risk_level=c.risk_level if c is not None else None,
                autonomy_level=c.autonomy_level if c is not None else None,
                prohibited=bool(c.prohibited) if c is not None else False, prohibited_practices=practices,
                obligations=obligations.get(system.id, []), trusted_status=trusted.get(system.id),
                sandboxes=sandboxes.get(system.id, []),
                public_facts={p: facts[p] for p in public_paths if facts.get(p) is not None},
                classified_on=c.as_of if c is not None else None,
                packs=[{"id": p.get("id"), "version": p.get("version")} for p in (c.packs or [])] if c else [],
                packs_digest=c.packs_digest if c is not None else None))
        return out

    # -- helpers -------------------------------------------------------------------------------------------

    @staticmethod
    def _system_row(session: Session, system_id: Any) -> AiSystem:
        _id(system_id, "system_id")
        row = session.scalar(select(AiSystem).where(AiSystem.id == system_id))
        if row is None:
            raise NotFound("no AI system with this id in this organization", field="system_id")
        return row

    @staticmethod
    def _profile(session: Session, system_id: int) -> AiSystemProfile | None:
        return session.scalar(select(AiSystemProfile).where(AiSystemProfile.ai_system_id == system_id))

    @staticmethod
    def _current(session: Session, system_id: int) -> AiClassification | None:
        return session.scalar(select(AiClassification).where(AiClassification.ai_system_id == system_id)
                              .order_by(AiClassification.seq.desc()).limit(1))

    @staticmethod
    def _current_classifications(session: Session, ids: list[int]) -> dict[int, AiClassification]:
        if not ids:
            return {}
        latest = (select(AiClassification.ai_system_id, func.max(AiClassification.seq).label("seq"))
                  .where(AiClassification.ai_system_id.in_(ids)).group_by(AiClassification.ai_system_id).subquery())
        return {c.ai_system_id: c for c in session.scalars(
            select(AiClassification).join(latest, (latest.c.ai_system_id == AiClassification.ai_system_id)
                                          & (latest.c.seq == AiClassification.seq)))}

    @staticmethod
    def _classification_view(c: AiClassification) -> ClassificationView:
        return _view(c.id, c.ai_system_id, c.seq, c.as_of, c.profile_version, c.result or {}, list(c.packs or []),
                     c.packs_digest, list(c.profiles or []), dict(c.diff or {}), c.trigger, c.created_at,
                     c.created_by)

    def _obligation_view(self, session: Session, o: AiObligation, code: str) -> ObligationView:
        title: dict[str, str] = {}
        citation: dict[str, Any] = {}
        c = session.get(AiClassification, o.classification_id)
        for item in ((c.result or {}).get("obligations", []) if c is not None else []):
            if item.get("rule_id") == o.rule_id:
                title, citation = dict(item.get("title") or {}), dict(item.get("citation") or {})
                break
        return ObligationView(
            id=o.id, system_id=o.ai_system_id, system_code=code, rule_id=o.rule_id, code=o.code, status=o.status,
            due_on=o.due_on, overdue=o.status == "open" and o.due_on is not None and o.due_on < _today(),
            classification_id=o.classification_id, sandbox_id=o.sandbox_id, title=title, citation=citation,
            created_at=o.created_at, met_at=o.met_at, met_by=o.met_by, evidence=o.evidence)

    def _record(self, session: Session, row: AiSystem) -> SystemRecord:
        profile = self._profile(session, row.id)
        current = self._current(session, row.id)
        obligations = [self._obligation_view(session, o, row.code) for o in session.scalars(
            select(AiObligation).where(AiObligation.ai_system_id == row.id)
            .order_by(AiObligation.due_on.is_(None), AiObligation.due_on, AiObligation.id))]
        return SystemRecord(
            id=row.id, code=row.code, name=row.name, description=row.description, status=row.status,
            risk_class=row.risk_class, autonomy=row.autonomy, classified_by=row.classified_by,
            webhook_url=row.webhook_url, register_id=profile.register_id if profile else None,
            public=bool(profile.public) if profile else False,
            state_system=bool(profile.state_system) if profile else False,
            sector=profile.sector if profile else None, facts=dict(profile.facts or {}) if profile else {},
            profile_version=profile.version if profile else None,
            classification=self._classification_view(current) if current is not None else None,
            obligations=obligations, created_at=row.created_at, updated_at=row.updated_at)


def _view(cid: int | None, system_id: int, seq: int | None, as_of: date, profile_version: int,
          result: Mapping[str, Any], packs: list[dict[str, Any]], digest: str, profiles: list[str],
          diff: dict[str, Any], trigger: str, created_at: datetime | None, created_by: str | None, *,
          persisted: bool = True) -> ClassificationView:
    return ClassificationView(
        id=cid, system_id=system_id, seq=seq, as_of=as_of, profile_version=profile_version,
        risk_level=result.get("risk_level"), autonomy_level=result.get("autonomy_level"),
        prohibited=bool(result.get("prohibited")), prohibitions=list(result.get("prohibitions", [])),
        autonomy_violations=list(result.get("autonomy_violations", [])),
        obligations=list(result.get("obligations", [])), notices=list(result.get("notices", [])),
        risk_reasons=list(result.get("risk_reasons", [])), autonomy_reasons=list(result.get("autonomy_reasons", [])),
        missing_facts=list(result.get("missing_facts", [])), undecided=list(result.get("undecided", [])),
        packs=packs, packs_digest=digest, profiles=profiles, diff=diff, trigger=trigger, created_at=created_at,
        created_by=created_by, persisted=persisted, law_in_force=bool(result.get("law_in_force", True)))


def _with_secret(record: SystemRecord, secret: str | None) -> SystemRecord:
    if secret is None:
        return record
    from dataclasses import replace

    return replace(record, webhook_secret=secret)


def register_for(platform: Platform) -> AiRegister:
    """The platform's register service (shared by the API, the web pages and the CLI)."""
    return shared(platform, "aisystems_register", AiRegister)


def reclassify_at_startup(platform: Platform) -> ReclassifyReport | None:
    """Server start: re-classify after a pack change (:meth:`AiRegister.reclassify_if_packs_changed`). Never
    stops the server: a rule pack that does not load, or a database without the schema, is logged (by kind)
    and the server starts with the classifications it has."""
    try:
        report = register_for(platform).reclassify_if_packs_changed(platform)
    except Exception as exc:  # a RulePackError's message is "file:line: rule X: ..." (no data of anyone)
        detail = exc.message if isinstance(exc, QorgauError) else ""
        log.warning("AI systems re-classification at startup skipped: %s %s", type(exc).__name__, detail)
        return None
    if report.changed:
        log.info("rule packs changed: %d AI systems re-classified (%d with a different result, %d errors)",
                 report.reclassified, report.changed_systems, report.errors)
    return report


__all__ = ["AiRegister", "CSV_COLUMNS", "SUBJECT", "reclassify_at_startup", "register_for"]
