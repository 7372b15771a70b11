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

from collections.abc import Sequence

from ..types import Explanation, Finding, context_near, context_pattern


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
        return context_near(text, start, end, self._positive)

    def negatives_near(self, text: str, start: int, end: int) -> tuple[str, ...]:
        if self._negative is None:
            return ()
        return context_near(text, start, end, self._negative)


def clamp(score: float) -> float:
    return round(min(1.0, max(0.0, score)), 4)


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
    """
    words = context.words_near(text, start, end)
    if require_context and not words:
        return None
    delta = context.boost if words else 0.0
    negatives = context.negatives_near(text, start, end)
    if negatives:
        delta -= context.penalty
        notes = notes + ("negative context: " + ", ".join(negatives),)
    explanation = Explanation(
        pattern=pattern, base_score=base, validated=validated, validator=validator,
        context_words=words, context_delta=round(delta, 4), notes=notes,
    )
    return Finding(type=entity_type, start=start, end=end, score=clamp(base + delta), recognizer=recognizer,
                   category=category, explanation=explanation)
