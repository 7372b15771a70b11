"""The facts catalogue (``qorgau/rules/facts.yaml``): every fact a rule condition may read, per subject.

A fact is ``namespace.name`` (``functions.emotion_recognition``); the namespaces are CEL's top-level variables.
The catalogue is also the questionnaire: groups in order, each fact with its question in kk/ru/en.

Values as CEL sees them: bool, int, string and enum as themselves, enum_list as a list of strings, date as a
CEL ``timestamp`` at 00:00 UTC of that day (compare with ``timestamp("2026-01-18T00:00:00Z")`` or ``as_of``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from operator import itemgetter
from pathlib import Path
from typing import Any

from ..core.errors import InvalidInput
from .loader import SUBJECTS, RulePackError, canonical_digest, line_at, load_yaml, plain, schema_errors

FACT_TYPES = ("bool", "enum", "enum_list", "int", "string", "date")
_BOOL = frozenset({bool})
_QUICK = {"bool": bool, "int": int, "string": str}
DEFAULT_CATALOG = Path(__file__).with_name("facts.yaml")

_I18N = {"type": "object", "required": ["kk", "ru", "en"], "additionalProperties": False,
         "properties": {lang: {"type": "string", "minLength": 1} for lang in ("kk", "ru", "en")}}
_NAME = "[a-z_][a-z0-9_]*"
CATALOG_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["subjects"], "additionalProperties": False,
    "properties": {"subjects": {
        "type": "object", "additionalProperties": False,
        "properties": {s: {"$ref": "#/$defs/subject"} for s in SUBJECTS}}},
    "$defs": {
        "subject": {"type": "object", "required": ["groups"], "additionalProperties": False,
                    "properties": {"groups": {"type": "array", "items": {"$ref": "#/$defs/group"}}}},
        "group": {"type": "object", "required": ["id", "title", "facts"], "additionalProperties": False,
                  "properties": {"id": {"type": "string", "pattern": f"^{_NAME}$"}, "title": _I18N,
                                 "facts": {"type": "array", "items": {"$ref": "#/$defs/fact"}}}},
        "fact": {"type": "object", "required": ["path", "type", "question"], "additionalProperties": False,
                 "properties": {
                     "path": {"type": "string", "pattern": f"^{_NAME}\\.{_NAME}$"},
                     "type": {"enum": list(FACT_TYPES)},
                     "values": {"type": "array", "minItems": 1, "uniqueItems": True,
                                "items": {"type": "string", "minLength": 1}},
                     "question": _I18N, "help": _I18N,
                     "required": {"type": "boolean"}, "public": {"type": "boolean"}},
                 "if": {"properties": {"type": {"enum": ["enum", "enum_list"]}}},
                 "then": {"required": ["values"]},
                 "else": {"not": {"required": ["values"]}}},
    },
}


@dataclass(frozen=True)
class Fact:
    path: str
    type: str
    values: tuple[str, ...] | None
    question: Mapping[str, str]
    help: Mapping[str, str] | None = None
    required: bool = False
    public: bool = False

    @property
    def namespace(self) -> str:
        return self.path.split(".", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "type": self.type, "values": list(self.values) if self.values else None,
                "question": dict(self.question), "help": dict(self.help) if self.help else None,
                "required": self.required, "public": self.public}


@dataclass(frozen=True)
class FactGroup:
    id: str
    title: Mapping[str, str]
    facts: tuple[Fact, ...]


@dataclass(frozen=True)
class SubjectFacts:
    groups: tuple[FactGroup, ...]
    by_path: Mapping[str, Fact] = field(repr=False)
    #: {namespace: {name: Fact}} and the namespaces holding a date fact (the hot path of evaluate reads these)
    tree: Mapping[str, Mapping[str, Fact]] = field(default_factory=dict, repr=False)
    date_namespaces: frozenset[str] = frozenset()
    bool_names: Mapping[str, frozenset[str]] = field(default_factory=dict, repr=False)
    #: {namespace: {name: the Python type a valid value has (bool, int, str) or the set of enum values}}
    quick: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)
    #: ``prepare(facts) -> (given, context) | None``: validation and the CEL context in one pass, compiled for this
    #: subject's facts (see :func:`compile_prepare`); None means "not the usual shape or not valid": the caller
    #: then runs :meth:`FactCatalog.validate` (which raises the precise error) and :meth:`FactCatalog.to_cel`.
    prepare: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, groups: tuple[FactGroup, ...]) -> "SubjectFacts":
        by_path = {f.path: f for g in groups for f in g.facts}
        tree: dict[str, dict[str, Fact]] = {}
        for fact in by_path.values():
            tree.setdefault(fact.namespace, {})[fact.path.split(".", 1)[1]] = fact
        return cls(groups=groups, by_path=by_path, tree=tree,
                   date_namespaces=frozenset(f.namespace for f in by_path.values() if f.type == "date"),
                   bool_names={ns: frozenset(n for n, f in facts.items() if f.type == "bool")
                               for ns, facts in tree.items()},
                   quick={ns: {n: _QUICK[f.type] if f.type in _QUICK else frozenset(f.values or ())
                               for n, f in facts.items() if f.type in _QUICK or f.type == "enum"}
                          for ns, facts in tree.items()},
                   prepare=compile_prepare(tree))

    @property
    def namespaces(self) -> frozenset[str]:
        return frozenset(self.tree)


@dataclass(frozen=True)
class FactCatalog:
    """The facts catalogue: ``subjects[subject].groups`` in questionnaire order; :meth:`fact` looks one up."""

    subjects: Mapping[str, SubjectFacts]
    digest: str = ""
    path: Path | None = None

    def fact(self, subject: str, path: str) -> Fact | None:
        facts = self.subjects.get(subject)
        return facts.by_path.get(path) if facts else None

    def namespaces(self, subject: str) -> frozenset[str]:
        facts = self.subjects.get(subject)
        return facts.namespaces if facts else frozenset()

    def facts(self, subject: str) -> list[Fact]:
        facts = self.subjects.get(subject)
        return list(facts.by_path.values()) if facts else []

    def validate(self, subject: str, facts: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
        """Check given facts against the catalogue; returns them nested, None values dropped, dates as dates.

        Unknown paths and wrong types raise :class:`InvalidInput` naming ``facts.<path>`` (never the value)."""
        if facts is None:
            return {}
        if not isinstance(facts, Mapping):
            raise InvalidInput("facts must be a mapping of namespaces to facts", field="facts")
        known = self.subjects.get(subject)
        if known is None:
            raise InvalidInput(f"no facts are defined for subject {subject!r}", field="subject")
        tree = known.tree
        bool_names = known.bool_names
        result: dict[str, dict[str, Any]] = {}
        for key, values in facts.items():
            if values.__class__ is dict and key.__class__ is str and "." not in key:
                # the usual shape, checked first; a namespace of yes/no answers is checked in bulk
                names = bool_names.get(key)
                if names is not None and values.keys() <= names and set(map(type, values.values())) <= _BOOL:
                    if values:
                        result.setdefault(key, {}).update(values)
                    continue
                items: Any = values.items()
            elif "." in str(key):  # a flat path
                key = str(key)
                items = ((key.split(".", 1)[1], values),)
                key = key.split(".", 1)[0]
            elif values is None:
                continue  # an absent namespace
            elif isinstance(values, Mapping):
                items = values.items()
            else:
                raise InvalidInput("must be a mapping of facts", field=f"facts.{key}")
            known_ns = tree.get(key, {})
            quick = known.quick.get(key, {})
            ns_values = result.get(key)
            if ns_values is None:
                ns_values = result[key] = {}
            for name, value in items:
                q = quick.get(name)  # the common cases, checked inline
                if q is not None:
                    if q.__class__ is frozenset:
                        if value.__class__ is str and value in q:
                            ns_values[name] = value
                            continue
                    elif value.__class__ is q:
                        ns_values[name] = value
                        continue
                fact = known_ns.get(name)
                if fact is None:
                    raise InvalidInput(f"unknown fact `{key}.{name}` for subject {subject}",
                                       field=f"facts.{key}.{name}")
                if value is None:
                    continue
                ns_values[name] = _check_value(fact, value)
        return result

    def to_cel(self, subject: str, facts: Mapping[str, Mapping[str, Any]], as_of: date) -> dict[str, Any]:
        """The CEL context: every namespace of the subject as a map (so ``has(ns.x)`` works), plus ``as_of``."""
        known = self.subjects.get(subject)
        context: dict[str, Any] = {ns: {} for ns in known.tree} if known else {}
        dated = known.date_namespaces if known else frozenset()
        for ns, values in facts.items():
            # validated values are CEL values already, except dates; the maps are shared, never changed
            context[ns] = {k: _cel_value(v) for k, v in values.items()} if ns in dated else values
        context["as_of"] = _timestamp(as_of)
        return context


def compile_prepare(tree: Mapping[str, Mapping[str, Fact]]) -> Any:
    """One Python function for a subject, generated from its catalogue: ``prepare(facts)`` checks nested facts
    (``{namespace: {name: value}}``, plain dicts) with one straight-line type check per fact and precomputed
    enum sets, and returns ``(given, context)`` — what :meth:`FactCatalog.validate` and :meth:`FactCatalog.to_cel`
    would return (``as_of`` aside) — or None for anything else (flat keys, other mappings or sequences, a date as
    text, an unknown fact, a wrong type): the generic path then decides, and raises its precise error.

    It accepts only what ``validate`` accepts and gives equal values (None dropped, enum lists de-duplicated in
    order, dates as dates). A namespace's dict is shared with the caller when nothing needs changing: the result
    is for one evaluation, read only and never kept (``validate`` copies)."""
    if not tree:
        return None
    consts: dict[str, Any] = {}
    lines = ["def _prepare(facts):"] + check_lines(tree, consts, fact_locals=None)
    # the CEL context: every namespace present (so has() works; the empty map is shared, never changed)
    lines += ["    context = {" + ", ".join(f"{ns!r}: V{i}" for i, ns in enumerate(tree)) + "}",
              "    return given, context"]
    exec(compile("\n".join(lines), "<facts check>", "exec"), consts)  # noqa: S102 — generated from the catalogue
    return consts["_prepare"]


def check_lines(tree: Mapping[str, Mapping[str, Fact]], consts: dict[str, Any],
                fact_locals: dict[tuple[str, str], str] | None) -> list[str]:
    """The body of a compiled facts check (see :func:`compile_prepare`), reading ``facts``: it returns None
    unless the facts are valid nested plain dicts; else it leaves ``given`` (the validated namespaces) and
    ``V<i>`` (namespace i as CEL sees it: its map with dates as timestamps, or an empty map). With
    ``fact_locals`` (filled in here) every fact also gets a local holding its CEL value, or ERR when missing —
    the rule conditions compiled with the check read those (``loader.compile_conditions(..., facts=...)``)."""
    from .loader import ERR

    consts.update({"_date": date, "_ts": _timestamp, "_BOOLS": _BOOL, "NS": frozenset(tree), "_E": {}, "ERR": ERR,
                   "_bool": bool, "_int": int, "_str": str, "_list": list, "_dict": dict, "_set": set,
                   "_map": map, "_type": type, "_len": len})
    lines = ["    if not facts.keys() <= NS:", "        return None", "    given = {}"]
    for i, (ns, facts) in enumerate(tree.items()):
        consts[f"N{i}"] = frozenset(facts)
        dated = any(f.type == "date" for f in facts.values())
        lines += [f"    d = facts.get({ns!r})", "    if d is not None:",
                  f"        if d.__class__ is not _dict or not d.keys() <= N{i}:", "            return None"]
        body = ["g = d.get", "none = False", "copy = False"]
        absent = []
        for j, (name, fact) in enumerate(facts.items()):
            local = f"F{i}_{j}"
            if fact_locals is not None:
                fact_locals[(ns, name)] = local
                absent.append(f"{local} = ERR")
            body += [f"v = g({name!r})", "if v is None:", f"    none = none or {name!r} in d"]
            if fact_locals is not None:
                body += [f"    {local} = ERR"]
            if fact.type in ("bool", "int", "string"):
                body += [f"elif v.__class__ is not _{_QUICK[fact.type].__name__}:", "    return None"]
            elif fact.type == "enum":
                consts[f"E{i}_{j}"] = frozenset(fact.values or ())
                body += [f"elif v.__class__ is not _str or v not in E{i}_{j}:", "    return None"]
            elif fact.type == "enum_list":
                consts[f"E{i}_{j}"] = frozenset(fact.values or ())
                body += ["elif v.__class__ is not _list:", "    return None", "else:",
                         "    for x in v:", f"        if x.__class__ is not _str or x not in E{i}_{j}:",
                         "            return None",
                         "    if _len(v) > 1 and _len(_set(v)) != _len(v):",
                         "        if not copy:", "            d, copy = _dict(d), True",
                         f"        d[{name!r}] = v = list(dict.fromkeys(v))"]
            else:  # date: only a date object here; text and datetimes go the generic way
                body += ["elif v.__class__ is not _date:", "    return None"]
            if fact_locals is not None:
                body += ["else:" if fact.type != "enum_list" else "if v is not None:",
                         f"    {local} = _ts(v)" if fact.type == "date" else f"    {local} = v"]
        body += ["if none:", "    d = {k: v for k, v in d.items() if v is not None}"]
        indent = "        "
        if all(f.type == "bool" for f in facts.values()):
            # a namespace of yes/no answers: checked in bulk first; when every one is answered, read all at once
            if fact_locals is not None and len(facts) > 1:
                consts[f"IG{i}"] = itemgetter(*facts)
                lines += [f"{indent}if _len(d) == {len(facts)} and _set(_map(_type, d.values())) <= _BOOLS:",
                          f"{indent}    {', '.join(fact_locals[(ns, n)] for n in facts)} = IG{i}(d)",
                          f"{indent}else:"]
                indent += "    "
            elif fact_locals is None:
                lines += [f"{indent}if not _set(_map(_type, d.values())) <= _BOOLS:"]
                indent += "    "
        lines += [indent + line for line in body]
        lines += [f"        given[{ns!r}] = d"]
        if dated:
            lines += [f"        V{i} = {{k: _ts(v) if v.__class__ is _date else v for k, v in d.items()}}"]
        else:
            lines += [f"        V{i} = d"]
        lines += ["    else:", f"        V{i} = _E"] + [f"        {a}" for a in absent]
    return lines


def facts_from_flat(flat: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"functions.emotion_recognition": True}`` → ``{"functions": {"emotion_recognition": True}}``."""
    nested: dict[str, dict[str, Any]] = {}
    for path, value in flat.items():
        if not isinstance(path, str) or path.count(".") != 1 or not all(path.split(".")):
            raise InvalidInput("a fact path is namespace.name", field=f"facts.{path}")
        ns, name = path.split(".")
        nested.setdefault(ns, {})[name] = value
    return nested


def _check_value(fact: Fact, value: Any) -> Any:
    where = f"facts.{fact.path}"
    if fact.type == "bool":
        if not isinstance(value, bool):
            raise InvalidInput("must be true or false", field=where)
        return value
    if fact.type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput("must be an integer", field=where)
        return value
    if fact.type == "string":
        if not isinstance(value, str):
            raise InvalidInput("must be text", field=where)
        return value
    if fact.type == "enum":
        if not isinstance(value, str) or value not in (fact.values or ()):
            raise InvalidInput(f"must be one of {', '.join(fact.values or ())}", field=where)
        return value
    if fact.type == "enum_list":
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
            raise InvalidInput("must be a list", field=where)
        items = list(value)
        if any(not isinstance(v, str) or v not in (fact.values or ()) for v in items):
            raise InvalidInput(f"items must be among {', '.join(fact.values or ())}", field=where)
        return sorted(set(items), key=items.index)
    if fact.type == "date":
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise InvalidInput("must be a date (YYYY-MM-DD)", field=where)
    raise InvalidInput("unsupported fact type", field=where)  # pragma: no cover - the schema forbids it


def _timestamp(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def _cel_value(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, (list, tuple)):
        return list(value)
    return value


def empty_catalog() -> FactCatalog:
    return FactCatalog(subjects={}, digest=canonical_digest({}), path=None)


def load_catalog(path: Path = DEFAULT_CATALOG) -> FactCatalog:
    """Read and check the facts catalogue; errors are :class:`RulePackError` with file and line."""
    tree = load_yaml(path)
    errors = schema_errors(tree, CATALOG_SCHEMA, file=path)
    if errors:
        raise errors[0]
    subjects: dict[str, SubjectFacts] = {}
    for subject, body in tree["subjects"].items():
        by_path: dict[str, Fact] = {}
        groups: list[FactGroup] = []
        group_ids: set[str] = set()
        for gi, group in enumerate(body["groups"]):
            if group["id"] in group_ids:
                raise RulePackError(f"duplicate group id {group['id']!r}", file=path,
                                    line=line_at(tree, ["subjects", subject, "groups", gi, "id"]),
                                    field=f"subjects.{subject}.groups.{gi}.id")
            group_ids.add(group["id"])
            facts: list[Fact] = []
            for fi, raw in enumerate(group["facts"]):
                if raw["path"] in by_path:
                    raise RulePackError(f"duplicate fact `{raw['path']}`", file=path,
                                        line=line_at(tree, ["subjects", subject, "groups", gi, "facts", fi, "path"]),
                                        field=f"subjects.{subject}.groups.{gi}.facts.{fi}.path")
                fact = Fact(path=raw["path"], type=raw["type"],
                            values=tuple(raw["values"]) if raw.get("values") else None,
                            question=dict(raw["question"]), help=dict(raw["help"]) if raw.get("help") else None,
                            required=bool(raw.get("required", False)), public=bool(raw.get("public", False)))
                by_path[fact.path] = fact
                facts.append(fact)
            groups.append(FactGroup(id=group["id"], title=dict(group["title"]), facts=tuple(facts)))
        subjects[subject] = SubjectFacts.of(tuple(groups))
    return FactCatalog(subjects=subjects, digest=canonical_digest(plain(tree)), path=path)
