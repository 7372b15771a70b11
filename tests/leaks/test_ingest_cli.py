"""`qorgau leaks upload / confirm / discard / uploads / purge-expired` against a real data dir (SQLite)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_bin
from typer.testing import CliRunner

from qorgau.cli.main import app
from qorgau.core.platform import Platform
from qorgau.core.settings import Settings, get_settings
from qorgau.leaks.register import leak_index_for, leak_keys_for

from .ingest_helpers import invalid_iin, make_incident, valid_iins

BIN = make_bin(61)
runner = CliRunner()


class Cli:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.env = {"QORGAU_DATA_DIR": str(data_dir), "QORGAU_DATABASE_URL": None, "QORGAU_CONFIG": "/nonexistent.toml",
                    "COLUMNS": "250", "NO_COLOR": "1"}

    def __call__(self, *args: str, code: int | None = 0) -> str:
        result = runner.invoke(app, list(args), env=self.env)  # type: ignore[arg-type]
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        if code is not None:
            assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        return result.stdout + result.stderr


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    command = Cli(tmp_path / "var")
    command("init")
    command("orgs", "create", "--name", "ТОО Утечка", "--bin", BIN)
    yield command
    get_settings.cache_clear()


def test_upload_review_confirm_and_list(cli: Cli, tmp_path: Path) -> None:
    platform = Platform.open(Settings(data_dir=cli.data_dir, database_url=f"sqlite:///{cli.data_dir / 'qorgau.db'}"))
    with platform.db.reader() as s:
        from qorgau.core.auth import Organization
        org_id = s.query(Organization).filter_by(bin=BIN).one().id
    incident = make_incident(platform, org_id)
    iins = valid_iins(40, start=60000)
    leak = tmp_path / "leak.csv"
    leak.write_text("iin,phone\n" + "".join(f"{iin},8701{3000000 + i}\n" for i, iin in enumerate(iins))
                    + f"{invalid_iin(iins[0])},\n", encoding="utf-8")
    text = cli("leaks", "upload", str(incident), str(leak), "--org", BIN)
    assert "iin" in text and "40" in text and "line 42" in text and "iin_invalid" in text
    assert iins[0] not in text and "qorgau leaks confirm lu-" in text
    upload_id = text.split("qorgau leaks confirm ")[1].split()[0]
    listed = json.loads(cli("leaks", "uploads", str(incident), "--json"))
    assert [u["public_id"] for u in listed] == [upload_id] and listed[0]["status"] == "parsed"
    done = json.loads(cli("leaks", "confirm", upload_id, "--json"))
    assert done["status"] == "confirmed" and done["tokens_committed"] == 80
    index = leak_index_for(platform)
    index.refresh()
    assert index.lookup(leak_keys_for(platform).token("iin", iins[3])) == (incident,)
    # --yes confirms at once; discard of a confirmed upload is refused with exit code 2
    other = tmp_path / "other.txt"
    other.write_text(f"ИИН: {iins[1]}\n", encoding="utf-8")
    again = json.loads(cli("leaks", "upload", str(incident), str(other), "--yes", "--json"))
    assert again["status"] == "confirmed"
    assert "cannot be discarded" in cli("leaks", "discard", again["public_id"], code=2)
    assert "not found" in cli("leaks", "confirm", "lu-00000000000000000000", code=2)
    assert "expired" in cli("leaks", "purge-expired")
    platform.close()
