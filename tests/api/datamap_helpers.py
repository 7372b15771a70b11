"""Objects of the data map a tenant owns, made through the services (for the route walk's ``OWNED_BY``)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from qorgau.core.platform import Platform
from qorgau.discovery import datamap, jobs
from qorgau.discovery.scanning import Place, SourceResult
from qorgau.discovery.types import Finding

if TYPE_CHECKING:
    from conftest import Tenant


def a_scan_job_of(platform: Platform, tenant: Tenant) -> int:
    """A queued job (a database URL: no scan root needed; the port refuses, so a worker fails it fast)."""
    with platform.db.transaction(tenant.org_id) as session:
        return jobs.submit(platform, session, actor="test", sources=["postgresql://scanner:pw@127.0.0.1:1/crm"]).id


def a_data_source_of(platform: Platform, tenant: Tenant) -> int:
    """A source with one identifying field, as a scan of a CSV file would record it."""
    result = SourceResult(source="/srv/exports/clients.csv", kind="csv", chunks_scanned=2, counts=Counter(KZ_IIN=1))
    result.places = [Place({"row": 2, "column": "iin"}, (Finding("KZ_IIN", 0, 12, 1.0, "kz_iin"),))]
    with platform.db.transaction(tenant.org_id) as session:
        source = datamap.record_result(session, result, actor="test")
        assert source is not None
        return source.id
