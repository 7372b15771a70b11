"""The score model shared by every rule-based recognizer, and the context words that move scores.

Score model (documented once, used by ``structured`` and ``custom``):

* **base** — how strong the evidence is without looking around the match: a checksum that random
  digits almost never pass (IIN/BIN mod-11 plus a real birth date, IBAN mod-97) starts at 0.85–0.9;
  Luhn (passed by one number in ten) at 0.7 for a known card brand, 0.4 for an unknown one; a phone
  in an assigned number range at 0.75; a format with no check at all (passport, plate) lower.
* **+ boost** when a context word (``ИИН``, ``тел.``, ``паспорт`` …) is within
  :data:`~qorgau.discovery.types.CONTEXT_WINDOW` characters; **− penalty** when a negative context word
  is (``version`` next to a dotted quad).
* The result is clamped to [0, 1]. With the scanner's default ``min_score`` of 0.5, an unvalidated weak
  pattern (plate, bare ten-digit number) is reported only when context vouches for it.

Context words are matched as case-insensitive word prefixes (``карт`` finds ``картасы``), by
:func:`~qorgau.discovery.types.context_pattern`. Nothing here keeps the text it looks at.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..types import CONTEXT_WINDOW, Explanation, Finding, category_of, context_pattern


class Context:
    """Positive and negative context words for one recognizer, compiled once."""

    __slots__ = ("_negative", "_positive", "boost", "penalty")

    def __init__(self, words: Sequence[str], boost: float, negative: Sequence[str] = (), penalty: float = 0.0):
        self._positive = context_pattern(words) if words else None
        self._negative = context_pattern(negative) if negative else None
        self.boost = boost
        self.penalty = penalty

    def words_near(self, text: str, start: int, end: int) -> tuple[str, ...]:
        """Positive context words around ``text[start:end]`` (empty when there are none)."""
        if self._positive is None:
            return ()
        return _near(self._positive, text, start, end)

    def negatives_near(self, text: str, start: int, end: int) -> tuple[str, ...]:
        if self._negative is None:
            return ()
        return _near(self._negative, text, start, end)


def _near(pattern: re.Pattern[str], text: str, start: int, end: int) -> tuple[str, ...]:
    """:func:`~qorgau.discovery.types.context_near` for the hot path: two ``findall`` calls in C, and
    nothing built when both come back empty (most findings)."""
    before = pattern.findall(text, start - CONTEXT_WINDOW if start > CONTEXT_WINDOW else 0, start)
    after = pattern.findall(text, end, end + CONTEXT_WINDOW)  # re clamps endpos to the text's length
    if not before and not after:
        return ()
    return tuple(w.lower() for w in before + after)


# --- column headers ---------------------------------------------------------------------------------
# CSV/TSV text pasted into a ticket or read from a file: the context word of a value is its column's name in
# the header line, far from the value. Recognizers whose type needs context ask for it only when the usual
# context window had nothing (a few findings), never on the hot path.

_DELIMITERS = ("\t", ";", "|", ",")
_HEADER_LOOKBACK = 4096  # characters searched back for the header line
# A header cell: a name without digits, except one at its end (address2, phone_1).
_HEADER_CELL = re.compile(r"[^\W\d](?:[^\W\d]|[ .()/-]){0,40}(?:_?\d)?")


def column_header(text: str, pos: int) -> str:
    """The name of the delimited-table column ``pos`` is in (lower case, ``_`` as space), or ``""``.

    ``pos`` must start a cell (line start or a delimiter before it, spaces and quotes aside). The header is the
    nearest earlier line (within 4 KB) split by the same delimiter into the same number of cells, each a name
    (no digits but a final one: ``phone_2``); the column is the number of delimiters before ``pos`` on its
    line. Quoted delimiters are not parsed (a heuristic: a wrong guess only withholds a context word)."""
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    if line_start == 0:
        return ""
    line = text[line_start:line_end if line_end != -1 else len(text)]
    delimiter = next((d for d in _DELIMITERS if d in line), None)
    if delimiter is None:
        return ""
    cell_start = pos
    while cell_start > line_start and text[cell_start - 1] in " \"'":
        cell_start -= 1
    if cell_start > line_start and text[cell_start - 1] != delimiter:
        return ""  # the value does not start a cell: prose with commas, not a table row
    separators = line.count(delimiter)
    column = text.count(delimiter, line_start, pos)
    lo = max(0, line_start - _HEADER_LOOKBACK)
    end = line_start - 1
    while end > lo:
        start = text.rfind("\n", lo, end) + 1
        if start == 0 and lo > 0:
            return ""
        # Count first (in C); split and check the cells only of a line shaped like the row.
        if text.count(delimiter, start, end) == separators:
            header = text[start:end].rstrip("\r").split(delimiter)
            if all(_HEADER_CELL.fullmatch(c.strip()) for c in header):
                return header[column].strip().lower().replace("_", " ")
        if start == 0:
            return ""
        end = start - 1
    return ""


def clamp(score: float) -> float:
    return round(min(1.0, max(0.0, score)), 4)


_MEMO_LIMIT = 512  # explanations (and clamped scores) kept per scorer: bounded, so memory stays flat


class Scorer:
    """Builds the findings of one kind of match (one recognizer, type, pattern, base score, validator).

    The hot path of every rule-based recognizer: what never changes between matches is bound once, and
    so is what repeats — explanations are immutable, and a dense text yields the same one (no context
    word, or the same ones) over and over, so a scorer hands out a shared :class:`Explanation` per
    distinct (context words, delta, notes) rather than building one per finding (at most
    ``_MEMO_LIMIT`` kept: memory stays flat). Same findings, same explanations as :func:`scored_finding`.
    """

    __slots__ = ("_explanations", "_negative", "_positive", "_scores", "base", "boost", "category", "entity_type",
                 "pattern", "penalty", "recognizer", "validated", "validator")

    def __init__(self, *, entity_type: str, recognizer: str, pattern: str, base: float, context: Context,
                 validated: bool | None, validator: str | None, category: str = ""):
        self.entity_type = entity_type
        self.recognizer = recognizer
        self.pattern = pattern
        self.base = base
        self.validated = validated
        self.validator = validator
        self.category = category or category_of(entity_type)
        self._positive = context._positive
        self._negative = context._negative
        self.boost = context.boost
        self.penalty = context.penalty
        self._explanations: dict[tuple, Explanation] = {}
        self._scores: dict[float, float] = {}

    def __call__(self, text: str, start: int, end: int, notes: tuple[str, ...] = ()) -> Finding:
        """The finding for ``text[start:end]``, its score moved by the context words around it."""
        words = _near(self._positive, text, start, end) if self._positive is not None else ()
        return self._finding(text, start, end, words, notes)

    def with_context(self, text: str, start: int, end: int, notes: tuple[str, ...] = ()) -> Finding | None:
        """The finding only if a positive context word is near (``require_context`` of :func:`scored_finding`)."""
        words = _near(self._positive, text, start, end) if self._positive is not None else ()
        return self._finding(text, start, end, words, notes) if words else None

    def _finding(self, text: str, start: int, end: int, words: tuple[str, ...], notes: tuple[str, ...]) -> Finding:
        delta = self.boost if words else 0.0
        if self._negative is not None:
            negatives = _near(self._negative, text, start, end)
            if negatives:
                delta -= self.penalty
                notes = notes + ("negative context: " + ", ".join(negatives),)
        key = (words, delta, notes)
        explanation = self._explanations.get(key)
        if explanation is None:
            explanation = Explanation(self.pattern, self.base, self.validated, self.validator, words,
                                      round(delta, 4), notes)
            if len(self._explanations) < _MEMO_LIMIT:
                self._explanations[key] = explanation
        score = self._scores.get(delta)
        if score is None:
            score = self._scores[delta] = clamp(self.base + delta)
        return Finding(self.entity_type, start, end, score, self.recognizer, self.category, explanation)


def scored_finding(
    text: str,
    start: int,
    end: int,
    *,
    entity_type: str,
    recognizer: str,
    pattern: str,
    base: float,
    context: Context,
    validated: bool | None,
    validator: str | None,
    category: str = "",
    notes: tuple[str, ...] = (),
    require_context: bool = False,
) -> Finding | None:
    """A finding for ``text[start:end]`` with its score adjusted by context, or None.

    ``require_context`` is for formats too common to report on their own (nine digits as an ID card):
    without a positive context word there is no finding at all, whatever the scanner's ``min_score``.
    A recognizer that scores many matches the same way binds a :class:`Scorer` once instead.
    """
    words = _near(context._positive, text, start, end) if context._positive is not None else ()
    if require_context and not words:
        return None
    delta = context.boost if words else 0.0
    if context._negative is not None:
        negatives = _near(context._negative, text, start, end)
        if negatives:
            delta -= context.penalty
            notes = notes + ("negative context: " + ", ".join(negatives),)
    explanation = Explanation(pattern, base, validated, validator, words, round(delta, 4), notes)
    return Finding(entity_type, start, end, clamp(base + delta), recognizer, category or category_of(entity_type),
                   explanation)
