"""The vault's bulk path (issue 4): validation apart from the writes, the split's validation worker,
and the small crypto helpers it uses. Real database (SQLite, and PostgreSQL when
QORGAU_TEST_DATABASE_URL is set), real worker process, real SIGKILL."""

from __future__ import annotations

import collections
import csv
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from qorgau.core.errors import InvalidInput
from qorgau.identifiers import IdentifierError, parse_phone, synthetic_kz_number
from qorgau.vault import crypto
from qorgau.vault.service import (
    CheckedRecord,
    RowProblem,
    SubjectRecord,
    Token,
    _phone_e164,
    check_records,
    vault_for,
)
from qorgau.vault.split import read_manifest, split, state_dir_for

from .conftest import IIN, NAME, PHONE

COLUMNS = "iin=KZ_IIN,full_name=PERSON,phone=PHONE_NUMBER,email=EMAIL_ADDRESS,note=keep,row_id=keep"
HEADER = ["row_id", "iin", "full_name", "phone", "email", "note"]


def _rows(n: int, people: int) -> list[list[str]]:
    out = []
    for r in range(n):
        p = r % people
        out.append([str(r + 1), synthetic_kz_number("8501013", 2000 + p * 7), f"Тест Адам {p}",
                    f"8 705 {p:07d}", f"p{p}@mail.kz", f"n{r % 5}"])
    # Row 6: a bad IIN check digit (a problem row, written without a pseudonym); the person is valid elsewhere.
    out[5][1] = out[5][1][:-1] + str((int(out[5][1][-1]) + 1) % 10)
    return out


def _write(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([HEADER, *rows])
    return path


# --- crypto helpers --------------------------------------------------------------------------------------


def test_random_letters_many_gives_uniform_independent_ids():
    ids = crypto.random_letters_many(4000)
    assert len(ids) == 4000 and len(set(ids)) == 4000
    assert all(len(i) == crypto.LETTERS and i.isascii() and i.isalpha() and i.islower() for i in ids)
    counts = collections.Counter("".join(ids))
    expected = 4000 * crypto.LETTERS / 26  # 4,000 per letter
    assert set(counts) == set(crypto.ALPHABET)
    assert all(abs(c - expected) < 0.1 * expected for c in counts.values()), counts  # ≈ 6 σ
    assert crypto.random_letters_many(0) == []
    assert [len(x) for x in crypto.random_letters_many(3, 5)] == [5, 5, 5]


def test_seal_with_a_given_nonce_opens_and_refuses_a_short_nonce():
    key = AESGCM.generate_key(256)
    aad = crypto.subject_aad(1, "abc")
    blob = crypto.seal("dk-vs-x", key, b"payload", aad, nonce=os.urandom(12))
    assert crypto.unseal("dk-vs-x", key, blob, aad) == b"payload"
    with pytest.raises(ValueError):
        crypto.seal("dk-vs-x", key, b"payload", aad, nonce=b"short")


def test_the_fast_phone_path_agrees_with_parse_phone_on_valid_and_invalid_numbers():
    rng = random.Random(4)
    samples = ["+77012345678", "87012345678", "7012345678", "+79161234567", "+74951234567", "88001234567",
               "+7701234567", "+770123456789", "+1 202 555 0100", "8 (701) 234-56-78", "102", "+7 (727) 250-00-00"]
    samples += [rng.choice(["+", "", "8", "+7", "7"]) + "".join(rng.choice("0123456789")
                                                                 for _ in range(rng.randint(8, 14)))
                for _ in range(3000)]
    valid = 0
    for value in samples:
        try:
            expected = parse_phone(value).e164
        except IdentifierError as exc:
            with pytest.raises(IdentifierError) as got:
                _phone_e164(value)
            assert got.value.reason == exc.reason
        else:
            assert _phone_e164(value) == expected
            valid += 1
    assert 100 < valid < len(samples)  # both branches were exercised


# --- check_records + tokenize_checked ----------------------------------------------------------------------


def test_check_records_reports_what_tokenize_many_reports_and_holds_no_key():
    records = [
        SubjectRecord({"KZ_IIN": IIN, "PERSON": NAME}),
        SubjectRecord({"KZ_IIN": IIN[:-1] + "0"}),  # bad check digit
        SubjectRecord({"PERSON": NAME}),  # no lookup identifier
        SubjectRecord({"KZ_IIN": [IIN, "061211600012"]}),  # two IINs
        SubjectRecord({"PHONE_NUMBER": PHONE, "EMAIL_ADDRESS": "A@B.KZ"}),
        SubjectRecord({"NOT A TYPE": "x"}),
    ]
    checked = check_records(records)
    assert [type(c).__name__ for c in checked] == ["CheckedRecord", "RowProblem", "RowProblem", "RowProblem",
                                                   "CheckedRecord", "RowProblem"]
    assert checked[1].field == "KZ_IIN" and "check digit" in checked[1].reason and IIN[:-1] not in checked[1].reason
    assert checked[4].values == (("PHONE_NUMBER", "+77012345678", "+77012345678", None),
                                 ("EMAIL_ADDRESS", "a@b.kz", "a@b.kz", None))
    assert NAME not in repr(checked[0]) and IIN not in repr(checked[0])
    kept = check_records(records[1:2], keep_invalid=True)[0]
    assert isinstance(kept, CheckedRecord) and kept.values[0][3] is not None  # stored marked invalid


def test_tokenize_checked_matches_tokenize_many_and_the_bulk_mode_leaves_the_cache_alone(platform, tenant_a):
    vault = vault_for(platform)
    records = [SubjectRecord({"KZ_IIN": synthetic_kz_number("9001013", 3000 + n), "PERSON": f"Адам {n}",
                              "PHONE_NUMBER": f"+7707{n:07d}"}) for n in range(40)]
    records.append(SubjectRecord({"KZ_IIN": "123"}))
    records.append(SubjectRecord({"PHONE_NUMBER": "+77070000003", "PERSON": "the same person as record 3"}))
    cache_before = len(vault._cache)
    with platform.db.transaction(tenant_a.org_id) as s:
        bulk = vault.tokenize_checked(s, check_records(records), actor="test", cache=False)
    assert len(vault._cache) == cache_before
    with platform.db.transaction(tenant_a.org_id) as s:
        again = vault.tokenize_many(s, records, actor="test")  # idempotent: the same subjects, nothing new
    assert [type(r) for r in bulk] == [type(r) for r in again]
    assert all(isinstance(r, Token) for r in bulk[:40]) and isinstance(bulk[40], RowProblem)
    assert bulk[41].subject_id == bulk[3].subject_id and not bulk[41].created
    assert [(r.pseudonym, r.subject_id) for r in bulk if isinstance(r, Token)] == \
        [(r.pseudonym, r.subject_id) for r in again if isinstance(r, Token)]
    assert sum(r.created for r in bulk if isinstance(r, Token)) == 40
    assert not any(r.created for r in again if isinstance(r, Token))
    with platform.db.transaction(tenant_a.org_id) as s, pytest.raises(InvalidInput) as err:
        vault.tokenize_checked(s, [{"KZ_IIN": IIN}], actor="test")  # only what check_records returned
    assert err.value.field == "records"


# --- the split's validation worker ---------------------------------------------------------------------------


@pytest.fixture
def worker_now(monkeypatch):
    """Start the validation worker at the first batch (it normally waits for a large input)."""
    import qorgau.vault.split as split_module

    monkeypatch.setattr(split_module, "INLINE_BATCHES", 0)
    monkeypatch.setattr(split_module, "INLINE_ROWS", 0)


def test_a_split_with_the_worker_writes_exactly_what_the_inline_split_writes(platform, tenant_a, tmp_path, worker_now):
    rows = _rows(300, people=240)
    src = _write(tmp_path / "in.csv", rows)
    kwargs = dict(platform=platform, org=tenant_a.org_id, actor="test", columns=COLUMNS, batch_size=25,
                  scan_values=False)
    inline = split(src, tmp_path / "a.csv", workers=0, **kwargs)
    pooled = split(src, tmp_path / "b.csv", workers=1, **kwargs)  # same organization: every subject known
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert inline.subjects_created == 240 and pooled.subjects_created == 0
    a, b = read_manifest(tmp_path / "a.csv.manifest.json"), read_manifest(tmp_path / "b.csv.manifest.json")
    assert a["problems"] == b["problems"] and [p["row"] for p in a["problems"]] == [6]
    assert {k: v for k, v in a["counts"].items() if k != "subjects_created"} == \
        {k: v for k, v in b["counts"].items() if k != "subjects_created"}


def test_a_worker_that_cannot_take_the_batch_falls_back_to_checking_here(platform, tenant_a, tmp_path, worker_now):
    """A record the worker cannot receive (not picklable) breaks nothing: the batch is checked in-process."""
    import qorgau.vault.split as split_module

    checker = split_module._Checker(1, keep_invalid=False)
    try:
        pending = checker.submit([SubjectRecord({"KZ_IIN": IIN}), SubjectRecord({"KZ_IIN": [lambda: IIN]})])
        results = checker.result(pending)
    finally:
        checker.close()
    assert isinstance(results[0], CheckedRecord) and isinstance(results[1], RowProblem)
    assert results[1].reason == "value must be text" and checker.workers == 0


SCRIPT = textwrap.dedent("""
    import sys
    import qorgau.vault.split as split_module
    from qorgau.core.platform import Platform
    from qorgau.core.settings import Settings

    def main():
        split_module.INLINE_BATCHES = 0
        split_module.INLINE_ROWS = 0
        data_dir, url, org, src, out, columns = sys.argv[1:7]
        platform = Platform.open(Settings(data_dir=data_dir, database_url=url))
        split_module.split(src, out, platform=platform, org=int(org), actor="test", columns=columns,
                           batch_size=20, scan_values=False, resume=True, workers=1)

    if __name__ == "__main__":
        main()
""")


def test_killing_a_split_with_its_worker_at_random_points_loses_and_duplicates_nothing(platform, tenant_a, tmp_path,
                                                                                      settings):
    n_rows, people = 700, 560
    rows = _rows(n_rows, people)
    src = _write(tmp_path / "in.csv", rows)
    out = tmp_path / "split.csv"
    script = tmp_path / "run_split.py"
    script.write_text(SCRIPT)
    cmd = [sys.executable, str(script), str(settings.data_dir), settings.database_url, str(tenant_a.org_id),
           str(src), str(out), COLUMNS]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    state = state_dir_for(out)
    rng = random.Random(int(os.environ.get("SPLIT_KILL_SEED", "20261123")))
    kills = 0
    for _ in range(10):
        target = rng.randrange(40, n_rows)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 180
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                written = (state / "data.partial").read_bytes().count(b"\n") - 1
            except FileNotFoundError:
                written = 0
            if written >= target:
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.002)
        _, stderr = proc.communicate(timeout=120)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    else:
        final = subprocess.run(cmd, env=env, capture_output=True, timeout=600)
        assert final.returncode == 0, final.stderr.decode()[-2000:]
    assert kills >= 2, "the process was never killed in the middle of a split"

    with open(out, newline="", encoding="utf-8") as fh:
        out_rows = list(csv.reader(fh))
    assert [r[1] for r in out_rows[1:]] == [str(n) for n in range(1, n_rows + 1)]  # each row once, in order
    pseudonym_of: dict[str, str] = {}
    for data, split_row in zip(rows, out_rows[1:]):
        if data[0] == "6":
            assert split_row[0] == ""  # the invalid IIN
            continue
        assert pseudonym_of.setdefault(data[1], split_row[0]) == split_row[0]
    with platform.db.reader(tenant_a.org_id) as s:
        from sqlalchemy import func, select

        from qorgau.vault.models import VaultSubject

        assert s.scalar(select(func.count()).select_from(VaultSubject)) == people  # one subject per person
    manifest = read_manifest(tmp_path / "split.csv.manifest.json")
    assert manifest["counts"]["rows"] == n_rows and manifest["resumes"] >= 1
    assert [p["row"] for p in manifest["problems"]] == [6]
