"""`qorgau split`, `qorgau join-back` and `qorgau depersonalize`, run as real subprocesses with their own data dir."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_bin
from qorgau.identifiers import synthetic_kz_number

QORGAU = [sys.executable, "-m", "qorgau.cli"]
DEMO_BIN = "940140000385"
HEADER = ["iin", "fio", "phone", "diagnosis", "birth_date", "city"]


def run(data_dir: Path, *args: str, check: int | None = 0, timeout: int = 180,
        default_org: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``qorgau``. The demo has several operators (the leak register's demo operators beside the demo bank),
    so split and join-back name the demo bank unless the test passes ``--org`` or asks for no default."""
    if default_org and args and args[0] in ("split", "join-back") and "--org" not in args:
        args = (*args, "--org", DEMO_BIN)
    env = {**os.environ, "QORGAU_DATA_DIR": str(data_dir), "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("QORGAU_DATABASE_URL", None)
    proc = subprocess.run(QORGAU + list(args), env=env, capture_output=True, text=True, timeout=timeout)
    if check is not None and proc.returncode != check:
        raise AssertionError(f"exit {proc.returncode} (wanted {check})\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "var"
    run(d, "init", "--demo")
    return d


def people(n: int) -> list[list[str]]:
    cities = ["г. Алматы", "Астана", "Караганда"]
    return [[synthetic_kz_number("8803154", 10 + i * 7), f"Сейткали Айгерим {i}", f"+7707{i:07d}", f"J0{i % 3}",
             f"1988-03-{1 + i % 28:02d}", cities[i % 3]] for i in range(n)]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([HEADER, *rows])
    return path


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_help_for_the_three_commands() -> None:
    for command, words in (("split", ["--resume", "--keep-invalid", "--columns", "Exit code"]),
                           ("join-back", ["--purpose", "--manifest", "erased"]),
                           ("depersonalize", ["--quasi", "--k", "--suppress", "k-anonymity"])):
        out = run(Path("/nonexistent"), command, "--help").stdout
        assert all(w in out for w in words), command


def test_split_join_back_and_depersonalize_from_the_command_line(data_dir: Path, tmp_path: Path) -> None:
    rows = people(12)
    src = write_csv(tmp_path / "clinic.csv", rows)
    done = run(data_dir, "split", str(src), "--output", str(tmp_path / "split.csv"), "--no-progress")
    assert "12 rows read" in done.stderr and "KZ_IIN" in done.stderr and "PERSON" in done.stderr
    assert not any(v in done.stdout + done.stderr for r in rows for v in r[:3])
    manifest = tmp_path / "split.csv.manifest.json"
    moved = {c["name"]: c["entity_type"] for c in json.loads(manifest.read_text())["columns"] if c["action"] == "vault"}
    assert moved == {"iin": "KZ_IIN", "fio": "PERSON", "phone": "PHONE_NUMBER", "birth_date": "DATE_OF_BIRTH"}
    assert read_csv(tmp_path / "split.csv")[0] == ["pseudonym", "diagnosis", "city"]

    back = run(data_dir, "join-back", str(tmp_path / "split.csv"), "--manifest", str(manifest),
               "--output", str(tmp_path / "back.csv"), "--purpose", "customer-request", "--report",
               str(tmp_path / "join.json"), "--no-progress")
    assert "12 re-identified" in back.stderr
    assert read_csv(tmp_path / "back.csv") == [HEADER, *rows]
    assert json.loads((tmp_path / "join.json").read_text())["restored"] == 12
    log = run(data_dir, "audit", "log", "--limit", "50").stdout
    assert "vault.join_back" in log and "vault.split" in log

    dep = run(data_dir, "depersonalize", str(tmp_path / "split.csv"), "--output", str(tmp_path / "research.csv"),
              "--quasi", "city=address", "--k", "4", "--report", str(tmp_path / "kanon.json"), "--no-progress")
    assert "k-anonymity" in dep.stderr
    report = json.loads((tmp_path / "kanon.json").read_text())
    assert report["k_anonymous"] and report["after_suppression"][-1]["smallest_group"] == 4
    assert read_csv(tmp_path / "research.csv")[0] == ["random_id", "diagnosis", "city"]


def test_exit_codes_say_what_happened(data_dir: Path, tmp_path: Path) -> None:
    rows = people(6)
    rows[2][0] = rows[2][0][:-1] + str((int(rows[2][0][-1]) + 1) % 10)  # a bad check digit
    src = write_csv(tmp_path / "in.csv", rows)
    invalid = run(data_dir, "split", str(src), "-o", str(tmp_path / "split.csv"), "--no-progress", check=4)
    assert "1 invalid" in invalid.stderr and rows[2][0] not in invalid.stderr

    usage = run(data_dir, "split", str(src), "-o", str(tmp_path / "x.csv"), "--columns", "iin=NOPE", check=2)
    assert "[columns]" in usage.stderr
    assert "--org" in run(data_dir, "split", str(src), "-o", str(tmp_path / "x.csv"), "--org", make_bin(5),
                          check=2).stderr
    assert "qorgau init" in run(tmp_path / "nothing", "split", str(src), "-o", str(tmp_path / "y.csv"),
                                check=1, default_org=False).stderr
    bad_purpose = run(data_dir, "join-back", str(tmp_path / "split.csv"), "-m",
                      str(tmp_path / "split.csv.manifest.json"), "-o", str(tmp_path / "b.csv"),
                      "--purpose", "why? to see Иванов", check=2)
    assert "[purpose]" in bad_purpose.stderr

    two = write_csv(tmp_path / "two.csv", people(6))
    run(data_dir, "orgs", "create", "--name", "Second", "--bin", make_bin(9))
    assert "--org BIN is required" in run(data_dir, "split", str(two), "-o", str(tmp_path / "z.csv"),
                                          check=2, default_org=False).stderr
    run(data_dir, "split", str(two), "-o", str(tmp_path / "z.csv"), "--org", DEMO_BIN, "--no-progress")

    small = run(data_dir, "depersonalize", str(tmp_path / "z.csv"), "-o", str(tmp_path / "d.csv"),
                "--quasi", "city=address", "--k", "3", check=1)
    assert "k-anonymity" in small.stderr
    run(data_dir, "depersonalize", str(tmp_path / "z.csv"), "-o", str(tmp_path / "d2.csv"), "--quasi",
        "city=address", "--k", "3", "--suppress", check=0)


def test_sigterm_stops_the_split_cleanly_and_resume_finishes_it(data_dir: Path, tmp_path: Path) -> None:
    rows = people(1500)
    src = write_csv(tmp_path / "big.csv", rows)
    out = tmp_path / "split.csv"
    args = ["split", str(src), "-o", str(out), "--org", DEMO_BIN, "--columns", "iin=KZ_IIN,fio=PERSON,phone=PHONE_NUMBER,"
            "birth_date=DATE_OF_BIRTH,diagnosis=keep,city=keep", "--batch-size", "50", "--progress"]
    env = {**os.environ, "QORGAU_DATA_DIR": str(data_dir), "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("QORGAU_DATABASE_URL", None)
    proc = subprocess.Popen(QORGAU + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / ".split.csv.qorgau-split" / "data.partial"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if partial.exists() and partial.stat().st_size > 2000:
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.01)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr and not out.exists()
    done = run(data_dir, *args, "--resume")
    assert "rows/s" in done.stderr  # the progress bar
    assert len(read_csv(out)) == 1501
    run(data_dir, "join-back", str(out), "-m", str(tmp_path / "split.csv.manifest.json"), "-o",
        str(tmp_path / "back.csv"), "--purpose", "migration-check", "--no-progress")
    assert read_csv(tmp_path / "back.csv") == [HEADER, *rows]


def test_an_erased_subject_makes_join_back_exit_4_but_everyone_else_comes_back(data_dir: Path, tmp_path: Path) -> None:
    from qorgau.core import auth
    from qorgau.core.platform import Platform
    from qorgau.core.settings import Settings
    from qorgau.vault.service import vault_for

    rows = people(5)
    src = write_csv(tmp_path / "in.csv", rows)
    run(data_dir, "split", str(src), "-o", str(tmp_path / "split.csv"), "--no-progress")
    platform = Platform.open(Settings(data_dir=data_dir))
    try:
        with platform.db.reader() as s:
            org_id = auth.find_organization_by_bin(s, DEMO_BIN).id
        with platform.db.transaction(org_id) as s:
            vault_for(platform).shred(s, read_csv(tmp_path / "split.csv")[2][0], reason="withdrawn", actor="test")
    finally:
        platform.close()
    proc = run(data_dir, "join-back", str(tmp_path / "split.csv"), "-m", str(tmp_path / "split.csv.manifest.json"),
               "-o", str(tmp_path / "back.csv"), "--purpose", "customer-request", "--no-progress", check=4)
    assert "4 re-identified" in proc.stderr and "1 erased on " in proc.stderr
    back = read_csv(tmp_path / "back.csv")
    assert back[2][:3] == ["", "", ""] and back[1] == rows[0]
