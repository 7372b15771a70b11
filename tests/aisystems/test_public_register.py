"""The public register: only systems their operators made public and every state system, across
organizations; filters; one system by its number; CSV open data streamed with a header; no private facts."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest

from qorgau.aisystems.register import CSV_COLUMNS, AiRegister
from qorgau.core.errors import InvalidInput, NotFound
from qorgau.core.platform import Platform
from qorgau.rules import rulebook

from conftest import Tenant
from aisystems.conftest import chatbot, credit_scoring, emotion_detector, register_system, state_eresource

# Answers of facts the catalogue does not mark public (they must never appear in the public register).
PRIVATE = {"system.model_versions": "secret-model 9.9-private", "training.personal_data": True}


@pytest.fixture
def systems(platform: Platform, tenant_a: Tenant, tenant_b: Tenant) -> dict[str, str]:
    """register id by code: a private and a public system at A; a state system (public without asking) and a
    public prohibited one at B; a state system that asked not to be public."""
    made = {
        "scoring": register_system(platform, tenant_a.org_id, "scoring", credit_scoring(**PRIVATE)),
        "bot": register_system(platform, tenant_a.org_id, "bot", chatbot(**PRIVATE), public=True),
        "egov": register_system(platform, tenant_b.org_id, "egov", state_eresource(**PRIVATE)),
        "emotions": register_system(platform, tenant_b.org_id, "emotions", emotion_detector(**PRIVATE), public=True),
        "egov2": register_system(platform, tenant_b.org_id, "egov2", state_eresource(**PRIVATE), public=False),
    }
    return {code: record.register_id for code, record in made.items()}


def test_only_public_and_state_systems_are_shown(platform: Platform, register: AiRegister, tenant_a: Tenant,
                                                 tenant_b: Tenant, systems: dict[str, str]) -> None:
    with platform.db.reader() as s:
        page = register.public_register(s)
    shown = {item.register_id for item in page.items}
    assert shown == {systems["bot"], systems["egov"], systems["emotions"], systems["egov2"]}
    assert systems["scoring"] not in shown and page.total == 4
    by_id = {item.register_id: item for item in page.items}
    egov = by_id[systems["egov"]]
    assert egov.state_system and egov.operator_bin == tenant_b.bin and egov.operator_name == "Org beta"
    assert egov.sector == "public_administration" and egov.purpose and egov.risk_level == "medium"
    emotions = by_id[systems["emotions"]]
    assert emotions.prohibited and emotions.status == "suspended"
    assert emotions.prohibited_practices == [
        {"rule_id": "ai.prohibited.emotion-recognition",
         "title": rulebook().rule("ai.prohibited.emotion-recognition").title}]
    bot = by_id[systems["bot"]]
    assert {"code": "label_machine_readable", "status": "open"} in bot.obligations
    assert bot.trusted_status is None and bot.sandboxes == []
    assert bot.packs == [{"id": p.id, "version": p.version} for p in rulebook().packs]
    assert bot.classified_on is not None
    # a session bound to one organization still reads the whole public register
    with platform.db.reader(tenant_a.org_id) as s:
        assert register.public_register(s).total == 4


def test_no_private_fact_reaches_the_public_register(platform: Platform, register: AiRegister,
                                                     systems: dict[str, str]) -> None:
    catalog = rulebook().facts.subjects["ai_system"].by_path
    with platform.db.reader() as s:
        page = register.public_register(s)
        one = register.public_system(s, systems["bot"])
        lines = "".join(register.public_csv(s))
    for item in page.items:
        assert item.public_facts and all(catalog[path].public for path in item.public_facts)
        assert "system.model_versions" not in item.public_facts and "training.personal_data" not in item.public_facts
    blob = json.dumps(page.to_dict(), ensure_ascii=False) + json.dumps(one.to_dict(), ensure_ascii=False) + lines
    assert "secret-model" not in blob
    assert one.public_facts["system.sector"] == "retail" and one.public_facts["functions.synthetic_content"] is True


def test_filters_and_paging(platform: Platform, register: AiRegister, tenant_a: Tenant, tenant_b: Tenant,
                            systems: dict[str, str]) -> None:
    with platform.db.reader() as s:
        assert {i.register_id for i in register.public_register(s, sector="public_administration").items} == \
            {systems["egov"], systems["egov2"]}
        assert {i.register_id for i in register.public_register(s, operator_bin=tenant_a.bin).items} == \
            {systems["bot"]}
        assert {i.register_id for i in register.public_register(s, risk="minimal").items} == {systems["bot"]}
        assert {i.register_id for i in register.public_register(s, q="EMOTIONS").items} == {systems["emotions"]}
        assert register.public_register(s, sector="health").items == []
        first = register.public_register(s, limit=3)
        rest = register.public_register(s, limit=3, offset=3)
        assert first.total == rest.total == 4 and len(first.items) == 3 and len(rest.items) == 1
        assert [i.register_id for i in first.items + rest.items] == sorted(
            [systems["bot"], systems["egov"], systems["emotions"], systems["egov2"]])
        for kwargs, field in (({"risk": "extreme"}, "risk"), ({"limit": 0}, "limit"), ({"offset": -1}, "offset"),
                              ({"operator_bin": "12"}, "operator_bin"), ({"sector": "Финансы"}, "sector")):
            with pytest.raises(InvalidInput) as err:
                register.public_register(s, **kwargs)
            assert err.value.field == field


def test_one_system_by_its_number_only_when_public(platform: Platform, register: AiRegister,
                                                   systems: dict[str, str]) -> None:
    with platform.db.reader() as s:
        assert register.public_system(s, systems["egov"]).name == "System egov"
        with pytest.raises(NotFound) as err:
            register.public_system(s, systems["scoring"])
        assert err.value.field == "register_id"
        with pytest.raises(InvalidInput):
            register.public_system(s, "'; drop table")


def test_csv_streams_a_header_and_one_line_per_system(platform: Platform, register: AiRegister,
                                                      systems: dict[str, str]) -> None:
    with platform.db.reader() as s:
        stream = register.public_csv(s)
        assert isinstance(stream, Iterator)
        header = next(stream)
        assert header == ",".join(CSV_COLUMNS) + "\r\n"
        rest = list(stream)
        filtered = list(register.public_csv(s, sector="public_administration"))
        with pytest.raises(InvalidInput) as err:
            register.public_csv(s, colour="blue")
        assert err.value.field == "colour"
    rows = list(csv.DictReader(io.StringIO(header + "".join(rest))))
    assert len(rest) == len(rows) == 4
    by_id = {r["register_id"]: r for r in rows}
    assert by_id[systems["emotions"]]["prohibited"] == "true"
    assert by_id[systems["emotions"]]["prohibited_practices"] == "ai.prohibited.emotion-recognition"
    assert "label_machine_readable:open" in by_id[systems["bot"]]["obligations"].split(";")
    assert len(filtered) == 3  # header + the two state systems
    # the same, with a session of its own opened lazily (for an HTTP streaming response)
    streamed = register.public_csv_stream(sector="public_administration")
    assert isinstance(streamed, Iterator) and list(streamed) == filtered
    with pytest.raises(InvalidInput) as bad:
        register.public_csv_stream(risk="extreme")
    assert bad.value.field == "risk"


def test_csv_cells_never_start_a_spreadsheet_formula(platform: Platform, register: AiRegister,
                                                     tenant_a: Tenant) -> None:
    from qorgau.aisystems.register import register_for

    with platform.db.transaction(tenant_a.org_id) as s:
        register_for(platform).register_system(s, code="formula", name="=HYPERLINK(\"http://x\")",
                                               facts=chatbot(), public=True, actor="user:1")
    with platform.db.reader() as s:
        rows = list(csv.DictReader(io.StringIO("".join(register.public_csv(s)))))
    assert rows[0]["name"].startswith("'=")
