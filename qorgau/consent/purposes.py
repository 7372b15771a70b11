"""Processing purposes and data categories: the platform's defaults (``purposes.yaml``) plus each operator's own.

A purpose code is a dotted path (``marketing.sms``); its parent is the code without the last segment, so
:func:`ancestors` needs no table: a consent or a legal basis for ``marketing`` covers ``marketing.sms``.
Names exist in Kazakh, Russian and English. Files are validated on load and every error names the file
and the line (``purposes.yaml:42: purposes[7].names: 'kk' is missing``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..core.errors import InvalidInput

LANGS: tuple[str, ...] = ("kk", "ru", "en")
PURPOSE_CODE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*){0,5}")
CATEGORY_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
MAX_CODE = 64
MAX_NAME = 300
MAX_DESCRIPTION = 2000
DEFAULTS_FILE = "purposes.yaml"


class TaxonomyError(InvalidInput):
    """A purposes file is invalid; the message starts with ``file:line:``."""

    code = "invalid_taxonomy"

    def __init__(self, source: str, line: int | None, where: str, problem: str) -> None:
        location = f"{source}:{line}" if line is not None else source
        super().__init__(f"{location}: {where}: {problem}", field=where)
        self.source, self.line, self.where, self.problem = source, line, where, problem


@dataclass(frozen=True)
class Purpose:
    code: str
    names: Mapping[str, str]
    description: str | None = None
    organization_id: int | None = None  # None: a platform default

    @property
    def parent(self) -> str | None:
        return parent_of(self.code)

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names.get("en") or self.code

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "parent": self.parent, "names": dict(self.names),
                "description": self.description, "custom": self.organization_id is not None}


@dataclass(frozen=True)
class DataCategory:
    code: str
    names: Mapping[str, str]
    sensitive: bool = False

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names.get("en") or self.code

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "names": dict(self.names), "sensitive": self.sensitive}


@dataclass(frozen=True)
class Taxonomy:
    """Purposes and data categories, by code, in file order."""

    purposes: Mapping[str, Purpose]
    categories: Mapping[str, DataCategory] = field(default_factory=dict)

    def merged(self, extra: Iterable[Purpose]) -> "Taxonomy":
        """This taxonomy plus an operator's purposes (an operator's code overrides a default's names)."""
        purposes = dict(self.purposes)
        for purpose in extra:
            purposes[purpose.code] = purpose
        return Taxonomy(purposes, self.categories)

    def purpose(self, code: str) -> Purpose | None:
        return self.purposes.get(code)

    def has_purpose(self, code: str) -> bool:
        return code in self.purposes

    def category(self, code: str) -> DataCategory | None:
        return self.categories.get(code)


def parent_of(code: str) -> str | None:
    head, dot, _ = code.rpartition(".")
    return head if dot else None


@functools.lru_cache(maxsize=4096)
def ancestors(code: str) -> tuple[str, ...]:
    """``marketing.sms.bulk`` → ``("marketing.sms.bulk", "marketing.sms", "marketing")``: the code first."""
    parts = code.split(".")
    return tuple(".".join(parts[:i]) for i in range(len(parts), 0, -1))


def check_purpose_code(code: Any, field_name: str = "purpose") -> str:
    if not isinstance(code, str) or not code:
        raise InvalidInput("a purpose code is required", field=field_name)
    code = code.strip()
    if len(code) > MAX_CODE or not PURPOSE_CODE.fullmatch(code):
        raise InvalidInput("a purpose code is up to 6 dot-separated segments of a-z, 0-9 and '_', each starting "
                           "with a letter (e.g. 'marketing.sms'), at most 64 characters", field=field_name)
    return code


# --- loading YAML with line numbers ---------------------------------------------------------------


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _scalar(node: Node, source: str, where: str, *, optional: bool = False) -> str | None:
    if isinstance(node, ScalarNode):
        if node.tag == "tag:yaml.org,2002:null" or (node.value == "" and node.style is None):
            if optional:
                return None
            raise TaxonomyError(source, _line(node), where, "a value is required")
        return str(node.value)
    raise TaxonomyError(source, _line(node), where, "expected a text value")


def _mapping(node: Node, source: str, where: str) -> dict[str, tuple[Node, Node]]:
    if not isinstance(node, MappingNode):
        raise TaxonomyError(source, _line(node), where, "expected a mapping (key: value)")
    out: dict[str, tuple[Node, Node]] = {}
    for key, value in node.value:
        if not isinstance(key, ScalarNode):
            raise TaxonomyError(source, _line(key), where, "keys must be text")
        if key.value in out:
            raise TaxonomyError(source, _line(key), f"{where}.{key.value}", "duplicate key")
        out[key.value] = (key, value)
    return out


def _sequence(node: Node, source: str, where: str) -> list[Node]:
    if not isinstance(node, SequenceNode):
        raise TaxonomyError(source, _line(node), where, "expected a list")
    return list(node.value)


def _unknown_keys(fields: Mapping[str, tuple[Node, Node]], allowed: set[str], source: str, where: str) -> None:
    for name, (key, _) in fields.items():
        if name not in allowed:
            raise TaxonomyError(source, _line(key), f"{where}.{name}",
                                f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _names(node: Node, source: str, where: str) -> dict[str, str]:
    fields = _mapping(node, source, where)
    _unknown_keys(fields, set(LANGS), source, where)
    names: dict[str, str] = {}
    for lang in LANGS:
        if lang not in fields:
            raise TaxonomyError(source, _line(node), where, f"'{lang}' is missing (names are needed in kk, ru and en)")
        text = (_scalar(fields[lang][1], source, f"{where}.{lang}") or "").strip()
        if not text or len(text) > MAX_NAME:
            raise TaxonomyError(source, _line(fields[lang][1]), f"{where}.{lang}", f"1–{MAX_NAME} characters")
        names[lang] = text
    return names


def _bool(node: Node, source: str, where: str) -> bool:
    value = _scalar(node, source, where)
    if node.tag == "tag:yaml.org,2002:bool" or (value or "").lower() in ("true", "false"):
        return (value or "").lower() == "true"
    raise TaxonomyError(source, _line(node), where, "expected true or false")


def parse_taxonomy(text: str, source: str = "<text>", *, organization_id: int | None = None,
                   require_categories: bool = False) -> Taxonomy:
    """Parse and validate a purposes file. Raises :class:`TaxonomyError` naming file and line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise TaxonomyError(source, mark.line + 1 if mark else None, "yaml", str(exc.problem or exc)) from None
    except yaml.YAMLError as exc:
        raise TaxonomyError(source, None, "yaml", type(exc).__name__) from None
    if root is None:
        raise TaxonomyError(source, 1, "purposes", "the file is empty")
    top = _mapping(root, source, "file")
    _unknown_keys(top, {"version", "purposes", "data_categories"}, source, "file")
    if "version" in top:
        version_node = top["version"][1]
        if _scalar(version_node, source, "version") != "1":
            raise TaxonomyError(source, _line(version_node), "version", "only version 1 is understood")
    if "purposes" not in top:
        raise TaxonomyError(source, _line(root), "purposes", "a 'purposes:' list is required")
    purposes: dict[str, Purpose] = {}
    for i, item in enumerate(_sequence(top["purposes"][1], source, "purposes")):
        where = f"purposes[{i}]"
        fields = _mapping(item, source, where)
        _unknown_keys(fields, {"code", "names", "description"}, source, where)
        if "code" not in fields:
            raise TaxonomyError(source, _line(item), f"{where}.code", "a code is required")
        code_node = fields["code"][1]
        code = _scalar(code_node, source, f"{where}.code") or ""
        if len(code) > MAX_CODE or not PURPOSE_CODE.fullmatch(code):
            raise TaxonomyError(source, _line(code_node), f"{where}.code",
                                "dot-separated segments of a-z, 0-9 and '_', each starting with a letter")
        if code in purposes:
            raise TaxonomyError(source, _line(code_node), f"{where}.code", f"purpose '{code}' is defined twice")
        parent = parent_of(code)
        if parent is not None and parent not in purposes and organization_id is None:
            raise TaxonomyError(source, _line(code_node), f"{where}.code",
                                f"parent purpose '{parent}' must be defined before '{code}'")
        if "names" not in fields:
            raise TaxonomyError(source, _line(item), f"{where}.names", "names in kk, ru and en are required")
        names = _names(fields["names"][1], source, f"{where}.names")
        description = None
        if "description" in fields:
            description = _scalar(fields["description"][1], source, f"{where}.description", optional=True)
            if description is not None and len(description) > MAX_DESCRIPTION:
                raise TaxonomyError(source, _line(fields["description"][1]), f"{where}.description",
                                    f"at most {MAX_DESCRIPTION} characters")
        purposes[code] = Purpose(code, names, description, organization_id)
    categories: dict[str, DataCategory] = {}
    if "data_categories" in top:
        for i, item in enumerate(_sequence(top["data_categories"][1], source, "data_categories")):
            where = f"data_categories[{i}]"
            fields = _mapping(item, source, where)
            _unknown_keys(fields, {"code", "names", "sensitive"}, source, where)
            if "code" not in fields:
                raise TaxonomyError(source, _line(item), f"{where}.code", "a code is required")
            code_node = fields["code"][1]
            code = _scalar(code_node, source, f"{where}.code") or ""
            if not CATEGORY_CODE.fullmatch(code):
                raise TaxonomyError(source, _line(code_node), f"{where}.code", "letters, digits and '_', up to 40")
            if code in categories:
                raise TaxonomyError(source, _line(code_node), f"{where}.code", f"category '{code}' is defined twice")
            if "names" not in fields:
                raise TaxonomyError(source, _line(item), f"{where}.names", "names in kk, ru and en are required")
            names = _names(fields["names"][1], source, f"{where}.names")
            sensitive = _bool(fields["sensitive"][1], source, f"{where}.sensitive") if "sensitive" in fields else False
            categories[code] = DataCategory(code, names, sensitive)
    elif require_categories:
        raise TaxonomyError(source, _line(root), "data_categories", "a 'data_categories:' list is required")
    return Taxonomy(purposes, categories)


def load_taxonomy_file(path: str | Path, *, organization_id: int | None = None) -> Taxonomy:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TaxonomyError(str(path), None, "file", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TaxonomyError(str(path), None, "file", f"cannot be read as UTF-8 text ({type(exc).__name__})") from None
    return parse_taxonomy(text, path.name, organization_id=organization_id)


@functools.lru_cache(maxsize=1)
def default_taxonomy() -> Taxonomy:
    """The platform's defaults, loaded and validated once per process."""
    text = (resources.files("qorgau.consent") / DEFAULTS_FILE).read_text(encoding="utf-8")
    return parse_taxonomy(text, DEFAULTS_FILE, require_categories=True)


def check_categories(codes: Sequence[Any], taxonomy: Taxonomy, field_name: str = "data_categories",
                     *, required: bool = True) -> list[str]:
    """Validated, de-duplicated category codes (order kept). Unknown codes are refused by position."""
    if isinstance(codes, (str, bytes)) or not isinstance(codes, Sequence):
        raise InvalidInput("give a list of data category codes", field=field_name)
    if required and not codes:
        raise InvalidInput("at least one data category is required (Art.8 p.4 (7): the list of data)", field=field_name)
    if len(codes) > 100:
        raise InvalidInput("at most 100 data categories", field=field_name)
    out: list[str] = []
    for i, code in enumerate(codes):
        if not isinstance(code, str) or code not in taxonomy.categories:
            raise InvalidInput("unknown data category (see GET /api/v1/consent/categories)", field=f"{field_name}.{i}")
        if code not in out:
            out.append(code)
    return out
