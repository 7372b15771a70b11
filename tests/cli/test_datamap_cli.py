"""`qorgau scan --save`, `qorgau jobs …` and `qorgau datamap …` against a real data dir (SQLite)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qorgau.cli.main import app
from qorgau.core.settings import get_settings

from conftest import make_bin

IIN = "791028302728"
PASSWORD = "Cli-Secret-9"
BIN = make_bin(51)
runner = CliRunner()


class Cli:
    def __init__(self, data_dir: Path, roots: Path) -> None:
        self.env = {"QORGAU_DATA_DIR": str(data_dir), "QORGAU_DATABASE_URL": None, "QORGAU_CONFIG": "/nonexistent.toml",
                    "QORGAU_SCAN_ROOTS": json.dumps([str(roots)]), "COLUMNS": "250", "NO_COLOR": "1"}

    def __call__(self, *args: str, code: int | None = 0, input: str | None = None) -> tuple[int, str, str]:
        result = runner.invoke(app, list(args), env=self.env, input=input)  # type: ignore[arg-type]
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        if code is not None:
            assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    path = tmp_path / "exports"
    path.mkdir()
    (path / "clients.csv").write_text("iin,phone,диагноз\n" + f"{IIN},+7 701 234 56 78,J45\n" * 4, encoding="utf-8")
    (path / "notes.txt").write_text(f"звонил клиент, ИИН {IIN}\n", encoding="utf-8")
    (path / "events.jsonl").write_text("".join(json.dumps({"id": f"e{i}", "text": f"ИИН {IIN}" if i % 2 else "ok"},
                                                          ensure_ascii=False) + "\n" for i in range(5)), encoding="utf-8")
    return path


@pytest.fixture
def cli(tmp_path: Path, roots: Path) -> Iterator[Cli]:
    command = Cli(tmp_path / "var", roots)
    command("init")
    command("orgs", "create", "--name", "ТОО Пример", "--bin", BIN)
    yield command
    get_settings.cache_clear()  # the CLI read settings from this test's environment


def test_scan_save_records_the_scan_into_the_data_map(cli: Cli, roots: Path) -> None:
    code, out, err = cli("scan", str(roots / "clients.csv"), str(roots / "notes.txt"), "--identifiers-only", "--save",
                         code=1)
    assert "data map: 2 source(s) saved" in err
    _, listing, _ = cli("datamap", "list", "--org", BIN)
    assert "clients.csv" in listing and "notes.txt" in listing and "2 of 2 source(s)" in listing
    _, shown, _ = cli("datamap", "show", "1", "--json")
    doc = json.loads(shown)
    assert doc["locator"] == str(roots / "clients.csv") and doc["last_job_id"] is None
    assert {f["field"]: f["category"] for f in doc["fields"]} == {"iin": "identifying", "phone": "identifying",
                                                                 "диагноз": "personal_data"}
    _, table, _ = cli("datamap", "show", "1")
    assert "name: диагноз" in table and "health" in table


def test_save_leaves_the_json_lines_contract_byte_identical(cli: Cli, roots: Path) -> None:
    args = ("scan", str(roots / "events.jsonl"), "--text-field", "text", "--id-field", "id", "--identifiers-only")
    _, plain, _ = cli(*args, code=1)
    _, saved, err = cli(*args, "--save", "--org", BIN, code=1)
    assert saved == plain and len(plain.splitlines()) == 5 and "1 source(s) saved" in err
    _, shown, _ = cli("datamap", "show", "1", "--json")
    assert json.loads(shown)["fields"][0]["field"] == "text"


def test_save_keeps_the_other_reports_whole(cli: Cli, roots: Path) -> None:
    def report(*extra: str) -> dict:
        _, out, _ = cli("scan", str(roots / "clients.csv"), "--identifiers-only", "--format", "json", *extra, code=1)
        doc = json.loads(out)
        doc.pop("generated_at")
        for source in doc["sources"]:
            source.pop("seconds")
        return doc

    assert report("--save") == report()
    assert report()["sources"][0]["places"]  # places are still reported with --save


@pytest.mark.parametrize("args, message", [
    (("--org", BIN), "--org is used with --save"),
    (("--save", "--org", "000000000000"), "no organization with this BIN"),
])
def test_save_usage_errors(cli: Cli, roots: Path, args: tuple[str, ...], message: str) -> None:
    _, _, err = cli("scan", str(roots / "notes.txt"), *args, code=2)
    assert message in err


def test_save_needs_one_organization_or_org(cli: Cli, roots: Path) -> None:
    cli("orgs", "create", "--name", "Second", "--bin", make_bin(52))
    _, _, err = cli("scan", str(roots / "notes.txt"), "--save", code=2)
    assert "2 operators exist; name one with --org BIN" in err
    _, _, err = cli("scan", "-", "--save", "--org", BIN, input="ИИН 791028302728\n", code=2)
    assert "not stdin" in err


def test_save_needs_an_initialized_platform(tmp_path: Path, roots: Path) -> None:
    _, _, err = Cli(tmp_path / "empty", roots)("scan", str(roots / "notes.txt"), "--save", code=2)
    assert "qorgau init" in err
    get_settings.cache_clear()


def test_jobs_submit_run_list_show_export_and_forget(cli: Cli, roots: Path) -> None:
    _, out, _ = cli("jobs", "submit", str(roots), "--org", BIN, "--identifiers-only", "--types", "KZ_IIN,PHONE_NUMBER")
    assert out.startswith("scan job 1 queued")
    _, listing, _ = cli("jobs", "list")
    assert "queued" in listing
    _, out, _ = cli("jobs", "worker", "--once")
    assert "scan job 1 done" in out
    _, shown, _ = cli("jobs", "show", "1", "--org", BIN)
    job = json.loads(shown)
    assert (job["status"], job["sources_done"], job["options"]["types"]) == ("succeeded", 3, ["KZ_IIN", "PHONE_NUMBER"])
    _, exported, _ = cli("datamap", "export", "--org", BIN, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert {Path(r["locator"]).name for r in rows} == {"clients.csv", "notes.txt", "events.jsonl"}
    assert {r["entity_type"] for r in rows if r["entity_type"]} == {"KZ_IIN", "PHONE_NUMBER"}
    out_file = roots.parent / "map.json"
    cli("datamap", "export", "--org", BIN, "--format", "json", "--output", str(out_file), "--kind", "csv")
    doc = json.loads(out_file.read_text(encoding="utf-8"))
    assert [Path(s["locator"]).name for s in doc["sources"]] == ["clients.csv"]
    _, filtered, _ = cli("datamap", "list", "--org", BIN, "--sensitive")
    assert "clients.csv" in filtered and "notes.txt" not in filtered
    cli("datamap", "forget", "1", "--org", BIN)
    _, after, _ = cli("datamap", "list", "--org", BIN)
    assert "2 of 2 source(s)" in after
    _, out, _ = cli("jobs", "worker", "--once")
    assert "no job queued" in out


def test_jobs_cancel_and_bad_input(cli: Cli, roots: Path) -> None:
    _, _, err = cli("jobs", "submit", "/etc", "--org", BIN, code=2)
    assert "[sources[0]]" in err and "outside the configured scan roots" in err
    _, _, err = cli("datamap", "export", "--org", BIN, "--format", "xml", code=2)
    assert "[--format]" in err
    _, out, _ = cli("jobs", "submit", f"postgresql://scanner:{PASSWORD}@127.0.0.1:1/crm", "--org", BIN)
    assert PASSWORD not in out and "scanner:***@" in out
    _, out, _ = cli("jobs", "cancel", "1")
    assert "scan job 1: cancelled" in out
    _, _, err = cli("jobs", "cancel", "1", code=2)
    assert "already ended" in err
    _, shown, _ = cli("jobs", "show", "1")
    assert PASSWORD not in shown and json.loads(shown)["status"] == "cancelled"
    _, _, err = cli("jobs", "show", "99", code=2)
    assert "scan job not found" in err
