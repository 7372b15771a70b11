"""What every benchmark prints about the machine it ran on (this one is shared and noisy)."""

from __future__ import annotations

import os
import platform as pyplatform
from pathlib import Path


def cpu_and_python() -> list[tuple[str, str]]:
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)
    return [("CPU", f"{cpu_model}; {os.cpu_count()} logical CPUs ({usable} usable)"),
            ("Python", f"{pyplatform.python_implementation()} {pyplatform.python_version()} on {pyplatform.platform()}")]


def update_results_section(results: Path, section: str, intro: str, label: str, body: str) -> None:
    """Replace (or add) the ``### {label}`` subsection of ``## {section}`` in bench/RESULTS.md, leaving every other
    section (other benchmarks) as it is. ``intro`` is the section's first paragraph when the section is new."""
    import re

    text = results.read_text(encoding="utf-8") if results.exists() else (
        "# Benchmark results\n\nNumbers from `bench/*.py` on the project's machine (2 cores, shared and noisy):"
        " compare ratios, not absolute values. Each benchmark owns its own `##` section.\n")
    head = re.compile(rf"^## {re.escape(section)}[ \t]*$", re.M)
    if not head.search(text):
        text = text.rstrip("\n") + f"\n\n## {section}\n\n{intro.rstrip()}\n"
    m = head.search(text)
    assert m
    start = m.end()
    nxt = re.compile(r"^## ", re.M).search(text, start)
    end = nxt.start() if nxt else len(text)
    part = text[start:end]
    sub = re.compile(rf"^### {re.escape(label)}\b.*?(?=^### |\Z)", re.M | re.S)
    new_sub = body.rstrip("\n") + "\n\n"
    part = sub.sub(lambda _m: new_sub, part, count=1) if sub.search(part) else part.rstrip("\n") + "\n\n" + new_sub
    text = text[:start] + part.rstrip("\n") + "\n" + ("\n" + text[end:] if nxt else "")
    results.write_text(text, encoding="utf-8")
