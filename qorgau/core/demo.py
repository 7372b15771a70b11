"""The demo organization that ``make run`` seeds: clearly marked, never mistaken for a real operator."""

from __future__ import annotations

from dataclasses import dataclass

from . import auth
from .platform import Platform

DEMO_BIN = "940140000385"  # a checksum-valid test BIN from LEGAL.md's vectors
DEMO_NAME = "DEMO — «Qorgau Demo Bank» (demo data, not a real operator)"
DEMO_USERS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("demo-admin", "Demo Administrator", ("admin",), "en"),
    ("demo-dpo", "Demo Data Protection Officer", ("dpo",), "ru"),
    ("demo-reviewer", "Demo Reviewer", ("reviewer",), "kk"),
    ("demo-regulator", "Demo Regulator", ("regulator",), "ru"),
    ("demo-citizen", "Demo Citizen", ("citizen",), "kk"),
)
# The authorized body (the regulator) is an organization of its own: its regulator decides trusted-list requests
# and sandbox applications of every operator. ``demo-regulator`` above is the operator's internal controller.
DEMO_AUTHORITY_BIN = "990140004654"  # the other checksum-valid test BIN from LEGAL.md's vectors
DEMO_AUTHORITY_NAME = "DEMO — Authorized body for personal data and AI (demo regulator, not a real authority)"
DEMO_AUTHORITY_USERS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("demo-authority", "Demo Authorized Body Inspector", ("regulator",), "ru"),
)


@dataclass(frozen=True)
class DemoLogin:
    username: str
    roles: tuple[str, ...]
    one_time_password: str

    def __repr__(self) -> str:
        return f"DemoLogin(username={self.username!r}, roles={self.roles})"


def seed_demo(platform: Platform) -> list[DemoLogin] | None:
    """Create the demo organization and one user per role; ``None`` if it already exists."""
    with platform.db.transaction() as session:
        if auth.find_organization_by_bin(session, DEMO_BIN) is not None:
            return None
        org = auth.create_organization(session, name=DEMO_NAME, bin=DEMO_BIN, actor="system:demo", is_demo=True)
        logins = []
        for username, name, roles, language in DEMO_USERS:
            _, password = auth.create_user(session, organization_id=org.id, username=username, display_name=name,
                                           roles=list(roles), actor="system:demo", language=language)
            assert password is not None
            logins.append(DemoLogin(username, roles, password))
        if auth.find_organization_by_bin(session, DEMO_AUTHORITY_BIN) is None:
            authority = auth.create_organization(session, name=DEMO_AUTHORITY_NAME, bin=DEMO_AUTHORITY_BIN,
                                                 actor="system:demo", is_demo=True, is_authority=True)
            for username, name, roles, language in DEMO_AUTHORITY_USERS:
                _, password = auth.create_user(session, organization_id=authority.id, username=username,
                                               display_name=name, roles=list(roles), actor="system:demo",
                                               language=language)
                assert password is not None
                logins.append(DemoLogin(username, roles, password))
    from qorgau.consent.demo import seed_consent_demo  # here: qorgau.consent imports this module
    seed_consent_demo(platform)  # purposes, processors, a verified demo citizen and their consents
    from qorgau.oversight.demo import seed_oversight_demo
    seed_oversight_demo(platform)  # an AI system, a review queue, a decision the demo citizen can contest
    from qorgau.aisystems.demo import seed_aisystems_demo
    seed_aisystems_demo(platform)  # registered AI systems with questionnaires, classified by the rule packs
    from qorgau.leaks.demo import seed_leaks_demo
    seed_leaks_demo(platform)  # leak register: published incidents, a late report, a leak that hits demo-citizen
    from qorgau.provenance.demo import seed_labels_demo
    seed_labels_demo(platform)  # AI content labels: a signer from the LOCAL TEST CA, a labeled picture and answer
    return logins
