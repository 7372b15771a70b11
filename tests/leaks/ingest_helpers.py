"""Shared helpers of the ingest tests: incidents, valid and invalid identifiers."""

from __future__ import annotations

from datetime import timedelta

from qorgau.core.db import utcnow
from qorgau.identifiers import parse_iin, synthetic_kz_number
from qorgau.leaks.models import LeakIncident
from qorgau.core.platform import Platform

_SEQ = iter(range(1, 10**6))


def make_incident(platform: Platform, org_id: int, *, status: str = "received") -> int:
    """An incident report of ``org_id`` written through the ORM (the ingest needs only its row)."""
    now = utcnow()
    n = next(_SEQ)
    with platform.db.transaction(org_id) as s:
        row = LeakIncident(reference=f"KZ-LEAK-T-{org_id}-{n:06d}", responsible_person="DPO",
                           title=f"test leak {n}", discovered_at=now - timedelta(hours=2), nature="hacking",
                           filed_by="test", deadline_at=now + timedelta(days=1), status=status,
                           data_classes=["iin", "phone"])
        s.add(row)
        s.flush()
        return row.id


def valid_iins(count: int, start: int = 1000) -> list[str]:
    assert count <= 5000, "one birth date has 10,000 serials: keep test files small"
    out: list[str] = []
    seen: set[str] = set()
    serial = start
    while len(out) < count:
        value = synthetic_kz_number("8501153", serial)
        serial += 7
        if value not in seen:
            seen.add(value)
            out.append(value)
    return out


def invalid_iin(valid: str) -> str:
    """The same IIN with a wrong check digit."""
    for d in "0123456789":
        candidate = valid[:-1] + d
        if candidate == valid:
            continue
        try:
            parse_iin(candidate)
        except Exception:
            return candidate
    raise AssertionError("no invalid variant")


_UPLOADS_KEY = "_test_leak_uploads"


def an_upload_of(platform: Platform, tenant: object) -> str:
    """One parsed upload on one of ``tenant``'s incidents (made once per platform and tenant): the route walk's
    ``upload_id``."""
    from leaks.test_incidents import an_incident_of
    from qorgau.leaks.ingest import ingest_for

    made = platform.__dict__.setdefault(_UPLOADS_KEY, {})
    org_id = tenant.org_id  # type: ignore[attr-defined]
    if org_id not in made:
        incident = an_incident_of(platform, tenant)  # type: ignore[arg-type]
        data = ("\n".join(valid_iins(3, start=31000)) + "\n").encode()
        made[org_id] = ingest_for(platform).upload(org_id, incident, data, "walk.txt", actor="test").public_id
    return made[org_id]
