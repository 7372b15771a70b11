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
