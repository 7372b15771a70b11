"""Generate docs/cli.md from the code, so the CLI reference never drifts (`make docs`)."""

from __future__ import annotations

import os

import click
import typer

os.environ.setdefault("COLUMNS", "100")
os.environ["NO_COLOR"] = "1"
os.environ["TERM"] = "dumb"

from qorgau.cli.main import app  # noqa: E402


def walk(cmd: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    found = [(path, cmd)]
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
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
        ctx = click.Context(cmd, info_name=" ".join(path))
        print(f"## `{' '.join(path)}`\n")
        print("```text")
        print(cmd.get_help(ctx).replace("\x1b", ""))
        print("```\n")


if __name__ == "__main__":
    main()
