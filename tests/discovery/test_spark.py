"""The Spark engine: the same detectors as the local scan, on CSV, Parquet and JSON Lines, at scale.

One local[2] session serves the whole module (the JVM takes ~20 s to start). Arrow batches are made
tiny (8 rows) so that "built once per worker, not per batch" is actually put to the test.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from qorgau.discovery.engine import Scanner
from qorgau.discovery.scanning import ScannerSpec
from qorgau.discovery.spark import (
    FINDINGS_SCHEMA_DDL,
    ScanRecipe,
    SparkScanError,
    infer_input_format,
    run_spark_scan,
)
from qorgau.identifiers import synthetic_kz_number

BATCH_ROWS = 8
OUTPUT_COLUMNS = ["source_file", "row_id", "column", "type", "start", "end", "score", "category",
                  "recognizer"]


def make_iin(serial: int) -> str:
    """A checksum-valid IIN of a man born 1 January 1990 (century digit 3)."""
    return synthetic_kz_number("9001013", serial)


def records(n: int) -> list[dict[str, str]]:
    """Rows with an IIN column and a free-text column in kk/ru/en; some cells empty, some clean."""
    names = ["Жаксылыков Ерлан Болатович", "Нұрлан Серікұлы Әбдіқадыров", "Иванова Анна Сергеевна"]
    out = []
    for i in range(n):
        note = [
            f"Клиент {names[i % 3]}, тел. +7 701 234 56 {i % 100:02d}, почта user{i}@gov.kz",
            f"ЖСН: {make_iin(5000 + i * 13)}; ұялы телефон 8 (777) 123-45-{i % 100:02d}",
            "no personal data here, just order 12345 shipped",
            "",
        ][i % 4]
        out.append({"id": f"r{i}", "iin": make_iin(i * 7) if i % 5 else "123456789012", "note": note})
    return out


def expected_findings(rows: list[dict[str, str]], columns: list[str], scanner: Scanner,
                      source: str | None = None) -> set[tuple]:
    """What the local scanner says about the same cells, in the findings table's shape (minus source)."""
    out = set()
    for row in rows:
        for column in columns:
            value = row.get(column)
            if not value:
                continue
            for f in scanner.scan(value):
                d = f.to_dict()
                out.add((row["id"], column, d["type"], d["start"], d["end"], d["score"], d["category"],
                         d["recognizer"]))
    return out


def written_findings(spark, path: Path) -> set[tuple]:
    rows = spark.read.parquet(str(path)).collect()
    return {(r["row_id"], r["column"], r["type"], r["start"], r["end"], r["score"], r["category"],
             r["recognizer"]) for r in rows}


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def java_available() -> bool:
    home = os.environ.get("JAVA_HOME")
    return shutil.which("java") is not None or bool(home and Path(home, "bin", "java").exists())


@pytest.fixture(scope="module")
def spark() -> Iterator:
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'qorgau[spark]')")
    pytest.importorskip("pandas", reason="pandas is not installed (pip install 'qorgau[spark]')")
    if not java_available():
        pytest.skip("Java is missing: PySpark needs Java 17+ on PATH or in JAVA_HOME")
    from qorgau.discovery.spark import build_session

    session = build_session("local[2]", app_name="qorgau-tests")
    session.sparkContext.setLogLevel("ERROR")
    session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(BATCH_ROWS))
    yield session
    session.stop()


# --- stories ----------------------------------------------------------------------------------------


def test_a_csv_with_an_iin_column_and_free_text_gives_the_same_findings_as_the_local_scan(spark, tmp_path):
    rows = records(40)
    write_csv(tmp_path / "clients.csv", rows)

    report = run_spark_scan(str(tmp_path / "clients.csv"), str(tmp_path / "findings"), id_column="id",
                            spark=spark)

    expected = expected_findings(rows, ["iin", "note"], Scanner.default())
    assert written_findings(spark, tmp_path / "findings") == expected
    by_type = Counter(e[2] for e in expected)
    assert {"KZ_IIN", "PHONE_NUMBER", "EMAIL_ADDRESS", "PERSON"} <= set(by_type)
    assert report.input_format == "csv"
    assert report.columns == ("iin", "note")  # every string column but the id
    assert report.rows_scanned == 40
    assert report.findings == len(expected)
    assert report.counts_by_type == dict(sorted(by_type.items()))
    assert report.counts_by_category == {"identifying": len(expected)}
    assert report.column_summary["iin"] == {"KZ_IIN": sum(1 for e in expected if e[1] == "iin")}
    assert sum(report.column_summary["note"].values()) == sum(1 for e in expected if e[1] == "note")


def test_a_12_digit_number_with_a_bad_checksum_in_the_iin_column_is_not_reported(spark, tmp_path):
    rows = records(10)  # rows 0 and 5 hold 123456789012, which fails the IIN checksum
    write_csv(tmp_path / "clients.csv", rows)

    run_spark_scan(str(tmp_path / "clients.csv"), str(tmp_path / "out"), id_column="id",
                   text_columns=["iin"], identifiers_only=True, spark=spark)

    reported = {r[0] for r in written_findings(spark, tmp_path / "out")}
    assert reported == {f"r{i}" for i in range(10) if i % 5}


def test_parquet_input_scans_string_columns_and_keeps_the_typed_id(spark, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = records(30)
    table = pa.table({"id": pa.array(range(30), pa.int64()),
                      "iin": [r["iin"] for r in rows], "note": [r["note"] or None for r in rows],
                      "amount": pa.array([1000.5 * i for i in range(30)])})
    pq.write_table(table, tmp_path / "payments.parquet")

    report = run_spark_scan(str(tmp_path / "payments.parquet"), str(tmp_path / "out"), id_column="id",
                            identifiers_only=True, spark=spark)

    for i, r in enumerate(rows):
        r["id"] = str(i)
    assert report.input_format == "parquet"
    assert report.columns == ("iin", "note")  # the numeric column is not text
    assert written_findings(spark, tmp_path / "out") == expected_findings(rows, ["iin", "note"],
                                                                          Scanner.identifiers_only())


def test_a_directory_of_json_lines_files_is_read_whole_and_each_finding_names_its_file(spark, tmp_path):
    rows = records(24)
    folder = tmp_path / "exports"
    folder.mkdir()
    for part, chunk in enumerate((rows[:12], rows[12:])):
        with (folder / f"part-{part}.jsonl").open("w", encoding="utf-8") as fh:
            for r in chunk:
                record = {"id": r["id"], "text": r["note"], "meta": {"n": 1}}
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")

    report = run_spark_scan(str(folder), str(tmp_path / "out"), id_column="id", text_columns=["text"],
                            identifiers_only=True, spark=spark)

    assert report.input_format == "jsonl"  # inferred from the directory's files
    assert report.rows_scanned == 24
    found = spark.read.parquet(str(tmp_path / "out")).collect()
    texts = [{"id": r["id"], "text": r["note"]} for r in rows]
    assert written_findings(spark, tmp_path / "out") == expected_findings(texts, ["text"],
                                                                          Scanner.identifiers_only())
    for r in found:
        part = 0 if int(r["row_id"][1:]) < 12 else 1
        assert r["source_file"].endswith(f"part-{part}.jsonl")


def test_without_an_id_column_rows_get_unique_ids(spark, tmp_path):
    rows = [{"id": str(i), "note": f"ИИН {make_iin(i)}"} for i in range(20)]
    write_csv(tmp_path / "plain.csv", rows)

    run_spark_scan(str(tmp_path / "plain.csv"), str(tmp_path / "out"), text_columns=["note"],
                   identifiers_only=True, spark=spark)

    found = spark.read.parquet(str(tmp_path / "out")).collect()
    assert len(found) == 20 and len({r["row_id"] for r in found}) == 20


def test_the_scanner_is_built_once_per_worker_process_not_per_row_or_batch(spark, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    rows = records(160)
    write_csv(folder / "a.csv", rows[:80])  # two files: two partitions, up to two worker processes
    write_csv(folder / "b.csv", rows[80:])
    min_score = 0.61  # a configuration no earlier test used, so each process must build it afresh
    key = ScanRecipe(identifiers_only=True, min_score=min_score).key

    report = run_spark_scan(str(folder), str(tmp_path / "out"), id_column="id", identifiers_only=True,
                            min_score=min_score, spark=spark)

    batches = 160 // BATCH_ROWS
    assert 1 <= report.worker_processes <= 2
    assert 1 <= report.scanner_builds <= report.worker_processes < batches

    # Independently of the report: ask every worker process how often it built this configuration.
    def probe(frames):
        import os as _os

        import pandas as _pd

        from qorgau.discovery import spark as module

        for _ in frames:
            yield _pd.DataFrame({"pid": [_os.getpid()], "builds": [module.BUILDS.get(key, 0)]})

    seen = spark.range(0, 64, numPartitions=4).mapInPandas(probe, schema="pid long, builds long").collect()
    assert all(r["builds"] <= 1 for r in seen)


def test_the_findings_never_contain_the_matched_text(spark, tmp_path):
    rows = records(20)
    write_csv(tmp_path / "clients.csv", rows)

    run_spark_scan(str(tmp_path / "clients.csv"), str(tmp_path / "out"), id_column="id",
                   identifiers_only=True, spark=spark)

    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "out")
    assert table.column_names == OUTPUT_COLUMNS
    assert [c.split()[0] for c in FINDINGS_SCHEMA_DDL.split(", ")] == OUTPUT_COLUMNS
    secrets = {r["iin"] for r in rows} | {f"user{i}@gov.kz" for i in range(20)} | {"+7 701 234 56 00"}
    cells = {str(v) for column in table.columns for v in column.to_pylist()}
    assert table.num_rows > 0
    assert not any(secret in cell for secret in secrets for cell in cells)


def test_an_existing_output_is_kept_unless_overwrite_is_asked(spark, tmp_path):
    rows = records(4)
    write_csv(tmp_path / "clients.csv", rows)
    (tmp_path / "out").mkdir()

    with pytest.raises(SparkScanError, match="already exists"):
        run_spark_scan(str(tmp_path / "clients.csv"), str(tmp_path / "out"), spark=spark)
    report = run_spark_scan(str(tmp_path / "clients.csv"), str(tmp_path / "out"), id_column="id",
                            identifiers_only=True, overwrite=True, spark=spark)
    assert report.rows_scanned == 4


def test_a_missing_text_column_is_named_in_the_error(spark, tmp_path):
    write_csv(tmp_path / "clients.csv", records(4))

    with pytest.raises(SparkScanError, match="salary"):
        run_spark_scan(str(tmp_path / "clients.csv"), str(tmp_path / "out"), text_columns=["salary"],
                       spark=spark)


# --- format inference (no Spark needed) ---------------------------------------------------------------


def test_the_format_is_inferred_from_the_extension_or_the_directory(tmp_path):
    assert infer_input_format("x/clients.CSV") == "csv"
    assert infer_input_format("x/clients.tsv") == "csv"
    assert infer_input_format("x/clients.parquet") == "parquet"
    assert infer_input_format("x/clients.ndjson") == "jsonl"
    folder = tmp_path / "spark-output"
    folder.mkdir()
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-0.parquet.crc").write_text("")
    (folder / "part-0.parquet").write_bytes(b"")
    assert infer_input_format(str(folder)) == "parquet"


def test_a_directory_of_mixed_or_unknown_files_asks_for_the_format(tmp_path):
    (tmp_path / "a.csv").write_text("a\n")
    (tmp_path / "b.parquet").write_bytes(b"")
    with pytest.raises(SparkScanError, match="mixed file kinds"):
        infer_input_format(str(tmp_path))
    with pytest.raises(SparkScanError, match="pass input_format"):
        infer_input_format(str(tmp_path / "dump.bin"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SparkScanError, match="no .csv"):
        infer_input_format(str(empty))


def test_qorgau_scan_engine_spark_writes_parquet_and_prints_a_summary(spark, tmp_path):
    import json as _json

    from typer.testing import CliRunner

    from qorgau.cli.main import app

    rows = records(12)
    write_csv(tmp_path / "in.csv", rows)
    result = CliRunner().invoke(app, ["scan", "--engine", "spark", str(tmp_path / "in.csv"), "--output",
                                      str(tmp_path / "out"), "--id-column", "id", "--identifiers-only"])
    assert result.exit_code == 1, result.output  # 1 = personal data found
    summary = _json.loads(result.stdout)
    assert summary["rows_scanned"] == 12 and summary["counts_by_type"]["KZ_IIN"] >= 9  # every 5th IIN is invalid
    assert written_findings(spark, tmp_path / "out")


# --- the local engine's options: allow list, deny list, custom recognizers, types ---------------------------

SWITCHBOARD = "+7 727 000 00 00"  # the company's own number: on the allow list
CUSTOM_YAML = r"""
recognizers:
  - name: employee_id
    entity_type: EMPLOYEE_ID
    patterns:
      - {name: tab_number, regex: 'TAB-\d{5}', score: 0.4}
    context: [табельный, employee]
    context_boost: 0.3
"""


def option_files(tmp_path: Path) -> dict[str, Path]:
    allow = tmp_path / "allow.txt"
    allow.write_text(f"# our switchboard\n{SWITCHBOARD}\n", encoding="utf-8")
    deny = tmp_path / "deny.yaml"
    deny.write_text("entity_type: LEAKED_CODE\nvalues: [ZX-99-AB, 're:QX-\\d{3}']\n", encoding="utf-8")
    custom = tmp_path / "custom.yaml"
    custom.write_text(CUSTOM_YAML, encoding="utf-8")
    return {"allow": allow, "deny": deny, "custom": custom}


def option_rows(n: int) -> list[dict[str, str]]:
    out = []
    for i in range(n):
        note = [
            f"звоните в офис {SWITCHBOARD} или клиенту +7 701 234 56 {i % 100:02d}",
            f"табельный номер TAB-{10000 + i}, ИИН {make_iin(i * 11 + 3)}",
            f"утечка: код ZX-99-AB и QX-{100 + i}",
            "ничего личного",
        ][i % 4]
        out.append({"id": f"r{i}", "note": note})
    return out


def test_allow_deny_and_custom_recognizers_give_the_local_engines_findings(spark, tmp_path):
    files = option_files(tmp_path)
    rows = option_rows(32)
    write_csv(tmp_path / "notes.csv", rows)

    report = run_spark_scan(str(tmp_path / "notes.csv"), str(tmp_path / "out"), id_column="id", spark=spark,
                            allow=str(files["allow"]), deny=str(files["deny"]),
                            custom_recognizers=str(files["custom"]))

    local = ScannerSpec(allow=str(files["allow"]), deny=str(files["deny"]), custom=str(files["custom"]))()
    expected = expected_findings(rows, ["note"], local)
    assert written_findings(spark, tmp_path / "out") == expected
    by_type = Counter(e[2] for e in expected)
    assert by_type["EMPLOYEE_ID"] == 8 and by_type["LEAKED_CODE"] == 16  # ZX-99-AB and QX-1nn in 8 rows
    assert report.counts_by_type == dict(sorted(by_type.items()))
    # the allowed switchboard is never reported, the client's phone on the same line is
    phones = [e for e in expected if e[2] == "PHONE_NUMBER"]
    assert len(phones) == 8
    assert all(rows[int(e[0][1:])]["note"][e[3]:e[4]] != SWITCHBOARD for e in phones)


def test_types_limit_the_spark_scan_like_the_local_one(spark, tmp_path):
    files = option_files(tmp_path)
    rows = option_rows(16)
    write_csv(tmp_path / "notes.csv", rows)

    report = run_spark_scan(str(tmp_path / "notes.csv"), str(tmp_path / "out"), id_column="id", spark=spark,
                            identifiers_only=True, entity_types=["KZ_IIN", "EMPLOYEE_ID"],
                            custom_recognizers=str(files["custom"]))

    local = ScannerSpec(identifiers_only=True, entity_types=("EMPLOYEE_ID", "KZ_IIN"),
                        custom=str(files["custom"]))()
    assert written_findings(spark, tmp_path / "out") == expected_findings(rows, ["note"], local)
    assert set(report.counts_by_type) == {"KZ_IIN", "EMPLOYEE_ID"}


def test_a_scanner_with_lists_is_still_built_once_per_worker(spark, tmp_path):
    files = option_files(tmp_path)
    folder = tmp_path / "many"
    folder.mkdir()
    rows = option_rows(160)
    write_csv(folder / "a.csv", rows[:80])
    write_csv(folder / "b.csv", rows[80:])

    report = run_spark_scan(str(folder), str(tmp_path / "out"), id_column="id", identifiers_only=True,
                            min_score=0.57, allow=str(files["allow"]), deny=str(files["deny"]), spark=spark)

    assert 1 <= report.scanner_builds <= report.worker_processes <= 2 < 160 // BATCH_ROWS


def test_the_executors_get_the_files_contents_not_their_paths(tmp_path):
    import pickle

    files = option_files(tmp_path)
    recipe = ScanRecipe.from_files(allow=str(files["allow"]), deny=str(files["deny"]),
                                   custom_recognizers=str(files["custom"]), identifiers_only=True)
    shipped = pickle.dumps(recipe)
    assert str(tmp_path).encode() not in shipped
    for path in files.values():
        path.unlink()  # an executor on another machine has none of these files
    scanner = pickle.loads(shipped).build()
    found = {f.type for f in scanner.scan(f"табельный TAB-12345, код ZX-99-AB, офис {SWITCHBOARD}")}
    assert found == {"EMPLOYEE_ID", "LEAKED_CODE"}
    assert "ZX-99-AB" not in repr(recipe) and SWITCHBOARD not in repr(recipe)


def test_the_recipe_key_changes_with_the_lists_contents(tmp_path):
    files = option_files(tmp_path)
    first = ScanRecipe.from_files(deny=str(files["deny"]))
    again = ScanRecipe.from_files(deny=str(files["deny"]))
    files["deny"].write_text("entity_type: LEAKED_CODE\nvalues: [ZX-99-AC]\n", encoding="utf-8")
    changed = ScanRecipe.from_files(deny=str(files["deny"]))
    assert first.key == again.key != changed.key
    assert ScanRecipe(min_score=0.5).key != ScanRecipe(min_score=0.6).key


@pytest.mark.parametrize("name, content, expected", [
    ("allow.yaml", "{KZ_IIN: [x]}\n", "allow.yaml: an allow list is a list of values"),
    ("deny.txt", "re:(unclosed\n", "deny.txt[0]: invalid regex"),
    ("custom.yaml", "recognizers:\n  - {entity_type: A}\n", "custom.yaml: recognizers[0].name"),
])
def test_a_bad_list_or_recognizer_file_fails_on_the_driver_naming_it(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    option = {"allow.yaml": "allow", "deny.txt": "deny", "custom.yaml": "custom_recognizers"}[name]
    write_csv(tmp_path / "in.csv", option_rows(2))
    # No Spark session is given or started: the files are checked before the JVM is touched.
    with pytest.raises(SparkScanError) as exc:
        run_spark_scan(str(tmp_path / "in.csv"), str(tmp_path / "out"), **{option: str(path)})
    assert expected in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_qorgau_scan_engine_spark_passes_allow_deny_custom_and_types(spark, tmp_path):
    from typer.testing import CliRunner

    from qorgau.cli.main import app

    files = option_files(tmp_path)
    rows = option_rows(8)
    write_csv(tmp_path / "in.csv", rows)
    result = CliRunner().invoke(app, ["scan", "--engine", "spark", str(tmp_path / "in.csv"), "--output",
                                      str(tmp_path / "out"), "--id-column", "id", "--identifiers-only",
                                      "--allow", str(files["allow"]), "--deny", str(files["deny"]),
                                      "--custom-recognizers", str(files["custom"]),
                                      "--types", "EMPLOYEE_ID,LEAKED_CODE,PHONE_NUMBER"])
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["counts_by_type"] == {"EMPLOYEE_ID": 2, "LEAKED_CODE": 4, "PHONE_NUMBER": 2}
    bad = CliRunner().invoke(app, ["scan", "--engine", "spark", str(tmp_path / "in.csv"), "--output",
                                   str(tmp_path / "out2"), "--types", "SHOE_SIZE"])
    assert bad.exit_code == 2 and "SHOE_SIZE" in bad.stderr
