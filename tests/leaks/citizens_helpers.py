"""Helpers of the citizen tests: incidents and segments made the way parts A and C will make them (ORM rows and
``SegmentWriter``), codes read from the demo sink like a phone would, verified identifiers made through the
service. Also used by tests/api/test_route_walk.py (``leak_citizen_objects``)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from qorgau.consent.citizens import citizens_for
from qorgau.core.platform import Platform
from qorgau.identifiers import synthetic_kz_number
from qorgau.leaks.citizens import leak_citizens_for
from qorgau.leaks.models import LeakIncident
from qorgau.leaks.register import index_directory, leak_index_for, leak_keys_for
from qorgau.leaks.segments import SegmentWriter

_COUNTER = iter(range(1, 10**9))


def test_iin(serial: int) -> str:
    return synthetic_kz_number("8501013", serial)


test_iin.__test__ = False  # type: ignore[attr-defined]


def make_incident(platform: Platform, org_id: int, *, status: str = "received", published: bool = False,
                  advice: dict[str, str] | None = None, title: str = "Customer database exposed",
                  discovered: datetime | None = None) -> int:
    n = next(_COUNTER)
    discovered = discovered or datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
    with platform.db.transaction(org_id) as s:
        row = LeakIncident(reference=f"KZ-LEAK-2026-{org_id:03d}{n:05d}", responsible_person="R. Person",
                           sector="bank", title=title, discovered_at=discovered, nature="misconfiguration",
                           data_classes=["iin", "phone", "full_name"], filed_by="test",
                           deadline_at=discovered + timedelta(days=1), status=status, published=published,
                           advice=advice or {})
        s.add(row)
        s.flush()
        return row.id


def publish_segment(platform: Platform, incident_id: int, values: list[tuple[str, str]]) -> Any:
    """A segment of (kind, normalized value) tokens for one incident, published like the ingest does."""
    keys = leak_keys_for(platform)
    tokens = [keys.token(kind, value) for kind, value in values]
    with SegmentWriter(index_directory(platform), durable=False) as writer:
        writer.add(tokens, incident_id)
    leak_index_for(platform).refresh()
    return tokens


def outbox(platform: Platform, channel: str) -> list[Path]:
    folder = Path(platform.settings.data_dir) / "outbox" / channel
    return sorted(folder.glob("*")) if folder.exists() else []


def last_sms_code(platform: Platform, phone: str) -> str:
    """Read the newest SMS to ``phone`` from the sink, like the phone's owner would, and take the code."""
    for path in reversed(outbox(platform, "sms")):
        text = path.read_text(encoding="utf-8")
        if text.startswith(f"To: {phone}\n"):
            match = re.search(r"\b(\d{6})\b", text.split("\n\n", 1)[1])
            assert match, "no code in the SMS"
            return match.group(1)
    raise AssertionError("no SMS to this phone in the sink")


def last_email_link(platform: Platform, address: str) -> tuple[str, str, str]:
    """(full link, selector, secret) of the newest e-mail to ``address`` in the sink."""
    for path in reversed(outbox(platform, "mail")):
        message = message_from_bytes(path.read_bytes(), policy=default_policy)
        if message["To"] == address:
            body = message.get_content()
            match = re.search(r"(\S+/me/leaks/email/([A-Za-z0-9_-]+)\?secret=([A-Za-z0-9_-]+))", body)
            assert match, "no link in the e-mail"
            return match.group(1), match.group(2), match.group(3)
    raise AssertionError("no e-mail to this address in the sink")


def verify_phone(platform: Platform, user_id: int, phone: str) -> int:
    service = leak_citizens_for(platform)
    started = service.start_phone(user_id, phone, lang="en")
    return service.confirm_phone(user_id, started.selector, last_sms_code(platform, phone)).id


def verify_iin(platform: Platform, user_id: int, iin: str) -> None:
    citizens = citizens_for(platform)
    with platform.db.transaction() as s:
        issued = citizens.issue_enrollment(s, iin, actor="test")
    citizens.verify(user_id, issued.code, actor="test")


def leak_citizen_objects(platform: Platform, tenant: Any) -> dict[str, int]:
    """A verified phone identifier and a notification of the tenant's citizen (for the route walk)."""
    user_id = tenant.users["citizen"][0]
    phone = f"+7701{tenant.org_id:07d}"
    service = leak_citizens_for(platform)
    existing = [i for i in service.identifiers(user_id) if i.kind == "phone"]
    identifier_id = existing[0].id if existing else verify_phone(platform, user_id, phone)
    service.subscribe(user_id, identifier_id, True)
    incident = make_incident(platform, tenant.org_id)
    tokens = publish_segment(platform, incident, [("phone", phone)])
    service.notify_new_tokens(incident, tokens)
    notification_id = service.notifications(user_id)[0].id
    return {"identifier_id": identifier_id, "leak_notification_id": notification_id}
