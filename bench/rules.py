"""How fast does the rule engine classify AI systems, against the same law written by hand in Python?

The workload is the casebook (tests/rules/casebook.yaml: ≥ 40 realistic AI systems with every question answered),
cycled to ``--n`` evaluations (default 20,000). ``RuleBook.evaluate`` (built-in packs, law profile, each system as
of its own date) is timed against ``bench/rules_handwritten.classify_ai_system`` — the whole AI-law pack as plain
if-statements over the same facts — in the same run, alternately, best of ``--repeats``, so the ratio stays
meaningful on a busy machine. Before timing, the bench asserts that both give the same risk level, autonomy,
prohibitions, autonomy violation, obligations and notices for every casebook system.

Goals (issue 7): ≥ 1,000 systems/s, and within 20× of the hand-written Python.

Run: ``.venv/bin/python bench/rules.py`` (about 10-30 s; ``--n`` to change the size).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import cpu_and_python  # noqa: E402
from rules_handwritten import classify_ai_system  # noqa: E402

from qorgau.rules import RuleBook, load_rulebook  # noqa: E402

CASEBOOK = ROOT / "tests" / "rules" / "casebook.yaml"
PACKS = ROOT / "qorgau" / "rules" / "packs"
FACTS = ROOT / "qorgau" / "rules" / "facts.yaml"

GOAL_PER_SECOND = 1_000
GOAL_RATIO = 20.0


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def casebook() -> list[tuple[str, dict[str, Any], date]]:
    doc = yaml.safe_load(CASEBOOK.read_text(encoding="utf-8"))
    out = []
    for entry in doc["systems"]:
        as_of = entry["as_of"]
        out.append((entry["name"], deep_merge(doc["base_facts"], entry.get("facts") or {}),
                    as_of if isinstance(as_of, date) else date.fromisoformat(str(as_of))))
    return out


def engine_result(book: RuleBook, facts: dict[str, Any], as_of: date) -> dict[str, Any]:
    ev = book.evaluate(facts, as_of=as_of)
    return {"risk_level": ev.risk_level, "autonomy_level": ev.autonomy_level,
            "prohibitions": {f.effect["practice"] for f in ev.prohibitions},
            "autonomy_violation": bool(ev.autonomy_violations),
            "obligations": {f.effect["code"] for f in ev.obligations},
            "notices": {f.effect["code"] for f in ev.notices}}


def assert_agreement(book: RuleBook, systems: Sequence[tuple[str, dict[str, Any], date]]) -> None:
    """The hand-written baseline is only a fair baseline if it computes the same thing."""
    disagreements = []
    for name, facts, as_of in systems:
        by_engine, by_hand = engine_result(book, facts, as_of), classify_ai_system(facts, as_of)
        if by_engine != by_hand:
            keys = [k for k in by_engine if by_engine[k] != by_hand[k]]
            disagreements.append(f"{name}: " + "; ".join(f"{k} engine={by_engine[k]} hand={by_hand[k]}" for k in keys))
    if disagreements:
        raise SystemExit("the engine and the hand-written classifier disagree:\n  " + "\n  ".join(disagreements))


def timed(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="evaluations per timed run (default 20,000)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    for key, value in cpu_and_python():
        print(f"{key}: {value}")
    load_start = os.getloadavg()
    started = time.perf_counter()
    book = load_rulebook([PACKS], facts=FACTS)
    loaded = time.perf_counter() - started
    systems = casebook()
    n_rules = sum(len(p.rules) for p in book.packs if p.subject == "ai_system")
    print(f"packs: {', '.join(f'{p.id} {p.version}' for p in book.packs)}; {n_rules} ai_system rules; "
          f"loaded and checked in {loaded * 1000:.0f} ms")

    assert_agreement(book, systems)
    print(f"engine and hand-written classifier agree on all {len(systems)} casebook systems")

    workload = [(facts, as_of) for _, facts, as_of in systems] * (args.n // len(systems) + 1)
    workload = workload[: args.n]
    evaluate = book.evaluate

    def by_engine() -> None:
        for facts, as_of in workload:
            evaluate(facts, as_of=as_of)

    def by_hand() -> None:
        for facts, as_of in workload:
            classify_ai_system(facts, as_of)

    by_engine()  # warm the per-date rule cache and CEL programs once
    engine_best = hand_best = float("inf")
    for _ in range(args.repeats):
        hand_best = min(hand_best, timed(by_hand))
        engine_best = min(engine_best, timed(by_engine))
    load_end = os.getloadavg()

    engine_rate, hand_rate = len(workload) / engine_best, len(workload) / hand_best
    ratio = engine_best / hand_best
    print(f"load average at start / end: {', '.join(f'{x:.1f}' for x in load_start)} / "
          f"{', '.join(f'{x:.1f}' for x in load_end)}")
    print(f"{len(workload):,} classifications ({len(systems)} systems cycled), best of {args.repeats}:")
    for label, rate, seconds in (("hand-written Python (baseline)", hand_rate, hand_best),
                                 ("RuleBook.evaluate", engine_rate, engine_best)):
        print(f"  {label:<31} {rate:12,.0f} systems/s  {seconds / len(workload) * 1e6:8.1f} µs each")
    print(f"  ratio engine / hand-written     {ratio:12.1f}x")
    print(f"goals: ≥ {GOAL_PER_SECOND:,} systems/s — {'met' if engine_rate >= GOAL_PER_SECOND else 'NOT met'}; "
          f"within {GOAL_RATIO:.0f}x of hand-written — {'met' if ratio <= GOAL_RATIO else 'NOT met'}")


if __name__ == "__main__":
    main()
