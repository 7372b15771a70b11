"""Depersonalization for research (L-PD-DEPERS): unlinkable ids, generalized quasi-identifiers, k-anonymity.

The k-anonymity numbers are checked against a small table worked out by hand below.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qorgau.core.errors import InvalidInput
from qorgau.identifiers import synthetic_kz_number
from qorgau.vault.depersonalize import (
    OUTSIDE,
    RandomIds,
    age_band,
    birth_year,
    depersonalize,
    iin_parts,
    parse_quasi,
    postal_prefix,
    region_of,
)

PS = {c: "ps_" + c * 26 for c in "abcdefgh"}

# The hand-checked table. Generalized (birth year, region), and the subjects in each group:
#   (1980, Almaty (city))     rows 1, 2 (subject a twice), 3 (b), 4 (c)   → 3 subjects, 4 rows
#   (1991, Astana (city))     rows 5 (d), 6 (e)                           → 2 subjects
#   (1975, Karaganda Region)  rows 7 (f), 8 (g)                           → 2 subjects
#   (1975, Pavlodar Region)   row 9 (h)                                   → 1 subject
#   (1991, —)                 row 10 (no pseudonym; a village no table knows) → 1 subject
# Birth year alone: 1980 → {a, b, c}; 1991 → {d, e, row 10}; 1975 → {f, g, h}: three groups of 3.
# Region alone: Almaty 3, Astana 2, Karaganda 2, Pavlodar 1, unknown 1.
TABLE = [
    ["pseudonym", "birth_date", "address", "diagnosis"],
    [PS["a"], "1980-05-01", "г. Алматы, ул. Абая 1", "J01"],
    [PS["a"], "01.05.1980", "г. Алматы, ул. Абая 1", "J02"],
    [PS["b"], "1980-07-12", "Алматы, пр. Достык 5", "J03"],
    [PS["c"], "1980-01-30", "Almaty, Satpayev street 2", "J01"],
    [PS["d"], "1991-03-03", "г. Астана, ул. Кенесары 4", "J02"],
    [PS["e"], "1991-11-11", "Астана, Мәңгілік Ел 1", "J03"],
    [PS["f"], "1975-02-02", "Караганда, ул. Ерубаева 3", "J01"],
    [PS["g"], "1975-06-06", "Қарағанды облысы, Теміртау қ., Абай көшесі 2", "J01"],
    [PS["h"], "1975-09-09", "Павлодар, ул. Лермонтова 7", "J02"],
    ["", "1991-04-04", "село Тасты", "J03"],
]
QUASI = "birth_date=birth_date,address=address"


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def stats(report, which: str = "after") -> dict[tuple[str, ...], tuple]:
    return {g.columns: (g.groups, g.smallest_group, g.groups_below_k, g.rows_in_groups_below_k)
            for g in getattr(report, which)}


def test_the_hand_checked_table_gives_the_hand_checked_k_anonymity(tmp_path):
    report = depersonalize(write_csv(tmp_path / "in.csv", TABLE), tmp_path / "out.csv", quasi=QUASI, k=2,
                           scan_values=False)
    assert report.counted == "subjects" and report.rows == report.rows_written == 10
    got = stats(report)
    assert got[("birth_date", "address")] == (5, 1, 2, 2)
    assert got[("birth_date",)] == (3, 3, 0, 0)
    assert got[("address",)] == (5, 1, 2, 2)
    assert not report.k_anonymous
    assert report.not_generalizable == {"address": 1}
    report3 = depersonalize(tmp_path / "in.csv", tmp_path / "out3.csv", quasi=QUASI, k=3, scan_values=False)
    assert stats(report3)[("birth_date", "address")] == (5, 1, 4, 6)


def test_counting_rows_when_there_is_no_pseudonym_column(tmp_path):
    rows = [["birth_date", "address", "diagnosis"]] + [r[1:] for r in TABLE[1:]]
    report = depersonalize(write_csv(tmp_path / "in.csv", rows), tmp_path / "out.csv", quasi=QUASI, k=2,
                           scan_values=False)
    assert report.counted == "rows" and not report.random_ids
    assert stats(report)[("birth_date", "address")] == (5, 1, 2, 2)
    assert stats(report)[("birth_date",)] == (3, 3, 0, 0)
    # (1980, Almaty) now counts 4 rows, not 3 subjects: same groups below k, a larger largest group.
    assert stats(report)[("address",)] == (5, 1, 2, 2)


def test_suppression_leaves_out_the_rows_of_small_groups(tmp_path):
    report = depersonalize(write_csv(tmp_path / "in.csv", TABLE), tmp_path / "out.csv", quasi=QUASI, k=2,
                           suppress=True, scan_values=False)
    assert report.rows == 10 and report.rows_written == 8 and report.suppressed_rows == 2
    assert stats(report, "before")[("birth_date", "address")] == (5, 1, 2, 2)
    assert stats(report)[("birth_date", "address")] == (3, 2, 0, 0)
    assert stats(report)[("birth_date",)] == (3, 2, 0, 0)  # 1980: a b c; 1991: d e; 1975: f g
    assert report.k_anonymous
    out = read_csv(tmp_path / "out.csv")
    assert [r[3] for r in out[1:]] == ["J01", "J02", "J03", "J01", "J02", "J03", "J01", "J01"]
    assert not any(r[2] == "Pavlodar Region" for r in out)


def test_the_output_is_generalized_and_pseudonyms_become_unlinkable_random_ids(tmp_path):
    depersonalize(write_csv(tmp_path / "in.csv", TABLE), tmp_path / "one.csv", quasi=QUASI, k=1, scan_values=False)
    depersonalize(tmp_path / "in.csv", tmp_path / "two.csv", quasi=QUASI, k=1, scan_values=False)
    one, two = read_csv(tmp_path / "one.csv"), read_csv(tmp_path / "two.csv")
    assert one[0] == ["random_id", "birth_date", "address", "diagnosis"]
    assert [r[1:3] for r in one[1:4]] == [["1980", "Almaty (city)"]] * 3
    assert one[8][1:3] == ["1975", "Karaganda Region"] and one[10][1:3] == ["1991", ""]
    assert one[1][0] == one[2][0] != one[3][0]  # one subject, one id within an export
    assert one[10][0] == ""
    assert all(r[0].isalpha() and r[0].islower() and len(r[0]) == 22 for r in one[1:10])
    assert not {r[0] for r in one[1:10]} & {r[0] for r in two[1:10]}  # a fresh map per export
    text = (tmp_path / "one.csv").read_text()
    assert "ps_" not in text and "Абая" not in text and "1980-05-01" not in text


def test_random_ids_are_keyed_by_an_ephemeral_key_that_is_never_shown():
    ids = RandomIds()
    assert ids.id_for(PS["a"]) == ids.id_for(PS["a"]) != RandomIds().id_for(PS["a"])
    assert "key" in repr(ids) and ids._key.hex() not in repr(ids)


def test_an_iin_gives_sex_and_birth_year_and_ages_and_postal_codes_are_banded(tmp_path):
    iins = [synthetic_kz_number("7910283", 1), synthetic_kz_number("0612116", 2), "791028302729"]
    rows = [["iin", "age", "zip", "sex"]] + [[v, a, z, "m"] for v, a, z in zip(iins, ["37", "92", "x"],
                                                                                   ["050010", "Z05T3E", "1"])]
    report = depersonalize(write_csv(tmp_path / "in.csv", rows), tmp_path / "out.csv", k=1, scan_values=False,
                           quasi="iin=iin,age=age,zip=postal_code,sex=category")
    out = read_csv(tmp_path / "out.csv")
    assert out[0] == ["iin_sex", "iin_birth_year", "age", "zip", "sex"]
    assert out[1] == ["male", "1979", "35-39", "050", "m"]
    assert out[2] == ["female", "2006", "90+", "Z05", "m"]
    assert out[3] == ["", "", "", "", "m"]  # an invalid IIN, a non-age, a non-code: emptied, never passed on
    assert report.not_generalizable == {"iin_sex": 1, "iin_birth_year": 1, "age": 1, "zip": 1}
    assert len(report.after) == 5 + 1  # five quasi columns: each alone, and all of them
    assert not any(v in (tmp_path / "out.csv").read_text() for v in iins)


def test_a_column_that_still_identifies_people_stops_the_export(tmp_path):
    rows = [TABLE[0] + ["phone"]] + [r + [f"+7701{n:07d}"] for n, r in enumerate(TABLE[1:])]
    src = write_csv(tmp_path / "in.csv", rows)
    with pytest.raises(InvalidInput) as exc:
        depersonalize(src, tmp_path / "out.csv", quasi=QUASI, scan_values=False)
    assert "'phone'" in exc.value.message and "phone=drop" in exc.value.message
    assert not (tmp_path / "out.csv").exists()
    report = depersonalize(src, tmp_path / "out.csv", quasi=QUASI + ",phone=drop", k=1, scan_values=False)
    assert read_csv(tmp_path / "out.csv")[0] == ["random_id", "birth_date", "address", "diagnosis"]
    assert report.rows_written == 10


def test_declarations_are_checked(tmp_path):
    src = write_csv(tmp_path / "in.csv", TABLE)
    with pytest.raises(InvalidInput) as exc:
        depersonalize(src, tmp_path / "o.csv", quasi="nope=age", scan_values=False)
    assert "'nope'" in exc.value.message
    with pytest.raises(InvalidInput):
        parse_quasi("age=decade")
    with pytest.raises(InvalidInput):
        depersonalize(src, tmp_path / "o.csv", quasi="diagnosis=keep", scan_values=False)  # no quasi-identifier
    with pytest.raises(InvalidInput):
        depersonalize(src, tmp_path / "o.csv", quasi="pseudonym=category", scan_values=False)
    with pytest.raises(InvalidInput):
        depersonalize(src, tmp_path / "o.jsonl", quasi=QUASI, scan_values=False)
    with pytest.raises(InvalidInput):
        depersonalize(src, tmp_path / "o.csv", quasi=QUASI, k=0, scan_values=False)
    assert [(q.column, q.kind) for q in parse_quasi(["a=AGE", "b=drop,c=iin_sex"])] == [
        ("a", "age"), ("b", "drop"), ("c", "iin_sex")]


def test_parquet_and_json_lines_exports(tmp_path):
    table = pa.table({"pseudonym": [r[0] or None for r in TABLE[1:]],
                      "birth_date": pa.array([None if not r[1][:4].isdigit() else __import__("datetime").date(
                          int(r[1][:4]), 1, 1) for r in TABLE[1:]], pa.date32()),
                      "address": [r[2] for r in TABLE[1:]], "visits": pa.array(range(10), pa.int16())})
    pq.write_table(table, tmp_path / "in.parquet")
    report = depersonalize(tmp_path / "in.parquet", tmp_path / "out.parquet", quasi=QUASI, k=2, scan_values=False)
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.schema.names == ["random_id", "birth_date", "address", "visits"]
    assert out.schema.field("visits").type == pa.int16() and out.column("birth_date").to_pylist()[1] is None
    assert report.rows == 10

    records = [dict(zip(TABLE[0], r)) for r in TABLE[1:]]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records) + "oops\n")
    report = depersonalize(tmp_path / "in.jsonl", tmp_path / "out.jsonl", quasi=QUASI, k=2, scan_values=False)
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert lines[0]["birth_date"] == "1980" and lines[0]["address"] == "Almaty (city)" and "pseudonym" not in lines[0]
    assert report.left_out == 1 and stats(report)[("birth_date", "address")] == (5, 1, 2, 2)


@pytest.mark.parametrize(("address", "region"), [
    ("Казахстан, г. Алматы, ул. Абая 10", "Almaty (city)"),
    ("Алматинская обл., г. Конаев, ул. Абая 5", "Almaty Region"),
    ("Алматы облысы, Қаскелең қ.", "Almaty Region"),
    ("Қарағанды облысы, Теміртау қ., Абай көшесі 3", "Karaganda Region"),
    ("10 Abay Ave, Almaty", "Almaty (city)"),
    ("г. Нур-Султан, пр. Республики 1", "Astana (city)"),
    ("живёт в Караганде", "Karaganda Region"),
    ("ВКО, г. Риддер", "East Kazakhstan Region"),
    ("Түркістан облысы, Кентау", "Turkistan Region"),
    ("Атырау қаласы, Сатпаев көшесі 5", "Atyrau Region"),
    ("Мангистауская область, г. Жанаозен", "Mangystau Region"),
    ("Оралман көшесі 4, Ақтау қ.", "Mangystau Region"),
    ("Семей, ул. Абая 1", "Abai Region"),
    ("Москва, Тверская 1", OUTSIDE),
    ("село Тасты", None),
    ("", None),
])
def test_addresses_generalize_to_their_region(address, region):
    assert region_of(address) == region


def test_small_generalizations():
    assert birth_year("1979-10-28") == birth_year("28.10.1979") == birth_year("1979.10.28") == "1979"
    assert birth_year("1979-10-28T10:00:00") == birth_year("1979") == "1979"
    assert birth_year("31.02.1979") is None and birth_year("soon") is None and birth_year("1200") is None
    assert age_band(0) == "0-4" and age_band(37) == "35-39" and age_band("44,5") == "40-44"
    assert age_band(89) == "85-89" and age_band(90) == age_band(120) == "90+"
    assert age_band(-1) is age_band(131) is age_band("x") is age_band(True) is None
    assert postal_prefix("050010") == postal_prefix(50010) == "050" and postal_prefix("a05 t3e") == "A05"
    assert postal_prefix("12") is None
    assert iin_parts(synthetic_kz_number("7910283", 5)) == ("male", "1979")
    assert iin_parts(int(synthetic_kz_number("0612116", 5))) == ("female", "2006")
    assert iin_parts("not an iin") is None
