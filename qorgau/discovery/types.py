"""The discovery contract: what a finding is, which types and categories exist, what a recognizer does.

Every other part of qorgau (vault, leaks, the CLI's JSON Lines output, the data map) depends on these
shapes, so they are stated once here. A :class:`Finding` never holds the matched text unless the caller
asked for it, and even then ``repr`` masks it: a finding can be logged without leaking what it found.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class EntityType(str, enum.Enum):
    """Public contract: these exact names appear in JSON output consumed by other tools."""

    KZ_IIN = "KZ_IIN"
    KZ_BIN = "KZ_BIN"
    PHONE_NUMBER = "PHONE_NUMBER"
    EMAIL_ADDRESS = "EMAIL_ADDRESS"
    IBAN_CODE = "IBAN_CODE"
    CREDIT_CARD = "CREDIT_CARD"
    KZ_PASSPORT = "KZ_PASSPORT"
    KZ_ID_CARD = "KZ_ID_CARD"
    PERSON = "PERSON"
    ADDRESS = "ADDRESS"
    DATE_OF_BIRTH = "DATE_OF_BIRTH"
    IP_ADDRESS = "IP_ADDRESS"
    KZ_VEHICLE_PLATE = "KZ_VEHICLE_PLATE"

    def __str__(self) -> str:
        return self.value


class Category(str, enum.Enum):
    """L-PD-SPLIT: information that identifies a person vs the data itself about them."""

    IDENTIFYING = "identifying"
    PERSONAL_DATA = "personal_data"

    def __str__(self) -> str:
        return self.value


# Every built-in type identifies a person (LEGAL.md L-PD-SPLIT: IIN, names, phones, e-mails, documents,
# addresses, accounts, cards, IPs, plates). A birth date alone does not, but with any other attribute it
# narrows a person down to a handful (≈ 9·10⁸ IINs encode it), so it is kept with the identifiers.
CATEGORY_OF: dict[str, Category] = {t.value: Category.IDENTIFYING for t in EntityType}

_CATEGORY_VALUE: dict[Any, str] = {c: c.value for c in Category}


def category_of(entity_type: str) -> str:
    """The category name (``"identifying"`` …) of an entity type; unknown types identify (L-PD-SPLIT)."""
    category = CATEGORY_OF.get(entity_type, Category.IDENTIFYING)
    return _CATEGORY_VALUE.get(category) or Category(category).value


# How specific a type is, for overlap resolution: when two findings overlap, the validated, more
# specific one wins (an IIN inside a longer digit run beats a phone; an e-mail beats a person name in it).
SPECIFICITY: dict[str, int] = {
    "KZ_IIN": 100, "KZ_BIN": 100, "IBAN_CODE": 95, "CREDIT_CARD": 90, "EMAIL_ADDRESS": 90,
    "KZ_PASSPORT": 80, "PHONE_NUMBER": 75, "IP_ADDRESS": 70, "KZ_VEHICLE_PLATE": 65, "KZ_ID_CARD": 60,
    "DATE_OF_BIRTH": 50, "ADDRESS": 40, "PERSON": 30,
}


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a finding got its score: the pattern that matched, the validator's verdict, context found."""

    pattern: str
    base_score: float
    validated: bool | None = None  # None: no validator for this type
    validator: str | None = None  # e.g. "IIN checksum + birth date"
    context_words: tuple[str, ...] = ()
    context_delta: float = 0.0
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "base_score": self.base_score, "validated": self.validated,
                "validator": self.validator, "context_words": list(self.context_words),
                "context_delta": self.context_delta, "notes": list(self.notes)}


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of personal data found in a text, by character offsets (Python ``str`` indexing)."""

    type: str
    start: int
    end: int
    score: float
    recognizer: str
    category: str = ""
    explanation: Explanation | None = field(default=None, compare=False)
    text: str | None = field(default=None, compare=False)  # only when the caller asks (include_text)

    def __post_init__(self) -> None:
        if not self.category:
            object.__setattr__(self, "category", category_of(self.type))

    def __repr__(self) -> str:
        shown = "" if self.text is None else f", text=<{len(self.text)} chars>"
        return (f"Finding({self.type} {self.start}:{self.end} score={self.score:.2f} "
                f"category={self.category} recognizer={self.recognizer}{shown})")

    def to_dict(self, *, explain: bool = False, include_text: bool = False) -> dict[str, Any]:
        """The JSON Lines contract: type, start, end, score, category, recognizer (+ opt-ins)."""
        out: dict[str, Any] = {"type": self.type, "start": self.start, "end": self.end,
                               "score": round(self.score, 4), "category": self.category,
                               "recognizer": self.recognizer}
        if explain and self.explanation is not None:
            out["explanation"] = self.explanation.to_dict()
        if include_text and self.text is not None:
            out["text"] = self.text
        return out


@runtime_checkable
class Recognizer(Protocol):
    """One small class per kind of thing to find (the Presidio habit), registered with the scanner.

    ``find`` gets the whole text and yields findings with scores already adjusted for context; it must
    not store or log the text. Recognizers are built once and reused for every text (thread-safe, no
    per-call compilation).
    """

    name: str
    entity_types: frozenset[str]

    def find(self, text: str) -> Iterable[Finding]: ...


# --- context words, shared by recognizers -------------------------------------------------------

CONTEXT_WINDOW = 40  # characters on each side, enough for "ИИН клиента:" or "тел. моб."


def context_pattern(words: Sequence[str]) -> re.Pattern[str]:
    """One case-insensitive regex for a list of kk/ru/en context words (matched as word prefixes)."""
    from .recognizers import fastre  # here, not at the top: the recognizers package imports this module

    alternatives = sorted({re.escape(w.lower()) for w in words}, key=len, reverse=True)
    # Case-insensitive; grouped by first letter so that re tests one class per group (hot: every finding).
    return fastre.compile(r"(?<!\w)" + fastre.alternatives(alternatives))


def context_near(text: str, start: int, end: int, pattern: re.Pattern[str],
                 window: int = CONTEXT_WINDOW) -> tuple[str, ...]:
    """Context words found within ``window`` characters before or after ``text[start:end]``."""
    before = pattern.findall(text, max(0, start - window), start)
    after = pattern.findall(text, end, end + window)  # re clamps endpos to the text's length
    if not before and not after:  # most findings: nothing to build
        return ()
    return tuple(w.lower() for w in before + after)
