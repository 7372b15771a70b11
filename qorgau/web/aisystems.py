"""The AI systems register pages (issue 7): the operator's register (``/ai-systems``), the regulator's desk
(``/ai-systems/regulator``), the public register (``/register``, no login) and the law as code (``/law``, no login).

Thin over the services: :func:`qorgau.aisystems.register.register_for` (questionnaire, classification by the
rule packs, history, obligations, public register), :func:`qorgau.aisystems.governance.governance_for` (audits,
trusted lists — L-AI-TRUSTED, sandboxes — L-AI-SANDBOX [plan], the maturity index — L-AI-MATURITY [plan]) and
:func:`qorgau.rules.rulebook` (the facts catalogue the questionnaire is rendered from, the law's export).

* Administrators and data protection officers register systems, answer the questionnaire, mark obligations
  met, record audits, ask for the trusted list and apply to the sandbox; reviewers read.
* The regulator decides trusted-list requests and sandbox applications and sees every registered system; its
  pages read through an unscoped session, as the services' regulator methods require.
* The public register and the law need no login: they read public rows only (the services decide which).

The questionnaire's fields are named by the facts' paths (``functions.emotion_recognition``); a value that
cannot be read is shown next to its field and the form keeps everything the user typed. Systems hold no
personal data, but the pages still echo free text only back into the form it came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, is_dataclass
from datetime import date, datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..api.deps import Context
from ..api.schemas import MAX_ID
from ..core import auth
from ..core.auth import Principal, Role
from ..core.calendar import ALMATY
from ..core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..core.platform import Platform
from .modules import BY_SLUG, N_
from .routes import (
    choose_language,
    csrf_valid,
    error_page,
    optional_principal,
    redirect,
    render,
    require_principal,
)

router = APIRouter(include_in_schema=False)

OPERATORS = (Role.ADMIN, Role.DPO)                 # register, answer, mark met, audit, apply
READERS = (Role.ADMIN, Role.DPO, Role.REVIEWER)    # read the organization's register
REGULATORS = (Role.REGULATOR,)

SystemId = Annotated[int, Path(ge=1, le=MAX_ID)]
ItemId = Annotated[int, Path(ge=1, le=MAX_ID)]

MAX_TEXT = 2000
MAX_LONG_TEXT = 8000
MAX_FILTER = 200
PUBLIC_PAGE = 50
SANDBOX_MAX_DAYS = 731   # the service enforces 24 months; the form only refuses nonsense early
CHART_W, CHART_H, CHART_PAD = 640, 220, 36

SUBJECT = "ai_system"
SYSTEM_FIELDS = ("code", "name", "description", "public", "webhook_url")

RISK_LABELS = {"minimal": N_("Minimal risk"), "medium": N_("Medium risk"), "high": N_("High risk")}
AUTONOMY_LABELS = {"low": N_("Low autonomy"), "medium": N_("Medium autonomy"), "high": N_("High autonomy")}
STATUS_LABELS = {"text": N_("Text of the law"), "report": N_("Reported text"), "plan": N_("Announced policy")}
OBLIGATION_LABELS = {"open": N_("Open"), "met": N_("Met"), "relaxed": N_("Relaxed by a sandbox"),
                     "void": N_("No longer applies")}
TRUSTED_LABELS = {"requested": N_("Requested"), "included": N_("Included"), "refused": N_("Refused"),
                  "removed": N_("Removed")}
SANDBOX_LABELS = {"submitted": N_("Submitted"), "approved": N_("Approved"), "rejected": N_("Rejected"),
                  "withdrawn": N_("Withdrawn"), "closed": N_("Closed")}
TRIGGER_LABELS = {"questionnaire": N_("Questionnaire saved"), "pack_change": N_("The rule packs changed"),
                  "manual": N_("Classified on request")}
AUDIT_RESULT_LABELS = {"passed": N_("Passed"), "failed": N_("Failed")}

# Labels of the catalogue's enum answers (a value without a label is shown as its code).
VALUE_LABELS = {
    "finance": N_("Finance"), "telecom": N_("Telecommunications"), "health": N_("Health care"),
    "education": N_("Education"), "public_administration": N_("Public administration"),
    "law_enforcement": N_("Law enforcement"), "transport": N_("Transport"), "energy": N_("Energy"),
    "retail": N_("Retail"), "employment": N_("Employment"), "media": N_("Media"), "insurance": N_("Insurance"),
    "other": N_("Other"), "research": N_("Research"), "pilot": N_("Pilot"), "production": N_("Production"),
    "none": N_("None"), "<1k": N_("Fewer than 1,000"), "1k-100k": N_("1,000 to 100,000"),
    ">100k": N_("More than 100,000"), "children": N_("Children"), "elderly": N_("Elderly people"),
    "disabled": N_("People with disabilities"), "low_income": N_("People with low income"),
    "minimal": N_("Minimal impact on users"), "reduced_effectiveness": N_("Reduced effectiveness"),
    "moral_harm": N_("Moral harm"), "material_damage": N_("Material damage"),
    "social_emergency": N_("A social emergency"), "manmade_emergency": N_("A man-made emergency"),
    "defence": N_("Harm to defence"), "security": N_("Harm to national security"),
    "economy": N_("Harm to the economy"), "infrastructure": N_("Harm to infrastructure"),
    "biometric_public_order": N_("Biometric identification for public order"),
    "emotion_recognition": N_("Emotion recognition"), "high_autonomy": N_("High autonomy"),
    "automated_decisions": N_("Automated decisions"),
}

MESSAGES = {
    "no_access": N_("The AI systems register is shown to administrators, data protection officers and "
                    "reviewers of an operator."),
    "read_only": N_("You can read the register; administrators and data protection officers change it."),
    "regulator_only": N_("This page is for the regulator."),
    "registered": N_("The system was registered and classified."),
    "updated": N_("The questionnaire was saved and the system re-classified."),
    "met": N_("The obligation was marked as met."),
    "audit_recorded": N_("The audit was recorded."),
    "trusted_requested": N_("The request to include the system in the trusted list was sent to the regulator."),
    "sandbox_applied": N_("The sandbox application was sent to the regulator."),
    "sandbox_withdrawn": N_("The sandbox application was withdrawn."),
    "trusted_decided": N_("The trusted-list request was decided."),
    "sandbox_decided": N_("The sandbox application was decided."),
    "snapshot": N_("Today's maturity index was recorded."),
    "conflict": N_("Someone else saved this questionnaire while you were editing it (now version %(version)s). "
                   "Your answers were not saved: they are still in the form below; check the current answers "
                   "and save again."),
    "form": N_("Some answers need your attention: see the marked fields."),
}
FIELD_ERRORS = {
    "required": N_("This field is required."),
    "code": N_("Use up to 64 lowercase Latin letters, digits, dots, hyphens or underscores, starting with a letter "
               "or digit."),
    "code_taken": N_("Your organization already has a system with this code."),
    "int": N_("Enter a whole number."),
    "date": N_("Enter a date as YYYY-MM-DD."),
    "choice": N_("Choose one of the offered answers."),
    "too_long": N_("This answer is too long."),
    "rejected": N_("This answer was not accepted. Check it and try again."),
    "evidence": N_("Describe the evidence: a document number, a reference or a link."),
    "reason": N_("Give a reason."),
    "dates": N_("Enter a start and an end date; the end must be after the start and at most 24 months later."),
    "audit": N_("Choose a passed audit that covers the training data and found no prohibited functionality."),
    "not_eligible": N_("Only a high-risk system that is not prohibited and has such an audit may be included."),
    "systems": N_("Choose at least one system."),
    "relaxations": N_("Choose only obligations a sandbox may relax."),
    "sha256": N_("A SHA-256 digest is 64 hexadecimal characters."),
    "own": N_("An operator cannot decide on its own systems, even with the regulator role."),
}
GENERIC = N_("Something in the form is not right. Check it and try again.")

_CODE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")


# --- services (imported when first used, so the web app starts even if a service fails to import) ------


def _platform(request: Request) -> Platform:
    return request.app.state.platform


def _register(platform: Platform) -> Any:
    from ..aisystems.register import register_for

    return register_for(platform)


def _governance(platform: Platform) -> Any:
    from ..aisystems.governance import governance_for

    return governance_for(platform)


def _rulebook() -> Any:
    from ..rules import rulebook

    return rulebook()


# --- formatting helpers (the templates use them) -------------------------------------------------------


def plain(value: Any) -> Any:
    """A service view as plain dicts and lists: ``to_dict()`` when it has one, dataclass fields otherwise."""
    if value is None or isinstance(value, (str, int, float, bool, date)):
        return value
    if hasattr(value, "to_dict"):
        return plain(value.to_dict())
    if is_dataclass(value) and not isinstance(value, type):
        return {k: plain(v) for k, v in asdict(value).items()}
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return value


def localized(text: Any, lang: str) -> str:
    """A ``{kk, ru, en}`` text in ``lang`` (English, then any, when missing)."""
    if isinstance(text, Mapping):
        return str(text.get(lang) or text.get("en") or next((v for v in text.values() if v), ""))
    return "" if text is None else str(text)


def local_time(moment: Any) -> str:
    if moment is None or moment == "":
        return "—"
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(ALMATY).strftime("%Y-%m-%d %H:%M")
    return str(moment)


def flatten(facts: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """``{"functions": {"x": True}}`` → ``{"functions.x": True}``; flat input stays flat."""
    out: dict[str, Any] = {}
    for key, value in (facts or {}).items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def today() -> date:
    return datetime.now(ALMATY).date()


def trend_chart(points: list[tuple[Any, float]]) -> dict[str, Any]:
    """The maturity trend as SVG coordinates (score 0–100 on the y axis, days on the x axis)."""
    pts = sorted((d if isinstance(d, date) else date.fromisoformat(str(d)), float(s)) for d, s in points)
    inner_w, inner_h = CHART_W - 2 * CHART_PAD, CHART_H - 2 * CHART_PAD
    if not pts:
        return {"points": [], "polyline": "", "w": CHART_W, "h": CHART_H, "grid": [], "labels": []}
    first, last = pts[0][0], pts[-1][0]
    span = max((last - first).days, 1)
    coords = []
    for day, score in pts:
        x = CHART_PAD + (inner_w * ((day - first).days / span) if len(pts) > 1 else inner_w / 2)
        y = CHART_PAD + inner_h * (1 - max(0.0, min(score, 100.0)) / 100)
        coords.append({"x": round(x, 1), "y": round(y, 1), "day": day.isoformat(), "score": round(score, 1)})
    grid = [{"y": round(CHART_PAD + inner_h * (1 - v / 100), 1), "value": v} for v in (0, 25, 50, 75, 100)]
    labels = [{"x": coords[0]["x"], "text": first.isoformat()}]
    if len(coords) > 1:
        labels.append({"x": coords[-1]["x"], "text": last.isoformat()})
    return {"points": coords, "polyline": " ".join(f"{c['x']},{c['y']}" for c in coords), "w": CHART_W,
            "h": CHART_H, "grid": grid, "labels": labels, "left": CHART_PAD, "right": CHART_W - CHART_PAD}


# --- the questionnaire: rendered from the facts catalogue, read back by type ----------------------------


def fact_groups() -> list[Any]:
    """The ``ai_system`` sections of the facts catalogue, in order."""
    return list(_rulebook().facts.subjects[SUBJECT].groups)


def fact_index(groups: Iterable[Any]) -> dict[str, Any]:
    return {f.path: f for g in groups for f in g.facts}


def field_id(path: str) -> str:
    return "f-" + path.replace(".", "-")


def form_values(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Stored answers as the form shows them (strings, lists of strings)."""
    out: dict[str, Any] = {}
    for path, value in flatten(facts).items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[path] = "yes" if value else "no"
        elif isinstance(value, (list, tuple)):
            out[path] = [str(v) for v in value]
        else:
            out[path] = value.isoformat() if isinstance(value, date) else str(value)
    return out


def read_facts(form: Any, groups: Iterable[Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The questionnaire's answers: (flat facts, what the user typed, errors by field path)."""
    facts: dict[str, Any] = {}
    typed: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for fact in fact_index(groups).values():
        path, kind = fact.path, fact.type
        allowed = [str(v) for v in (fact.values or [])]
        if kind == "enum_list":
            chosen = [v for v in form.getlist(path) if v]
            typed[path] = chosen
            if any(v not in allowed for v in chosen):
                errors[path] = "choice"
            else:
                facts[path] = chosen  # nothing ticked is an answer too: "none of these"
            continue
        raw = str(form.get(path) or "").strip()
        typed[path] = raw
        if not raw:
            continue  # unanswered: the classification lists it among the facts missing to decide
        if len(raw) > MAX_TEXT:
            errors[path] = "too_long"
        elif kind == "bool":
            if raw not in ("yes", "no"):
                errors[path] = "choice"
            else:
                facts[path] = raw == "yes"
        elif kind == "enum":
            if raw not in allowed:
                errors[path] = "choice"
            else:
                facts[path] = raw
        elif kind == "int":
            text = raw.replace(" ", "").replace("\u00a0", "")
            if not (text.lstrip("-").isdigit() and text.isascii()) or len(text) > 15:
                errors[path] = "int"
            else:
                facts[path] = int(text)
        elif kind == "date":
            try:
                facts[path] = date.fromisoformat(raw).isoformat()
            except ValueError:
                errors[path] = "date"
        else:
            facts[path] = raw
    return facts, typed, errors


def read_system_fields(form: Any, *, new: bool) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    typed: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in SYSTEM_FIELDS:
        typed[name] = str(form.get(name) or "").strip()
    if new:
        code = typed["code"]
        if not code:
            errors["code"] = "required"
        elif not (len(code) <= 64 and set(code) <= _CODE_CHARS and code[0].isalnum()):
            errors["code"] = "code"
        values["code"] = code
        if not typed["name"]:
            errors["name"] = "required"
        elif len(typed["name"]) > 300:
            errors["name"] = "too_long"
        values["name"] = typed["name"]
        if len(typed["description"]) > MAX_LONG_TEXT:
            errors["description"] = "too_long"
        values["description"] = typed["description"] or None
        if len(typed["webhook_url"]) > MAX_TEXT:
            errors["webhook_url"] = "too_long"
        values["webhook_url"] = typed["webhook_url"] or None
    public = typed["public"]
    if public not in ("", "yes", "no"):
        errors["public"] = "choice"
    values["public"] = None if public in ("", "default") else public == "yes"
    return values, typed, errors


def service_field(exc: Exception, fact_paths: Iterable[str]) -> str | None:
    """Which form field a service error names (``facts.system.sector`` → ``system.sector``)."""
    field = getattr(exc, "field", None)
    if not field:
        return None
    paths = set(fact_paths)
    for candidate in (field, field.removeprefix("facts."), field.removeprefix("facts").lstrip(".[")):
        if candidate in paths or candidate in SYSTEM_FIELDS:
            return candidate
    for path in paths:  # "facts.functions.x.value" and the like
        if field.startswith(path) or field.startswith("facts." + path):
            return path
    return None


# --- pages: shared bits --------------------------------------------------------------------------------


def _labels() -> dict[str, Any]:
    return {"risk": RISK_LABELS, "autonomy": AUTONOMY_LABELS, "status": STATUS_LABELS,
            "obligation": OBLIGATION_LABELS, "trusted": TRUSTED_LABELS, "sandbox": SANDBOX_LABELS,
            "trigger": TRIGGER_LABELS, "audit": AUDIT_RESULT_LABELS, "errors": FIELD_ERRORS}


def _page(request: Request, principal: Principal | None, template: str, *, status: int = 200,
          active: str | None = "ai-systems", **values: Any) -> Response:
    lang = choose_language(request, principal)
    return render(request, template, principal=principal, status=status, active=active,
                  module=BY_SLUG["ai-systems"], labels=_labels(), local=local_time,
                  tr=lambda text: localized(text, lang), field_id=field_id, today=today().isoformat(),
                  value_labels=VALUE_LABELS,
                  **values)


def _reader(request: Request) -> tuple[Principal, Response | None]:
    principal = require_principal(request)
    if not principal.has_any(*READERS):
        return principal, _page(request, principal, "ai_systems.html", status=403, systems=[],
                                no_access=MESSAGES["no_access"], can_edit=False)
    return principal, None


def _operator(request: Request, csrf_token: str | None = None) -> tuple[Principal, Response | None]:
    principal = require_principal(request)
    if not principal.has_any(*OPERATORS):
        return principal, error_page(request, 403, principal=principal)
    if csrf_token is not None and not csrf_valid(request, principal, csrf_token):
        return principal, error_page(request, 403, principal=principal)
    return principal, None


def _regulator(request: Request, csrf_token: str | None = None) -> tuple[Principal, Response | None]:
    principal = require_principal(request)
    if not principal.has_any(*REGULATORS):
        return principal, error_page(request, 403, principal=principal)
    try:
        with _platform(request).db.reader() as session:
            auth.require_authority(session, principal)  # the regulator role counts only in the authorized body
    except PermissionDenied:
        return principal, error_page(request, 403, principal=principal)
    if csrf_token is not None and not csrf_valid(request, principal, csrf_token):
        return principal, error_page(request, 403, principal=principal)
    return principal, None


def _notice(key: str) -> str | None:
    return MESSAGES.get(key) if key in MESSAGES and key not in ("no_access", "conflict", "form") else None


# --- the operator's register ---------------------------------------------------------------------------


@router.get("/ai-systems")
def systems_page(request: Request, done: Annotated[str, Query(max_length=32)] = "") -> Response:
    principal = require_principal(request)
    if not principal.has_any(*READERS):
        return _page(request, principal, "ai_systems.html", status=200 if principal.has_any(*REGULATORS) else 403,
                     systems=[], no_access=MESSAGES["no_access"], can_edit=False,
                     is_regulator=principal.has_any(*REGULATORS))
    platform = _platform(request)
    with Context(platform, principal).read() as session:
        systems = plain(_register(platform).systems(session))
    return _page(request, principal, "ai_systems.html", systems=systems,
                 can_edit=principal.has_any(*OPERATORS), notice=_notice(done),
                 is_regulator=principal.has_any(*REGULATORS))


def _form_page(request: Request, principal: Principal, *, system: dict[str, Any] | None, typed: dict[str, Any],
               errors: dict[str, str], status: int = 200, alert: tuple[str, dict[str, Any]] | None = None,
               focus: str | None = None) -> Response:
    groups = fact_groups()
    return _page(request, principal, "ai_system_form.html", status=status, groups=groups, system=system,
                 typed=typed, errors=errors, alert=alert, focus=focus)


@router.get("/ai-systems/new")
def new_system_form(request: Request) -> Response:
    principal, refused = _operator(request)
    if refused is not None:
        return refused
    return _form_page(request, principal, system=None, typed={}, errors={})


async def _read_form(request: Request) -> Any:
    return await request.form(max_fields=2000, max_files=0)


@router.post("/ai-systems/new")
async def register_system(request: Request) -> Response:
    form = await _read_form(request)
    return await run_in_threadpool(_register_system, request, form)


def _register_system(request: Request, form: Any) -> Response:
    principal, refused = _operator(request, str(form.get("csrf_token") or ""))
    if refused is not None:
        return refused
    platform = _platform(request)
    groups = fact_groups()
    facts, typed_facts, errors = read_facts(form, groups)
    system, typed_system, system_errors = read_system_fields(form, new=True)
    typed = {**typed_facts, **typed_system}
    errors.update(system_errors)

    def again(status: int, alert: tuple[str, dict[str, Any]] | None = None) -> Response:
        first = next(iter(errors), None)
        return _form_page(request, principal, system=None, typed=typed, errors=errors, status=status,
                          alert=alert or (MESSAGES["form"], {}), focus=first)

    if errors:
        return again(422)
    service = _register(platform)
    ctx = Context(platform, principal)
    try:
        with ctx.write() as session:
            record = plain(service.register_system(
                session, code=system["code"], name=system["name"], description=system["description"],
                facts=facts, public=system["public"], webhook_url=system["webhook_url"], actor=ctx.actor))
    except Conflict:
        errors["code"] = "code_taken"
        return again(409)
    except InvalidInput as exc:
        field = service_field(exc, typed_facts)
        if field is None:
            return again(422, (GENERIC, {}))
        errors[field] = "rejected" if field != "code" else "code"
        return again(422)
    return redirect(f"/ai-systems/{_record_id(record)}?done=registered")


def _record_id(record: Mapping[str, Any]) -> Any:
    for key in ("id", "system_id", "ai_system_id"):
        if record.get(key) is not None:
            return record[key]
    return record["system"]["id"]


def _system_view(platform: Platform, principal: Principal, system_id: int, *,
                 as_of: date | None = None) -> dict[str, Any]:
    service = _register(platform)
    governance = _governance(platform)
    ctx = Context(platform, principal)
    with ctx.read() as session:
        record = plain(service.system(session, system_id))
        record["facts"] = flatten(record.get("facts") or {})
        history = plain(service.history(session, system_id))
        obligations = plain(service.obligations(session, system_id=system_id))
        audits = plain(governance.audits(session, system_id))
        sandboxes = plain(governance.sandboxes(session))
        trusted = [e for e in plain(governance.trusted_requests(session)) if e.get("system_id") == system_id]
    preview = None
    if as_of is not None:
        with ctx.read() as session:  # persist=False: a preview, nothing is stored
            preview = plain(service.classify(session, system_id, as_of=as_of, trigger="manual", actor=ctx.actor,
                                             persist=False))
    in_sandbox = [s for s in sandboxes if system_id in (s.get("system_ids") or [])]
    return {"record": record, "history": history, "obligations": obligations, "audits": audits,
            "sandboxes": in_sandbox, "trusted": trusted, "preview": preview}


def _system_page(request: Request, principal: Principal, system_id: int, *, status: int = 200,
                 as_of: date | None = None, **values: Any) -> Response:
    view = _system_view(_platform(request), principal, system_id, as_of=as_of)
    return _page(request, principal, "ai_system.html", status=status, can_edit=principal.has_any(*OPERATORS),
                 as_of=as_of.isoformat() if as_of else "", fact_paths=fact_index(fact_groups()), **view, **values)


def system_page(request: Request, system_id: SystemId, as_of: Annotated[str, Query(max_length=20)] = "",
                done: Annotated[str, Query(max_length=32)] = "") -> Response:
    principal, refused = _reader(request)
    if refused is not None:
        return refused
    as_of_date = None
    as_of_error = None
    if as_of.strip():
        try:
            as_of_date = date.fromisoformat(as_of.strip())
        except ValueError:
            as_of_error = FIELD_ERRORS["date"]
    try:
        try:
            return _system_page(request, principal, system_id, as_of=as_of_date, notice=_notice(done),
                                as_of_error=as_of_error, as_of_typed=as_of[:20], status=422 if as_of_error else 200)
        except InvalidInput as exc:
            if as_of_date is None or exc.field != "as_of":
                raise
            return _system_page(request, principal, system_id, notice=_notice(done), as_of_error=GENERIC,
                                as_of_typed=as_of[:20], status=422)
    except NotFound:
        return error_page(request, 404, principal=principal)


@router.get("/ai-systems/{system_id}/edit")
def edit_system_form(request: Request, system_id: SystemId) -> Response:
    principal, refused = _operator(request)
    if refused is not None:
        return refused
    platform = _platform(request)
    try:
        with Context(platform, principal).read() as session:
            record = plain(_register(platform).system(session, system_id))
    except NotFound:
        return error_page(request, 404, principal=principal)
    typed = form_values(_facts_of(record))
    typed["public"] = _public_choice(record)
    return _form_page(request, principal, system=record, typed=typed, errors={})


def _facts_of(record: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(record.get("facts"), Mapping):
        return record["facts"]
    profile = record.get("profile") or {}
    return profile.get("facts") or {}


def _version_of(record: Mapping[str, Any]) -> int | None:
    for value in (record.get("version"), record.get("profile_version"), (record.get("profile") or {}).get("version")):
        if isinstance(value, int):
            return value
    return None


def _public_choice(record: Mapping[str, Any]) -> str:
    value = record.get("public", (record.get("profile") or {}).get("public"))
    return "" if value is None else ("yes" if value else "no")


@router.post("/ai-systems/{system_id}/edit")
async def update_system(request: Request, system_id: SystemId) -> Response:
    form = await _read_form(request)
    return await run_in_threadpool(_update_system, request, system_id, form)


def _update_system(request: Request, system_id: int, form: Any) -> Response:
    principal, refused = _operator(request, str(form.get("csrf_token") or ""))
    if refused is not None:
        return refused
    platform = _platform(request)
    service = _register(platform)
    ctx = Context(platform, principal)
    groups = fact_groups()
    facts, typed_facts, errors = read_facts(form, groups)
    system, typed_system, system_errors = read_system_fields(form, new=False)
    typed = {**typed_facts, **typed_system}
    errors.update(system_errors)
    raw_version = str(form.get("expected_version") or "")
    expected = int(raw_version) if raw_version.isdigit() and len(raw_version) < 10 else None
    try:
        with ctx.read() as session:
            record = plain(service.system(session, system_id))
    except NotFound:
        return error_page(request, 404, principal=principal)

    def again(status: int, alert: tuple[str, dict[str, Any]] | None = None) -> Response:
        shown = dict(record)
        if expected is not None and status != 409:
            shown["version"] = expected  # keep the version the user edited: a stale save must still conflict
        return _form_page(request, principal, system=shown, typed=typed, errors=errors, status=status,
                          alert=alert or (MESSAGES["form"], {}), focus=next(iter(errors), None))

    if errors:
        return again(422)
    try:
        with ctx.write() as session:
            if _version_of(record) is None:
                # Known only from oversight (declared, no questionnaire yet): registering takes the code over.
                service.register_system(session, code=record["code"], name=record["name"],
                                        description=record.get("description"), facts=facts,
                                        public=system["public"], actor=ctx.actor)
            else:
                # The service merges answers: a question left open in the form is cleared (None), not kept.
                answers = {path: facts.get(path) for path in typed_facts}
                service.update_questionnaire(session, system_id, facts=answers, public=system["public"],
                                             expected_version=expected, actor=ctx.actor)
    except NotFound:
        return error_page(request, 404, principal=principal)
    except Conflict:
        with ctx.read() as session:
            record = plain(service.system(session, system_id))
        return again(409, (MESSAGES["conflict"], {"version": _version_of(record) or "?"}))
    except InvalidInput as exc:
        field = service_field(exc, typed_facts)
        if field is None:
            return again(422, (GENERIC, {}))
        errors[field] = "rejected"
        return again(422)
    return redirect(f"/ai-systems/{system_id}?done=updated")


@router.post("/ai-systems/{system_id}/obligations/{obligation_id}/met")
def mark_obligation_met(request: Request, system_id: SystemId, obligation_id: ItemId,
                        evidence: Annotated[str, Form(max_length=MAX_TEXT * 2)] = "",
                        csrf_token: Annotated[str, Form()] = "") -> Response:
    principal, refused = _operator(request, csrf_token)
    if refused is not None:
        return refused
    platform = _platform(request)

    def again(status: int, key: str) -> Response:
        try:
            return _system_page(request, principal, system_id, status=status,
                                obligation_error={"id": obligation_id, "message": FIELD_ERRORS[key],
                                                  "evidence": evidence[:MAX_TEXT]})
        except NotFound:
            return error_page(request, 404, principal=principal)

    if not evidence.strip():
        return again(422, "evidence")
    if len(evidence) > MAX_TEXT:
        return again(422, "too_long")
    ctx = Context(platform, principal)
    try:
        with ctx.write() as session:
            ob = plain(_register(platform).obligations(session, system_id=system_id))
            if not any(o.get("id") == obligation_id for o in ob):
                raise NotFound("no such obligation of this system", field="obligation_id")
            _register(platform).mark_obligation_met(session, obligation_id, evidence=evidence.strip(),
                                                    actor=ctx.actor)
    except NotFound:
        return error_page(request, 404, principal=principal)
    except (InvalidInput, Conflict):
        return again(422, "rejected")
    return redirect(f"/ai-systems/{system_id}?done=met#obligations")


@router.post("/ai-systems/{system_id}/audits")
def record_audit(request: Request, system_id: SystemId,
                 auditor: Annotated[str, Form(max_length=MAX_TEXT)] = "",
                 audited_on: Annotated[str, Form(max_length=40)] = "",
                 covers_training_data: Annotated[str, Form(max_length=8)] = "",
                 prohibited_functionality_found: Annotated[str, Form(max_length=8)] = "",
                 result: Annotated[str, Form(max_length=16)] = "",
                 summary: Annotated[str, Form(max_length=MAX_LONG_TEXT)] = "",
                 report_sha256: Annotated[str, Form(max_length=200)] = "",
                 csrf_token: Annotated[str, Form()] = "") -> Response:
    principal, refused = _operator(request, csrf_token)
    if refused is not None:
        return refused
    platform = _platform(request)
    typed = {"auditor": auditor, "audited_on": audited_on, "covers_training_data": covers_training_data,
             "prohibited_functionality_found": prohibited_functionality_found, "result": result,
             "summary": summary, "report_sha256": report_sha256}
    errors: dict[str, str] = {}
    if not auditor.strip():
        errors["auditor"] = "required"
    try:
        day = date.fromisoformat(audited_on.strip())
    except ValueError:
        errors["audited_on"] = "date"
    if result not in AUDIT_RESULT_LABELS:
        errors["result"] = "choice"
    digest = report_sha256.strip().lower()
    if digest and (len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest)):
        errors["report_sha256"] = "sha256"

    def again(status: int) -> Response:
        try:
            return _system_page(request, principal, system_id, status=status, audit_form=typed, audit_errors=errors)
        except NotFound:
            return error_page(request, 404, principal=principal)

    if errors:
        return again(422)
    ctx = Context(platform, principal)
    try:
        with ctx.write() as session:
            _governance(platform).record_audit(
                session, system_id, auditor=auditor.strip(), audited_on=day,
                covers_training_data=covers_training_data == "yes",
                prohibited_functionality_found=prohibited_functionality_found == "yes", result=result,
                summary=summary.strip() or None, report_sha256=digest or None, actor=principal)
    except NotFound:
        return error_page(request, 404, principal=principal)
    except InvalidInput as exc:
        field = getattr(exc, "field", None)
        errors[field if field in typed else "auditor"] = "rejected"
        return again(422)
    return redirect(f"/ai-systems/{system_id}?done=audit_recorded#audits")


@router.post("/ai-systems/{system_id}/trusted")
def request_trusted(request: Request, system_id: SystemId,
                    audit_id: Annotated[str, Form(max_length=20)] = "",
                    sector: Annotated[str, Form(max_length=64)] = "",
                    csrf_token: Annotated[str, Form()] = "") -> Response:
    principal, refused = _operator(request, csrf_token)
    if refused is not None:
        return refused
    platform = _platform(request)
    typed = {"audit_id": audit_id, "sector": sector}

    def again(status: int, key: str, field: str = "audit_id") -> Response:
        try:
            return _system_page(request, principal, system_id, status=status, trusted_form=typed,
                                trusted_errors={field: key})
        except NotFound:
            return error_page(request, 404, principal=principal)

    if not (audit_id.isdigit() and len(audit_id) < 12):
        return again(422, "audit")
    if not sector.strip():
        return again(422, "required", "sector")
    ctx = Context(platform, principal)
    try:
        with ctx.write() as session:
            _governance(platform).request_trusted(session, system_id, sector=sector.strip(), audit_id=int(audit_id),
                                                  actor=principal)
    except NotFound as exc:
        if getattr(exc, "field", None) in ("audit_id", "audit"):
            return again(422, "audit")
        return error_page(request, 404, principal=principal)
    except (InvalidInput, Conflict, PermissionDenied) as exc:
        field = getattr(exc, "field", None) or ""
        if "sector" in field:
            return again(422, "choice", "sector")
        if "audit" in field:
            return again(422, "audit")
        return again(422, "not_eligible")
    return redirect(f"/ai-systems/{system_id}?done=trusted_requested#trusted")


# --- sandbox (operator) --------------------------------------------------------------------------------


def relaxable_rules() -> list[Any]:
    """Obligation rules a sandbox may relax (``relaxable: true``), in force today, all profiles."""
    book = _rulebook()
    return [r for r in book.rules(subject=SUBJECT, profiles=("law", "stricter"), as_of=today())
            if getattr(r, "relaxable", False)]


def _sandbox_page(request: Request, principal: Principal, *, status: int = 200, **values: Any) -> Response:
    platform = _platform(request)
    with Context(platform, principal).read() as session:
        systems = plain(_register(platform).systems(session))
        applications = plain(_governance(platform).sandboxes(session))
    values.setdefault("form", {})
    values.setdefault("errors", {})
    return _page(request, principal, "ai_sandbox.html", status=status, systems=systems, applications=applications,
                 relaxable=relaxable_rules(), can_edit=principal.has_any(*OPERATORS), **values)


@router.get("/ai-systems/sandbox")
def sandbox_page(request: Request, done: Annotated[str, Query(max_length=32)] = "") -> Response:
    principal, refused = _reader(request)
    if refused is not None:
        return refused
    return _sandbox_page(request, principal, notice=_notice(done))


@router.post("/ai-systems/sandbox")
async def apply_sandbox(request: Request) -> Response:
    form = await _read_form(request)
    return await run_in_threadpool(_apply_sandbox, request, form)


def _apply_sandbox(request: Request, form: Any) -> Response:
    principal, refused = _operator(request, str(form.get("csrf_token") or ""))
    if refused is not None:
        return refused
    platform = _platform(request)
    title = str(form.get("title") or "").strip()
    description = str(form.get("description") or "").strip()
    system_ids = [s for s in form.getlist("system_ids") if str(s).isdigit() and len(str(s)) < 12]
    relaxations = [str(r) for r in form.getlist("relaxations") if r]
    typed = {"title": title, "description": description, "system_ids": system_ids, "relaxations": relaxations}
    errors: dict[str, str] = {}
    if not title:
        errors["title"] = "required"
    elif len(title) > 300:
        errors["title"] = "too_long"
    if not description:
        errors["description"] = "required"
    elif len(description) > MAX_LONG_TEXT:
        errors["description"] = "too_long"
    if not system_ids:
        errors["system_ids"] = "systems"
    if any(r not in {x.id for x in relaxable_rules()} for r in relaxations):
        errors["relaxations"] = "relaxations"
    if errors:
        return _sandbox_page(request, principal, status=422, form=typed, errors=errors)
    ctx = Context(platform, principal)
    try:
        with ctx.write() as session:
            _governance(platform).apply_sandbox(session, title=title, description=description,
                                                system_ids=[int(s) for s in system_ids],
                                                requested_relaxations=relaxations, actor=principal)
    except (InvalidInput, NotFound) as exc:
        field = getattr(exc, "field", None) or ""
        key = "relaxations" if "relax" in field else "system_ids" if "system" in field else "title"
        errors[key] = {"relaxations": "relaxations", "system_ids": "systems"}.get(key, "rejected")
        return _sandbox_page(request, principal, status=422, form=typed, errors=errors)
    return redirect("/ai-systems/sandbox?done=sandbox_applied")


@router.post("/ai-systems/sandbox/{application_id}/withdraw")
def withdraw_sandbox(request: Request, application_id: ItemId, csrf_token: Annotated[str, Form()] = "") -> Response:
    principal, refused = _operator(request, csrf_token)
    if refused is not None:
        return refused
    platform = _platform(request)
    ctx = Context(platform, principal)
    try:
        with ctx.write() as session:
            _governance(platform).withdraw_sandbox(session, application_id, actor=principal)
    except NotFound:
        return error_page(request, 404, principal=principal)
    except (InvalidInput, Conflict):
        return _sandbox_page(request, principal, status=409, alert=GENERIC)
    return redirect("/ai-systems/sandbox?done=sandbox_withdrawn")


# --- the maturity index --------------------------------------------------------------------------------


@router.get("/ai-systems/maturity")
def maturity_page(request: Request, done: Annotated[str, Query(max_length=32)] = "") -> Response:
    principal, refused = _reader(request)
    if refused is not None:
        return refused
    platform = _platform(request)
    governance = _governance(platform)
    with Context(platform, principal).read() as session:
        view = plain(governance.maturity(session))
        trend = governance.maturity_trend(session, days=365)
    from ..aisystems import governance as governance_module

    return _page(request, principal, "ai_maturity.html", view=view, chart=trend_chart(list(trend)),
                 formula=getattr(governance_module, "MATURITY_FORMULA", ""), notice=_notice(done),
                 can_edit=principal.has_any(*OPERATORS))


@router.post("/ai-systems/maturity/snapshot")
def maturity_snapshot(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    principal, refused = _operator(request, csrf_token)
    if refused is not None:
        return refused
    platform = _platform(request)
    with Context(platform, principal).write() as session:
        _governance(platform).snapshot_maturity(session)
    return redirect("/ai-systems/maturity?done=snapshot")


# --- the regulator -------------------------------------------------------------------------------------


def _regulator_page(request: Request, principal: Principal, *, status: int = 200, **values: Any) -> Response:
    platform = _platform(request)
    governance = _governance(platform)
    with platform.db.reader() as session:  # the regulator's methods read across organizations
        requests_ = plain(governance.trusted_requests(session, status="requested", actor=principal))
        decided = plain(governance.trusted_requests(session, actor=principal))
        applications = plain(governance.sandboxes(session, status="submitted", actor=principal))
        all_applications = plain(governance.sandboxes(session, actor=principal))
        names = {o.id: (o.name, o.bin) for o in auth.list_organizations(session)}
    systems = [{**plain(summary), "operator_name": org.name, "operator_bin": org.bin}
               for org, summary in _register(platform).every_operators_systems()]
    values.setdefault("errors", {})
    values.setdefault("form", {})
    return _page(request, principal, "ai_regulator.html", status=status, requests=requests_,
                 decided=[e for e in decided if e.get("status") != "requested"], applications=applications,
                 decided_applications=[a for a in all_applications if a.get("status") != "submitted"],
                 systems=systems, operators=names, relaxable=relaxable_rules(), **values)


@router.get("/ai-systems/regulator")
def regulator_page(request: Request, done: Annotated[str, Query(max_length=32)] = "") -> Response:
    principal, refused = _regulator(request)
    if refused is not None:
        return refused
    return _regulator_page(request, principal, notice=_notice(done))


@router.post("/ai-systems/regulator/trusted/{entry_id}")
def decide_trusted(request: Request, entry_id: ItemId,
                   decision: Annotated[str, Form(max_length=16)] = "",
                   reason: Annotated[str, Form(max_length=MAX_LONG_TEXT)] = "",
                   csrf_token: Annotated[str, Form()] = "") -> Response:
    principal, refused = _regulator(request, csrf_token)
    if refused is not None:
        return refused
    platform = _platform(request)
    key = f"trusted-{entry_id}"
    form = {key: {"decision": decision, "reason": reason}}
    if decision not in ("include", "refuse"):
        return _regulator_page(request, principal, status=422, form=form, errors={key: {"decision": "choice"}})
    if decision == "refuse" and not reason.strip():
        return _regulator_page(request, principal, status=422, form=form, errors={key: {"reason": "reason"}})
    try:
        with platform.db.transaction() as session:
            _governance(platform).decide_trusted(session, entry_id, include=decision == "include",
                                                 reason=reason.strip() or None, actor=principal)
    except NotFound:
        return error_page(request, 404, principal=principal)
    except PermissionDenied:
        return _regulator_page(request, principal, status=403, form=form, errors={key: {"decision": "own"}})
    except (InvalidInput, Conflict) as exc:
        field = "reason" if "reason" in (getattr(exc, "field", None) or "") else "decision"
        return _regulator_page(request, principal, status=422, form=form,
                               errors={key: {field: "reason" if field == "reason" else "rejected"}})
    return redirect("/ai-systems/regulator?done=trusted_decided")


@router.post("/ai-systems/regulator/sandbox/{application_id}")
async def decide_sandbox(request: Request, application_id: ItemId) -> Response:
    form = await _read_form(request)
    return await run_in_threadpool(_decide_sandbox, request, application_id, form)


def _decide_sandbox(request: Request, application_id: int, form: Any) -> Response:
    principal, refused = _regulator(request, str(form.get("csrf_token") or ""))
    if refused is not None:
        return refused
    platform = _platform(request)
    key = f"sandbox-{application_id}"
    decision = str(form.get("decision") or "")
    typed = {"decision": decision, "starts_on": str(form.get("starts_on") or "")[:20],
             "ends_on": str(form.get("ends_on") or "")[:20], "conditions": str(form.get("conditions") or ""),
             "reason": str(form.get("reason") or ""), "granted": [str(g) for g in form.getlist("granted")]}
    errors: dict[str, str] = {}
    starts = ends = None
    if decision not in ("approve", "reject"):
        errors["decision"] = "choice"
    elif decision == "approve":
        try:
            starts = date.fromisoformat(typed["starts_on"].strip())
            ends = date.fromisoformat(typed["ends_on"].strip())
            if ends <= starts or (ends - starts).days > SANDBOX_MAX_DAYS:
                errors["ends_on"] = "dates"
        except ValueError:
            errors["ends_on"] = "dates"
    elif not typed["reason"].strip():
        errors["reason"] = "reason"
    if len(typed["conditions"]) > MAX_LONG_TEXT or len(typed["reason"]) > MAX_LONG_TEXT:
        errors["conditions"] = "too_long"
    if errors:
        return _regulator_page(request, principal, status=422, form={key: typed}, errors={key: errors})
    try:
        with platform.db.transaction() as session:
            _governance(platform).decide_sandbox(
                session, application_id, approve=decision == "approve", starts_on=starts, ends_on=ends,
                conditions=typed["conditions"].strip() or None,
                granted_relaxations=typed["granted"] if decision == "approve" else None,
                reason=typed["reason"].strip() or None, actor=principal)
    except NotFound:
        return error_page(request, 404, principal=principal)
    except PermissionDenied:
        return _regulator_page(request, principal, status=403, form={key: typed}, errors={key: {"decision": "own"}})
    except (InvalidInput, Conflict) as exc:
        field = getattr(exc, "field", None) or ""
        name = "ends_on" if ("on" in field or "date" in field) else "granted" if "relax" in field else "decision"
        return _regulator_page(request, principal, status=422, form={key: typed},
                               errors={key: {name: "dates" if name == "ends_on" else
                                             "relaxations" if name == "granted" else "rejected"}})
    return redirect("/ai-systems/regulator?done=sandbox_decided")


# --- public: the register and the law, no login --------------------------------------------------------


def _public_page(request: Request, template: str, *, status: int = 200, **values: Any) -> Response:
    principal = optional_principal(request)
    values.setdefault("active", "register")
    return _page(request, principal, template, status=status, **values)


def _clean(value: str) -> str | None:
    value = value.strip()
    return value or None


@router.get("/register")
def public_register(request: Request,
                    sector: Annotated[str, Query(max_length=64)] = "",
                    risk: Annotated[str, Query(max_length=16)] = "",
                    q: Annotated[str, Query(max_length=MAX_FILTER)] = "",
                    operator_bin: Annotated[str, Query(max_length=20)] = "",
                    page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    platform = _platform(request)
    filters = {"sector": _clean(sector), "risk": risk if risk in RISK_LABELS else None, "q": _clean(q),
               "operator_bin": _clean(operator_bin)}
    error = None
    if filters["operator_bin"] and not (filters["operator_bin"].isdigit() and len(filters["operator_bin"]) == 12):
        error, filters["operator_bin"] = N_("A BIN is 12 digits."), None
    with platform.db.reader() as session:
        try:
            result = plain(_register(platform).public_register(session, limit=PUBLIC_PAGE,
                                                               offset=(page - 1) * PUBLIC_PAGE, **filters))
        except InvalidInput:
            error = GENERIC
            filters = {k: None for k in filters}
            result = plain(_register(platform).public_register(session, limit=PUBLIC_PAGE, offset=0))
    items = result.get("items", []) if isinstance(result, Mapping) else result
    total = result.get("total") if isinstance(result, Mapping) else None
    sectors = _sector_values()
    query = {k: v for k, v in filters.items() if v}
    return _public_page(request, "public_register.html", status=422 if error else 200, items=items, total=total,
                        filters=filters, typed={"sector": sector, "risk": risk, "q": q[:MAX_FILTER],
                                                "operator_bin": operator_bin[:20]},
                        sectors=sectors, error=error, page=page, page_size=PUBLIC_PAGE, query=query)


def _sector_values() -> list[str]:
    try:
        fact = _rulebook().facts.fact(SUBJECT, "system.sector")
    except (NotFound, KeyError, AttributeError):
        return []
    return [str(v) for v in (fact.values or [])]


@router.get("/register/trusted")
def public_trusted(request: Request, sector: Annotated[str, Query(max_length=64)] = "") -> Response:
    platform = _platform(request)
    with platform.db.reader() as session:
        try:
            entries = [e.to_public_dict() for e in _governance(platform).trusted_list(session, sector=_clean(sector))]
        except InvalidInput:
            entries = []
    return _public_page(request, "public_register_trusted.html", entries=entries, sector=sector.strip(),
                        sectors=_sector_values())


@router.get("/register/{register_id}")
def public_system(request: Request, register_id: Annotated[str, Path(max_length=64)]) -> Response:
    platform = _platform(request)
    if not register_id.isascii() or not register_id.replace("-", "").isalnum():
        return error_page(request, 404)
    try:
        with platform.db.reader() as session:
            system = plain(_register(platform).public_system(session, register_id))
    except (NotFound, InvalidInput):
        return error_page(request, 404)
    catalogue = fact_index(fact_groups())
    return _public_page(request, "public_register_system.html", system=system, catalogue=catalogue)


@router.get("/law")
def law_page(request: Request, profile: Annotated[str, Query(max_length=16)] = "") -> Response:
    book = _rulebook()
    exported = plain(book.export())
    packs = exported.get("packs", []) if isinstance(exported, Mapping) else exported
    return _public_page(request, "law.html", active="law", packs=packs, digest=getattr(book, "digest", ""),
                        only=profile if profile in ("law", "stricter") else "")


def effect_text(effect: Mapping[str, Any] | None) -> str:
    """An effect in a compact, language-neutral form (``risk_level: high``, ``prohibition: emotion_recognition``)."""
    if not effect:
        return "—"
    kind = effect.get("type", "")
    rest = [f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in effect.items()
            if k != "type" and not isinstance(v, Mapping)]
    deadline = effect.get("deadline")
    if isinstance(deadline, Mapping):
        rest.append(f"deadline: {deadline.get('working_days')} wd")
    return f"{kind}" + (f" — {'; '.join(rest)}" if rest else "")


def citation_text(citation: Mapping[str, Any] | None) -> str:
    """``AI law, Art. 17, p. 1`` (the legal id is shown beside it)."""
    if not citation:
        return ""
    parts = [str(citation.get("law") or "")]
    if citation.get("article"):
        parts.append(f"Art. {citation['article']}")
    if citation.get("paragraph"):
        parts.append(f"p. {citation['paragraph']}")
    return ", ".join(p for p in parts if p)


# Registered last: the fixed paths (/ai-systems/sandbox, /maturity, /regulator) must match before the id.
router.add_api_route("/ai-systems/{system_id}", system_page, methods=["GET"])

from .routes import templates as _templates  # noqa: E402  (the shared Jinja environment)

_templates.globals.update(ai_effect_text=effect_text, ai_citation_text=citation_text)

__all__ = ["citation_text", "effect_text", "flatten", "read_facts", "router", "trend_chart"]

