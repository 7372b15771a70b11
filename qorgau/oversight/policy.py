"""Decision-type policies: outcome schemas, the platform defaults and the review-path rule (L-PD-AUTO).

A decision type (``loan``, ``benefit``…) says what an outcome looks like (a small declared schema), whether
the decision has legal effect, which consent purpose automated processing needs, who reviews it and what
happens at its deadline. :func:`default_types` reads ``decision_types.yaml``; an operator's
``DecisionTypePolicy`` row with the same code replaces the default for that operator.

:func:`needs_review` is the rule of issue 6: a decision with legal effect, from a high-risk system
(L-AI-RISK) or from a system of medium/high autonomy (L-AI-AUTONOMY), or of a type whose policy says
"always", waits for a human. Everything else takes effect at once ("automatic") — but only after the
consent decision point allowed automated processing (the caller checks that first).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from ..core.errors import InvalidInput
from .models import ON_TIMEOUT

LANGS: tuple[str, ...] = ("kk", "ru", "en")
REVIEW_MODES: tuple[str, ...] = ("always", "by_risk")
SCHEMA_TYPES: tuple[str, ...] = ("enum", "number", "integer", "boolean", "text", "object")
TYPE_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_ENUM_VALUES = 100
MAX_TEXT_OUTCOME = 2000
MAX_HOURS = 24 * 90
DEFAULTS_FILE = "decision_types.yaml"


@dataclass(frozen=True)
class DecisionTypeInfo:
    """One decision type as it applies to an operator (``source``: ``platform`` or ``organization``)."""

    code: str
    names: dict[str, str]
    outcome_schema: dict[str, Any]
    legal_effect: bool
    purpose: str
    review: str
    four_eyes: bool
    rationale_on_approve: bool
    review_hours: int
    on_timeout: str
    senior_hours: int
    source: str = "platform"
    active: bool = field(default=True, compare=False)

    def name(self, lang: str) -> str:
        return self.names.get(lang) or self.names.get("en") or self.code

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "names": dict(self.names), "outcome_schema": self.outcome_schema,
                "legal_effect": self.legal_effect, "purpose": self.purpose, "review": self.review,
                "four_eyes": self.four_eyes, "rationale_on_approve": self.rationale_on_approve,
                "review_hours": self.review_hours, "on_timeout": self.on_timeout,
                "senior_hours": self.senior_hours, "source": self.source}


# --- outcome schemas --------------------------------------------------------------------------------


def check_schema(schema: Any, field: str = "outcome_schema", *, depth: int = 0) -> dict[str, Any]:
    """Validate a declared outcome schema; returns a clean copy. Errors name the place in the schema."""
    if not isinstance(schema, Mapping):
        raise InvalidInput("an outcome schema is a mapping with a 'type'", field=field)
    kind = schema.get("type")
    if kind not in SCHEMA_TYPES:
        raise InvalidInput(f"type must be one of: {', '.join(SCHEMA_TYPES)}", field=f"{field}.type")
    allowed = {"type", "description"}
    out: dict[str, Any] = {"type": kind}
    if kind == "enum":
        allowed |= {"values", "labels"}
        values = schema.get("values")
        if not isinstance(values, list) or not values or len(values) > MAX_ENUM_VALUES:
            raise InvalidInput(f"an enum needs 1–{MAX_ENUM_VALUES} values", field=f"{field}.values")
        for i, value in enumerate(values):
            if not isinstance(value, str) or not value or len(value) > 64:
                raise InvalidInput("enum values are codes of 1–64 characters", field=f"{field}.values.{i}")
        if len(set(values)) != len(values):
            raise InvalidInput("enum values must be unique", field=f"{field}.values")
        out["values"] = list(values)
        labels = schema.get("labels")
        if labels is not None:
            if not isinstance(labels, Mapping):
                raise InvalidInput("labels map each value to names in kk, ru and en", field=f"{field}.labels")
            clean: dict[str, dict[str, str]] = {}
            for value, names in labels.items():
                if value not in values:
                    raise InvalidInput("a label for a value the enum does not have", field=f"{field}.labels.{value}")
                clean[value] = _names(names, f"{field}.labels.{value}")
            out["labels"] = clean
    elif kind in ("number", "integer"):
        allowed |= {"minimum", "maximum", "unit"}
        for bound in ("minimum", "maximum"):
            value = schema.get(bound)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise InvalidInput(f"{bound} must be a number", field=f"{field}.{bound}")
                out[bound] = value
        if "minimum" in out and "maximum" in out and out["minimum"] > out["maximum"]:
            raise InvalidInput("minimum is above maximum", field=f"{field}.minimum")
        unit = schema.get("unit")
        if unit is not None:
            if not isinstance(unit, str) or not 0 < len(unit) <= 16:
                raise InvalidInput("unit is a short code such as KZT", field=f"{field}.unit")
            out["unit"] = unit
    elif kind == "text":
        allowed |= {"max_length"}
        limit = schema.get("max_length", 200)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_TEXT_OUTCOME:
            raise InvalidInput(f"max_length is 1–{MAX_TEXT_OUTCOME}", field=f"{field}.max_length")
        out["max_length"] = limit
    elif kind == "object":
        allowed |= {"properties", "required"}
        if depth >= 2:
            raise InvalidInput("outcome schemas nest at most two objects deep", field=field)
        props = schema.get("properties")
        if not isinstance(props, Mapping) or not props or len(props) > 50:
            raise InvalidInput("an object schema needs 1–50 properties", field=f"{field}.properties")
        out["properties"] = {}
        for name, sub in props.items():
            if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
                raise InvalidInput("property names are lowercase codes", field=f"{field}.properties")
            out["properties"][name] = check_schema(sub, f"{field}.properties.{name}", depth=depth + 1)
        required = schema.get("required", list(props))
        if not isinstance(required, list) or any(r not in props for r in required):
            raise InvalidInput("required lists property names", field=f"{field}.required")
        out["required"] = list(required)
    if isinstance(schema.get("description"), str):
        out["description"] = schema["description"][:500]
    extra = sorted(set(schema) - allowed)
    if extra:
        raise InvalidInput(f"unknown key for a {kind} schema", field=f"{field}.{extra[0]}")
    return out


def check_outcome(value: Any, schema: Mapping[str, Any], field: str = "proposed_outcome") -> Any:
    """``value`` if it satisfies ``schema``; otherwise :class:`InvalidInput` naming ``field`` (never the value)."""
    kind = schema["type"]
    if kind == "enum":
        if not isinstance(value, str) or value not in schema["values"]:
            raise InvalidInput(f"must be one of: {', '.join(schema['values'])}", field=field)
        return value
    if kind in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidInput("must be a number", field=field)
        if kind == "integer" and not float(value).is_integer():
            raise InvalidInput("must be a whole number", field=field)
        if "minimum" in schema and value < schema["minimum"]:
            raise InvalidInput(f"must be at least {schema['minimum']}", field=field)
        if "maximum" in schema and value > schema["maximum"]:
            raise InvalidInput(f"must be at most {schema['maximum']}", field=field)
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidInput("must be true or false", field=field)
        return value
    if kind == "text":
        if not isinstance(value, str) or not value.strip() or len(value) > schema.get("max_length", 200):
            raise InvalidInput(f"must be text of 1–{schema.get('max_length', 200)} characters", field=field)
        return value.strip()
    if kind == "object":
        if not isinstance(value, Mapping):
            raise InvalidInput("must be an object", field=field)
        props = schema["properties"]
        unknown = sorted(set(value) - set(props))
        if unknown:
            raise InvalidInput("not a property of the outcome schema", field=f"{field}.{unknown[0]}")
        out = {}
        for name in schema.get("required", []):
            if name not in value:
                raise InvalidInput("is required", field=f"{field}.{name}")
        for name, item in value.items():
            out[name] = check_outcome(item, props[name], f"{field}.{name}")
        return out
    raise InvalidInput("the outcome schema has an unknown type", field=field)  # pragma: no cover


def outcome_text(value: Any, schema: Mapping[str, Any], lang: str) -> str:
    """The outcome in words for the subject (enum labels, numbers with their unit)."""
    if value is None:
        return {"kk": "шешім қолданылмады", "ru": "решение не применено", "en": "no outcome applied"}[lang]
    kind = schema.get("type")
    if kind == "enum":
        labels = schema.get("labels", {}).get(value)
        return labels.get(lang, value) if labels else str(value)
    if kind in ("number", "integer"):
        number = f"{value:,.0f}".replace(",", " ") if float(value).is_integer() else f"{value:,.2f}".replace(",", " ")
        return f"{number} {schema['unit']}" if schema.get("unit") else number
    if kind == "boolean":
        return {"kk": ("иә", "жоқ"), "ru": ("да", "нет"), "en": ("yes", "no")}[lang][0 if value else 1]
    if kind == "object" and isinstance(value, Mapping):
        props = schema.get("properties", {})
        return "; ".join(f"{k}: {outcome_text(v, props.get(k, {}), lang)}" for k, v in value.items())
    return str(value)


def _names(names: Any, field: str) -> dict[str, str]:
    if not isinstance(names, Mapping):
        raise InvalidInput("names map kk, ru and en to text", field=field)
    out: dict[str, str] = {}
    for lang in LANGS:
        value = names.get(lang)
        if not isinstance(value, str) or not value.strip() or len(value) > 300:
            raise InvalidInput("a name of 1–300 characters is required", field=f"{field}.{lang}")
        out[lang] = value.strip()
    extra = sorted(set(names) - set(LANGS))
    if extra:
        raise InvalidInput("names are given in kk, ru and en only", field=f"{field}.{extra[0]}")
    return out


# --- policies ---------------------------------------------------------------------------------------


def check_type_code(code: Any, field: str = "decision_type") -> str:
    if not isinstance(code, str) or not TYPE_CODE.fullmatch(code):
        raise InvalidInput("a decision type is a code of lowercase letters, digits and '_' (e.g. credit_limit)",
                           field=field)
    return code


def check_policy_fields(fields: Mapping[str, Any], *, base: DecisionTypeInfo | None) -> dict[str, Any]:
    """Validate the fields of a policy (all of them for a new type, any subset over ``base``)."""
    known = {"names", "outcome_schema", "legal_effect", "purpose", "review", "four_eyes", "rationale_on_approve",
             "review_hours", "on_timeout", "senior_hours", "active"}
    extra = sorted(set(fields) - known)
    if extra:
        raise InvalidInput("not a field of a decision-type policy", field=extra[0])
    merged: dict[str, Any] = base.to_dict() if base is not None else {}
    merged.pop("code", None)
    merged.pop("source", None)
    merged["active"] = True
    merged.update({k: v for k, v in fields.items()})
    for required in ("names", "outcome_schema", "purpose"):
        if merged.get(required) is None:
            raise InvalidInput(f"{required} is required for a new decision type", field=required)
    out: dict[str, Any] = {
        "names": _names(merged["names"], "names"),
        "outcome_schema": check_schema(merged["outcome_schema"]),
        "purpose": merged["purpose"],
    }
    for flag, default in (("legal_effect", True), ("four_eyes", False), ("rationale_on_approve", False),
                          ("active", True)):
        value = merged.get(flag, default)
        if not isinstance(value, bool):
            raise InvalidInput("must be true or false", field=flag)
        out[flag] = value
    review = merged.get("review", "by_risk")
    if review not in REVIEW_MODES:
        raise InvalidInput(f"review must be one of: {', '.join(REVIEW_MODES)}", field="review")
    out["review"] = review
    on_timeout = merged.get("on_timeout", "escalate")
    if on_timeout not in ON_TIMEOUT:
        raise InvalidInput(f"on_timeout must be one of: {', '.join(ON_TIMEOUT)} (never approve)", field="on_timeout")
    out["on_timeout"] = on_timeout
    for hours in ("review_hours", "senior_hours"):
        value = merged.get(hours, 24)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_HOURS:
            raise InvalidInput(f"{hours} is a whole number of hours, 1–{MAX_HOURS}", field=hours)
        out[hours] = value
    return out


@functools.lru_cache(maxsize=1)
def default_types() -> dict[str, DecisionTypeInfo]:
    """The platform defaults from ``decision_types.yaml`` (validated; an error names the entry)."""
    text = resources.files(__package__).joinpath(DEFAULTS_FILE).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    out: dict[str, DecisionTypeInfo] = {}
    for i, entry in enumerate(data.get("decision_types", [])):
        where = f"{DEFAULTS_FILE}: decision_types[{i}]"
        try:
            code = check_type_code(entry.get("code"), "code")
            fields = check_policy_fields({k: v for k, v in entry.items() if k != "code"}, base=None)
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc.message}", field=exc.field) from None
        if code in out:
            raise InvalidInput(f"{where}: duplicate code", field="code")
        fields.pop("active")
        out[code] = DecisionTypeInfo(code=code, source="platform", **fields)
    return out


def needs_review(info: DecisionTypeInfo, *, legal_effect: bool, risk_class: str, autonomy: str) -> bool:
    """Issue 6, step 2: hold for a human when the policy says always, the decision has legal effect
    (L-PD-AUTO), the system is high-risk (L-AI-RISK) or of medium/high autonomy (L-AI-AUTONOMY)."""
    return info.review == "always" or legal_effect or risk_class == "high" or autonomy in ("medium", "high")


__all__ = ["DecisionTypeInfo", "check_outcome", "check_policy_fields", "check_schema", "check_type_code",
           "default_types", "needs_review", "outcome_text"]
