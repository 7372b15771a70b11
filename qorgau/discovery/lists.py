"""Allow and deny lists for one scan: values the operator knows are not (allow) or are (deny) personal data.

An entry is an exact value or, with the ``re:`` prefix, a regular expression:

* **allow**: a finding whose matched text equals an allowed value (also when spaces, dashes and
  parentheses are ignored: ``+7 701 000 00 00`` allows ``+77010000000``) or fully matches an allowed
  regex is dropped — the company's own switchboard number, a test IIN in the documentation.
* **deny**: every occurrence in the text is reported as a finding of the list's entity type, with
  recognizer ``deny_list`` and score 1.0 — an employee code format, a known leaked value. Exact values
  match case-sensitively and not inside a longer word or number.

Lists load from a Python list, a text file (one entry per line, ``#`` comments) or a YAML file (a list,
or ``{entity_type: X, values: [...]}``, or for deny lists ``{TYPE: [values], ...}``). The entries may be
personal data themselves, so ``repr`` and error messages show counts and line numbers, never values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .types import Explanation, Finding

REGEX_PREFIX = "re:"
DENY_RECOGNIZER = "deny_list"
DEFAULT_DENY_TYPE = "DENY_LIST"
_COMPACT = str.maketrans("", "", " \u00a0\t-()")


class ListError(ValueError):
    """A list file or entry that cannot be used; the message names the source and entry, not the value."""


def _compile(entry: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(entry[len(REGEX_PREFIX):])
    except re.error as exc:
        raise ListError(f"{where}: invalid regex ({exc.msg})") from None


def _entries(values: Iterable[str], source: str) -> Iterator[tuple[str, str]]:
    """(entry, where) pairs, rejecting non-strings and empty entries by position."""
    for index, value in enumerate(values):
        where = f"{source}[{index}]"
        if not isinstance(value, str):
            raise ListError(f"{where}: must be a string, got {type(value).__name__}")
        if not value or value == REGEX_PREFIX:
            raise ListError(f"{where}: is empty")
        yield value, where


class AllowList:
    """Values that are never reported, whatever recognizer finds them."""

    __slots__ = ("_compact", "_exact", "_regexes")

    def __init__(self, entries: Iterable[str] = (), *, source: str = "allow"):
        self._exact: set[str] = set()
        self._compact: set[str] = set()
        self._regexes: list[re.Pattern[str]] = []
        for entry, where in _entries(entries, source):
            if entry.startswith(REGEX_PREFIX):
                self._regexes.append(_compile(entry, where))
            else:
                self._exact.add(entry)
                self._compact.add(entry.translate(_COMPACT))

    @classmethod
    def from_file(cls, path: str | Path) -> AllowList:
        entries, _ = _read_list_file(Path(path))
        if isinstance(entries, Mapping):
            raise ListError(f"{Path(path).name}: an allow list is a list of values, not a mapping of types")
        return cls(entries, source=Path(path).name)

    def allows(self, value: str) -> bool:
        """True if ``value`` (a matched text) is on the list."""
        if value in self._exact or value.translate(_COMPACT) in self._compact:
            return True
        return any(r.fullmatch(value) for r in self._regexes)

    def __len__(self) -> int:
        return len(self._exact) + len(self._regexes)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __repr__(self) -> str:
        return f"AllowList({len(self._exact)} values, {len(self._regexes)} regexes)"


class DenyList:
    """Values always reported as personal data of a given entity type (score 1.0, recognizer ``deny_list``).

    ``entries`` is a list of values (all of type ``entity_type``) or a mapping ``{type: [values]}``.
    """

    __slots__ = ("_patterns", "_sizes")

    def __init__(self, entries: Iterable[str] | Mapping[str, Iterable[str]] = (), *,
                 entity_type: str = DEFAULT_DENY_TYPE, source: str = "deny"):
        groups = entries if isinstance(entries, Mapping) else {entity_type: entries}
        self._patterns: list[tuple[str, str, re.Pattern[str]]] = []  # (type, pattern name, compiled)
        exact_count = regex_count = 0
        for kind, values in groups.items():
            if not isinstance(kind, str) or not kind:
                raise ListError(f"{source}: entity types must be non-empty strings")
            exact: list[str] = []
            for entry, where in _entries(values, f"{source}.{kind}" if isinstance(entries, Mapping) else source):
                if entry.startswith(REGEX_PREFIX):
                    self._patterns.append((kind, "deny_list:regex", _compile(entry, where)))
                    regex_count += 1
                else:
                    exact.append(entry)
            if exact:
                exact_count += len(exact)
                # Longest first, so "Иванов Иван" wins over "Иванов" at the same position.
                alternatives = "|".join(_bounded(v) for v in sorted(set(exact), key=len, reverse=True))
                self._patterns.append((kind, "deny_list:exact", re.compile(alternatives)))
        self._sizes = (exact_count, regex_count)

    @classmethod
    def from_file(cls, path: str | Path, *, entity_type: str = DEFAULT_DENY_TYPE) -> DenyList:
        entries, file_type = _read_list_file(Path(path))
        return cls(entries, entity_type=file_type or entity_type, source=Path(path).name)

    def find(self, text: str) -> list[Finding]:
        """Every occurrence of a denied value in ``text``, as findings."""
        found: list[Finding] = []
        for kind, name, pattern in self._patterns:
            for m in pattern.finditer(text):
                if m.end() > m.start():
                    found.append(Finding(type=kind, start=m.start(), end=m.end(), score=1.0,
                                         recognizer=DENY_RECOGNIZER,
                                         explanation=Explanation(pattern=name, base_score=1.0, validated=None,
                                                                 notes=("on the scan's deny list",))))
        return found

    @property
    def entity_types(self) -> frozenset[str]:
        return frozenset(kind for kind, _, _ in self._patterns)

    def __len__(self) -> int:
        return sum(self._sizes)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __repr__(self) -> str:
        return f"DenyList({self._sizes[0]} values, {self._sizes[1]} regexes)"


def _bounded(value: str) -> str:
    """``value`` escaped, not matching inside a longer word or number on a side that is a word character."""
    pattern = re.escape(value)
    if value[0].isalnum() or value[0] == "_":
        pattern = r"(?<!\w)" + pattern
    if value[-1].isalnum() or value[-1] == "_":
        pattern += r"(?!\w)"
    return pattern


def _read_list_file(path: Path) -> tuple[list[str] | dict[str, list[str]], str | None]:
    """Entries from a text or YAML file, and the entity type the file declares (YAML only)."""
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ListError(f"{path.name}: cannot be read ({reason})") from None
    if path.suffix.lower() not in (".yaml", ".yml"):
        return [line.strip() for line in raw.splitlines() if line.strip() and not line.lstrip().startswith("#")], None
    import yaml

    try:
        data: Any = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ListError(f"{path.name}: invalid YAML{where}") from None
    if data is None:
        return [], None
    if isinstance(data, list):
        return data, None
    if isinstance(data, dict) and "values" in data:
        unknown = set(data) - {"values", "entity_type"}
        if unknown:
            raise ListError(f"{path.name}: unknown field {sorted(unknown)[0]!r} (expected values, entity_type)")
        if not isinstance(data["values"], list):
            raise ListError(f"{path.name}: values: must be a list")
        kind = data.get("entity_type")
        if kind is not None and not isinstance(kind, str):
            raise ListError(f"{path.name}: entity_type: must be a string")
        return data["values"], kind
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return data, None
    raise ListError(f"{path.name}: must be a list of values, {{entity_type, values}} or {{TYPE: [values]}}")
