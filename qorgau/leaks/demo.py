"""Leak register demo data (``qorgau init --demo`` / ``make run``; issue 8, L-PD-BREACH, L-PD-LEAK-REGISTER).

Everything goes through the register's own services — incidents (:mod:`qorgau.leaks.incidents`), ingest
(:mod:`qorgau.leaks.ingest`), citizens (:mod:`qorgau.leaks.citizens`) — and every organization and identifier is
synthetic and marked DEMO:

* six **demo operators** in different sectors (``DEMO — «…»``), whose 57 historical incidents the demo authorized
  body verified and published, so the public transparency page (``/leaks/transparency``) draws real charts with
  visible and suppressed cells. Their dates are moved back after filing (filed, discovered, deadline, status and
  publication times together, and their history events), spread over the last two years: the service files
  everything "now", and a register with a history is what the month chart is for;
* one **received** incident of the demo bank, filed late with its reason (the regulator's queue at
  ``/leaks/regulator`` has something to decide; the bank's ``/leaks`` shows the late flag);
* ``demo-citizen``'s verified IIN as a leak-register identifier, **subscribed**; then one **confirmed upload** to
  the demo telecom's largest incident whose synthetic identifiers include that IIN: the citizen's ``/me/leaks``
  lists the incident and a notification on the portal (an IIN has no address to send to; a verified phone or
  e-mail would get it through the messenger — the sink in the embedded default, which sends nothing). The upload's plaintext exists only in memory and in the ingest spool, which confirm deletes.

Never logs an identifier. Each step checks whether it ran before, so seeding twice adds nothing.
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from ..core import auth
from ..core.calendar import local_date
from ..core.db import utcnow
from ..core.demo import DEMO_AUTHORITY_BIN, DEMO_BIN
from ..identifiers import synthetic_kz_number
from .models import LeakIncident, LeakIncidentEvent, LeakUpload

if TYPE_CHECKING:
    from ..core.platform import Platform

ACTOR = "system:demo"
DEMO_TITLE_PREFIX = "DEMO — "
LATE_TITLE = "DEMO — customer records found on a file-sharing site"
UPLOAD_FILENAME = "demo-telecom-leak.csv"

# (key, name, BIN prefix, serial): synthetic, checksum-valid BINs; the names say DEMO.
OPERATORS: tuple[tuple[str, str, str, int], ...] = (
    ("telecom", "DEMO — «Dala Telecom» mobile operator (demo data, not a real operator)", "100340", 51001),
    ("marketplace", "DEMO — «Bazar Online» marketplace (demo data, not a real operator)", "150440", 52001),
    ("state", "DEMO — state e-service «Qyzmet» (demo data, not a real body)", "080240", 53001),
    ("bank", "DEMO — «Altyn Credit» bank (demo data, not a real operator)", "050740", 54001),
    ("health", "DEMO — «Shipa» clinic network (demo data, not a real operator)", "120540", 55001),
    ("education", "DEMO — «Bilim» online school (demo data, not a real operator)", "180940", 56001),
)

# Published incidents: (operator, sector, nature, data classes, people affected, months ago).
# Enough of them in a few sectors, natures and months that those cells show; the rest are under 10 and
# appear as "<10" (see qorgau/leaks/transparency.py for the suppression rules).
_N = ("iin", "full_name")
_P = ("phone", "full_name")
PUBLISHED: tuple[tuple[str, str, str, tuple[str, ...], int, int], ...] = (
    # telecom: 12
    *(("telecom", "telecom", nature, classes, people, months) for nature, classes, people, months in (
        ("hacking", ("phone", "full_name", "iin", "address"), 2_400_000, 0),
        ("misconfiguration", ("phone", "iin"), 310_000, 0),
        ("scraping", _P, 48_000, 0),
        ("hacking", ("phone", "email", "full_name"), 95_000, 3),
        ("scraping", ("phone", "iin", "location"), 12_500, 3),
        ("misconfiguration", ("phone", "email"), 7_300, 3),
        ("scraping", _P, 150_000, 6),
        ("hacking", ("phone", "iin", "full_name", "date_of_birth"), 620_000, 6),
        ("phishing", ("phone", "password"), 3_100, 6),
        ("misconfiguration", ("phone",), 18_000, 12),
        ("scraping", _P, 27_000, 12),
        ("hacking", ("phone", "iin"), 88_000, 15),
    )),
    # marketplace: 11
    *(("marketplace", "marketplace", nature, classes, people, months) for nature, classes, people, months in (
        ("misconfiguration", ("email", "phone", "address", "full_name"), 1_200_000, 0),
        ("scraping", ("email", "full_name"), 64_000, 0),
        ("hacking", ("email", "password", "phone"), 230_000, 0),
        ("phishing", ("email", "bank_card"), 4_800, 3),
        ("misconfiguration", ("email", "address"), 39_000, 3),
        ("scraping", ("email", "phone"), 21_000, 6),
        ("hacking", ("email", "password"), 510_000, 6),
        ("misconfiguration", ("phone", "address", "full_name"), 76_000, 12),
        ("scraping", ("email",), 9_900, 12),
        ("hacking", ("email", "phone", "bank_card"), 140_000, 18),
        ("misconfiguration", ("email", "phone"), 2_300, 21),
    )),
    # state bodies: 10
    *(("state", "state", nature, classes, people, months) for nature, classes, people, months in (
        ("misconfiguration", ("iin", "full_name", "address", "date_of_birth"), 3_500_000, 0),
        ("unauthorized_disclosure", ("iin", "full_name"), 15_000, 0),
        ("hacking", ("iin", "full_name", "passport", "address"), 870_000, 3),
        ("misconfiguration", ("iin", "phone", "full_name"), 44_000, 3),
        ("scraping", _N, 2_700, 6),
        ("misconfiguration", ("iin", "full_name", "vehicle"), 260_000, 6),
        ("scraping", ("iin", "full_name", "address"), 1_900_000, 12),
        ("hacking", ("iin", "id_card", "full_name"), 33_000, 12),
        ("unauthorized_disclosure", ("iin", "health", "full_name"), 6_400, 16),
        ("misconfiguration", ("iin", "full_name"), 120_000, 23),
    )),
    # banks: 14 (the demo bank itself files only the received one below)
    *(("bank", "bank", nature, classes, people, months) for nature, classes, people, months in (
        ("phishing", ("phone", "bank_card", "full_name"), 5_200, 0),
        ("insider", ("iin", "phone", "bank_account", "full_name"), 41_000, 0),
        ("hacking", ("iin", "phone", "bank_card", "bank_account"), 330_000, 0),
        ("phishing", ("phone", "bank_card"), 2_100, 0),
        ("misconfiguration", ("iin", "email", "full_name"), 17_000, 0),
        ("insider", ("iin", "phone", "full_name"), 8_800, 3),
        ("hacking", ("iin", "bank_card", "full_name"), 72_000, 3),
        ("phishing", ("phone", "password"), 1_400, 3),
        ("loss_theft", ("iin", "passport", "full_name"), 3_300, 6),
        ("insider", ("iin", "phone", "bank_account"), 26_000, 6),
        ("hacking", ("iin", "phone", "email", "bank_card"), 410_000, 6),
        ("phishing", ("phone", "bank_card"), 1_700, 12),
        ("ransomware", ("iin", "full_name", "address"), 56_000, 12),
        ("insider", ("iin", "phone"), 4_100, 20),
    )),
    # health: 6, education: 4 (under 10 each: "<10" on the page)
    *(("health", "health", nature, classes, people, months) for nature, classes, people, months in (
        ("ransomware", ("iin", "health", "full_name"), 190_000, 0),
        ("misconfiguration", ("iin", "health", "phone"), 23_000, 3),
        ("ransomware", ("iin", "health", "full_name", "address"), 64_000, 6),
        ("loss_theft", ("iin", "health"), 1_100, 9),
        ("insider", ("iin", "health", "full_name"), 2_600, 12),
        ("hacking", ("iin", "health", "phone"), 15_000, 19),
    )),
    *(("education", "education", nature, classes, people, months) for nature, classes, people, months in (
        ("misconfiguration", ("iin", "full_name", "date_of_birth"), 37_000, 0),
        ("hacking", ("email", "password", "full_name"), 12_000, 6),
        ("scraping", ("email", "phone"), 5_500, 12),
        ("ransomware", ("iin", "full_name", "address"), 8_100, 17),
    )),
)

ADVICE = {
    "kk": "DEMO: сізге банктен немесе оператордан келген деп жазылған қоңыраулар мен SMS-терге сақ болыңыз; "
          "кодтарды ешкімге айтпаңыз, құпиясөздерді ауыстырыңыз.",
    "ru": "DEMO: остерегайтесь звонков и SMS от имени банка или оператора; никому не называйте коды из SMS, "
          "смените пароли.",
    "en": "DEMO: beware of calls and text messages claiming to come from your bank or operator; never tell "
          "anyone a code from a text message, and change your passwords.",
}
_SHIFTED = ("started_at", "ended_at", "discovered_at", "contained_at", "subjects_notified_at", "filed_at",
            "deadline_at", "status_changed_at", "published_at", "updated_at")


def _report(sector: str, nature: str, classes: tuple[str, ...], people: int, n: int) -> dict[str, Any]:
    now = utcnow()
    return {
        "reporter_role": "operator", "responsible_person": "DEMO Responsible Person",
        "responsible_contact": "dpo@operator.demo.invalid", "sector": sector,
        "title": f"{DEMO_TITLE_PREFIX}{nature.replace('_', ' ')} incident #{n + 1}",
        "description": "DEMO: a synthetic incident for the demonstration register.",
        "started_at": now - timedelta(hours=30), "discovered_at": now - timedelta(hours=6),
        "contained_at": now - timedelta(hours=2), "nature": nature, "people_affected": people,
        "records_affected": people * 2, "subject_categories": ["customers"], "data_classes": list(classes),
        "consequences": "DEMO: risk of fraud calls and phishing against the affected people.",
        "measures_taken": "DEMO: access closed, passwords reset, the authorized body notified.",
        "measures_planned": "DEMO: an external security audit.",
    }


def _move_back(session: Any, incident_id: int, months: int) -> None:
    """Move a just-filed incident ``months`` back in time: all of its times and its history together."""
    if months <= 0:
        return
    shift = timedelta(days=30 * months + 3)
    row = session.get(LeakIncident, incident_id)
    for name in _SHIFTED:
        value = getattr(row, name)
        if value is not None:
            setattr(row, name, value - shift)
    row.reference = f"KZ-LEAK-{local_date(row.filed_at).year}-{row.id:06d}"  # the year it was (now) filed in
    for event in session.scalars(select(LeakIncidentEvent).where(LeakIncidentEvent.incident_id == incident_id)
                                 .execution_options(qorgau_cross_tenant=True)):
        event.at = event.at - shift


def _operator_orgs(platform: Platform) -> dict[str, int]:
    """The demo operators' organizations, created once (found by BIN afterwards)."""
    found: dict[str, int] = {}
    with platform.db.transaction() as session:
        for key, name, prefix, serial in OPERATORS:
            bin_ = synthetic_kz_number(prefix, serial)
            org = auth.find_organization_by_bin(session, bin_)
            if org is None:
                org = auth.create_organization(session, name=name, bin=bin_, actor=ACTOR, is_demo=True)
            found[key] = org.id
    return found


def _count_incidents(platform: Platform, org_id: int) -> int:
    with platform.db.reader(org_id) as session:
        return int(session.scalar(select(func.count(LeakIncident.id))) or 0)


def _seed_published(platform: Platform, orgs: dict[str, int], authority_id: int) -> int:
    """The published history, per operator once (an operator with incidents was seeded before); returns how
    many incidents were filed."""
    from .incidents import incidents_for

    service = incidents_for(platform)
    seeded_before = {key for key, org_id in orgs.items() if _count_incidents(platform, org_id)}
    filed = 0
    for n, (operator, sector, nature, classes, people, months) in enumerate(PUBLISHED):
        if operator in seeded_before:
            continue
        org_id = orgs[operator]
        with platform.db.transaction(org_id) as session:
            incident_id = service.file_report(session, _report(sector, nature, classes, people, n), actor=ACTOR).id
        with platform.db.transaction() as session:
            service.set_status(session, incident_id, "verified", authority=authority_id, actor=ACTOR,
                               note="DEMO: verified against the operator's logs.")
            service.publish(session, incident_id, advice=ADVICE, authority=authority_id, actor=ACTOR)
            _move_back(session, incident_id, months)
        filed += 1
    return filed


def _seed_late_report(platform: Platform, bank_id: int) -> bool:
    """The demo bank's own report: received, filed after the 1-working-day deadline, with its reason."""
    from .incidents import incidents_for

    with platform.db.transaction(bank_id) as session:
        if session.scalar(select(LeakIncident.id).where(LeakIncident.title == LATE_TITLE)) is not None:
            return False
        now = utcnow()
        incidents_for(platform).file_report(session, {
            "reporter_role": "operator", "responsible_person": "Demo Data Protection Officer",
            "responsible_contact": "dpo@bank.demo.invalid", "sector": "bank", "title": LATE_TITLE,
            "description": "DEMO: an export of the call centre's customer list was found on a public file-sharing "
                           "site.",
            "started_at": now - timedelta(days=12), "discovered_at": now - timedelta(days=6),
            "contained_at": now - timedelta(days=5), "nature": "unauthorized_disclosure", "people_affected": 1_800,
            "records_affected": 2_100, "subject_categories": ["customers"],
            "data_classes": ["iin", "phone", "full_name"],
            "consequences": "DEMO: customers may receive fraudulent calls that quote their details.",
            "measures_taken": "DEMO: the file was taken down; the export function was switched off.",
            "measures_planned": "DEMO: data-loss prevention on exports.",
            "late_reason": "DEMO: the file was first reported to the call centre, which did not pass it to the "
                           "security team until five days later.",
        }, actor=ACTOR)
    return True


def _demo_citizen(platform: Platform) -> int | None:
    with platform.db.reader() as session:
        user = session.scalar(select(auth.User).where(auth.User.username == "demo-citizen")
                              .execution_options(qorgau_cross_tenant=True))
        return user.id if user is not None else None


def _subscribe_citizen(platform: Platform, citizen_id: int) -> None:
    """demo-citizen's verified IIN (from the consent demo's identity) as a subscribed register identifier."""
    from .citizens import leak_citizens_for

    citizens = leak_citizens_for(platform)
    row = citizens.ensure_iin(citizen_id)
    if row is not None and not row.subscribed:
        citizens.subscribe(citizen_id, row.id, True, actor=ACTOR)


def _leak_file() -> bytes:
    """A small synthetic leak in the format operators find online: IIN, phone, e-mail per line, with two broken
    IINs (the review lists their line numbers). The demo citizen's IIN is on line 7. Built in memory only."""
    from ..consent.demo import DEMO_CITIZEN_IIN

    lines = ["iin;phone;email"]
    for n in range(40):
        iin = DEMO_CITIZEN_IIN if n == 5 else synthetic_kz_number("8707153" if n % 2 else "9211024", 4100 + 53 * n)
        if n in (11, 29):
            iin = iin[:-1] + str((int(iin[-1]) + 1) % 10)  # a bad check digit: rejected, reported by line
        lines.append(f"{iin};+7701{5550000 + 17 * n:07d};subscriber.{n + 1}@mail.demo.invalid")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _seed_upload(platform: Platform, org_id: int) -> bool:
    """The demo telecom uploads and confirms the leaked file of its largest incident (once)."""
    from .ingest import ingest_for

    with platform.db.reader(org_id) as session:
        if session.scalar(select(LeakUpload.id).where(LeakUpload.status == "confirmed")) is not None:
            return False
        incident_id = session.scalar(select(LeakIncident.id).where(LeakIncident.filing == "initial",
                                                                   LeakIncident.published.is_(True))
                                     .order_by(LeakIncident.people_affected.desc(), LeakIncident.id).limit(1))
    if incident_id is None:
        return False
    ingest = ingest_for(platform)
    view = ingest.upload(org_id, incident_id, io.BytesIO(_leak_file()), UPLOAD_FILENAME, format="csv", actor=ACTOR)
    ingest.confirm(org_id, view.public_id, actor=ACTOR)
    return True


def seed_leaks_demo(platform: Platform) -> bool:
    """Seed the leak register demo; False when there is no demo organization or everything exists already."""
    with platform.db.reader() as session:
        bank = auth.find_organization_by_bin(session, DEMO_BIN)
        authority = auth.find_organization_by_bin(session, DEMO_AUTHORITY_BIN)
        if bank is None or authority is None:
            return False
        bank_id, authority_id = bank.id, authority.id
    orgs = _operator_orgs(platform)
    filed = _seed_published(platform, orgs, authority_id)
    late = _seed_late_report(platform, bank_id)
    citizen_id = _demo_citizen(platform)
    if citizen_id is not None:
        _subscribe_citizen(platform, citizen_id)  # before the upload, so the citizen is notified of it
    uploaded = _seed_upload(platform, orgs["telecom"])
    return bool(filed or late or uploaded)


__all__ = ["seed_leaks_demo"]
