"""The law as code as one self-contained, readable HTML page (no scripts, no external resources).

Per pack: its source and version; per rule: the citation, the status badge (text / report / plan, as LEGAL.md
tags it), the period it is in force, the explanation, the CEL condition and the effect. Packs of the
``stricter`` profile are marked "not yet law". Everything taken from the packs is escaped.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import RuleBook
    from .loader import Rule

LANGS = ("kk", "ru", "en")

_LABELS: dict[str, dict[str, str]] = {
    "title": {"kk": "Заң код ретінде — qorgau ережелері", "ru": "Закон как код — правила qorgau",
              "en": "The law as code — qorgau rules"},
    "intro": {"kk": "Әр ереже — фактілер бойынша шарт (CEL) және заңдық салдар. Дереккөз: бап пен тармақ.",
              "ru": "Каждое правило — условие над фактами (CEL) и правовое последствие. Источник: статья и пункт.",
              "en": "Each rule is a condition over the facts (CEL) and its legal effect, with the article it comes "
                    "from."},
    "digest": {"kk": "Ережелер нұсқасы (SHA-256)", "ru": "Версия правил (SHA-256)", "en": "Rules version (SHA-256)"},
    "version": {"kk": "нұсқа", "ru": "версия", "en": "version"},
    "subject": {"kk": "нысан", "ru": "предмет", "en": "subject"},
    "source": {"kk": "Дереккөз", "ru": "Источник", "en": "Source"},
    "citation": {"kk": "Сілтеме", "ru": "Ссылка", "en": "Citation"},
    "period": {"kk": "Күшінде", "ru": "Действует", "en": "In force"},
    "from": {"kk": "бастап", "ru": "с", "en": "from"},
    "until": {"kk": "дейін", "ru": "по", "en": "until"},
    "open": {"kk": "мерзімсіз", "ru": "бессрочно", "en": "no end date"},
    "when": {"kk": "Шарт", "ru": "Условие", "en": "Condition"},
    "effect": {"kk": "Салдар", "ru": "Последствие", "en": "Effect"},
    "facts": {"kk": "Фактілер", "ru": "Факты", "en": "Facts used"},
    "not_law": {"kk": "Әлі заң емес: қатаңырақ ұсыныстар (тек сұрау бойынша қолданылады)",
                "ru": "Ещё не закон: более строгие предложения (применяются только по запросу)",
                "en": "Not yet law: stricter proposals (applied only when asked for)"},
    "text": {"kk": "мәтін", "ru": "текст", "en": "text"},
    "report": {"kk": "есеп", "ru": "отчёт", "en": "report"},
    "plan": {"kk": "жоспар", "ru": "план", "en": "plan"},
    "none": {"kk": "Ережелер жоқ.", "ru": "Правил нет.", "en": "No rules loaded."},
    "article": {"kk": "бап", "ru": "ст.", "en": "art."},
    "paragraph": {"kk": "тармақ", "ru": "п.", "en": "p."},
}

_EFFECTS: dict[str, dict[str, str]] = {
    "prohibition": {"kk": "Тыйым салынған тәжірибе", "ru": "Запрещённая практика", "en": "Prohibited practice"},
    "risk_level": {"kk": "Тәуекел деңгейі", "ru": "Уровень риска", "en": "Risk level"},
    "autonomy_level": {"kk": "Дербестік деңгейі", "ru": "Уровень автономности", "en": "Autonomy level"},
    "autonomy_constraint": {"kk": "Рұқсат етілмеген дербестік", "ru": "Недопустимая автономность",
                            "en": "Autonomy not allowed"},
    "obligation": {"kk": "Міндет", "ru": "Обязанность", "en": "Obligation"},
    "notice": {"kk": "Ескерту", "ru": "Уведомление", "en": "Notice"},
    "deadline": {"kk": "Мерзім", "ru": "Срок", "en": "Deadline"},
}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;
color:#1b1f24;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.5rem;border-bottom:2px solid #d0d7de;padding-bottom:.3rem}
h3{font-size:1.05rem;margin:0 0 .4rem}
.rule{border:1px solid #d0d7de;border-radius:6px;padding:.8rem 1rem;margin:1rem 0}
.meta{color:#57606a;font-size:.9rem}.id{font-family:ui-monospace,monospace;font-size:.85rem;color:#57606a}
.badge{display:inline-block;border-radius:1rem;padding:0 .55rem;font-size:.8rem;font-weight:600;margin-left:.4rem}
.badge-text{background:#dafbe1;color:#116329}.badge-report{background:#ddf4ff;color:#0a3069}
.badge-plan{background:#fff8c5;color:#7d4e00}.stricter{background:#ffebe9;color:#82071e;padding:.4rem .7rem;
border-radius:6px}
pre{background:#f6f8fa;padding:.6rem;border-radius:6px;white-space:pre-wrap;word-break:break-word}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.5rem 0}dt{font-weight:600}dd{margin:0}
"""


def _t(key: str, lang: str) -> str:
    return _LABELS[key][lang]


def _pick(texts: Any, lang: str) -> str:
    if isinstance(texts, dict):
        return str(texts.get(lang) or texts.get("en") or next(iter(texts.values()), ""))
    return "" if texts is None else str(texts)


def _effect_text(effect: dict[str, Any], lang: str) -> str:
    kind = str(effect.get("type"))
    name = _EFFECTS.get(kind, {}).get(lang, kind)
    details = []
    for key, value in effect.items():
        if key == "type":
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        details.append(f"{key}: {value}")
    return f"{name}" + (f" — {'; '.join(details)}" if details else "")


def _citation(rule: "Rule", lang: str) -> str:
    c = rule.citation
    parts = [c.law]
    if c.article:
        parts.append(f"{_t('article', lang)} {c.article}")
    if c.paragraph:
        parts.append(f"{_t('paragraph', lang)} {c.paragraph}")
    text = ", ".join(parts)
    return text + (f" ({c.legal_id})" if c.legal_id else "")


def _rule_html(rule: "Rule", lang: str) -> str:
    e = escape
    period = f"{_t('from', lang)} {rule.effective_from.isoformat()}, " + (
        f"{_t('until', lang)} {rule.effective_until.isoformat()}" if rule.effective_until else _t("open", lang))
    status = rule.status if rule.status in ("text", "report", "plan") else "text"
    return (
        f'<section class="rule" id="{e(rule.id)}">'
        f'<h3>{e(_pick(rule.title, lang))}<span class="badge badge-{status}">{e(_t(status, lang))}</span></h3>'
        f'<div class="id">{e(rule.id)}</div>'
        f"<p>{e(_pick(rule.explanation, lang))}</p>"
        "<dl>"
        f"<dt>{e(_t('citation', lang))}</dt><dd>{e(_citation(rule, lang))}</dd>"
        f"<dt>{e(_t('period', lang))}</dt><dd>{e(period)}</dd>"
        f"<dt>{e(_t('effect', lang))}</dt><dd>{e(_effect_text(dict(rule.effect), lang))}</dd>"
        f"<dt>{e(_t('facts', lang))}</dt><dd>{e(', '.join(rule.facts_used) or '—')}</dd>"
        "</dl>"
        f"<div class=\"meta\">{e(_t('when', lang))}</div><pre><code>{e(rule.when)}</code></pre>"
        "</section>"
    )


def export_html(book: "RuleBook", lang: str = "en") -> str:
    """One HTML page of every pack and rule in ``lang`` (kk, ru or en)."""
    from ..core.errors import InvalidInput

    if lang not in LANGS:
        raise InvalidInput("choose kk, ru or en", field="lang")
    e = escape
    parts = [
        "<!DOCTYPE html>", f'<html lang="{lang}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(_t('title', lang))}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(_t('title', lang))}</h1><p>{e(_t('intro', lang))}</p>",
        f"<p class=\"meta\">{e(_t('digest', lang))}: <code>{e(book.digest)}</code></p>",
    ]
    if not book.packs:
        parts.append(f"<p>{e(_t('none', lang))}</p>")
    for pack in book.packs:
        parts.append(f'<h2 id="pack-{e(pack.id)}">{e(_pick(pack.title, lang))}</h2>')
        parts.append(f"<p class=\"meta\">{e(pack.id)} · {e(_t('version', lang))} {e(pack.version)} · "
                     f"{e(_t('subject', lang))} {e(pack.subject)} · {e(_t('source', lang))}: "
                     f"{e(_pick(pack.source, lang))}</p>")
        if pack.profile == "stricter":
            parts.append(f'<p class="stricter">{e(_t("not_law", lang))}</p>')
        parts.extend(_rule_html(rule, lang) for rule in pack.rules)
    parts.append("</body></html>")
    return "\n".join(parts)
