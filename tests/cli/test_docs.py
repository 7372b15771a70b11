"""The CLI reference in docs/ is generated from the code and must not drift from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_reference_matches_the_code() -> None:
    generated = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_cli.py")], capture_output=True,
                               text=True, timeout=120, check=True).stdout
    committed = (ROOT / "docs" / "cli.md").read_text()
    assert generated == committed, "docs/cli.md is stale: run `make docs`"
    assert "## `qorgau scan`" in committed and "## `qorgau audit verify`" in committed
