"""Catalogs are complete in all three languages, and language negotiation follows RFC 9110."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from jinja2.ext import babel_extract

from qorgau.core import i18n

WEB = Path(__file__).resolve().parents[2] / "qorgau" / "web"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def template_msgids() -> set[str]:
    """Every literal passed to ``_()`` in the templates, found by Jinja's own Babel extractor."""
    found: set[str] = set()
    for template in sorted((WEB / "templates").rglob("*.html")):
        with template.open("rb") as fh:
            for _lineno, _func, message, _comments in babel_extract(fh, ("_",), [], {}):
                if isinstance(message, str):
                    found.add(message)
    return found


def python_msgids() -> set[str]:
    """Every literal marked with ``N_()`` in the web package (module texts, errors, flashes)."""
    found: set[str] = set()
    for source in sorted(WEB.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "N_":
                argument = node.args[0]
                assert isinstance(argument, ast.Constant), f"{source.name}: N_() needs a literal"
                found.add(argument.value)
    return found


def test_the_extractors_find_the_texts() -> None:
    assert "Log in" in template_msgids()
    assert "Consents" in python_msgids()
    assert len(template_msgids() | python_msgids()) > 100


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_text_used_by_the_ui_is_translated(lang: str) -> None:
    catalog = i18n.load_catalog(lang)
    missing, empty, fuzzy = [], [], []
    for msgid in sorted(template_msgids() | python_msgids()):
        message = catalog.get(msgid)
        if message is None:
            missing.append(msgid)
        elif not message.string or not str(message.string).strip():
            empty.append(msgid)
        elif message.fuzzy:
            fuzzy.append(msgid)
    assert not missing, f"{lang}: missing {missing[:5]}"
    assert not empty, f"{lang}: empty {empty[:5]}"
    assert not fuzzy, f"{lang}: fuzzy {fuzzy[:5]}"


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_translations_keep_their_placeholders(lang: str) -> None:
    for message in i18n.load_catalog(lang):
        if message.id:
            assert set(PLACEHOLDER.findall(str(message.id))) == set(PLACEHOLDER.findall(str(message.string))), \
                message.id


def test_kazakh_uses_the_kazakh_words() -> None:
    kk = i18n.translations("kk")
    assert kk.gettext("Log in") == "Кіру"
    assert kk.gettext("Log out") == "Шығу"
    assert kk.gettext("Audit") == "Аудит журналы"
    assert kk.gettext("Consents") == "Келісімдер"
    assert kk.gettext("AI decisions") == "ЖИ шешімдері"
    assert kk.gettext("AI systems") == "ЖИ жүйелері"
    assert kk.gettext("Labels") == "Таңбалау"
    assert kk.gettext("Leaks") == "Ағып кетулер"
    assert kk.gettext("Discovery") == "Дербес деректер"


def test_gettext_translates_and_falls_back_to_english() -> None:
    assert i18n.gettext("ru", "Log in") == "Войти"
    assert i18n.gettext("en", "Log in") == "Log in"
    assert i18n.gettext("kk", "a text nobody translated") == "a text nobody translated"
    assert i18n.translations("xx") is i18n.translations(i18n.DEFAULT_LANGUAGE)


def test_language_names_are_written_in_their_own_language() -> None:
    assert i18n.language_names == {"kk": "Қазақша", "ru": "Русский", "en": "English"}


@pytest.mark.parametrize("header,expected", [
    (None, "kk"), ("", "kk"), ("kk", "kk"), ("kk-KZ", "kk"), ("ru-RU", "ru"), ("en-US", "en"), ("EN_gb", "en"),
    ("de-DE, en;q=0.7, ru;q=0.8", "ru"), ("en;q=0.5, ru;q=0.5", "en"), ("fr, *;q=0.1", "kk"), ("ru;q=0, en", "en"),
    ("ru;q=abc, en;q=0.1", "en"), ("ru;q=nan, en;q=0.1", "en"), ("ru;q=inf", "kk"), ("ru;q=2", "ru"),
    (",,;,", "kk"), ("x" * 5000, "kk"),
])
def test_negotiate(header: str | None, expected: str) -> None:
    assert i18n.negotiate(header, "kk") == expected


def test_negotiate_uses_the_given_default() -> None:
    assert i18n.negotiate("de", "ru") == "ru"
    assert i18n.negotiate(None, "en") == "en"
