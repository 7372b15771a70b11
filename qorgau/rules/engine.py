"""The rule book: every rule pack, checked as a whole, evaluated against the facts of one subject as of a date.

Evaluation is pure (no I/O): the rules in force for (subject, profiles, period) are cached with one compiled CEL
program that evaluates all their conditions at once; when facts are missing, rules are evaluated one by one so
those whose outcome does not depend on the missing facts still decide (CEL's ``false && <error>`` is false) and
the others are *undecided*, each with the fact paths that would decide it.

The process-wide book (:func:`rulebook`) is replaced only by a fully valid new one (:func:`reload_rulebook`).
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from itertools import compress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ..core.errors import InvalidInput, NotFound
from .facts import DEFAULT_CATALOG, FactCatalog, _timestamp, empty_catalog, facts_from_flat, load_catalog
from .loader import (
    AUTONOMY,
    LEVELS,
    PROFILES,
    ERR,
    Citation,
    Example,
    Pack,
    Rule,
    RulePackError,
    compile_conditions,
    pack_files,
    parse_pack,
)

DEFAULT_PACKS_DIR = Path(__file__).with_name("packs")


@dataclass(frozen=True)
class Finding:
    """A rule that fired: what it requires or forbids and why (its citation)."""

    rule_id: str
    pack_id: str
    effect: Mapping[str, Any]
    citation: Citation
    status: str
    title: Mapping[str, str]
    explanation: Mapping[str, str]

    @classmethod
    def of(cls, rule: Rule) -> "Finding":
        return cls(rule_id=rule.id, pack_id=rule.pack_id, effect=rule.effect, citation=rule.citation,
                   status=rule.status, title=rule.title, explanation=rule.explanation)

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "pack_id": self.pack_id, "effect": dict(self.effect),
                "citation": self.citation.to_dict(), "status": self.status, "title": dict(self.title),
                "explanation": dict(self.explanation)}


@dataclass(frozen=True)
class Deadline:
    code: str
    working_days: int
    rule_id: str
    citation: Citation

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "working_days": self.working_days, "rule_id": self.rule_id,
                "citation": self.citation.to_dict()}


@dataclass(frozen=True)
class ExampleResult:
    rule_id: str
    name: str
    expected: bool
    got: bool | None
    error: str | None
    ok: bool

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "name": self.name, "expected": self.expected, "got": self.got,
                "error": self.error, "ok": self.ok}


@dataclass
class Evaluation:
    """What the law says about one subject's facts as of a date."""

    as_of: date
    profiles: tuple[str, ...]
    digest: str
    subject: str
    fired: list[Finding] = field(default_factory=list)
    undecided: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    missing_facts: list[str] = field(default_factory=list)
    risk_level: str | None = None
    risk_reasons: list[Finding] = field(default_factory=list)
    autonomy_level: str | None = None
    autonomy_reasons: list[Finding] = field(default_factory=list)
    prohibitions: list[Finding] = field(default_factory=list)
    autonomy_violations: list[Finding] = field(default_factory=list)
    obligations: list[Finding] = field(default_factory=list)
    notices: list[Finding] = field(default_factory=list)
    deadlines: list[Finding] = field(default_factory=list)  # deadline rules whose condition holds (an event)
    #: whether any rule classifying risk (``risk_level``; for AI systems, the AI law's) is in force on ``as_of``
    #: for this subject and these profiles. When not, ``risk_level`` (and, with no autonomy rule in force,
    #: ``autonomy_level``) is None: there is no risk class to claim, not "minimal" — e.g. an AI system as of a
    #: date before the AI law.
    law_in_force: bool = True

    @property
    def prohibited(self) -> bool:
        return bool(self.prohibitions or self.autonomy_violations)

    @property
    def decided(self) -> bool:
        return not self.undecided

    def to_dict(self) -> dict[str, Any]:
        def findings(items: list[Finding]) -> list[dict[str, Any]]:
            return [f.to_dict() for f in items]

        return {
            "as_of": self.as_of.isoformat(), "profiles": list(self.profiles), "digest": self.digest,
            "subject": self.subject, "law_in_force": self.law_in_force, "prohibited": self.prohibited,
            "risk_level": self.risk_level, "risk_reasons": findings(self.risk_reasons),
            "autonomy_level": self.autonomy_level, "autonomy_reasons": findings(self.autonomy_reasons),
            "prohibitions": findings(self.prohibitions), "autonomy_violations": findings(self.autonomy_violations),
            "obligations": findings(self.obligations), "notices": findings(self.notices),
            "deadlines": findings(self.deadlines), "fired": findings(self.fired),
            "undecided": [{"rule_id": rid, "missing_facts": list(paths)} for rid, paths in self.undecided],
            "missing_facts": list(self.missing_facts),
        }


#: the effect types a finding is sorted into, in the order of _InForce.kinds (anything else: _OTHER)
_KINDS = ("prohibition", "risk_level", "autonomy_level", "autonomy_constraint", "obligation", "notice", "deadline")
_OTHER = len(_KINDS)


class _InForce:
    """The rules in force for one (subject, profiles, period), and the plan to evaluate them, built once: one
    Python function evaluating every condition of the common subset (``loader.translate_condition``), one CEL
    program for the others, each rule's (shared, immutable) finding and the kind of effect it has."""

    __slots__ = ("rules", "fast", "fast_fn", "slow", "slow_facts", "slow_program", "findings", "kinds",
                 "risk_in_force", "all_fast", "run")

    def __init__(self, rules: list[Rule], findings: Mapping[str, Finding], facts: Any = None) -> None:
        import cel

        self.rules = rules
        self.fast = [i for i, r in enumerate(rules) if r.fast is not None]
        self.slow = [i for i, r in enumerate(rules) if r.fast is None]
        self.fast_fn = (compile_conditions([rules[i].fast for i in self.fast], bools_only=True)  # type: ignore[misc]
                        if self.fast else None)
        self.slow_facts = frozenset(p for i in self.slow for p in rules[i].facts_used)
        self.slow_program = (cel.compile("[" + ", ".join(f"({rules[i].when})" for i in self.slow) + "]")
                             if self.slow else None)
        self.findings = tuple(findings[r.id] for r in rules)
        self.kinds = tuple(_KINDS.index(r.effect["type"]) if r.effect["type"] in _KINDS else _OTHER for r in rules)
        self.risk_in_force = any(r.effect["type"] == "risk_level" for r in rules)
        self.all_fast = bool(rules) and not self.slow
        # the usual case, every condition in Python: one function checks the facts and decides every rule
        self.run = (compile_conditions([r.fast for r in rules], bools_only=True, facts=facts.tree)  # type: ignore[misc]
                    if self.all_fast and facts is not None and facts.tree else None)


class _Plan:
    """What evaluate needs for one (subject, profiles), found once: the profiles in canonical order, the
    subject's facts and compiled checker, and per day the rules in force and ``as_of`` as a CEL timestamp."""

    __slots__ = ("subject", "profiles", "known", "prepare", "bounds", "days")

    def __init__(self, subject: str, profiles: tuple[str, ...], known: Any, bounds: list[date]) -> None:
        self.subject, self.profiles, self.known, self.bounds = subject, profiles, known, bounds
        self.prepare = known.prepare if known is not None else None
        self.days: dict[date, tuple[_InForce, Any]] = {}

    def day(self, book: "RuleBook", as_of: date) -> tuple[_InForce, Any]:
        hit = (book._in_force(self.subject, self.profiles, as_of), _timestamp(as_of))
        if len(self.days) < 4096:  # dates seen; bounded
            self.days[as_of] = hit
        return hit


def _day(as_of: Any) -> date:
    """A date as is; an aware datetime as its Kazakhstan date; anything else is refused."""
    from datetime import datetime

    from ..core.calendar import local_date

    if isinstance(as_of, datetime):
        try:
            return local_date(as_of)
        except ValueError:
            raise InvalidInput("a naive datetime has no time zone; give a date", field="as_of") from None
    if not isinstance(as_of, date):
        raise InvalidInput("must be a date", field="as_of")
    return as_of


_PROFILES: dict[Any, tuple[str, ...]] = {("law",): ("law",), ("stricter",): ("law", "stricter"),
                                         ("law", "stricter"): ("law", "stricter"),
                                         ("stricter", "law"): ("law", "stricter")}


def normalize_profiles(profiles: Iterable[str] | str | None) -> tuple[str, ...]:
    """"law" is always on; "stricter" adds the [plan] proposals. Order is canonical."""
    if profiles is None:
        return ("law",)
    if isinstance(profiles, str):
        profiles = (profiles,)
    chosen = set(profiles)
    unknown = chosen - set(PROFILES)
    if unknown:
        raise InvalidInput(f"unknown profile; choose from {', '.join(PROFILES)}", field="profiles")
    chosen.add("law")
    return tuple(p for p in PROFILES if p in chosen)


def default_profiles() -> tuple[str, ...]:
    """The profiles the settings turn on (``rules_stricter_profile``)."""
    from ..core.settings import get_settings

    return ("law", "stricter") if get_settings().rules_stricter_profile else ("law",)


class RuleBook:
    """All rule packs and the facts catalogue, checked together. Immutable; safe to share between threads."""

    def __init__(self, packs: Sequence[Pack], facts: FactCatalog) -> None:
        self.packs: tuple[Pack, ...] = tuple(sorted(packs, key=lambda p: p.id))
        self.facts = facts
        digest = hashlib.sha256()
        digest.update(b"facts:" + facts.digest.encode() + b"\n")
        for pack in self.packs:
            digest.update(f"pack:{pack.id}:{pack.digest}\n".encode())
        self.digest = digest.hexdigest()
        self._rules: dict[str, Rule] = {}
        for pack in self.packs:
            for rule in pack.rules:
                self._rules[rule.id] = rule
        self._findings = {rule_id: Finding.of(rule) for rule_id, rule in self._rules.items()}  # immutable, shared
        # period boundaries per subject: the set of rules in force changes only there
        self._bounds: dict[str, list[date]] = {}
        for rule in self._rules.values():
            marks = self._bounds.setdefault(rule.subject, [])
            marks.append(rule.effective_from)
            if rule.effective_until is not None:
                marks.append(date.fromordinal(rule.effective_until.toordinal() + 1))
        for subject, marks in self._bounds.items():
            self._bounds[subject] = sorted(set(marks))
        self._cache: dict[tuple[str, tuple[str, ...], int], _InForce] = {}
        self._cache_lock = threading.Lock()
        self._plans: dict[tuple[str, Any], _Plan] = {}

    def __repr__(self) -> str:
        return f"RuleBook(packs={len(self.packs)}, rules={len(self._rules)}, digest={self.digest[:12]})"

    # --- lookup --------------------------------------------------------------------------------------------

    def rule(self, rule_id: str) -> Rule:
        try:
            return self._rules[rule_id]
        except KeyError:
            raise NotFound("no rule with this id", field="rule_id") from None

    def pack(self, pack_id: str) -> Pack:
        for pack in self.packs:
            if pack.id == pack_id:
                return pack
        raise NotFound("no rule pack with this id", field="pack_id")

    def rules(self, *, subject: str | None = None, profiles: Iterable[str] | str | None = ("law",),
              as_of: date | None = None) -> list[Rule]:
        """Rules of the given profiles (all subjects unless one is named), in force on ``as_of`` if given."""
        chosen = normalize_profiles(profiles)
        as_of = _day(as_of) if as_of is not None else None
        return [r for pack in self.packs if pack.profile in chosen and (subject is None or pack.subject == subject)
                for r in pack.rules if as_of is None or r.in_force(as_of)]

    def deadline(self, code: str, *, as_of: date, profiles: Iterable[str] | str | None = ("law",)) -> Deadline:
        """The deadline rule ``code`` in force on ``as_of``; a stricter-profile one wins when that profile is on."""
        chosen = normalize_profiles(profiles)
        as_of = _day(as_of)
        found: dict[str, Rule] = {}
        for rule in self.rules(profiles=chosen, as_of=as_of):
            if rule.effect_type == "deadline" and rule.effect.get("code") == code:
                found.setdefault(rule.profile, rule)
        rule = found.get("stricter") or found.get("law")
        if rule is None:
            raise NotFound(f"no deadline {code!r} in force on {as_of.isoformat()}", field="code")
        return Deadline(code=code, working_days=int(rule.effect["working_days"]), rule_id=rule.id,
                        citation=rule.citation)

    # --- evaluation ----------------------------------------------------------------------------------------

    def _in_force(self, subject: str, profiles: tuple[str, ...], as_of: date) -> _InForce:
        period = bisect.bisect_right(self._bounds.get(subject, []), as_of)
        key = (subject, profiles, period)
        hit = self._cache.get(key)
        if hit is None:
            hit = _InForce(self.rules(subject=subject, profiles=profiles, as_of=as_of), self._findings,
                           self.facts.subjects.get(subject))
            with self._cache_lock:
                self._cache.setdefault(key, hit)
        return hit

    def _plan(self, subject: str, profiles: Any) -> "_Plan":
        chosen = _PROFILES.get(profiles) if profiles.__class__ is tuple else None  # type: ignore[call-overload]
        if chosen is None:
            chosen = normalize_profiles(profiles)
        known = self.facts.subjects.get(subject)
        if known is None and subject not in self._bounds:
            raise InvalidInput("unknown subject", field="subject")
        plan = _Plan(subject, chosen, known, self._bounds.get(subject, []))
        if profiles.__class__ is tuple and len(self._plans) < 64:
            with self._cache_lock:
                plan = self._plans.setdefault((subject, profiles), plan)
        return plan

    def evaluate(self, facts: Mapping[str, Any] | None, *, subject: str = "ai_system", as_of: date,
                 profiles: Iterable[str] | str | None = ("law",)) -> Evaluation:
        """Evaluate every rule of ``subject`` in force on ``as_of`` against ``facts`` (nested, or flat dotted
        keys). Absent or None facts are missing. Bad facts raise :class:`InvalidInput` naming ``facts.<path>``."""
        if as_of.__class__ is not date:
            as_of = _day(as_of)
        plan = self._plans.get((subject, profiles)) if profiles.__class__ is tuple else None
        if plan is None:
            plan = self._plan(subject, profiles)
        day = plan.days.get(as_of)
        if day is None:
            day = plan.day(self, as_of)
        in_force, stamp = day
        chosen = plan.profiles
        known = plan.known
        usual = facts.__class__ is dict
        # the usual case: nested plain dicts, every condition in Python — one compiled function checks the facts
        # against the catalogue and decides every rule; None when the facts are in another shape or it refuses
        # them: then the generic validation decides (and raises the precise error)
        if in_force.run is not None and usual:
            usual = False  # its check is the compiled one below too: don't run it twice
            checked = in_force.run(facts, stamp)
            if checked is not None:
                given, outcomes = checked
                if ERR not in outcomes:  # every rule decided (the usual case)
                    return _combine_decided(as_of, chosen, self.digest, subject, in_force, outcomes)
                rules = in_force.rules
                for i, value in enumerate(outcomes):
                    if value is ERR:
                        outcomes[i] = _missing(rules[i], given)
                return _combine(Evaluation(as_of=as_of, profiles=chosen, digest=self.digest, subject=subject),
                                in_force, outcomes)
        prepared = plan.prepare(facts) if plan.prepare is not None and usual else None
        if prepared is not None:
            given, context = prepared
            context["as_of"] = stamp
        else:
            given = self.facts.validate(subject, facts) if known is not None else {}
            context = self.facts.to_cel(subject, given, as_of)
        if in_force.all_fast:
            outcomes: list[Any] = in_force.fast_fn(context)
            if ERR not in outcomes:  # every rule decided (the usual case)
                return _combine_decided(as_of, chosen, self.digest, subject, in_force, outcomes)
            rules = in_force.rules
            for i, value in enumerate(outcomes):
                if value is ERR:
                    outcomes[i] = _missing(rules[i], given)
        else:
            outcomes = _decide(in_force, context, given)
        return _combine(Evaluation(as_of=as_of, profiles=chosen, digest=self.digest, subject=subject),
                        in_force, outcomes)

    # --- embedded examples ---------------------------------------------------------------------------------

    def test(self) -> list[ExampleResult]:
        """Run every embedded example of every rule; ``ok`` when the rule fires exactly when it should."""
        results = []
        for pack in self.packs:
            for rule in pack.rules:
                for example in rule.examples:
                    results.append(run_example(rule, example, self.facts))
        return results

    # --- export --------------------------------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """The law as code, JSON-able: packs with their rules, the facts catalogue's digest and the book's."""
        return {"digest": self.digest, "facts_digest": self.facts.digest,
                "packs": [pack.to_dict() for pack in self.packs]}

    def export_html(self, lang: str = "en") -> str:
        from .html import export_html

        return export_html(self, lang)


def run_example(rule: Rule, example: Example, catalog: FactCatalog) -> ExampleResult:
    as_of = example.as_of or rule.effective_from
    got: bool | None
    error = None
    if not rule.in_force(as_of):
        got = False
    else:
        context = catalog.to_cel(rule.subject, example.facts, as_of)
        try:
            value = rule.program.execute(context)
        except Exception as exc:  # a missing fact (KeyError/RuntimeError) or a type error
            got, error = None, _eval_error(exc, rule, example.facts)
        else:
            if isinstance(value, bool):
                got = value
            else:
                got, error = None, f"the condition gave {type(value).__name__}, not true/false"
    return ExampleResult(rule_id=rule.id, name=example.name, expected=example.fires, got=got, error=error,
                         ok=got is example.fires)


def _eval_error(exc: Exception, rule: Rule, facts: Mapping[str, Mapping[str, Any]]) -> str:
    present = {f"{ns}.{k}" for ns, values in facts.items() for k in values}
    missing = [p for p in rule.facts_used if p not in present]
    if missing and isinstance(exc, (KeyError, RuntimeError)):
        return "undecided: missing " + ", ".join(missing)
    return f"{type(exc).__name__} while evaluating the condition"


def _cel_context(variables: Mapping[str, Any]) -> Any:
    """Facts converted to CEL values once per evaluation (a plain dict would be converted on every execute,
    which costs more than evaluating the conditions themselves)."""
    import cel

    context = cel.Context()
    for name, value in variables.items():
        context.add_variable(name, value)
    return context


def _missing(rule: Rule, given: Mapping[str, Mapping[str, Any]]) -> tuple[str, ...]:
    """The facts a rule reads that were not given."""
    out = []
    for path in rule.facts_used:
        ns, name = path.split(".", 1)
        if name not in given.get(ns, ()):
            out.append(path)
    return tuple(out)


def _decide(in_force: _InForce, variables: dict[str, Any],
            given: Mapping[str, Mapping[str, Any]]) -> list[bool | tuple[str, ...]]:
    """Per rule: True/False when decided, or the missing fact paths (a tuple) when not."""
    rules = in_force.rules
    outcomes: list[bool | tuple[str, ...]] = [()] * len(rules)
    if in_force.fast_fn is not None:
        for i, value in zip(in_force.fast, in_force.fast_fn(variables)):
            outcomes[i] = value if value is True or value is False else _missing(rules[i], given)
    if not in_force.slow:
        return outcomes
    present = frozenset(f"{ns}.{name}" for ns, values in given.items() for name in values)
    context = _cel_context(variables)
    if in_force.slow_facts <= present:
        try:
            values = in_force.slow_program.execute(context)
        except Exception:  # a type error somewhere: one by one, so the rest still decide
            values = None
        if isinstance(values, list) and len(values) == len(in_force.slow) and all(
                isinstance(v, bool) for v in values):
            for i, value in zip(in_force.slow, values):
                outcomes[i] = value
            return outcomes
    for i in in_force.slow:
        rule = rules[i]
        try:
            value = rule.program.execute(context)
        except Exception:
            value = None
        outcomes[i] = value if isinstance(value, bool) else tuple(p for p in rule.facts_used if p not in present)
    return outcomes


def _combine_decided(as_of: date, profiles: tuple[str, ...], digest: str, subject: str, in_force: _InForce,
                     outcomes: list[Any]) -> Evaluation:
    """The evaluation when every rule decided (each outcome true or false): the fired rules' shared findings
    sorted by kind, risk and autonomy from them. The same result :func:`_combine` gives, with less work."""
    fired = list(compress(in_force.findings, outcomes))
    prohibitions: list[Finding] = []
    risk_reasons: list[Finding] = []
    autonomy_reasons: list[Finding] = []
    constraints: list[Finding] = []
    obligations: list[Finding] = []
    notices: list[Finding] = []
    deadlines: list[Finding] = []
    buckets = (prohibitions, risk_reasons, autonomy_reasons, constraints, obligations, notices, deadlines, [])
    for finding, kind in zip(fired, compress(in_force.kinds, outcomes)):
        buckets[kind].append(finding)
    if not in_force.risk_in_force:
        risk = None
    elif risk_reasons:
        if len(risk_reasons) > 1:
            risk_reasons.sort(key=_risk_order)
        risk = risk_reasons[0].effect["level"]
    else:
        risk = "minimal"
    autonomy = None
    if autonomy_reasons:
        if len(autonomy_reasons) > 1:
            autonomy_reasons.sort(key=_autonomy_order)
        autonomy = autonomy_reasons[0].effect["level"]
    violations = [f for f in constraints if autonomy in f.effect["forbid"]] if autonomy is not None else []
    return Evaluation(as_of=as_of, profiles=profiles, digest=digest, subject=subject, fired=fired, undecided=[],
                      missing_facts=[], risk_level=risk, risk_reasons=risk_reasons, autonomy_level=autonomy,
                      autonomy_reasons=autonomy_reasons, prohibitions=prohibitions, autonomy_violations=violations,
                      obligations=obligations, notices=notices, deadlines=deadlines,
                      law_in_force=in_force.risk_in_force)


def _risk_order(f: Finding) -> tuple[int, str]:
    return -LEVELS.index(f.effect["level"]), f.rule_id


def _autonomy_order(f: Finding) -> tuple[int, str]:
    return -AUTONOMY.index(f.effect["level"]), f.rule_id


def _combine(ev: Evaluation, in_force: _InForce, outcomes: list[bool | tuple[str, ...]]) -> Evaluation:
    """The evaluation when some rules are undecided (missing facts) or run in CEL."""
    undecided_risk: list[Rule] = []
    undecided_autonomy: list[Rule] = []
    constraints: list[tuple[Rule, Finding]] = []
    missing: set[str] = set()
    for rule, finding, outcome in zip(in_force.rules, in_force.findings, outcomes):
        if outcome is False:
            continue
        kind = rule.effect["type"]
        if outcome is True:
            ev.fired.append(finding)
            if kind == "prohibition":
                ev.prohibitions.append(finding)
            elif kind == "risk_level":
                ev.risk_reasons.append(finding)
            elif kind == "autonomy_level":
                ev.autonomy_reasons.append(finding)
            elif kind == "autonomy_constraint":
                constraints.append((rule, finding))
            elif kind == "obligation":
                ev.obligations.append(finding)
            elif kind == "notice":
                ev.notices.append(finding)
            elif kind == "deadline":
                ev.deadlines.append(finding)
        elif outcome is not False:
            ev.undecided.append((rule.id, outcome))  # type: ignore[arg-type]
            missing.update(outcome)  # type: ignore[arg-type]
            if kind == "risk_level":
                undecided_risk.append(rule)
            elif kind == "autonomy_level":
                undecided_autonomy.append(rule)
    # L-AI-RISK: the highest level any fired rule gives; "minimal" when none fired. Undecided while a rule
    # that could still raise it is undecided.
    # No risk rule in force at all (e.g. before the AI law): no risk class, and the evaluation says so.
    ev.risk_reasons.sort(key=_risk_order)
    risk = ev.risk_reasons[0].effect["level"] if ev.risk_reasons else "minimal"
    if any(LEVELS.index(r.effect["level"]) > LEVELS.index(risk) for r in undecided_risk):
        risk = None
    ev.law_in_force = in_force.risk_in_force
    ev.risk_level = risk if in_force.risk_in_force else None
    # L-AI-AUTONOMY: the level the fired autonomy rule gives (the highest, should several fire); None when no
    # rule fired or a higher one is undecided.
    ev.autonomy_reasons.sort(key=_autonomy_order)
    autonomy = ev.autonomy_reasons[0].effect["level"] if ev.autonomy_reasons else None
    if undecided_autonomy and (autonomy is None or any(
            AUTONOMY.index(r.effect["level"]) > AUTONOMY.index(autonomy) for r in undecided_autonomy)):
        autonomy = None
    ev.autonomy_level = autonomy
    # An autonomy constraint is violated when the system's autonomy is one the rule forbids here; while the
    # autonomy is undecided, so is the constraint.
    autonomy_missing = tuple(sorted({p for r in undecided_autonomy for p in _ev_missing(ev, r.id)}))
    for rule, finding in constraints:
        if autonomy is not None:
            if autonomy in rule.effect["forbid"]:
                ev.autonomy_violations.append(finding)
        elif undecided_autonomy:
            ev.undecided.append((rule.id, autonomy_missing))
    ev.missing_facts = sorted(missing)
    return ev


def _ev_missing(ev: Evaluation, rule_id: str) -> tuple[str, ...]:
    for rid, paths in ev.undecided:
        if rid == rule_id:
            return paths
    return ()


# --- building a book -------------------------------------------------------------------------------------------


def load_rulebook(paths: Iterable[Path] | None = None, *, facts: Path | None = None) -> RuleBook:
    """Build and check a new book from pack files/directories (default: the built-in packs and the settings'
    ``rules_extra_dirs``) and a facts catalogue (default ``qorgau/rules/facts.yaml``). Raises RulePackError."""
    if paths is None:
        paths = default_pack_paths()
    facts_path = facts if facts is not None else DEFAULT_CATALOG
    if facts is None and not DEFAULT_CATALOG.exists():
        catalog = empty_catalog()
    else:
        catalog = load_catalog(facts_path)
    files = pack_files(paths)
    packs = [parse_pack(path, catalog) for path in files]
    check_book(packs, catalog)
    return RuleBook(packs, catalog)


def default_pack_paths() -> list[Path]:
    from ..core.settings import get_settings

    paths = [DEFAULT_PACKS_DIR] if DEFAULT_PACKS_DIR.exists() else []
    return paths + list(get_settings().rules_extra_dirs)


def check_book(packs: Sequence[Pack], catalog: FactCatalog) -> None:
    """Checks across packs: unique pack and rule ids, no conflicting deadlines, no conflicting autonomy levels."""
    pack_ids: dict[str, Pack] = {}
    for pack in packs:
        if pack.id in pack_ids:
            raise RulePackError(f"duplicate pack id {pack.id!r} (also in {pack_ids[pack.id].path})",
                                file=pack.path, line=pack.line, field="pack")
        pack_ids[pack.id] = pack
    seen: dict[str, Rule] = {}
    for pack in packs:
        for rule in pack.rules:
            if rule.id in seen:
                other = seen[rule.id]
                raise RulePackError(f"duplicate rule id (also at {other.file}:{other.line})", file=rule.file,
                                    line=rule.line, rule_id=rule.id, field="id")
            seen[rule.id] = rule
    rules = list(seen.values())
    # two deadline rules with the same code, in force on a common day, same profile, different working days
    deadlines = [r for r in rules if r.effect_type == "deadline"]
    for i, a in enumerate(deadlines):
        for b in deadlines[:i]:
            if (a.profile == b.profile and a.effect["code"] == b.effect["code"]
                    and a.effect["working_days"] != b.effect["working_days"] and _overlap(a, b)):
                raise RulePackError(
                    f"conflicting deadline {a.effect['code']!r}: {a.effect['working_days']} working days here, "
                    f"{b.effect['working_days']} in rule {b.id} ({b.file}:{b.line}) in force on the same days",
                    file=a.file, line=a.line, rule_id=a.id, field="effect.working_days")
    # two autonomy_level rules with different levels firing on one embedded example
    autonomy = [r for r in rules if r.effect_type == "autonomy_level"]
    for rule in autonomy:
        for example in rule.examples:
            as_of = example.as_of or rule.effective_from
            fired = []
            for other in autonomy:
                if other.subject != rule.subject or other.profile not in ("law", rule.profile):
                    continue
                result = run_example(other, Example(example.name, example.facts, True, as_of), catalog)
                if result.got:
                    fired.append(other)
            levels = {r.effect["level"] for r in fired}
            if len(levels) > 1:
                names = ", ".join(f"{r.id} ({r.effect['level']})" for r in fired)
                raise RulePackError(f"conflicting autonomy levels on example {example.name!r}: {names} all fire",
                                    file=rule.file, line=example.line or rule.line, rule_id=rule.id,
                                    field="effect.level")


def _overlap(a: Rule, b: Rule) -> bool:
    a_end = a.effective_until or date.max
    b_end = b.effective_until or date.max
    return a.effective_from <= b_end and b.effective_from <= a_end


# --- the process-wide book -------------------------------------------------------------------------------------

_book: RuleBook | None = None
_lock = threading.Lock()


def rulebook() -> RuleBook:
    """The current book (the built-in packs plus ``rules_extra_dirs``, loaded on first use)."""
    book = _book
    if book is not None:
        return book
    with _lock:
        if _book is None:
            _set(load_rulebook())
        assert _book is not None
        return _book


def reload_rulebook(paths: list[Path] | None = None, *, facts: Path | None = None) -> RuleBook:
    """Build a new book and make it current only if all of it is valid; on error the current book stays."""
    with _lock:
        book = load_rulebook(paths, facts=facts)
        _set(book)
        return book


def _set(book: RuleBook) -> None:
    global _book
    _book = book


__all__ = ["Deadline", "Evaluation", "ExampleResult", "Finding", "RuleBook", "default_profiles", "facts_from_flat",
           "load_rulebook", "normalize_profiles", "reload_rulebook", "rulebook", "run_example"]
