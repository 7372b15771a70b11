"""How well does discovery find personal data? Precision, recall and F1 per type on a labelled corpus.

    python -m qorgau.discovery.evaluation [--corpus PATH] [--types KZ_IIN PERSON …] [--mode mixed]

The corpus (``corpus/eval.jsonl``, made by ``corpus/build.py``; labelling rules in ``corpus/README.md``)
holds kk/ru/en texts with gold spans. :func:`evaluate` runs any ``scan(text) -> list[Finding]`` over
it and compares findings with the gold spans under one of three matching modes:

* ``exact``   — same type and the same span, character for character;
* ``overlap`` — same type and the spans share at least half of the gold span's characters;
* ``mixed``   — ``exact`` for structured identifiers (an IIN found without its last digit is a miss),
  ``overlap`` for PERSON, ADDRESS and DATE_OF_BIRTH, whose borders are a matter of convention
  ("г. Алматы, ул. Абая, 15" with or without the postal code). **The goals use ``mixed``.**

Matching is one-to-one: a finding can satisfy one gold span at most, so two findings on one name
count one true positive and one false positive. Findings of types the corpus does not label (a
scanner may add its own) are left out of the scores and counted in ``EvalReport.ignored``.

Errors are listed with the example id and a masked snippet: digits anywhere in the snippet and the
letters inside every labelled or found span are replaced by ``*``, so printing a report never prints
a value, even though the corpus is synthetic (STYLE.md: personal data never leaks by accident).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .types import EntityType, Finding

Mode = Literal["exact", "overlap", "mixed"]
MODES: tuple[Mode, ...] = ("exact", "overlap", "mixed")

DEFAULT_CORPUS = Path(__file__).with_name("corpus") / "eval.jsonl"
KNOWN_TYPES = frozenset(t.value for t in EntityType)
# Types whose borders are conventional: matched by overlap in "mixed" mode.
FUZZY_TYPES = frozenset({"PERSON", "ADDRESS", "DATE_OF_BIRTH"})
STRUCTURED_TYPES = frozenset(KNOWN_TYPES - FUZZY_TYPES)
OVERLAP_SHARE = 0.5  # share of the gold span a finding must cover in overlap matching

# Goals of issue 3 (F1, "mixed" matching). Structured identifiers: each one.
GOALS: dict[str, float] = {t: 0.99 for t in sorted(STRUCTURED_TYPES)}
GOALS.update({"PERSON": 0.93, "ADDRESS": 0.90, "DATE_OF_BIRTH": 0.90})
MICRO_GOAL = 0.95
SNIPPET_CONTEXT = 25


@dataclass(frozen=True, slots=True)
class Span:
    """A labelled (gold) entity: type and Python character offsets."""

    type: str
    start: int
    end: int


@dataclass(frozen=True, slots=True, repr=False)
class Example:
    """One corpus record. ``repr`` leaves the text out: it is a page of (synthetic) personal data."""

    id: str
    lang: str
    text: str
    entities: tuple[Span, ...]
    domain: str = ""
    hard_negatives: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Example({self.id!r}, lang={self.lang!r}, {len(self.text)} chars, {len(self.entities)} entities)"


@dataclass(frozen=True, slots=True)
class TypeScore:
    type: str
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def support(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _f1(self.tp, self.fp, self.fn)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4), "support": self.support, "tp": self.tp, "fp": self.fp, "fn": self.fn}


@dataclass(frozen=True, slots=True)
class EvalError:
    """A false positive (found, not labelled) or false negative (labelled, not found); snippet masked."""

    kind: Literal["false_positive", "false_negative"]
    example_id: str
    type: str
    start: int
    end: int
    snippet: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "example_id": self.example_id, "type": self.type, "start": self.start,
                "end": self.end, "snippet": self.snippet}


@dataclass(frozen=True, slots=True)
class GoalCheck:
    name: str
    target: float
    value: float | None  # None: nothing to measure (no support and no findings)

    @property
    def status(self) -> str:
        if self.value is None:
            return "n/a"
        return "PASS" if self.value >= self.target else "MISS"


@dataclass(slots=True)
class EvalReport:
    """Scores of one scan function on one corpus under one matching mode."""

    mode: Mode
    per_type: dict[str, TypeScore]
    errors: list[EvalError]
    examples: int
    characters: int
    seconds: float
    ignored: dict[str, int] = field(default_factory=dict)  # findings of types the corpus does not label

    @property
    def micro(self) -> TypeScore:
        return TypeScore("micro", sum(s.tp for s in self.per_type.values()),
                         sum(s.fp for s in self.per_type.values()), sum(s.fn for s in self.per_type.values()))

    @property
    def macro_f1(self) -> float:
        """Unweighted mean F1 over the types that have gold support."""
        scored = [s.f1 for s in self.per_type.values() if s.support]
        return sum(scored) / len(scored) if scored else 0.0

    @property
    def macro_precision(self) -> float:
        scored = [s.precision for s in self.per_type.values() if s.support]
        return sum(scored) / len(scored) if scored else 0.0

    @property
    def macro_recall(self) -> float:
        scored = [s.recall for s in self.per_type.values() if s.support]
        return sum(scored) / len(scored) if scored else 0.0

    def goals(self) -> list[GoalCheck]:
        checks = []
        for name, target in GOALS.items():
            score = self.per_type.get(name)
            measurable = score is not None and (score.support or score.fp)
            checks.append(GoalCheck(name, target, score.f1 if measurable else None))
        micro = self.micro
        checks.append(GoalCheck("micro", MICRO_GOAL, micro.f1 if micro.tp + micro.fp + micro.fn else None))
        return checks

    @property
    def all_goals_met(self) -> bool:
        return all(g.status != "MISS" for g in self.goals())

    def render_table(self, max_errors: int = 20) -> str:
        """A plain-text table: one row per type, micro/macro rows, goal status, then the first errors."""
        goal_of = {g.name: g for g in self.goals()}
        header = f"{'type':<18} {'prec':>6} {'rec':>6} {'f1':>6} {'support':>8} {'tp':>6} {'fp':>5} {'fn':>5}  goal"
        lines = [f"discovery evaluation — {self.examples} examples, {self.characters} characters, "
                 f"matching: {self.mode}" + (" (exact for identifiers, overlap ≥ 50% for PERSON/ADDRESS/"
                                             "DATE_OF_BIRTH)" if self.mode == "mixed" else ""),
                 header, "-" * len(header)]
        for name in sorted(self.per_type):
            s = self.per_type[name]
            goal = goal_of.get(name)
            mark = f"{goal.status} (≥ {goal.target:.2f})" if goal and self.mode == "mixed" else ""
            lines.append(f"{name:<18} {s.precision:>6.3f} {s.recall:>6.3f} {s.f1:>6.3f} {s.support:>8} "
                         f"{s.tp:>6} {s.fp:>5} {s.fn:>5}  {mark}")
        lines.append("-" * len(header))
        m = self.micro
        micro_goal = goal_of["micro"]
        micro_mark = f"{micro_goal.status} (≥ {MICRO_GOAL:.2f})" if self.mode == "mixed" else ""
        lines.append(f"{'micro':<18} {m.precision:>6.3f} {m.recall:>6.3f} {m.f1:>6.3f} {m.support:>8} "
                     f"{m.tp:>6} {m.fp:>5} {m.fn:>5}  {micro_mark}")
        lines.append(f"{'macro':<18} {self.macro_precision:>6.3f} {self.macro_recall:>6.3f} {self.macro_f1:>6.3f}")
        if self.seconds > 0:
            lines.append(f"scan speed: {self.characters / self.seconds / 1e6:.2f} M chars/s over the corpus "
                         f"(small texts; see bench/ for throughput)")
        if self.ignored:
            lines.append("ignored findings of unlabelled types: "
                         + ", ".join(f"{k} {v}" for k, v in sorted(self.ignored.items())))
        if self.mode == "mixed":
            missed = [g.name for g in self.goals() if g.status == "MISS"]
            lines.append("goals: all met" if not missed else f"goals: MISS {', '.join(missed)}")
        if self.errors and max_errors:
            lines.append("")
            lines.append(f"errors (first {min(max_errors, len(self.errors))} of {len(self.errors)}; values masked):")
            for e in self.errors[:max_errors]:
                tag = "FP" if e.kind == "false_positive" else "FN"
                lines.append(f"  {tag} {e.type:<16} {e.example_id:<12} {e.snippet}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        m = self.micro
        return {
            "mode": self.mode, "examples": self.examples, "characters": self.characters,
            "seconds": round(self.seconds, 4),
            "per_type": {k: v.to_dict() for k, v in sorted(self.per_type.items())},
            "micro": {"precision": round(m.precision, 4), "recall": round(m.recall, 4), "f1": round(m.f1, 4),
                      "support": m.support},
            "macro": {"precision": round(self.macro_precision, 4), "recall": round(self.macro_recall, 4),
                      "f1": round(self.macro_f1, 4)},
            "goals": [{"name": g.name, "target": g.target, "value": None if g.value is None else round(g.value, 4),
                       "status": g.status} for g in self.goals()],
            "ignored": dict(sorted(self.ignored.items())),
            "errors": [e.to_dict() for e in self.errors],
        }


# --- loading ----------------------------------------------------------------------------------------

def load_corpus(path: str | Path | None = None) -> list[Example]:
    """Read a JSONL corpus (default: the one shipped in the package) and check every record's labels.

    A broken record raises :class:`ValueError` naming the line, the record id and the field, never the text.
    """
    source = Path(path) if path is not None else DEFAULT_CORPUS
    examples: list[Example] = []
    seen: set[str] = set()
    with source.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            examples.append(_parse_record(line, line_no, seen))
    return examples


def _parse_record(line: str, line_no: int, seen: set[str]) -> Example:
    where = f"corpus line {line_no}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON (column {exc.colno})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{where}: a record must be a JSON object")
    for key in ("id", "lang", "text", "entities"):
        if key not in record:
            raise ValueError(f"{where}: missing field {key!r}")
    rid, text = str(record["id"]), record["text"]
    where = f"{where} (id {rid})"
    if rid in seen:
        raise ValueError(f"{where}: duplicate id")
    seen.add(rid)
    if not isinstance(text, str):
        raise ValueError(f"{where}: field 'text' must be a string")
    if record["lang"] not in ("kk", "ru", "en", "mixed"):
        raise ValueError(f"{where}: field 'lang' must be kk, ru, en or mixed")
    spans = []
    for i, ent in enumerate(record["entities"]):
        kind, start, end = ent.get("type"), ent.get("start"), ent.get("end")
        if kind not in KNOWN_TYPES:
            raise ValueError(f"{where}: entities[{i}].type is not an EntityType")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            raise ValueError(f"{where}: entities[{i}] offsets are outside the text or empty")
        if text[start:end] != text[start:end].strip():
            raise ValueError(f"{where}: entities[{i}] span starts or ends with whitespace")
        spans.append(Span(kind, start, end))
    return Example(id=rid, lang=record["lang"], text=text, entities=tuple(spans),
                   domain=str(record.get("domain", "")), hard_negatives=tuple(record.get("hard_negatives", ())))


# --- matching ---------------------------------------------------------------------------------------

def _uses_overlap(kind: str, mode: Mode) -> bool:
    return mode == "overlap" or (mode == "mixed" and kind in FUZZY_TYPES)


def _matches(gold: Span, start: int, end: int, overlap: bool) -> int:
    """How well a predicted span matches a gold span of the same type: 0 = no match, higher = better."""
    if not overlap:
        return 1 if (gold.start, gold.end) == (start, end) else 0
    shared = min(gold.end, end) - max(gold.start, start)
    if shared <= 0 or shared < OVERLAP_SHARE * (gold.end - gold.start):
        return 0
    return shared


def match_example(gold: Sequence[Span], predicted: Sequence[Span], mode: Mode) -> tuple[
        list[tuple[Span, Span]], list[Span], list[Span]]:
    """One-to-one matching of predictions to gold spans: (matched pairs, false positives, false negatives).

    Greedy by match quality (exact first, then the largest shared length), ties broken by position, so
    the result does not depend on the order the scanner returned its findings in.
    """
    candidates = []
    for gi, g in enumerate(gold):
        overlap = _uses_overlap(g.type, mode)
        for pi, p in enumerate(predicted):
            if p.type != g.type:
                continue
            quality = _matches(g, p.start, p.end, overlap)
            if quality:
                exact = (g.start, g.end) == (p.start, p.end)
                candidates.append((-int(exact), -quality, g.start, p.start, gi, pi))
    candidates.sort()
    used_gold: set[int] = set()
    used_pred: set[int] = set()
    pairs = []
    for *_, gi, pi in candidates:
        if gi in used_gold or pi in used_pred:
            continue
        used_gold.add(gi)
        used_pred.add(pi)
        pairs.append((gold[gi], predicted[pi]))
    fps = [p for i, p in enumerate(predicted) if i not in used_pred]
    fns = [g for i, g in enumerate(gold) if i not in used_gold]
    return pairs, fps, fns


# --- evaluation -------------------------------------------------------------------------------------

def evaluate(scan: Callable[[str], list[Finding]], examples: Iterable[Example], *, mode: Mode = "mixed",
             types: Iterable[str] | None = None) -> EvalReport:
    """Run ``scan`` on every example and score its findings against the gold spans.

    ``types`` restricts scoring to those entity types (gold and predicted alike); by default every
    :class:`EntityType`. Findings of other types are counted in ``ignored`` and not scored.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    wanted = KNOWN_TYPES if types is None else frozenset(types)
    unknown = wanted - KNOWN_TYPES
    if unknown:
        raise ValueError(f"unknown entity types: {', '.join(sorted(unknown))}")
    examples = list(examples)
    predictions: list[list[Finding]] = []
    started = time.perf_counter()
    for example in examples:
        predictions.append(list(scan(example.text)))
    seconds = time.perf_counter() - started
    return score_predictions(examples, predictions, mode=mode, types=wanted, seconds=seconds)


def score_predictions(examples: Sequence[Example], predictions: Sequence[Sequence[Finding]], *,
                      mode: Mode = "mixed", types: Iterable[str] | None = None,
                      seconds: float = 0.0) -> EvalReport:
    """Score findings already computed (one list per example, same order) — lets one scan feed all modes."""
    if len(examples) != len(predictions):
        raise ValueError("need one list of findings per example")
    wanted = KNOWN_TYPES if types is None else frozenset(types)
    counts: dict[str, list[int]] = {t: [0, 0, 0] for t in sorted({s.type for e in examples for s in e.entities}
                                                                 & wanted)}
    errors: list[EvalError] = []
    ignored: dict[str, int] = {}
    characters = 0
    for example, found in zip(examples, predictions, strict=True):
        characters += len(example.text)
        gold = [s for s in example.entities if s.type in wanted]
        predicted = []
        for f in found:
            if f.type in wanted:
                predicted.append(Span(f.type, f.start, f.end))
            elif f.type not in KNOWN_TYPES:
                ignored[f.type] = ignored.get(f.type, 0) + 1
        pairs, fps, fns = match_example(gold, predicted, mode)
        for g, _ in pairs:
            counts.setdefault(g.type, [0, 0, 0])[0] += 1
        all_spans = gold + predicted
        for p in fps:
            counts.setdefault(p.type, [0, 0, 0])[1] += 1
            errors.append(EvalError("false_positive", example.id, p.type, p.start, p.end,
                                    masked_snippet(example.text, p.start, p.end, all_spans)))
        for g in fns:
            counts[g.type][2] += 1
            errors.append(EvalError("false_negative", example.id, g.type, g.start, g.end,
                                    masked_snippet(example.text, g.start, g.end, all_spans)))
    per_type = {t: TypeScore(t, *c) for t, c in counts.items()}
    return EvalReport(mode=mode, per_type=per_type, errors=errors, examples=len(examples), characters=characters,
                      seconds=seconds, ignored=ignored)


def masked_snippet(text: str, start: int, end: int, spans: Iterable[Span] = (),
                   context: int = SNIPPET_CONTEXT) -> str:
    """``…тел. ⟦+* *** *** ** **⟧, e-mail…``: the span in brackets with a little context around it.

    Every digit in the window and every letter inside any given span (gold or found) becomes ``*``, so
    context words stay readable ("ИИН", "туған күні") and values do not.
    """
    lo, hi = max(0, start - context), min(len(text), end + context)
    chars = list(text[lo:hi])
    for s in (*spans, Span("", start, end)):
        for i in range(max(s.start, lo), min(s.end, hi)):
            if chars[i - lo].isalnum():
                chars[i - lo] = "*"
    for i, ch in enumerate(chars):
        if ch.isdigit():
            chars[i] = "*"
        elif ch in "\n\r\t":
            chars[i] = " "
    a, b = start - lo, end - lo
    body = "".join(chars[:a]) + "⟦" + "".join(chars[a:b]) + "⟧" + "".join(chars[b:])
    return ("…" if lo > 0 else "") + body + ("…" if hi < len(text) else "")


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


# --- command line -----------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qorgau.discovery.evaluation",
                                     description="Precision/recall/F1 per entity type on the labelled corpus.")
    parser.add_argument("--corpus", type=Path, default=None, help="JSONL corpus (default: the shipped one)")
    parser.add_argument("--types", nargs="+", metavar="TYPE", help="score only these entity types")
    parser.add_argument("--mode", choices=MODES, default="mixed", help="span matching (goals use mixed)")
    parser.add_argument("--lang", choices=("kk", "ru", "en", "mixed"), help="only records in this language")
    parser.add_argument("--errors", type=int, default=20, help="how many (masked) errors to list")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--scanner", choices=("default", "identifiers"), default="default",
                        help="the full scanner, or the identifiers-only one (no PERSON/ADDRESS)")
    args = parser.parse_args(argv)
    try:
        from .engine import Scanner

        scanner = Scanner.default() if args.scanner == "default" else Scanner.identifiers_only()
    except ImportError as exc:  # the engine is a separate piece; say so instead of a traceback
        print(f"cannot build the discovery scanner: {exc}", file=sys.stderr)
        return 2
    examples = load_corpus(args.corpus)
    if args.lang:
        examples = [e for e in examples if e.lang == args.lang]
    try:
        report = evaluate(scanner.scan, examples, mode=args.mode, types=args.types)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) if args.json
          else report.render_table(max_errors=args.errors))
    return 0 if report.all_goals_met else 1


if __name__ == "__main__":
    raise SystemExit(main())
