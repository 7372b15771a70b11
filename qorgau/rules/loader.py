"""Reading rule packs: YAML that remembers line numbers, the pack schema, the CEL conditions.

Every problem is a :class:`RulePackError` naming the file and the line of the offending key (or of the rule),
so whoever edits a pack sees at once where to look. Nothing here touches the current rule book: the engine
builds a whole new book from what this module returns and swaps it in only when everything is valid.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import InvalidInput

SCHEMA_PATH = Path(__file__).with_name("pack.schema.json")
SUBJECTS = ("ai_system", "processing", "incident")
PROFILES = ("law", "stricter")
STATUSES = ("text", "report", "plan")
LEVELS = ("minimal", "medium", "high")            # risk levels, ordered (L-AI-RISK)
AUTONOMY = ("low", "medium", "high")              # autonomy levels, ordered (L-AI-AUTONOMY)
#: Variables a condition may read besides the fact namespaces: the evaluation date (a CEL timestamp).
BUILTIN_VARIABLES = ("as_of",)


class RulePackError(InvalidInput):
    """A rule pack (or the facts catalogue) is invalid. ``file``, ``line`` (1-based or None), ``rule_id``."""

    code = "invalid_rule_pack"

    def __init__(self, message: str, *, file: str | Path | None = None, line: int | None = None,
                 rule_id: str | None = None, field: str | None = None) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.rule_id = rule_id
        self.detail = message
        where = self.file or "<rules>"
        if line is not None:
            where += f":{line}"
        text = f"{where}: rule {rule_id}: {message}" if rule_id else f"{where}: {message}"
        super().__init__(text, field=field)


# --- YAML with line numbers ------------------------------------------------------------------------------------


class LineDict(dict):  # type: ignore[type-arg]
    """A mapping read from YAML: ``line`` is where it starts, ``key_lines[key]`` where each key is."""

    line: int = 0
    key_lines: dict[Any, int]


class LineList(list):  # type: ignore[type-arg]
    """A sequence read from YAML: ``line`` is where it starts, ``item_lines[i]`` where each item is."""

    line: int = 0
    item_lines: list[int]


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]  # libyaml when present
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    data = LineDict()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a plain value",
                                                    key_node.start_mark) from None
        if key in data:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = key_node.start_mark.line + 1
    return data


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    data = LineList(loader.construct_object(child, deep=True) for child in node.value)
    data.line = node.start_mark.line + 1
    data.item_lines = [child.start_mark.line + 1 for child in node.value]
    return data


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def load_yaml(path: Path) -> Any:
    """Parse one YAML file keeping line numbers; syntax errors become :class:`RulePackError` with the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RulePackError("not UTF-8 text", file=path) from None
    except OSError as exc:
        raise RulePackError(f"cannot read the file ({exc.strerror or 'I/O error'})", file=path) from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 — a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise RulePackError(f"YAML syntax: {problem}", file=path,
                            line=mark.line + 1 if mark is not None else None) from None
    except yaml.YAMLError as exc:
        raise RulePackError(f"YAML syntax: {exc.__class__.__name__}", file=path) from None


def line_at(tree: Any, path: Sequence[Any]) -> int | None:
    """The line of the deepest node of ``path`` (keys and list indexes) that exists in ``tree``."""
    line = getattr(tree, "line", None)
    node = tree
    for step in path:
        if isinstance(node, LineDict) and step in node:
            line = node.key_lines.get(step, line)
            node = node[step]
        elif isinstance(node, LineList) and isinstance(step, int) and 0 <= step < len(node):
            line = node.item_lines[step]
            node = node[step]
        else:
            break
    return line


def plain(value: Any) -> Any:
    """The JSON form of a YAML tree: dates as ISO strings, plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def canonical_digest(value: Any) -> str:
    """sha256 of the canonical JSON of ``value`` (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def pack_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def schema_errors(tree: Any, schema: Mapping[str, Any], *, file: Path,
                  rule_of: Any = None) -> list[RulePackError]:
    """Validate the JSON form of ``tree``; each error names the line of the offending key."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    found: list[RulePackError] = []
    for error in sorted(validator.iter_errors(plain(tree)), key=lambda e: (list(map(str, e.absolute_path)))):
        where = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            # point at the first unknown key itself, not at the mapping holding it
            known = error.schema.get("properties", {})
            extra = [k for k in error.instance if k not in known]
            if extra:
                where.append(extra[0])
        dotted = ".".join(str(p) for p in where) or None
        rule_id = rule_of(tree, where) if rule_of else None
        found.append(RulePackError(f"{dotted or 'document'}: {_schema_message(error)}", file=file,
                                   line=line_at(tree, where), rule_id=rule_id, field=dotted))
    return found


def _schema_message(error: Any) -> str:
    """jsonschema's message without echoing long values."""
    if error.validator == "required":
        return error.message.split(" is a required", 1)[0] + " is required"
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown key(s)")
    if error.validator in ("enum", "const"):
        allowed = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return "must be one of " + ", ".join(map(str, allowed))
    if error.validator == "oneOf" and isinstance(error.instance, Mapping) and "type" in error.instance:
        return f"invalid fields for an effect of type {error.instance.get('type')!r}"
    message = error.message
    return message if len(message) <= 200 else message[:197] + "…"


# --- conditions ----------------------------------------------------------------------------------------------

_STRING = re.compile(r"""(?s)[rRbB]{0,2}('''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")""")
_DOTTED = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\.([A-Za-z_]\w*)(?!\s*\()")
_IDENT = re.compile(r"(?<![\w.])([A-Za-z_]\w*)(?!\s*\()")
_CEL_WORDS = {"true", "false", "null", "in", "int", "uint", "double", "string", "bytes", "bool", "list", "map",
              "type", "null_type", "timestamp", "duration"}


def facts_in(condition: str, namespaces: Iterable[str]) -> tuple[str, ...]:
    """Fact paths (``namespace.name``) a condition reads, string literals ignored; sorted, unique.

    A dotted name whose first part is a fact namespace counts; so does one whose first part is not a builtin
    variable (then it is an unknown fact and the pack is rejected)."""
    stripped = _STRING.sub('""', condition)
    used = {f"{a}.{b}" for a, b in _DOTTED.findall(stripped) if a not in BUILTIN_VARIABLES}
    return tuple(sorted(used))


@dataclass(frozen=True)
class Citation:
    law: str
    article: str | None = None
    paragraph: str | None = None
    legal_id: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"law": self.law, "article": self.article, "paragraph": self.paragraph, "legal_id": self.legal_id}

    def __str__(self) -> str:
        parts = [self.law]
        if self.article:
            parts.append(f"art. {self.article}")
        if self.paragraph:
            parts.append(f"p. {self.paragraph}")
        return ", ".join(parts) + (f" ({self.legal_id})" if self.legal_id else "")


@dataclass(frozen=True)
class Example:
    name: str
    facts: Mapping[str, Any]
    fires: bool
    as_of: date | None
    line: int | None = None


@dataclass(frozen=True, eq=False)
class Rule:
    """One rule of a pack: a CEL condition over the facts and the legal effect when it holds."""

    id: str
    pack_id: str
    profile: str
    subject: str
    citation: Citation
    status: str
    title: Mapping[str, str]
    explanation: Mapping[str, str]
    effective_from: date
    effective_until: date | None
    when: str
    effect: Mapping[str, Any]
    examples: tuple[Example, ...]
    relaxable: bool
    facts_used: tuple[str, ...]
    file: str = ""
    line: int | None = None
    program: Any = field(default=None, repr=False, compare=False)
    #: the condition translated to Python (see "a fast path" below), or None: the CEL library evaluates it
    fast: tuple[str, frozenset[str]] | None = field(default=None, repr=False, compare=False)

    def in_force(self, as_of: date) -> bool:
        return self.effective_from <= as_of and (self.effective_until is None or as_of <= self.effective_until)

    @property
    def effect_type(self) -> str:
        return str(self.effect["type"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "pack": self.pack_id, "profile": self.profile, "subject": self.subject,
            "citation": self.citation.to_dict(), "status": self.status, "title": dict(self.title),
            "explanation": dict(self.explanation), "effective_from": self.effective_from.isoformat(),
            "effective_until": self.effective_until.isoformat() if self.effective_until else None,
            "when": self.when, "effect": plain(self.effect), "relaxable": self.relaxable,
            "facts_used": list(self.facts_used),
            "examples": [{"name": e.name, "facts": plain(e.facts), "fires": e.fires,
                          "as_of": e.as_of.isoformat() if e.as_of else None} for e in self.examples],
        }


@dataclass(frozen=True, eq=False)
class Pack:
    id: str
    version: str
    subject: str
    profile: str
    title: Mapping[str, str]
    source: Mapping[str, str]
    path: Path
    digest: str
    rules: tuple[Rule, ...]
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "subject": self.subject, "profile": self.profile,
                "not_yet_law": self.profile == "stricter", "title": dict(self.title), "source": dict(self.source), "digest": self.digest,
                "file": self.path.name, "rules": [r.to_dict() for r in self.rules]}


def _rule_of(tree: Any, where: Sequence[Any]) -> str | None:
    if len(where) >= 2 and where[0] == "rules" and isinstance(tree, Mapping):
        rules = tree.get("rules")
        if isinstance(rules, list) and isinstance(where[1], int) and where[1] < len(rules):
            rule = rules[where[1]]
            if isinstance(rule, Mapping) and isinstance(rule.get("id"), str):
                return rule["id"]
    return None


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def parse_pack(path: Path, catalog: Any) -> Pack:
    """Read and check one pack file against the schema, CEL and the facts catalogue (not cross-pack checks)."""
    import cel

    tree = load_yaml(path)
    errors = schema_errors(tree, pack_schema(), file=path, rule_of=_rule_of)
    if errors:
        raise errors[0]
    subject = tree["subject"]
    profile = tree.get("profile", "law")
    namespaces = catalog.namespaces(subject)
    rules: list[Rule] = []
    for index, raw in enumerate(tree["rules"]):
        rule_id = raw["id"]
        rule_line = tree["rules"].item_lines[index]

        def at(*keys: Any, _i: int = index) -> int | None:
            return line_at(tree, ["rules", _i, *keys])

        when = raw["when"].strip()
        try:
            program = cel.compile(when)
        except ValueError as exc:
            raise RulePackError(f"CEL syntax in `when`: {_cel_message(exc)}", file=path, line=at("when"),
                                rule_id=rule_id, field=f"rules.{index}.when") from None
        used = facts_in(when, namespaces)
        for fact in used:
            if catalog.fact(subject, fact) is None:
                raise RulePackError(f"unknown fact `{fact}` (not in the facts catalogue for subject {subject})",
                                    file=path, line=at("when"), rule_id=rule_id, field=f"rules.{index}.when")
        for var in program.variables():
            if var not in namespaces and var not in BUILTIN_VARIABLES:
                raise RulePackError(f"unknown fact namespace `{var}` (subject {subject} has: "
                                    f"{', '.join(sorted(namespaces)) or 'none'})", file=path, line=at("when"),
                                    rule_id=rule_id, field=f"rules.{index}.when")
        effective_from = _as_date(raw["effective_from"])
        effective_until = _as_date(raw.get("effective_until"))
        if effective_until is not None and effective_until < effective_from:
            raise RulePackError("effective_until is before effective_from", file=path,
                                line=at("effective_until"), rule_id=rule_id, field=f"rules.{index}.effective_until")
        examples: list[Example] = []
        for j, ex in enumerate(raw["examples"]):
            ex_line = raw["examples"].item_lines[j]
            try:
                facts = catalog.validate(subject, ex.get("facts") or {})
            except InvalidInput as exc:
                raise RulePackError(f"example {ex['name']!r}: {exc.message}", file=path,
                                    line=line_at(tree, ["rules", index, "examples", j, "facts"]) or ex_line,
                                    rule_id=rule_id, field=f"rules.{index}.examples.{j}.{exc.field}") from None
            examples.append(Example(name=ex["name"], facts=facts, fires=bool(ex["fires"]),
                                    as_of=_as_date(ex.get("as_of")), line=ex_line))
        if not any(e.fires for e in examples) or all(e.fires for e in examples):
            missing = "firing" if not any(e.fires for e in examples) else "non-firing"
            raise RulePackError(f"needs at least one {missing} example (fires: {str(missing == 'firing').lower()})",
                                file=path, line=at("examples"), rule_id=rule_id, field=f"rules.{index}.examples")
        effect = raw["effect"]
        cit = raw["citation"]
        rules.append(Rule(
            id=rule_id, pack_id=tree["pack"], profile=profile, subject=subject,
            citation=Citation(law=cit["law"], article=_opt_str(cit.get("article")),
                              paragraph=_opt_str(cit.get("paragraph")), legal_id=cit.get("legal_id")),
            status=raw["status"], title=dict(raw["title"]), explanation=dict(raw["explanation"]),
            effective_from=effective_from, effective_until=effective_until, when=when,
            effect=plain(effect), examples=tuple(examples),
            relaxable=bool(effect.get("relaxable", False)), facts_used=used,
            file=str(path), line=rule_line, program=program,
            fast=_verified_fast(when, program, namespaces, subject, examples, catalog, effective_from)))
    return Pack(id=tree["pack"], version=str(tree["version"]), subject=subject, profile=profile,
                title=dict(tree["title"]), source=dict(tree["source"]), path=path,
                digest=canonical_digest(tree), rules=tuple(rules), line=getattr(tree, "line", None))


def _verified_fast(when: str, program: Any, namespaces: Iterable[str], subject: str,
                   examples: Sequence[Example], catalog: Any,
                   effective_from: date) -> tuple[str, frozenset[str]] | None:
    """The Python translation of a condition, kept only if it gives what CEL gives on every embedded example
    (true, false or an error) — a guard against any difference between the two."""
    fast = translate_condition(when, namespaces)
    if fast is None:
        return None
    try:
        fn = compile_conditions([fast])
    except SyntaxError:  # pragma: no cover - the translator emits valid Python
        return None
    for example in examples:
        context = catalog.to_cel(subject, example.facts, example.as_of or effective_from)
        try:
            expected = program.execute(context)
        except Exception:
            expected = ERR
        got = fn(context)[0]
        if (expected if isinstance(expected, bool) else ERR) is not (got if isinstance(got, bool) else ERR):
            return None
    return fast


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _cel_message(exc: Exception) -> str:
    """The first line of a CEL parse error with its line:col, not the whole echo of the expression."""
    text = str(exc)
    match = re.search(r"<input>:(\d+):(\d+): (.*)", text)
    if match:
        return f"line {match.group(1)} col {match.group(2)} of the condition: {match.group(3).strip()[:160]}"
    return text.splitlines()[0][:200] if text else "invalid expression"


def pack_files(paths: Iterable[Path]) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` under the given directories (recursively) or the given files, sorted per root."""
    found: list[Path] = []
    for root in paths:
        root = Path(root)
        if root.is_dir():
            found.extend(sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()))
        elif root.is_file():
            found.append(root)
        else:
            raise RulePackError("no such file or directory", file=root)
    seen: set[Path] = set()
    unique = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


# --- a fast path for simple conditions -------------------------------------------------------------------------
#
# The CEL library converts every fact from Python to CEL on each evaluation, which costs far more than the
# conditions themselves. Conditions written in the common subset (facts, literals, lists, parentheses, has(),
# !, &&, ||, ==, !=, <, <=, >, >=, in) are therefore also translated to Python with CEL's semantics: errors (a
# missing fact, a type mismatch) are a value, ERR, and && / || are commutative over them (false && ERR is false,
# true || ERR is true) exactly as in CEL. Anything else (functions, macros, arithmetic, escapes in strings) runs
# in the CEL library only. The engine checks both agree on every embedded example before using the translation.


class _Err:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ERR"


ERR: Any = _Err()


class Unsupported(Exception):
    """The condition is outside the subset the Python fast path handles."""


def _kind(v: Any) -> str:
    t = type(v)
    if t is bool:
        return "bool"
    if t is int or t is float:
        return "num"
    if t is str:
        return "str"
    if v is None:
        return "null"
    if t is list:
        return "list"
    if t is dict:
        return "map"
    from datetime import datetime, timedelta

    if isinstance(v, datetime):
        return "ts"
    if isinstance(v, timedelta):
        return "dur"
    return "other"


def cel_eq(a: Any, b: Any) -> Any:
    if a is ERR or b is ERR:
        return ERR
    ka, kb = _kind(a), _kind(b)
    if ka != kb or ka == "other":
        return False
    if ka == "list":
        if len(a) != len(b):
            return False
        for x, y in zip(a, b):
            r = cel_eq(x, y)
            if r is not True:
                return r
        return True
    if ka == "map":
        if a.keys() != b.keys():
            return False
        for k in a:
            r = cel_eq(a[k], b[k])
            if r is not True:
                return r
        return True
    return a == b


def cel_ne(a: Any, b: Any) -> Any:
    r = cel_eq(a, b)
    return r if r is ERR else not r


def _ordered(a: Any, b: Any) -> bool:
    ka = _kind(a)
    return ka == _kind(b) and ka in ("bool", "num", "str", "ts", "dur")


def cel_lt(a: Any, b: Any) -> Any:
    return a < b if _ordered(a, b) else ERR


def cel_le(a: Any, b: Any) -> Any:
    return a <= b if _ordered(a, b) else ERR


def cel_gt(a: Any, b: Any) -> Any:
    return a > b if _ordered(a, b) else ERR


def cel_ge(a: Any, b: Any) -> Any:
    return a >= b if _ordered(a, b) else ERR


def cel_in(x: Any, coll: Any) -> Any:
    if x is ERR or coll is ERR:
        return ERR
    t = type(coll)
    if t is list:
        return any(cel_eq(x, e) is True for e in coll)
    if t is dict:  # map keys are bool, int, uint or string
        if type(x) not in (bool, int, str):
            return ERR
        return any(cel_eq(x, k) is True for k in coll)
    return ERR


def cel_not(x: Any) -> Any:
    return (not x) if type(x) is bool else ERR


def cel_and(*xs: Any) -> Any:
    result: Any = True
    for x in xs:
        if x is False:
            return False
        if x is not True:
            result = ERR
    return result


def cel_or(*xs: Any) -> Any:
    result: Any = False
    for x in xs:
        if x is True:
            return True
        if x is not False:
            result = ERR
    return result


def cel_neg(x: Any) -> Any:
    return -x if _kind(x) == "num" else ERR


def cel_member(obj: Any, name: str) -> Any:
    return obj.get(name, ERR) if type(obj) is dict else ERR


def cel_has(obj: Any, name: str) -> Any:
    return (name in obj) if type(obj) is dict else ERR


def cel_list(*xs: Any) -> Any:
    return ERR if any(x is ERR for x in xs) else list(xs)


def cel_map(*pairs: Any) -> Any:
    if any(x is ERR for x in pairs):
        return ERR
    return {pairs[i]: pairs[i + 1] for i in range(0, len(pairs), 2)}


FAST_HELPERS: dict[str, Any] = {
    "ERR": ERR, "_EMPTY": {}, "_eq": cel_eq, "_ne": cel_ne, "_lt": cel_lt, "_le": cel_le, "_gt": cel_gt, "_ge": cel_ge,
    "_in": cel_in, "_not": cel_not, "_and": cel_and, "_or": cel_or, "_neg": cel_neg, "_member": cel_member,
    "_has": cel_has, "_list": cel_list, "_map": cel_map,
}

_TOKEN = re.compile(r"""\s*(?:
    (?P<num>\d+\.\d+(?:[eE][+-]?\d+)?|\d+(?![\w.]))
  | (?P<str>"[^"\\\n]*"|'[^'\\\n]*')
  | (?P<op>&&|\|\||==|!=|<=|>=|[<>!()\[\]{},.:-])
  | (?P<ident>[A-Za-z_]\w*)
)""", re.X)
_RELATIONS = {"==": "_eq", "!=": "_ne", "<": "_lt", "<=": "_le", ">": "_gt", ">=": "_ge", "in": "_in"}
_RESERVED = {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
             "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}


def _tokens(src: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    src = src.rstrip()
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m or m.end() == pos:
            raise Unsupported(src[pos:pos + 10])
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


_NOCONST: Any = object()


class _Translator:
    """A recursive-descent parser of the CEL subset, producing a Python expression over FAST_HELPERS.

    Each method returns (python code, the constant value when the expression is a literal, else _NOCONST), so
    the common shapes get cheaper code: membership in a literal list of strings, equality with a string."""

    def __init__(self, src: str, namespaces: frozenset[str] | set[str]) -> None:
        self.toks = _tokens(src)
        self.i = 0
        self.namespaces = namespaces
        self.used: set[str] = set()
        self.temps = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise Unsupported(value or "end")
        self.i += 1
        return tok

    def translate(self) -> str:
        code, _ = self.or_()
        if self.peek() is not None:
            raise Unsupported("trailing input")
        return code

    def or_(self) -> tuple[str, Any]:
        parts = [self.and_()]
        while self.peek() == ("op", "||"):
            self.take()
            parts.append(self.and_())
        if len(parts) == 1:
            return parts[0]
        return self.logical([c for c, _ in parts], decisive="True"), _NOCONST

    def and_(self) -> tuple[str, Any]:
        parts = [self.relation()]
        while self.peek() == ("op", "&&"):
            self.take()
            parts.append(self.relation())
        if len(parts) == 1:
            return parts[0]
        return self.logical([c for c, _ in parts], decisive="False"), _NOCONST

    def logical(self, parts: list[str], decisive: str) -> str:
        """CEL's commutative && (decisive False) or || (decisive True), inlined: the decisive value wins
        wherever it is; else all the other boolean gives it; else ERR. Temporaries are unique per node."""
        other = "True" if decisive == "False" else "False"
        names = []
        for _ in parts:
            self.temps += 1
            names.append(f"_l{self.temps}")
        first = " or ".join(f"({n} := {c}) is {decisive}" for n, c in zip(names, parts))
        rest = " and ".join(f"{n} is {other}" for n in names)
        return f"({decisive} if ({first}) else ({other} if ({rest}) else ERR))"

    def relation(self) -> tuple[str, Any]:
        left = self.unary()
        while True:
            tok = self.peek()
            if tok is None or tok[1] not in _RELATIONS or (tok[0] == "ident") != (tok[1] == "in"):
                return left
            self.take()
            right = self.unary()
            left = (_relation(tok[1], left, right), _NOCONST)

    def unary(self) -> tuple[str, Any]:
        tok = self.peek()
        if tok in (("op", "!"), ("op", "-")):
            count = 0
            while self.peek() == tok:
                self.take()
                count += 1
            operand = self.member()  # CEL: a run of ! (or of -) applies to a member, and pairs cancel out
            if tok[1] == "-":
                # only on a number literal: the CEL library's minus on other values has quirks of its own
                if type(operand[1]) not in (int, float):
                    raise Unsupported("minus")
                value = operand[1] if count % 2 == 0 else -operand[1]
                return repr(value), value
            if count % 2 == 0:
                return operand
            # inline: _t is assigned and read at once, so nested uses cannot interfere
            return f"(not _t if (_t := {operand[0]}).__class__ is bool else ERR)", _NOCONST
        return self.member()

    def member(self) -> tuple[str, Any]:
        kind, value = self.take()
        const: Any = _NOCONST
        variable = False
        if kind == "num":
            const = float(value) if "." in value or "e" in value.lower() else int(value)
            expr = repr(const)
        elif kind == "str":
            const = value[1:-1]
            expr = repr(const)
        elif kind == "ident" and value in ("true", "false", "null"):
            const = {"true": True, "false": False, "null": None}[value]
            expr = repr(const)
        elif kind == "ident" and value == "has" and self.peek() == ("op", "("):
            self.take("(")
            obj = self.primary_ident()
            self.take(".")
            field = self.take()
            if field[0] != "ident":
                raise Unsupported("has")
            self.take(")")
            return f"_has({obj}, {field[1]!r})", _NOCONST
        elif kind == "ident":
            if value in _RESERVED or self.peek() == ("op", "("):
                raise Unsupported(value)
            expr = self.variable(value)
            variable = True
        elif value == "(":
            expr, const = self.or_()
            self.take(")")
        elif value == "[":
            items = self.items("]")
            if all(c is not _NOCONST for _, c in items):
                const = [c for _, c in items]
            expr = f"_list({', '.join(c for c, _ in items)})"
        elif value == "{":
            pairs: list[str] = []
            while self.peek() != ("op", "}"):
                pairs.append(self.or_()[0])
                self.take(":")
                pairs.append(self.or_()[0])
                if self.peek() == ("op", ","):
                    self.take()
                else:
                    break
            self.take("}")
            expr = f"_map({', '.join(pairs)})"
        else:
            raise Unsupported(value)
        while self.peek() == ("op", "."):
            self.take()
            name = self.take()
            if name[0] != "ident" or self.peek() == ("op", "("):
                raise Unsupported("method call")
            if variable:  # a fact: m_<ns> is the namespace's map ({} when it is not one, so .get gives ERR)
                expr = f"m_{expr[2:]}.get({name[1]!r}, ERR)"
            else:
                expr = f"_member({expr}, {name[1]!r})"
            variable = False
            const = _NOCONST
        if self.peek() in (("op", "["), ("op", "(")):
            raise Unsupported("index or call")
        return expr, const

    def primary_ident(self) -> str:
        kind, value = self.take()
        if kind != "ident" or value in _RESERVED:
            raise Unsupported("has")
        return self.variable(value)

    def variable(self, name: str) -> str:
        self.used.add(name)
        return f"v_{name}"

    def items(self, close: str) -> list[tuple[str, Any]]:
        items: list[tuple[str, Any]] = []
        while self.peek() != ("op", close):
            items.append(self.or_())
            if self.peek() == ("op", ","):
                self.take()
            else:
                break
        self.take(close)
        return items


def _relation(op: str, left: tuple[str, Any], right: tuple[str, Any]) -> str:
    (lcode, lconst), (rcode, rconst) = left, right
    if op == "in" and isinstance(rconst, list) and rconst and all(type(c) is str for c in rconst):
        return f"_in_strs({lcode}, {tuple(sorted(set(rconst)))!r})"  # a tuple literal: a constant, built once
    if op == "in" and type(lconst) is str:
        return f"_str_in({lcode}, {rcode})"
    if op in ("==", "!=") and (type(lconst) is str or type(rconst) is str):
        code, lit = (rcode, lconst) if type(lconst) is str else (lcode, rconst)
        return f"{'_eq_str' if op == '==' else '_ne_str'}({code}, {lit!r})"
    return f"{_RELATIONS[op]}({lcode}, {rcode})"


def cel_in_strs(x: Any, strings: tuple[str, ...]) -> Any:
    """``x in ["a", "b"]``: true only for one of these strings (CEL's equality across types is false)."""
    if x is ERR:
        return ERR
    return x.__class__ is str and x in strings


def cel_str_in(text: str, coll: Any) -> Any:
    """``"a" in coll`` for a string literal: a list's items or a map's keys (a string equals only a string)."""
    t = coll.__class__
    if t is list or t is dict:
        return text in coll
    return ERR


def cel_eq_str(x: Any, text: str) -> Any:
    if x is ERR:
        return ERR
    return x.__class__ is str and x == text


def cel_ne_str(x: Any, text: str) -> Any:
    if x is ERR:
        return ERR
    return not (x.__class__ is str and x == text)


FAST_HELPERS.update({"_in_strs": cel_in_strs, "_str_in": cel_str_in, "_eq_str": cel_eq_str,
                     "_ne_str": cel_ne_str})


def translate_condition(when: str, namespaces: Iterable[str]) -> tuple[str, frozenset[str]] | None:
    """The condition as a Python expression over ``v_<variable>`` locals (and the variables it reads), or None
    when it uses anything outside the subset."""
    try:
        translator = _Translator(when, frozenset(namespaces))
        return translator.translate(), frozenset(translator.used)
    except (Unsupported, RecursionError):
        return None


_BOOLISH_CALLS = frozenset({"_eq", "_ne", "_lt", "_le", "_gt", "_ge", "_in", "_has", "_in_strs", "_str_in", "_eq_str",
                            "_ne_str"})


def compile_conditions(exprs: Sequence[tuple[str, frozenset[str]]], *, bools_only: bool = False,
                       facts: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
    """One Python function ``f(variables) -> [value, …]`` evaluating every translated condition.

    Every fact read and every subexpression that several conditions share (``failure.impact in [...]``,
    ``!oversight.human_final_choice``) is computed once, into a local, before the conditions: the helpers are
    pure and total (they give ERR, never raise), so computing them eagerly changes no value. With ``bools_only``
    a condition giving anything but true/false gives ERR instead (the engine treats both alike: undecided), so
    the caller can tell "all decided" by ``ERR not in values``.

    With ``facts`` (a subject's catalogue, ``{namespace: {name: Fact}}``) the function is
    ``f(facts, as_of_timestamp) -> (given, [value, …]) | None`` instead: it checks the given nested facts as
    :func:`qorgau.rules.facts.compile_prepare` does (None: not the usual shape or not valid — the caller then
    validates the generic way) and the conditions read each fact from the local the check left, so nothing is
    read twice and no CEL context is built."""
    import ast

    _Alias = _alias_class()
    names = sorted({n for _, used in exprs for n in used})
    trees = [ast.parse(expr, mode="eval").body for expr, _ in exprs]
    namespace = dict(FAST_HELPERS)
    fact_locals: dict[tuple[str, str], str] | None = None
    prologue: list[str] = []
    if facts is not None:
        from .facts import check_lines

        fact_locals = {}
        prologue = check_lines(facts, namespace, fact_locals)
        # a yes/no fact's local is true, false or ERR (missing) once checked
        bool_locals = {local for (ns, name), local in fact_locals.items() if facts[ns][name].type == "bool"}
    counts: dict[str, int] = {}

    def hoistable(node: ast.AST) -> bool:
        # a call of a helper or a fact read (m_ns.get(...)), or a `not` wrapper; never one using the logical
        # operators' temporaries (_l<n>, unique per condition only)
        if not isinstance(node, (ast.Call, ast.IfExp)):
            return False
        return not any(isinstance(n, ast.Name) and n.id.startswith("_l") for n in ast.walk(node))

    for tree in trees:
        for node in ast.walk(tree):
            if hoistable(node):
                key = ast.dump(node)
                counts[key] = counts.get(key, 0) + 1
    hoisted: dict[str, str] = {}
    boolish: set[str] = set()
    if fact_locals is not None:
        boolish |= bool_locals
    statements: list[str] = []

    class _Hoist(ast.NodeTransformer):
        def generic_visit(self, node: ast.AST) -> ast.AST:
            if fact_locals is not None and _is_fact_read(node):
                local = fact_locals.get((node.func.value.id[2:], node.args[0].value))  # type: ignore[attr-defined]
                if local is not None:
                    return ast.Name(id=local, ctx=ast.Load())
            key = ast.dump(node) if hoistable(node) else None
            if key is not None and key in hoisted:
                return ast.Name(id=hoisted[key], ctx=ast.Load())
            node = super().generic_visit(node)
            if key is not None and (counts[key] > 1 or _is_fact_read(node)):
                name = hoisted[key] = f"_c{len(hoisted)}"
                statements.append(f"    {name} = {ast.unparse(node)}")
                if _is_boolish(node, boolish):
                    boolish.add(name)
                return ast.Name(id=name, ctx=ast.Load())
            return node

    bodies = []
    for tree in trees:
        tree = _Alias().visit(_Hoist().visit(tree))
        code = ast.unparse(tree)
        if bools_only and not (_is_boolish(tree, boolish)):
            code = f"(_r if (_r := {code}).__class__ is bool else ERR)"
        bodies.append(code)
    if facts is None:
        lines = ["def _conditions(ctx):"]
        for n in names:
            lines.append(f"    v_{n} = ctx.get({n!r}, ERR)")
            lines.append(f"    m_{n} = v_{n} if v_{n}.__class__ is dict else _EMPTY")
        lines += statements
        lines.append("    return [" + ", ".join(bodies) + "]")
    else:
        lines = ["def _conditions(facts, stamp):"] + prologue
        order = list(facts)
        for n in names:  # as the CEL context has them: each namespace's map, as_of, nothing else
            value = f"V{order.index(n)}" if n in facts else "stamp" if n == "as_of" else "ERR"
            lines.append(f"    v_{n} = {value}")
            lines.append(f"    m_{n} = v_{n} if v_{n}.__class__ is dict else _EMPTY")
        lines += statements
        lines.append("    return given, [" + ", ".join(bodies) + "]")
    source = "\n".join(lines)
    exec(compile(source, "<rule conditions>", "exec"), namespace)  # noqa: S102 — generated from a parse
    fn = namespace["_conditions"]
    fn.source = source  # for reading what runs
    return fn


def _alias_class() -> Any:
    import ast

    class _Alias(ast.NodeTransformer):
        """``(_l1 := _c3) is False … _l1 is True`` → ``_c3 is False … _c3 is True`` (and the same for `not`'s
        ``_t``): a temporary that only renames a local is dropped. Names are unique within one condition, and a
        `not`'s ``_t`` is read only inside its own if-expression."""

        def __init__(self) -> None:
            self.alias: dict[str, str] = {}

        def visit_IfExp(self, node: ast.IfExp) -> Any:
            test = node.test
            if (isinstance(test, ast.Compare) and isinstance(test.left, ast.Attribute)
                    and isinstance(test.left.value, ast.NamedExpr) and isinstance(test.left.value.value, ast.Name)
                    and test.left.value.target.id == "_t"):
                name = test.left.value.value.id
                test.left.value = ast.Name(id=name, ctx=ast.Load())
                node.body = _Rename("_t", name).visit(node.body)
            return self.generic_visit(node)

        def visit_NamedExpr(self, node: ast.NamedExpr) -> Any:
            if isinstance(node.value, ast.Name) and node.target.id.startswith("_l"):
                self.alias[node.target.id] = node.value.id
                return ast.Name(id=node.value.id, ctx=ast.Load())
            return self.generic_visit(node)

        def visit_Name(self, node: ast.Name) -> Any:
            if node.id in self.alias:
                return ast.Name(id=self.alias[node.id], ctx=ast.Load())
            return node

    class _Rename(ast.NodeTransformer):
        def __init__(self, old: str, new: str) -> None:
            self.old, self.new = old, new

        def visit_Name(self, node: ast.Name) -> Any:
            return ast.Name(id=self.new, ctx=ast.Load()) if node.id == self.old else node

    return _Alias


def _is_fact_read(node: Any) -> bool:
    import ast

    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name) and node.func.value.id.startswith("m_"))


def _is_boolish(node: Any, boolish: set[str]) -> bool:
    """Gives only true, false or ERR: a relation helper, a logical operator or `not` (an if-expression whose
    branches are such), or a local computed from one."""
    import ast

    if isinstance(node, ast.Name):
        return node.id in boolish or node.id == "ERR"
    if isinstance(node, ast.Constant):
        return isinstance(node.value, bool)
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name) and node.func.id in _BOOLISH_CALLS
    if isinstance(node, ast.IfExp):
        if isinstance(node.body, ast.UnaryOp) and isinstance(node.body.op, ast.Not):
            return True  # (not _t if ... is bool else ERR)
        return _is_boolish(node.body, boolish) and _is_boolish(node.orelse, boolish)
    return False
