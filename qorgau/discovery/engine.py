"""The scanner: run the recognizers over a text, apply the scan's lists, resolve overlaps, sort.

A :class:`Scanner` is built once and reused for every text: recognizers compile their patterns when they
are built, ``scan`` keeps no state between calls, so one scanner can serve many threads.

Pipeline of :meth:`Scanner.scan`:

1. every recognizer that can produce a wanted type runs over the text;
2. findings of unwanted types and findings below ``min_score`` are dropped (before overlaps are resolved,
   so a weak candidate never hides a stronger one of another type);
3. findings whose text is on the allow list are dropped; the deny list adds its own findings;
4. overlaps are resolved (rule below) and the rest is sorted by ``(start, end)``.

**Overlap rule** (deterministic): findings are ranked by, in order,

1. deny-list findings first (the operator said so);
2. validated (a checksum, range or syntax check passed) before not checked, before failed;
3. more specific type (:data:`~qorgau.discovery.types.SPECIFICITY`; custom types count 0);
4. higher score;
5. longer span;
6. earlier start; then type and recognizer name, so that ties never depend on recognizer order.

Going down that ranking, a finding is kept if it overlaps no finding kept before it. Touching spans
(``a.end == b.start``) do not overlap. Only findings that overlap something need ranking: the findings are
sorted by position once and cut into *overlap groups* (maximal runs of transitively overlapping spans);
a finding alone in its group is kept as is, and the rule runs inside each group. The result is the same
as running the rule over all findings at once (spans of different groups never overlap), in
O(n log n) for n findings.

Fast paths: recognizers of digit-based identifiers (``find_in_clusters``, see
:class:`~qorgau.discovery.recognizers.structured.NumericRecognizer`) share one pass that finds the numeric
clusters of the text; every other recognizer gets the text through ``find``. The recognizers' own
patterns are compiled by :mod:`~qorgau.discovery.recognizers.fastre`, so text without candidates is
skipped in C.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter

from .lists import DENY_RECOGNIZER, AllowList, DenyList
from .recognizers.structured import numeric_clusters
from .types import SPECIFICITY, Finding, Recognizer


def finding_rank(f: Finding) -> tuple:
    """Sort key: smaller is stronger (see the overlap rule in the module docstring)."""
    validated = f.explanation.validated if f.explanation is not None else None
    return (
        f.recognizer != DENY_RECOGNIZER,
        0 if validated is True else 1 if validated is None else 2,
        -SPECIFICITY.get(f.type, 0),
        -f.score,
        f.start - f.end,
        f.start,
        f.type,
        f.recognizer,
    )


_BY_POSITION = attrgetter("start", "end")


def resolve_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that survive the overlap rule, sorted by ``(start, end)``."""
    ordered = sorted(findings, key=_BY_POSITION)
    kept: list[Finding] = []
    i, n = 0, len(ordered)
    while i < n:
        first = ordered[i]
        group_end = first.end
        j = i + 1
        while j < n and ordered[j].start < group_end:  # overlaps some finding of the group
            if ordered[j].end > group_end:
                group_end = ordered[j].end
            j += 1
        if j == i + 1:
            kept.append(first)  # overlaps nothing: no ranking needed (most findings)
        else:
            kept += _resolve_group(ordered[i:j], first.start, group_end)
        i = j
    return kept


def _resolve_group(group: list[Finding], start: int, end: int) -> list[Finding]:
    """The overlap rule inside one group: strongest first, each kept if its characters are still free.

    ``taken`` marks the group's characters covered by kept findings: testing and marking a finding costs
    its own length (in C), never a search or an insertion in the list of kept findings."""
    taken = bytearray(end - start)
    kept: list[Finding] = []
    for f in sorted(group, key=finding_rank):
        a, b = f.start - start, f.end - start
        if taken.find(1, a, b) == -1:
            taken[a:b] = b"\x01" * (b - a)
            kept.append(f)
    kept.sort(key=_BY_POSITION)
    return kept


class Scanner:
    """Finds personal data in text with a fixed set of recognizers, lists and threshold.

    ``entity_types`` limits the scan to those types (recognizers that cannot produce any of them are not
    run). ``min_score`` drops weaker findings. ``allow``/``deny`` are the scan's lists (:mod:`.lists`).
    """

    __slots__ = ("_allow", "_deny", "_numeric", "_others", "_recognizers", "_types", "min_score")

    def __init__(self, recognizers: Sequence[Recognizer] | None = None, *,
                 entity_types: Iterable[str] | None = None, min_score: float = 0.5,
                 allow: AllowList | None = None, deny: DenyList | None = None):
        if recognizers is None:
            from .recognizers import default_recognizers

            recognizers = default_recognizers()
        if not 0.0 <= min_score <= 1.0:
            raise ValueError("min_score must be between 0 and 1")
        self._types = frozenset(str(t) for t in entity_types) if entity_types is not None else None
        self._recognizers = tuple(
            r for r in recognizers if self._types is None or r.entity_types & self._types
        )
        self._numeric = tuple(r for r in self._recognizers if hasattr(r, "find_in_clusters"))
        self._others = tuple(r for r in self._recognizers if not hasattr(r, "find_in_clusters"))
        self.min_score = min_score
        self._allow = allow if allow else None
        self._deny = deny if deny else None

    @classmethod
    def default(cls, **options) -> Scanner:
        """Every built-in recognizer, NLP ones (PERSON, ADDRESS, DATE_OF_BIRTH) included."""
        from .recognizers import default_recognizers

        return cls(default_recognizers(include_nlp=True), **options)

    @classmethod
    def identifiers_only(cls, **options) -> Scanner:
        """Structured identifiers only: no PERSON, ADDRESS or DATE_OF_BIRTH, and no NLP model loaded."""
        from .recognizers import default_recognizers

        return cls(default_recognizers(include_nlp=False), **options)

    @property
    def recognizers(self) -> tuple[Recognizer, ...]:
        return self._recognizers

    @property
    def entity_types(self) -> frozenset[str]:
        """The types this scanner can report (deny-list types included)."""
        produced = frozenset().union(*(r.entity_types for r in self._recognizers))
        if self._types is not None:
            produced &= self._types
        return produced | (self._deny.entity_types if self._deny is not None else frozenset())

    def scan(self, text: str, *, include_text: bool = False) -> list[Finding]:
        """Findings in ``text`` sorted by ``(start, end)``; ``include_text`` fills ``Finding.text``."""
        if not text:
            return []
        findings = self._collect(text)
        if self._allow is not None:
            allow = self._allow
            findings = [f for f in findings if not allow.allows(text[f.start:f.end])]
        if self._deny is not None:
            findings.extend(self._deny.find(text))
        resolved = resolve_overlaps(findings)
        if include_text:
            return [Finding(f.type, f.start, f.end, f.score, f.recognizer, f.category, f.explanation,
                            text[f.start:f.end]) for f in resolved]
        return resolved

    def _collect(self, text: str) -> list[Finding]:
        """Every recognizer's findings of a wanted type at or above ``min_score``."""
        found: list[Finding] = []
        if self._numeric:
            clusters = numeric_clusters(text)
            for recognizer in self._numeric:
                found += recognizer.find_in_clusters(text, clusters)
        for recognizer in self._others:
            found += recognizer.find(text)
        threshold, wanted = self.min_score, self._types
        if wanted is None:
            return [f for f in found if f.score >= threshold]
        return [f for f in found if f.score >= threshold and f.type in wanted]

    def __repr__(self) -> str:
        names = ", ".join(r.name for r in self._recognizers)
        return f"Scanner([{names}], min_score={self.min_score})"
