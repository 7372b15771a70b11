"""The folder audit (:mod:`qorgau.provenance.report`): counts by state, one row per file with the first failing
assertion, a self-contained page in kk/ru/en that shows file names as text, never as markup (issue 9)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from html.parser import HTMLParser

import pytest

from qorgau.core.errors import InvalidInput
from qorgau.core.platform import Platform
from qorgau.provenance import report as audit
from qorgau.provenance.service import VerifyReport, labels_for
from tests.provenance import media_fixtures as media
from tests.provenance.conftest import GenAiSystem, principal_of

TRUSTED = VerifyReport(state="trusted", media_type="image/png", register_id="KZ-AI-2026-000042",
                       system_name="Product photo generator", operator_bin="050140000111", operator_name="Alpha",
                       signer={"local_test_ca": True}, warning_present=True, warning_kind="band")
INVALID = VerifyReport(state="invalid", media_type="image/png", register_id="KZ-AI-2026-000042",
                       operator_bin="050140000111", warning_present=False, failures=[
                           {"code": "assertion.dataHash.mismatch", "assertion": "c2pa.hash.data",
                            "explanation": "asset hash error"},
                           {"code": "signingCredential.untrusted", "assertion": "c2pa.signature",
                            "explanation": "signing certificate untrusted"}])
UNLABELED = VerifyReport(state="unlabeled", media_type="image/jpeg")


def entries() -> list[audit.AuditEntry]:
    return [audit.entry_from_report("a/ok.png", TRUSTED.to_dict()),
            audit.entry_from_report("a/changed.png", INVALID.to_dict()),
            audit.entry_from_report("plain.jpg", UNLABELED.to_dict()),
            audit.entry_from_error("blob.bin", "file", "unsupported file format")]


def test_an_entry_keeps_what_the_audit_shows_and_the_first_failure() -> None:
    ok, changed, plain, blob = entries()
    assert (ok.state, ok.register_id, ok.operator_bin, ok.warning_present, ok.local_test_ca, ok.failure) == (
        "trusted", "KZ-AI-2026-000042", "050140000111", True, True, None)
    assert changed.failure == "c2pa.hash.data: asset hash error"
    assert changed.failure_code == "assertion.dataHash.mismatch" and changed.warning_present is False
    assert plain.state == "unlabeled" and plain.register_id is None
    assert (blob.state, blob.failure_code, blob.failure) == ("error", "file", "unsupported file format")


def test_counts_cover_every_state() -> None:
    assert audit.counts(entries()) == {"trusted": 1, "untrusted": 0, "invalid": 1, "unlabeled": 1, "error": 1}
    assert audit.counts([]) == dict.fromkeys(audit.STATES, 0)


def test_json_report_round_trips() -> None:
    doc = json.loads(audit.to_json(entries(), root="site"))
    assert doc["root"] == "site" and doc["counts"]["invalid"] == 1
    assert [f["path"] for f in doc["files"]] == ["a/ok.png", "a/changed.png", "plain.jpg", "blob.bin"]
    assert datetime.fromisoformat(doc["generated_at"]).tzinfo is not None


class _Rows(HTMLParser):
    """The page's table rows as text cells, and every URL-bearing attribute (there must be none)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@pytest.mark.parametrize("lang, title, trusted", [
    ("en", "AI content label audit", "Trusted"),
    ("ru", "Проверка маркировки ИИ-контента", "Доверенная"),
    ("kk", "ЖИ мазмұнының таңбалануын тексеру", "Сенімді"),
])
def test_the_html_audit_is_self_contained_in_each_language(lang: str, title: str, trusted: str) -> None:
    page = audit.render_html(entries(), lang=lang, root="site",
                             generated_at=datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc))
    parsed = _Rows()
    parsed.feed(page)
    assert f'<html lang="{lang}">' in page and title in page and "2026-11-23T09:00:00+00:00" in page
    assert parsed.urls == [] and not parsed.tags & {"script", "link", "img", "iframe"}
    files = [row for row in parsed.rows if row]
    assert [row[0] for row in files] == ["a/ok.png", "a/changed.png", "plain.jpg", "blob.bin"]
    assert files[0][1].startswith(trusted) and files[0][2] == "KZ-AI-2026-000042"
    assert files[1][-1] == "c2pa.hash.data: asset hash error"
    assert files[3][-1] == "unsupported file format"
    assert re.search(r'<li class="count-invalid"><strong>1</strong>', page)


def test_file_names_are_text_not_markup() -> None:
    evil = audit.entry_from_error('<img src=x onerror="alert(1)">.png', "file", "<b>bad</b>")
    page = audit.render_html([evil])
    assert "<img src=x" not in page and "<b>bad</b>" not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;.png" in page


def test_only_kk_ru_en_reports() -> None:
    with pytest.raises(InvalidInput) as caught:
        audit.render_html(entries(), lang="de")
    assert caught.value.field == "lang"


def test_a_real_verification_renders(platform: Platform, generator: GenAiSystem) -> None:
    with platform.db.transaction(generator.tenant.org_id) as s:
        labeled = labels_for(platform).label(s, principal_of(generator.tenant), data=media.png(), filename="x.png",
                                             system=generator.code)
    entry = audit.entry_from_report("x.ai.png", labels_for(platform).verify(labeled.data).to_dict())
    assert entry.state == "trusted" and entry.register_id == generator.register_id and entry.warning_present
    assert generator.tenant.bin in audit.render_html([entry], lang="ru")
