#!/usr/bin/env python
"""Benchmark: what the citizen portal costs as the number of operators on the platform grows.

The portal finds a citizen's subjects by computing *each* operator's blind index of the verified IIN
(``Citizens.subjects``: one read session per operator, ``Vault.lookup`` in it), then reads the consents at
the operators that hold them (``dashboard.citizen_overview``). Both grow with the number of operators. In
one run, on one database:

1. **floor** — one ``Vault.lookup`` in an already open read session (HMAC + one indexed query): the least
   finding a subject at one operator can cost;
2. ``Citizens.subjects(user)`` with N operators on the platform (the citizen is a subject at every other
   one), per call and per operator — × the floor;
3. ``dashboard.citizen_overview(user)`` (the ``/me`` page's data: subjects, then consents, categories,
   recipients per operator holding them) per call.

Nothing is asserted; the machine is shared and noisy — compare ratios.

    .venv/bin/python bench/citizen_portal.py                     # 10, 100, 400 operators
    .venv/bin/python bench/citizen_portal.py --operators 10 50
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import cpu_and_python  # noqa: E402

from qorgau.consent import dashboard  # noqa: E402
from qorgau.consent.citizens import citizens_for  # noqa: E402
from qorgau.consent.service import SubjectRef, consent_for  # noqa: E402
from qorgau.core import auth  # noqa: E402
from qorgau.core.platform import Platform  # noqa: E402
from qorgau.core.settings import Settings  # noqa: E402
from qorgau.identifiers import synthetic_kz_number  # noqa: E402
from qorgau.vault import vault_for  # noqa: E402

IIN = synthetic_kz_number("8607154", 2718)


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def grow(platform: Platform, have: int, want: int, user_id: int) -> None:
    """Add operators up to ``want``; the citizen gives a consent at every other one."""
    service = consent_for(platform)
    me = SubjectRef(identifier_type="KZ_IIN", identifier=IIN)
    for n in range(have, want):
        with platform.db.transaction() as session:
            org = auth.create_organization(session, name=f"Operator {n}", bin=synthetic_kz_number("0601" + "40", 10 * n + 7),
                                           actor="bench")
        with platform.db.transaction(org.id) as session:
            subject = me if n % 2 == 0 else SubjectRef(identifier_type="KZ_IIN",
                                                       identifier=synthetic_kz_number("9103024", 1000 + n))
            service.give(session, subject, purpose="marketing.sms", data_categories=["PHONE_NUMBER"],
                         valid_until=None, third_party_transfer=False, counterparties=[], cross_border=False,
                         countries=[], public_sources=False, other=None, channel="written", evidence_ref=None,
                         evidence_sha256=None, actor="bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operators", type=int, nargs="+", default=[10, 100, 400])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    for key, value in cpu_and_python():
        print(f"- {key}: {value}")
    print(f"- Load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        platform = Platform.initialize(Settings(data_dir=Path(tmp), sth_interval_seconds=0))
        with platform.db.transaction() as session:
            home = auth.create_organization(session, name="Citizens", bin=synthetic_kz_number("0601" + "40", 3),
                                            actor="bench")
            user, _ = auth.create_user(session, organization_id=home.id, username="citizen", display_name="C",
                                       roles=["citizen"], actor="bench", password="bench-password-1")
            code = citizens_for(platform).issue_enrollment(session, IIN, actor="bench").code
        citizens_for(platform).verify(user.id, code, actor="bench")
        vault = vault_for(platform)
        have = 0
        print()
        print("| Operators | 1. floor: one `Vault.lookup`, µs | 2. `subjects()` per call, ms | 2a. per operator, µs "
              "| × floor | 3. `citizen_overview()` per call, ms | holding consents |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for want in args.operators:
            grow(platform, have, want, user.id)
            have = want
            with platform.db.reader(2) as session:  # the first operator: holds the citizen
                vault.lookup(session, "KZ_IIN", IIN)
                floor = statistics.median(timed(lambda: vault.lookup(session, "KZ_IIN", IIN), 2000))
            subjects = statistics.median(timed(lambda: citizens_for(platform).subjects(user.id), args.repeat))
            found = len(citizens_for(platform).subjects(user.id))
            overview = statistics.median(timed(lambda: dashboard.citizen_overview(platform, user.id, language="en"),
                                               max(3, args.repeat // 3)))
            operators = want + 1
            per = subjects / operators
            print(f"| {operators:,} | {floor * 1e6:.1f} | {subjects * 1e3:.1f} | {per * 1e6:.0f} | {per / floor:.1f}× "
                  f"| {overview * 1e3:.1f} | {found} |")
        platform.close()
    print(f"\n- Load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
