"""Bulk ingest with PySpark in local mode: extraction and OPRF on executors, range partitions staged as
segments, published at once; the tokens equal the register's own (same key), bookkeeping like a confirm."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import Tenant
from qorgau.core.platform import Platform
from qorgau.identifiers import synthetic_kz_number
from qorgau.leaks import segments
from qorgau.leaks.ingest import ingest_for
from qorgau.leaks.models import LeakIncident
from qorgau.leaks.register import index_directory, leak_index_for, leak_keys_for

from .ingest_helpers import invalid_iin, make_incident, valid_iins


def _java() -> bool:
    home = os.environ.get("JAVA_HOME")
    return shutil.which("java") is not None or bool(home and Path(home, "bin", "java").exists())


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_bulk_ingest_in_local_mode(platform: Platform, tenant_a: Tenant, tmp_path: Path) -> None:
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'qorgau[spark]')")
    pytest.importorskip("pandas", reason="pandas is not installed (pip install 'qorgau[spark]')")
    if not _java():
        pytest.skip("Java is missing: PySpark needs Java 17+")
    from qorgau.discovery.spark import build_session
    from qorgau.leaks.spark_ingest import bulk_ingest

    incident = make_incident(platform, tenant_a.org_id)
    iins = valid_iins(400, start=70000)
    first = tmp_path / "part1.csv"
    first.write_text("iin;phone\n" + "".join(f"{iin};8701{4000000 + i}\n" for i, iin in enumerate(iins[:200]))
                     + "garbage line\n" + f"{invalid_iin(iins[0])};\n", encoding="utf-8")
    second = tmp_path / "part2.txt"
    second.write_text("".join(f"ИИН: {iin}, email: p{i}@Leak.KZ\n" for i, iin in enumerate(iins[150:])),
                      encoding="utf-8")
    spark = build_session("local[2]", app_name="qorgau-test-leaks")
    try:
        view = bulk_ingest(platform, incident, [str(first), str(second)], partitions=3, actor="user:bulk",
                           spark=spark)
    finally:
        spark.stop()
    assert view.status == "confirmed" and view.format == "spark" and not view.publish_pending
    assert view.counts == {"iin": 400, "phone": 200, "email": 250}
    assert view.tokens_committed == 850
    manifest = segments.read_manifest(index_directory(platform))
    names = [s.name for s in manifest.segments]
    assert len(names) == 3 and all(n.startswith(f"seg-upload-{view.public_id}-p") for n in names)
    assert sum(s.entries for s in manifest.segments) == 850
    keys = leak_keys_for(platform)
    index = leak_index_for(platform)
    index.refresh()
    assert all(index.lookup(keys.token("iin", v)) == (incident,) for v in iins[::37])
    assert index.lookup(keys.token("email", "p3@leak.kz")) == (incident,)
    assert index.lookup(keys.token("iin", synthetic_kz_number("9001013", 5))) == ()  # not in the files
    assert not (index_directory(platform) / "staging" / f"upload-{view.public_id}").exists()
    with platform.db.reader(tenant_a.org_id) as s:
        assert s.get(LeakIncident, incident).identifiers_committed == 850
    assert [u.public_id for u in ingest_for(platform).list(tenant_a.org_id, incident)] == [view.public_id]
