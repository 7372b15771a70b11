"""Custom recognizers from YAML, without code: an operator's own identifiers (employee numbers, policy
numbers, a diagnosis code format) scanned like the built-in ones.

Schema::

    recognizers:
      - name: employee_id              # unique, used as the finding's recognizer name
        entity_type: EMPLOYEE_ID       # a built-in type or a new one (A-Z, 0-9, _)
        patterns:                      # at least one
          - {name: tab_number, regex: 'E\\d{6}', score: 0.6}
        validator: none                # optional: iin, bin, luhn, iban, none
        context: [табельный, employee] # optional context words (kk/ru/en prefixes)
        context_boost: 0.2             # optional, added when a context word is near
        category: identifying          # optional: identifying | personal_data (L-PD-SPLIT)

A pattern with a named group ``value`` reports only that group (``'таб\\. № (?P<value>\\d{6})'``). A
validator that fails drops the match, as for built-in types. Errors name the file, the recognizer's
index and name, and the field — ``custom.yaml: recognizers[2].patterns[0].regex: invalid regex
(missing ), unterminated subpattern)`` — never a value from a scanned text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..identifiers import is_valid_bin, is_valid_card, is_valid_iban, is_valid_iin
from .recognizers.scoring import Context, scored_finding
from .types import CATEGORY_OF, Category, Finding

_NOT_DIGITS = re.compile(r"\D+")
_TYPE_NAME = re.compile(r"[A-Z][A-Z0-9_]*")

#: Validators a custom recognizer may name: the matched text (digits only for iin/bin/luhn) must pass.
VALIDATORS: dict[str, tuple[str, Callable[[str], bool]] | None] = {
    "iin": ("IIN checksum + birth date", lambda s: is_valid_iin(_NOT_DIGITS.sub("", s))),
    "bin": ("BIN checksum + layout", lambda s: is_valid_bin(_NOT_DIGITS.sub("", s))),
    "luhn": ("Luhn", lambda s: is_valid_card(_NOT_DIGITS.sub("", s))),
    "iban": ("mod-97 + country layout", is_valid_iban),
    "none": None,
}
_RECOGNIZER_FIELDS = {"name", "entity_type", "patterns", "validator", "context", "context_boost", "category"}
_PATTERN_FIELDS = {"name", "regex", "score"}


class CustomRecognizerError(ValueError):
    """A custom recognizer definition that cannot be used; the message says where and why."""


class CustomRecognizer:
    """A regex recognizer defined by data: patterns with base scores, an optional validator, context."""

    __slots__ = ("_context", "_patterns", "_validator", "category", "entity_types", "name", "type")

    def __init__(self, name: str, entity_type: str, patterns: list[tuple[str, re.Pattern[str], float]], *,
                 validator: str = "none", context: list[str] | None = None, context_boost: float = 0.2,
                 category: str | None = None):
        self.name = name
        self.type = entity_type
        self.entity_types = frozenset({entity_type})
        self._patterns = patterns
        self._validator = VALIDATORS[validator]
        self._context = Context(context or [], boost=context_boost)
        self.category = category or CATEGORY_OF.get(entity_type, Category.IDENTIFYING).value

    def find(self, text: str) -> Iterator[Finding]:
        for pattern_name, pattern, base in self._patterns:
            has_value = "value" in pattern.groupindex
            for m in pattern.finditer(text):
                start, end = m.span("value") if has_value else m.span()
                if start < 0 or end <= start:
                    continue
                validated: bool | None = None
                validator_name: str | None = None
                if self._validator is not None:
                    validator_name, check = self._validator
                    if not check(text[start:end]):
                        continue
                    validated = True
                found = scored_finding(
                    text, start, end, entity_type=self.type, recognizer=self.name, pattern=pattern_name,
                    base=base, context=self._context, validated=validated, validator=validator_name,
                    category=self.category,
                )
                if found is not None:
                    yield found

    def __repr__(self) -> str:
        return f"CustomRecognizer({self.name!r}, {self.type}, {len(self._patterns)} patterns)"


def load_custom_recognizers(path: str | Path) -> list[CustomRecognizer]:
    """The recognizers defined in a YAML file, or :class:`CustomRecognizerError` naming the faulty field."""
    import yaml

    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise CustomRecognizerError(f"{path.name}: cannot be read ({reason})") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise CustomRecognizerError(f"{path.name}: invalid YAML{where}") from None
    return custom_recognizers_from_dict(data, source=path.name)


def custom_recognizers_from_dict(data: Any, *, source: str = "<custom>") -> list[CustomRecognizer]:
    """The recognizers described by already-parsed data (the YAML schema in the module docstring)."""
    if not isinstance(data, Mapping) or "recognizers" not in data:
        raise CustomRecognizerError(f"{source}: must be a mapping with a 'recognizers' list")
    items = data["recognizers"]
    if not isinstance(items, list):
        raise CustomRecognizerError(f"{source}: recognizers: must be a list")
    out: list[CustomRecognizer] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        recognizer = _build(item, f"{source}: recognizers[{index}]")
        if recognizer.name in seen:
            raise CustomRecognizerError(f"{source}: recognizers[{index}] ({recognizer.name}).name: duplicate name")
        seen.add(recognizer.name)
        out.append(recognizer)
    return out


def _build(item: Any, where: str) -> CustomRecognizer:
    if not isinstance(item, Mapping):
        raise CustomRecognizerError(f"{where}: must be a mapping")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CustomRecognizerError(f"{where}.name: required, a non-empty string")
    where = f"{where} ({name})"
    unknown = sorted(set(item) - _RECOGNIZER_FIELDS)
    if unknown:
        raise CustomRecognizerError(f"{where}.{unknown[0]}: unknown field (expected one of "
                                    f"{', '.join(sorted(_RECOGNIZER_FIELDS))})")
    entity_type = item.get("entity_type")
    if not isinstance(entity_type, str) or not _TYPE_NAME.fullmatch(entity_type):
        raise CustomRecognizerError(f"{where}.entity_type: required, upper-case letters, digits and _ "
                                    "(e.g. EMPLOYEE_ID)")
    validator = item.get("validator", "none")
    if validator is None:
        validator = "none"
    if validator not in VALIDATORS:
        raise CustomRecognizerError(f"{where}.validator: must be one of {', '.join(VALIDATORS)}")
    context = item.get("context", []) or []
    if not isinstance(context, list) or not all(isinstance(w, str) and w.strip() for w in context):
        raise CustomRecognizerError(f"{where}.context: must be a list of non-empty words")
    boost = _score(item.get("context_boost", 0.2), f"{where}.context_boost")
    category = item.get("category")
    if category is not None and category not in {c.value for c in Category}:
        raise CustomRecognizerError(f"{where}.category: must be identifying or personal_data")
    patterns = item.get("patterns")
    if not isinstance(patterns, list) or not patterns:
        raise CustomRecognizerError(f"{where}.patterns: required, a non-empty list")
    compiled = [_pattern(p, f"{where}.patterns[{i}]") for i, p in enumerate(patterns)]
    return CustomRecognizer(name, entity_type, compiled, validator=validator, context=context,
                            context_boost=boost, category=category)


def _pattern(item: Any, where: str) -> tuple[str, re.Pattern[str], float]:
    if not isinstance(item, Mapping):
        raise CustomRecognizerError(f"{where}: must be a mapping with name, regex and score")
    unknown = sorted(set(item) - _PATTERN_FIELDS)
    if unknown:
        raise CustomRecognizerError(f"{where}.{unknown[0]}: unknown field (expected name, regex, score)")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CustomRecognizerError(f"{where}.name: required, a non-empty string")
    regex = item.get("regex")
    if not isinstance(regex, str) or not regex:
        raise CustomRecognizerError(f"{where}.regex: required, a non-empty string")
    try:
        compiled = re.compile(regex)
    except re.error as exc:
        raise CustomRecognizerError(f"{where}.regex: invalid regex ({exc.msg})") from None
    if compiled.match(""):
        raise CustomRecognizerError(f"{where}.regex: matches the empty string")
    return name, compiled, _score(item.get("score"), f"{where}.score")


def _score(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise CustomRecognizerError(f"{where}: required, a number between 0 and 1")
    return float(value)
