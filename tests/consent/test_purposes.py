"""The purposes taxonomy: the shipped defaults load and are complete in three languages; bad files are
refused with file and line; an operator's purposes join the taxonomy."""

from __future__ import annotations

import re

import pytest

from conftest import Tenant
from qorgau.consent.purposes import TaxonomyError, ancestors, default_taxonomy, parse_taxonomy
from qorgau.consent.service import ConsentService
from qorgau.core.platform import Platform
from qorgau.discovery.types import EntityType

KAZAKH_LETTERS = re.compile("[әғқңөұүһі]", re.IGNORECASE)


def test_the_defaults_cover_banks_telecoms_marketplaces_and_state_bodies() -> None:
    taxonomy = default_taxonomy()
    for code in ("service.account", "credit.scoring", "kyc.aml", "telecom.location", "service.delivery",
                 "marketing.sms", "state.egov", "ai.automated_decision", "rights.access"):
        assert taxonomy.has_purpose(code), code
    for purpose in taxonomy.purposes.values():
        assert set(purpose.names) == {"kk", "ru", "en"}
        assert purpose.parent is None or taxonomy.has_purpose(purpose.parent)
    # real Kazakh, not Russian copied over: most names carry a letter only Kazakh has
    kazakh = [p for p in taxonomy.purposes.values() if KAZAKH_LETTERS.search(p.names["kk"])]
    assert len(kazakh) >= len(taxonomy.purposes) * 0.6
    assert all(p.names["kk"] != p.names["ru"] or p.code in ("marketing",) for p in taxonomy.purposes.values())


def test_every_entity_type_discovery_finds_is_a_data_category() -> None:
    categories = default_taxonomy().categories
    assert {t.value for t in EntityType} <= set(categories)
    assert {c for c, cat in categories.items() if cat.sensitive} == {"biometric", "health"}


def test_ancestors_come_from_the_code() -> None:
    assert ancestors("marketing.sms") == ("marketing.sms", "marketing")
    assert ancestors("a.b.c") == ("a.b.c", "a.b", "a")


@pytest.mark.parametrize("text, line, where", [
    ("purposes:\n  - code: x\n    names: {kk: a, ru: b}\n", 3, "purposes[0].names"),
    ("purposes:\n  - code: X Y\n    names: {kk: a, ru: b, en: c}\n", 2, "purposes[0].code"),
    ("purposes:\n  - code: a.b\n    names: {kk: a, ru: b, en: c}\n", 2, "purposes[0].code"),  # no parent
    ("purposes:\n  - code: a\n    names: {kk: a, ru: b, en: c}\n  - code: a\n    names: {kk: a, ru: b, en: c}\n",
     4, "purposes[1].code"),
    ("purposes:\n  - code: a\n    names: {kk: a, ru: b, en: c}\n    colour: red\n", 4, "purposes[0].colour"),
    ("purposes: [\n", 2, "yaml"),
    ("purposes:\n  - code: a\n    names: {kk: '', ru: b, en: c}\n", 3, "purposes[0].names.kk"),
    ("data_categories: []\n", 1, "purposes"),
    ("version: 2\npurposes: []\n", 1, "version"),
])
def test_a_bad_purposes_file_is_refused_with_file_and_line(text: str, line: int, where: str) -> None:
    with pytest.raises(TaxonomyError) as exc:
        parse_taxonomy(text, "mine.yaml")
    assert exc.value.message.startswith(f"mine.yaml:{line}: {where}"), exc.value.message


def test_an_operators_purposes_join_its_taxonomy_only(platform: Platform, consents: ConsentService,
                                                       tenant_a: Tenant, tenant_b: Tenant) -> None:
    text = ("purposes:\n  - code: loyalty\n    names: {kk: Адалдық бағдарламасы, ru: Программа лояльности, "
            "en: Loyalty programme}\n  - code: marketing.telegram\n    names: {kk: Telegram арқылы жарнама, "
            "ru: Реклама в Telegram, en: Telegram ads}\n")
    with platform.db.transaction(tenant_a.org_id) as s:
        imported = consents.import_purposes(s, text, source="a.yaml", actor="user:1")
    assert [p.code for p in imported] == ["loyalty", "marketing.telegram"]
    with platform.db.reader(tenant_a.org_id) as s:
        assert consents.taxonomy(s).has_purpose("marketing.telegram")
    with platform.db.reader(tenant_b.org_id) as s:
        assert not consents.taxonomy(s).has_purpose("marketing.telegram")
    with platform.db.transaction(tenant_a.org_id) as s:  # importing again updates, never duplicates
        consents.import_purposes(s, text.replace("Telegram ads", "Ads in Telegram"), actor="user:1")
        consents.add_purpose(s, code="loyalty.points", names={"kk": "Ұпайлар", "ru": "Баллы", "en": "Points"},
                             actor="user:1")
        with pytest.raises(Exception) as exc:
            consents.add_purpose(s, code="nothing.below", names={"kk": "а", "ru": "б", "en": "c"}, actor="user:1")
        assert getattr(exc.value, "field", None) == "code"
    with platform.db.reader(tenant_a.org_id) as s:
        names = {p.code: p.names["en"] for p in consents.purposes(s)}
    assert names["marketing.telegram"] == "Ads in Telegram" and "loyalty.points" in names
