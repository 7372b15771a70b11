"""A folder audit of AI labels: what an operator checks before (and after) publishing (issue 9; L-AI-LABEL).

``qorgau verify DIR --report html|json|text`` verifies every file under a folder and turns the reports into one
audit: counts by state, then a row per file with its path *relative to the audited folder*, the state, the AI
system's register number, the operator's BIN, whether the visible warning is still there and the first failing
assertion. The HTML page is self-contained — inline CSS, no scripts, no fonts or images from elsewhere — so it can
be mailed or archived as evidence that every published file carried its label (L-FINE-AI answers to the owner of
the AI system). Its words come in kk, ru or en.

Files that can't be verified (an unsupported format, a corrupt or unreadable file) get the state ``error`` with
the reason, so an audit never silently skips a file. Nothing here reads a file's content: it renders the
:class:`~qorgau.provenance.service.VerifyReport` dictionaries it is given.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["STATES", "AuditEntry", "counts", "entry_from_error", "entry_from_report", "render_html", "to_json",
           "words"]

STATES: tuple[str, ...] = ("trusted", "untrusted", "invalid", "unlabeled", "error")
TEMPLATE_DIR = Path(__file__).parent / "templates"

# The report's own words (short, fixed): kept beside the template so the page renders the same offline.
WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "AI content label audit", "folder": "Folder", "generated": "Generated", "files": "Files",
        "path": "File", "state": "State", "register_id": "Register number", "system": "AI system",
        "operator_bin": "Operator BIN", "warning": "Visible warning", "failure": "First failure",
        "yes": "present", "no": "missing", "unknown": "cannot tell",
        "trusted": "Trusted", "untrusted": "Valid, signer not trusted", "invalid": "Invalid (changed after signing)",
        "unlabeled": "Unlabeled", "error": "Not verifiable",
        "law": "Synthetic results of AI systems may be distributed only with a machine-readable marking and a "
               "warning the user perceives (L-AI-LABEL).",
        "local_test": "signed under the LOCAL TEST CA of this installation (not a public trust anchor)",
    },
    "ru": {
        "title": "Проверка маркировки ИИ-контента", "folder": "Папка", "generated": "Сформирован",
        "files": "Файлов", "path": "Файл", "state": "Состояние", "register_id": "Номер в реестре",
        "system": "Система ИИ", "operator_bin": "БИН оператора", "warning": "Видимое предупреждение",
        "failure": "Первая ошибка", "yes": "есть", "no": "нет", "unknown": "не определить",
        "trusted": "Доверенная", "untrusted": "Подпись верна, подписант не доверен",
        "invalid": "Недействительна (изменён после подписи)", "unlabeled": "Без маркировки",
        "error": "Не проверяется",
        "law": "Синтетические результаты систем ИИ распространяются только с машиночитаемой маркировкой и "
               "предупреждением, воспринимаемым пользователем (L-AI-LABEL).",
        "local_test": "подписано под ЛОКАЛЬНЫМ ТЕСТОВЫМ УЦ этой установки (не публичный корень доверия)",
    },
    "kk": {
        "title": "ЖИ мазмұнының таңбалануын тексеру", "folder": "Қалта", "generated": "Жасалған уақыты",
        "files": "Файлдар", "path": "Файл", "state": "Күйі", "register_id": "Тізілімдегі нөмірі",
        "system": "ЖИ жүйесі", "operator_bin": "Оператордың БСН", "warning": "Көрінетін ескерту",
        "failure": "Бірінші қате", "yes": "бар", "no": "жоқ", "unknown": "анықталмайды",
        "trusted": "Сенімді", "untrusted": "Қолтаңба дұрыс, қол қоюшы сенімсіз",
        "invalid": "Жарамсыз (қол қойылғаннан кейін өзгерген)", "unlabeled": "Таңбаланбаған",
        "error": "Тексерілмейді",
        "law": "ЖИ жүйелерінің синтетикалық нәтижелері тек машинада оқылатын таңбамен және пайдаланушы қабылдайтын "
               "ескертумен таратылады (L-AI-LABEL).",
        "local_test": "осы орнатудың ЖЕРГІЛІКТІ СЫНАҚ КУ-і астында қол қойылған (жария сенім түбірі емес)",
    },
}


def words(lang: str) -> Mapping[str, str]:
    """The report's words in ``lang`` (kk, ru or en); InvalidInput naming ``lang`` otherwise."""
    if lang not in WORDS:
        from ..core.errors import InvalidInput

        raise InvalidInput("the report language must be kk, ru or en", field="lang")
    return WORDS[lang]


@dataclass(frozen=True)
class AuditEntry:
    """One file of the audit: a verification's outcome, or why it couldn't be verified."""

    path: str                       # relative to the audited folder, "/"-separated
    state: str                      # one of STATES
    media_type: str | None = None
    register_id: str | None = None
    system_name: str | None = None
    operator_bin: str | None = None
    operator_name: str | None = None
    warning_present: bool | None = None
    warning_kind: str | None = None
    local_test_ca: bool = False
    failure: str | None = None      # the first failing assertion ("c2pa.hash.data: …") or the error's reason
    failure_code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def entry_from_report(path: str, report: Mapping[str, Any]) -> AuditEntry:
    """An audit row from ``VerifyReport.to_dict()``."""
    failures = report.get("failures") or []
    first = failures[0] if failures else None
    failure = None
    if first:
        failure = ": ".join(part for part in (first.get("assertion"), first.get("explanation")) if part) or None
    signer = report.get("signer") or {}
    return AuditEntry(path=path, state=str(report.get("state")), media_type=report.get("media_type"),
                      register_id=report.get("register_id"), system_name=report.get("system_name"),
                      operator_bin=report.get("operator_bin"), operator_name=report.get("operator_name"),
                      warning_present=report.get("warning_present"), warning_kind=report.get("warning_kind"),
                      local_test_ca=bool(signer.get("local_test_ca")), failure=failure,
                      failure_code=first.get("code") if first else None)


def entry_from_error(path: str, field: str | None, message: str) -> AuditEntry:
    """An audit row for a file that couldn't be verified (the message names no content)."""
    return AuditEntry(path=path, state="error", failure=message, failure_code=field)


def counts(entries: Iterable[AuditEntry]) -> dict[str, int]:
    """Files per state, every state present (zero when none)."""
    found = Counter(e.state for e in entries)
    return {state: found.get(state, 0) for state in STATES}


def to_json(entries: Sequence[AuditEntry], *, root: str | None = None) -> str:
    """The audit as JSON: ``{"root", "generated_at", "counts", "files": [...]}``."""
    doc = {"root": root, "generated_at": _now().isoformat(timespec="seconds"), "counts": counts(entries),
           "files": [e.to_dict() for e in entries]}
    return json.dumps(doc, ensure_ascii=False, indent=1)


def render_html(entries: Sequence[AuditEntry], *, lang: str = "en", root: str | None = None,
                generated_at: datetime | None = None) -> str:
    """The self-contained HTML audit page (autoescaped: file names are shown as text, never as markup)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                             autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    template = env.get_template("verify_report.html")
    return template.render(lang=lang, w=words(lang), root=root, entries=list(entries), counts=counts(entries),
                           states=STATES, total=len(entries),
                           generated_at=(generated_at or _now()).isoformat(timespec="seconds"))


def _now() -> datetime:
    return datetime.now(timezone.utc)
