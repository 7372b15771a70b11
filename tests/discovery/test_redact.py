"""Redaction: the five operators on Kazakh, Russian and English text, tables, keys, and `qorgau redact`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qorgau.cli.main import app
from qorgau.core import audit, auth
from qorgau.core.errors import IntegrityFailure, InvalidInput
from qorgau.core.platform import Platform
from qorgau.core.settings import get_settings
from qorgau.discovery.engine import Scanner
from qorgau.discovery.redact import (
    Redactor,
    hash_value,
    normalized_value,
    organization_decryptor,
    organization_encryptor,
    organization_hash_key,
    redact_table,
    redact_text,
    unredact_text,
)
from qorgau.discovery.types import Finding

IIN = "791028302728"
IIN_2 = "061211600012"
KK = f"Жаксылыков Ерлан Болатұлы, ЖСН {IIN}, тел. +7 701 234 56 78, пошта aigerim@gov.kz"
RU = f"Клиент Иванова Анна Сергеевна, ИИН {IIN}, телефон 8 (701) 234-56-78, e-mail Aigerim@Gov.kz"
EN = f"John Smith, IIN {IIN_2}, card 4111 1111 1111 1111, IBAN KZ86125KZT5004100100, phone +77012345678"
SECRETS = (IIN, IIN_2, "234 56 78", "234-56-78", "7012345678", "aigerim@gov.kz", "Aigerim@Gov.kz",
           "4111 1111 1111 1111", "KZ86125KZT5004100100")
KEY_A = b"a" * 32
KEY_B = b"b" * 32


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner.default()


@pytest.fixture(scope="module")
def ids() -> Scanner:
    return Scanner.identifiers_only()


def fake_encryptor(data: bytes) -> bytes:
    """A reversible stand-in for service-free tests (real AES-GCM is tested through the key ring)."""
    return b"X" + data[::-1]


def assert_no_secrets(text: str) -> None:
    for value in SECRETS:
        assert value not in text


def spans_of(text: str, scanner: Scanner) -> dict[str, str]:
    return {f.type: text[f.start:f.end] for f in scanner.scan(text)}


# --- the operators ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [KK, RU, EN], ids=["kk", "ru", "en"])
@pytest.mark.parametrize("operator", ["mask", "replace", "hash", "encrypt", "drop"])
def test_every_operator_hides_every_identifier_in_kazakh_russian_and_english(
        scanner: Scanner, text: str, operator: str) -> None:
    findings = scanner.scan(text)
    result = redact_text(text, findings, operator=operator, hash_key=KEY_A, encryptor=fake_encryptor)
    assert_no_secrets(result.text)
    assert len(result.items) == len(findings) and {i.operator for i in result.items} == {operator}
    assert "PERSON" in result.counts and "KZ_IIN" in result.counts


def test_mask_keeps_the_shape_and_uses_the_identifier_masks(scanner: Scanner) -> None:
    result = redact_text(KK, scanner.scan(KK), operator="mask")
    assert "79******2728" in result.text
    assert "+7 701 *** ** 78" in result.text
    assert "a***@gov.kz" in result.text
    # a name keeps its length and spaces, every letter hidden
    assert result.text.startswith("********** ***** ********,")


def test_mask_keeps_punctuation_of_names_addresses_and_dates(scanner: Scanner) -> None:
    text = "Жаксылыков Е.Б. проживает по адресу: г. Алматы, ул. Абая 15, кв. 3; дата рождения 12.03.1985"
    result = redact_text(text, scanner.scan(text), operator="mask")
    assert "Жаксылыков" not in result.text and "Абая" not in result.text and "1985" not in result.text
    assert "********** *.*." in result.text and "**.**.****" in result.text
    assert len(result.text) == len(text)


def test_replace_numbers_by_first_appearance_and_is_stable_for_the_same_person(scanner: Scanner) -> None:
    text = (f"ИИН {IIN} и ИИН {IIN_2}; повторно ИИН {IIN}. "
            "Тел. +7 701 234 56 78, он же 8 (701) 234-56-78, он же 87012345678.")
    result = redact_text(text, scanner.scan(text), operator="replace")
    assert result.text.count("[KZ_IIN_1]") == 2 and result.text.count("[KZ_IIN_2]") == 1
    # three spellings of one phone number are one person: one placeholder
    assert result.text.count("[PHONE_NUMBER_1]") == 3 and "[PHONE_NUMBER_2]" not in result.text
    assert result.text.index("[KZ_IIN_1]") < result.text.index("[KZ_IIN_2]")


def test_replace_is_stable_across_the_rows_of_one_table_but_not_across_documents(ids: Scanner) -> None:
    rows = [{"note": f"ИИН {IIN}"}, {"note": f"ИИН {IIN_2}"}, {"note": f"снова {IIN}"}]
    out = list(redact_table(rows, None, ids, operator="replace"))
    assert [r["note"] for r in out] == ["ИИН [KZ_IIN_1]", "ИИН [KZ_IIN_2]", "снова [KZ_IIN_1]"]
    second = redact_text(f"ИИН {IIN_2}", ids.scan(f"ИИН {IIN_2}"), operator="replace")
    assert second.text == "ИИН [KZ_IIN_1]"  # a new document numbers afresh


def test_hash_is_keyed_the_same_value_gives_the_same_token_and_another_key_another(scanner: Scanner) -> None:
    a1 = redact_text(KK, scanner.scan(KK), operator="hash", hash_key=KEY_A)
    a2 = redact_text(RU, scanner.scan(RU), operator="hash", hash_key=KEY_A)
    b = redact_text(KK, scanner.scan(KK), operator="hash", hash_key=KEY_B)
    token = hash_value("KZ_IIN", IIN, KEY_A)
    assert token.startswith("KZ_IIN:hmac:") and len(token.split(":")[-1]) == 16
    assert token in a1.text and token in a2.text and token not in b.text
    # the phone written two ways, the e-mail in two cases: same person, same token
    phone = hash_value("PHONE_NUMBER", "+77012345678", KEY_A)
    email = hash_value("EMAIL_ADDRESS", "aigerim@gov.kz", KEY_A)
    assert phone in a1.text and phone in a2.text and email in a1.text and email in a2.text


def test_hash_without_a_key_is_refused_because_an_unkeyed_iin_hash_is_reversible(scanner: Scanner) -> None:
    with pytest.raises(InvalidInput) as exc:
        redact_text(KK, scanner.scan(KK), operator="hash")
    assert exc.value.field == "hash_key"
    with pytest.raises(InvalidInput) as exc:
        redact_text(KK, [], operator="mask", per_type={"KZ_IIN": "encrypt"})
    assert exc.value.field == "encryptor"


def test_an_unknown_operator_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as exc:
        redact_text("x", [], operator="shred")
    assert exc.value.field == "operator" and "shred" not in exc.value.message
    with pytest.raises(InvalidInput) as exc:
        redact_text("x", [], per_type={"KZ_IIN": "burn"})
    assert exc.value.field == "per_type.KZ_IIN"


def test_drop_removes_spans_and_item_offsets_point_into_both_texts(scanner: Scanner) -> None:
    text = f"ИИН {IIN}, тел. +7 701 234 56 78."
    findings = scanner.scan(text)
    result = redact_text(text, findings, operator="drop")
    assert result.text == "ИИН , тел. ."
    for item, f in zip(result.items, findings):
        assert (item.start, item.end, item.type) == (f.start, f.end, f.type)
        assert item.new_start == item.new_end
    assert [i.new_start for i in result.items] == [4, 11]


def test_new_offsets_locate_each_replacement_in_the_redacted_text(scanner: Scanner) -> None:
    result = redact_text(RU, scanner.scan(RU), operator="replace")
    for item in result.items:
        assert result.text[item.new_start:item.new_end] == f"[{item.type}_1]"


def test_per_type_operators_override_the_default(scanner: Scanner) -> None:
    result = redact_text(KK, scanner.scan(KK), operator="mask", per_type={"KZ_IIN": "hash", "PERSON": "replace"},
                         hash_key=KEY_A)
    assert hash_value("KZ_IIN", IIN, KEY_A) in result.text
    assert result.text.startswith("[PERSON_1],") and "a***@gov.kz" in result.text
    assert {i.type: i.operator for i in result.items}["PHONE_NUMBER"] == "mask"


def test_overlapping_findings_from_elsewhere_are_merged_so_nothing_stays_visible() -> None:
    text = f"id {IIN} end"
    findings = [Finding("PHONE_NUMBER", 3, 12, 0.6, "x"), Finding("KZ_IIN", 5, 15, 0.99, "y")]
    result = redact_text(text, findings, operator="replace")
    assert result.text == "id [KZ_IIN_1] end" and len(result.items) == 1


def test_findings_outside_the_text_are_refused_by_position() -> None:
    with pytest.raises(InvalidInput) as exc:
        redact_text("short", [Finding("KZ_IIN", 2, 40, 1.0, "x")])
    assert exc.value.field == "findings[0]"


def test_a_redaction_result_never_prints_its_text(scanner: Scanner) -> None:
    result = redact_text(KK, scanner.scan(KK), operator="encrypt", encryptor=fake_encryptor)
    assert "ENC[" not in repr(result) and "chars" in repr(result)


def test_normalization_makes_one_person_one_token() -> None:
    assert normalized_value("PHONE_NUMBER", "8 (701) 234-56-78") == "+77012345678"
    assert normalized_value("EMAIL_ADDRESS", " Aigerim@GOV.kz ") == "aigerim@gov.kz"
    assert normalized_value("CREDIT_CARD", "4111 1111-1111 1111") == "4111111111111111"
    assert normalized_value("PERSON", "ЖАКСЫЛЫКОВ   Ерлан") == normalized_value("PERSON", "жаксылыков ерлан")
    assert normalized_value("DATE_OF_BIRTH", "2.3.1985") == "1985-03-02"


# --- encryption with the organization's keys (real key ring) --------------------------------------


def test_encrypt_round_trips_with_the_organizations_key_and_a_tampered_token_fails(
        platform: Platform, scanner: Scanner) -> None:
    with platform.db.transaction() as s:
        org = auth.create_organization(s, name="Enc Org", bin=_bin(1), actor="test")
        other = auth.create_organization(s, name="Other Org", bin=_bin(2), actor="test")
    with platform.db.transaction(org.id) as s:
        encryptor = organization_encryptor(s, platform.keyring, org.id)
        result = redact_text(RU, scanner.scan(RU), operator="encrypt", encryptor=encryptor)
        assert_no_secrets(result.text)
        assert unredact_text(result.text, organization_decryptor(s, platform.keyring, org.id)) == RU
        start = result.text.index("ENC[") + 10
        flipped = "A" if result.text[start] != "A" else "B"
        tampered = result.text[:start] + flipped + result.text[start + 1:]
        with pytest.raises(IntegrityFailure):
            unredact_text(tampered, organization_decryptor(s, platform.keyring, org.id))
    with platform.db.transaction(other.id) as s:
        with pytest.raises(IntegrityFailure):
            unredact_text(result.text, organization_decryptor(s, platform.keyring, other.id))


def test_each_organization_hashes_with_its_own_key_which_stays_the_same(platform: Platform) -> None:
    with platform.db.transaction() as s:
        one = auth.create_organization(s, name="One", bin=_bin(3), actor="test")
        two = auth.create_organization(s, name="Two", bin=_bin(4), actor="test")
    with platform.db.transaction() as s:
        k1 = organization_hash_key(s, platform.keyring, one.id)
        k2 = organization_hash_key(s, platform.keyring, two.id)
    with platform.db.transaction() as s:
        again = organization_hash_key(s, platform.keyring, one.id)
    assert k1 == again and k1 != k2 and len(k1) == 32
    assert hash_value("KZ_IIN", IIN, k1) != hash_value("KZ_IIN", IIN, k2)


def _bin(serial: int) -> str:
    from conftest import make_bin

    return make_bin(500 + serial)


# --- tables ----------------------------------------------------------------------------------------


def test_table_columns_get_a_whole_column_operator_and_other_cells_are_scanned(scanner: Scanner) -> None:
    rows = [
        {"iin": IIN, "name": "Жаксылыков Ерлан", "comment": "звонить 8 (701) 234-56-78", "amount": "15000"},
        {"iin": IIN_2, "name": "Иванова Анна", "comment": "нет", "amount": "700"},
        {"iin": IIN, "name": "Жаксылыков Ерлан", "comment": "", "amount": None},
    ]
    redactor = Redactor(operator="mask", columns={"iin": "hash", "name": "replace"}, hash_key=KEY_A)
    out = list(redact_table(rows, None, scanner, redactor=redactor))
    assert out[0]["iin"] == hash_value("KZ_IIN", IIN, KEY_A) == out[2]["iin"]  # typed and joinable
    assert out[1]["iin"] == hash_value("KZ_IIN", IIN_2, KEY_A)
    assert out[0]["name"] == out[2]["name"] != out[1]["name"]
    assert out[0]["comment"] == "звонить +7 701 *** ** 78"
    assert out[1]["comment"] == "нет" and out[0]["amount"] == "15000" and out[2]["amount"] is None
    assert redactor.counts["KZ_IIN"] == 3 and redactor.counts["PHONE_NUMBER"] == 1


def test_table_cells_that_are_numbers_or_nested_values_are_scanned_too(ids: Scanner) -> None:
    rows = [{"phone": 87012345678, "contacts": {"list": [f"ИИН {IIN}"]}, "ok": True}]
    out = next(redact_table(rows, None, ids, operator="replace"))
    assert out == {"phone": "[PHONE_NUMBER_1]", "contacts": {"list": ["ИИН [KZ_IIN_1]"]}, "ok": True}


def test_table_options_are_checked_before_any_row_is_read(ids: Scanner) -> None:
    def rows():
        raise AssertionError("read")
        yield {}

    with pytest.raises(InvalidInput) as exc:
        redact_table(rows(), {"salary": "blur"}, ids)
    assert exc.value.field == "columns.salary"


# --- qorgau redact ---------------------------------------------------------------------------------

runner = CliRunner()


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["redact", *args], input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_cli_masks_a_text_file_and_keeps_its_lines(tmp_path: Path) -> None:
    src = tmp_path / "letter.txt"
    src.write_text(f"{KK}\r\n{RU}\n", encoding="utf-8")
    dst = tmp_path / "letter.redacted.txt"
    code, _, err = run(str(src), "--identifiers-only", "--output", str(dst))
    assert code == 0, err
    out = dst.read_bytes().decode("utf-8")
    assert_no_secrets(out)
    assert out.count("\n") == 2 and "79******2728" in out and out.splitlines(keepends=True)[0].endswith("\r\n")
    assert "KZ_IIN 2" in err


def test_cli_reads_cp1251_and_writes_utf8(tmp_path: Path) -> None:
    src = tmp_path / "old.txt"
    src.write_bytes(f"Клиент ИИН {IIN}, телефон 8 (701) 234-56-78\n".encode("cp1251"))
    dst = tmp_path / "out.txt"
    code, _, err = run(str(src), "--output", str(dst), "--operator", "replace", "--identifiers-only")
    assert code == 0, err
    assert dst.read_text(encoding="utf-8") == "Клиент ИИН [KZ_IIN_1], телефон [PHONE_NUMBER_1]\n"


def test_cli_redacts_stdin() -> None:
    code, out, _ = run("-", "--operator", "drop", "--identifiers-only", input=f"ИИН {IIN}.\n")
    assert code == 0 and out == "ИИН .\n"


def test_cli_redacts_csv_columns_whole_and_scans_the_rest(tmp_path: Path) -> None:
    src = tmp_path / "clients.csv"
    src.write_text(f"iin,name,note\n{IIN},Жаксылыков Ерлан,тел 87012345678\n{IIN_2},Иванова Анна,нет\n",
                   encoding="utf-8")
    code, out, err = run(str(src), "--columns", "iin=replace", "--columns", "name=mask",
                         "--type-operator", "PHONE_NUMBER=drop")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["iin"] for r in rows] == ["[KZ_IIN_1]", "[KZ_IIN_2]"]
    assert rows[0]["name"] == "********** *****" and rows[0]["note"] == "тел " and rows[1]["note"] == "нет"


def test_cli_redacts_the_text_field_of_json_lines_and_reports_bad_lines(tmp_path: Path) -> None:
    src = tmp_path / "chat.jsonl"
    src.write_text("\n".join([
        json.dumps({"id": 7, "text": f"мой ИИН {IIN}", "meta": {"city": "Алматы"}}, ensure_ascii=False),
        "{not json",
        json.dumps({"id": 8, "body": f"ИИН {IIN_2}"}),
        json.dumps({"id": 9, "text": "ничего"}, ensure_ascii=False),
    ]) + "\n", encoding="utf-8")
    code, out, err = run(str(src), "--text-field", "text", "--operator", "replace", "--identifiers-only")
    assert code == 4
    records = [json.loads(line) for line in out.splitlines()]
    assert records == [{"id": 7, "text": "мой ИИН [KZ_IIN_1]", "meta": {"city": "Алматы"}},
                       {"id": 9, "text": "ничего"}]
    assert "line 2" in err and "line 3" in err and "'text'" in err and IIN_2 not in err + out


def test_cli_scans_every_field_of_json_lines_without_text_field(tmp_path: Path) -> None:
    src = tmp_path / "rows.jsonl"
    src.write_text(json.dumps({"a": f"ИИН {IIN}", "b": {"c": "+77012345678"}}) + "\n", encoding="utf-8")
    code, out, _ = run(str(src), "--operator", "replace", "--identifiers-only")
    assert code == 0 and json.loads(out) == {"a": "ИИН [KZ_IIN_1]", "b": {"c": "[PHONE_NUMBER_1]"}}


@pytest.mark.parametrize("args, expected", [
    (["--operator", "shred"], "--operator"),
    (["--type-operator", "KZ_IIN"], "--type-operator"),
    (["--type-operator", "NOT_A_TYPE=mask"], "unknown entity type"),
    (["--columns", "iin=blur"], "--columns iin"),
    (["--operator", "hash"], "--org"),
    (["--text-field", "text"], ".jsonl"),
])
def test_cli_usage_errors_name_the_option(tmp_path: Path, args: list[str], expected: str) -> None:
    src = tmp_path / "a.csv"
    src.write_text(f"iin\n{IIN}\n", encoding="utf-8")
    code, out, err = run(str(src), *args)
    assert code == 2 and expected in err and IIN not in err and out == ""


def test_cli_refuses_a_column_that_is_not_in_the_header(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text(f"iin\n{IIN}\n", encoding="utf-8")
    code, _, err = run(str(src), "--columns", "salary=drop", "--identifiers-only")
    assert code == 2 and "salary" in err


def test_cli_hashes_with_the_organizations_key_and_audits_without_values(
        platform: Platform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QORGAU_DATA_DIR", str(platform.settings.data_dir))
    monkeypatch.setenv("QORGAU_DATABASE_URL", platform.db.url)
    get_settings.cache_clear()
    with platform.db.transaction() as s:
        org = auth.create_organization(s, name="CLI Org", bin=_bin(5), actor="test")
        org_bin = org.bin
    src = tmp_path / "a.txt"
    src.write_text(f"ИИН {IIN}\n", encoding="utf-8")
    try:
        code, out, err = run(str(src), "--operator", "hash", "--org", org_bin, "--identifiers-only")
        code2, out2, _ = run(str(src), "--operator", "hash", "--org", org_bin, "--identifiers-only")
        bad, _, bad_err = run(str(src), "--operator", "hash", "--org", _bin(6), "--identifiers-only")
    finally:
        get_settings.cache_clear()
    assert code == 0, err
    with platform.db.transaction() as s:
        key = organization_hash_key(s, platform.keyring, org.id)
    assert out == out2 == f"ИИН {hash_value('KZ_IIN', IIN, key)}\n"
    assert bad == 2 and "--org" in bad_err
    with platform.db.reader(org.id) as s:
        entries = [e for e in audit.list_entries(s, limit=10) if e.action == "discovery.redact"]
    assert len(entries) == 2 and entries[0].details["counts"] == {"KZ_IIN": 1}
    assert IIN not in json.dumps([e.details for e in entries])
