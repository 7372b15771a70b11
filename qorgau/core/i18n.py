"""Interface languages: Kazakh, Russian, English.

Catalogs are plain ``.po`` files under ``qorgau/locale/<lang>/LC_MESSAGES/``: ``messages.po`` for the
shell of the UI plus one file per module (``discovery.po``, ``vault.po`` …), merged into one catalog so a
module's texts travel with it. A msgid may appear in only one file. They are parsed and compiled in memory the first time a language is used, so there is no ``.mo`` file to
forget and no build step. The English catalog uses the English text as msgid, so a missing
translation falls back to readable English rather than to a key.

Language choice for a request (:func:`qorgau.web.routes.choose_language`): the user's profile
language, then the ``qorgau_lang`` cookie, then ``Accept-Language`` (:func:`negotiate`), then
``settings.default_language``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES: tuple[str, ...] = ("kk", "ru", "en")
DEFAULT_LANGUAGE = "kk"
DOMAIN = "messages"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"

language_names: dict[str, str] = {"kk": "Қазақша", "ru": "Русский", "en": "English"}

# Accept-Language headers are client-controlled; look at a bounded prefix only.
_MAX_HEADER = 1024
_MAX_RANGES = 32


def catalog_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def catalog_files(lang: str) -> list[Path]:
    """``messages.po`` first, then the modules' files in name order."""
    main = catalog_path(lang)
    return [main] + sorted(p for p in main.parent.glob("*.po") if p != main)


def load_catalog(lang: str) -> Catalog:
    """The merged ``.po`` catalog of ``lang`` (for tests and tooling; the UI uses :func:`translations`)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; supported: {', '.join(LANGUAGES)}")
    merged: Catalog | None = None
    for path in catalog_files(lang):
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=lang, domain=DOMAIN)
        if merged is None:
            merged = catalog
            continue
        for message in catalog:
            if not message.id:
                continue  # the header
            if message.id in merged:
                raise ValueError(f"{path}: msgid {message.id!r} is already defined in another catalog file")
            merged[message.id] = message
    assert merged is not None
    return merged


def translations(lang: str) -> Translations:
    """Compiled translations for ``lang`` (cached); unsupported languages get the default language."""
    return _compiled(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)


@lru_cache(maxsize=None)
def _compiled(lang: str) -> Translations:
    buffer = BytesIO()
    write_mo(buffer, load_catalog(lang))
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def gettext(lang: str, msgid: str) -> str:
    return translations(lang).gettext(msgid)


def normalize(lang: str | None) -> str | None:
    """``"ru-RU"`` → ``"ru"``; anything unsupported → ``None``."""
    if not lang:
        return None
    primary = lang.strip().lower().replace("_", "-").split("-", 1)[0]
    return primary if primary in LANGUAGES else None


def negotiate(accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """Pick the best supported language from an ``Accept-Language`` header (RFC 9110 §12.5.4).

    Ranges are ordered by q-value, ties keep the header's order; ``q=0`` means "not this one";
    a region (``kk-KZ``, ``ru-RU``, ``en-US``) matches its language; ``*`` is the default.
    """
    if not accept_language:
        return default
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(accept_language[:_MAX_HEADER].split(",")[:_MAX_RANGES]):
        tag, *params = (part.strip() for part in item.split(";"))
        if not tag:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        if not math.isfinite(quality) or quality <= 0:
            continue
        quality = min(quality, 1.0)
        lang = default if tag == "*" else normalize(tag)
        if lang is None:
            continue
        candidate = (-quality, position, lang)
        if best is None or candidate < best:
            best = candidate
    return best[2] if best else default
