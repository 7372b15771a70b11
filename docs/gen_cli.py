"""Generate docs/cli.md from the code, so the CLI reference never drifts (`make docs`)."""

from __future__ import annotations

import os

from typing import Any

import typer

os.environ["COLUMNS"] = "100"
os.environ["NO_COLOR"] = "1"
os.environ["TERM"] = "dumb"

from qorgau.cli.main import app  # noqa: E402


def walk(cmd: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    # Typer may ship its own copy of click, so look at the shape, not the class.
    found = [(path, cmd)]
    for name in sorted(getattr(cmd, "commands", {}) or {}):
        found += walk(cmd.commands[name], path + [name])
    return found


def main() -> None:
    root = typer.main.get_command(app)
    print("# CLI reference\n")
    print("Generated from the code by `make docs` (`docs/gen_cli.py`); do not edit by hand.\n")
    print("Every command honours `QORGAU_DATA_DIR`, `QORGAU_DATABASE_URL` and `qorgau.toml` "
          "(see [operations](operations.md)). Exit codes: 0 success, 1 setup problem (not initialized, "
          "key file), 2 bad input (the message names the field), 3 integrity failure (audit log tampered).\n")
    for path, cmd in walk(root, ["qorgau"]):
        ctx = cmd.context_class(cmd, info_name=" ".join(path))
        print(f"## `{' '.join(path)}`\n")
        print("```text")
        print(cmd.get_help(ctx).replace("\x1b", ""))
        print("```\n")


if __name__ == "__main__":
    main()
