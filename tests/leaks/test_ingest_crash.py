"""Crash test of the confirm protocol (L-PD-LEAK-REGISTER: a committed leak is in the register or not): a
process is SIGKILLed at every step of confirm; after reconcile, lookups see all of the upload's tokens or
none, and confirming again ends with every token visible exactly once."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import Tenant
from qorgau.core.platform import Platform
from qorgau.core.settings import Settings
from qorgau.leaks import segments
from qorgau.leaks.ingest import ingest_for
from qorgau.leaks.models import LeakIncident
from qorgau.leaks.register import index_directory, leak_index_for, leak_keys_for

from .ingest_helpers import make_incident, valid_iins

CHILD = """
import sys
from qorgau.core.platform import Platform
from qorgau.core.settings import Settings
from qorgau.leaks.ingest import ingest_for
platform = Platform.open(Settings(data_dir=sys.argv[1], database_url=sys.argv[2], sth_interval_seconds=0))
ingest_for(platform).confirm(int(sys.argv[3]), sys.argv[4], actor="user:crash")
print("done")
"""


def _confirm_in_child(settings: Settings, org_id: int, public_id: str, crash_at: str | None,
                      kill_after: float | None = None) -> int:
    env = dict(os.environ)
    if crash_at:
        env["QORGAU_LEAKS_CRASH_AT"] = crash_at
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(settings.data_dir), settings.database_url, str(org_id),
                             public_id], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if kill_after is not None:
        time.sleep(kill_after)
        proc.kill()
    proc.communicate(timeout=120)
    return proc.returncode


def _visible(platform: Platform, tokens: list[bytes], incident: int) -> np.ndarray:
    index = leak_index_for(platform)
    index.refresh()
    found = index.lookup_many(tokens)
    hit = np.zeros(len(tokens), bool)
    hit[found.query[found.incidents == incident]] = True
    return hit


POINTS = ["staged", "committed", "before_publish", "published", None]


@pytest.mark.parametrize("crash_at", POINTS, ids=[p or "random-time" for p in POINTS])
def test_a_kill_during_confirm_leaves_all_or_nothing_and_confirm_again_has_no_duplicates(
        platform: Platform, settings: Settings, tenant_a: Tenant, crash_at: str | None) -> None:
    incident = make_incident(platform, tenant_a.org_id)
    iins = valid_iins(3000, start=20000)
    service = ingest_for(platform)
    view = service.upload(tenant_a.org_id, incident, ("\n".join(iins) + "\n").encode(), "leak.txt", actor="user:1")
    assert view.counts["iin"] == 3000
    tokens = leak_keys_for(platform).tokens("iin", iins)
    rc = _confirm_in_child(settings, tenant_a.org_id, view.public_id, crash_at,
                           kill_after=None if crash_at else random.uniform(0.5, 3.0))
    if crash_at:
        assert rc == -9, "the child should have been killed at the crash point"
    # "restart": a reconcile (what a new process does when it builds the service, and the hourly job)
    service.reconcile()
    hit = _visible(platform, tokens, incident)
    assert hit.all() or not hit.any(), "a partial upload is visible"
    state = service.get(tenant_a.org_id, view.public_id)
    if state.status == "confirmed":
        assert hit.all() and not state.publish_pending
    else:
        assert state.status == "parsed" and not hit.any()
    done = service.confirm(tenant_a.org_id, view.public_id, actor="user:1")
    assert done.status == "confirmed" and not done.publish_pending and done.tokens_committed == 3000
    assert _visible(platform, tokens, incident).all()
    manifest = segments.read_manifest(index_directory(platform))
    assert sum(s.entries for s in manifest.segments) == 3000, "tokens were committed twice"
    with platform.db.reader(tenant_a.org_id) as s:
        assert s.get(LeakIncident, incident).identifiers_committed == 3000
    assert not (service.spool_dir / view.public_id).exists()
    assert not (index_directory(platform) / "staging" / f"upload-{view.public_id}").exists()


@pytest.mark.parametrize("lost", [False, True], ids=["renamed-not-listed", "renamed-then-collected"])
def test_a_kill_inside_publish_is_finished_by_reconcile(platform: Platform, settings: Settings, tenant_a: Tenant,
                                                       lost: bool) -> None:
    """``publish_staged`` killed between its rename and the manifest write: the segment sits in the index
    directory unlisted (or was already collected as garbage). Reconcile lists it again, or re-stages it from
    the spool, and every token becomes visible exactly once."""
    incident = make_incident(platform, tenant_a.org_id)
    iins = valid_iins(500, start=30000)
    service = ingest_for(platform)
    view = service.upload(tenant_a.org_id, incident, ("\n".join(iins) + "\n").encode(), "leak.txt", actor="user:1")
    assert _confirm_in_child(settings, tenant_a.org_id, view.public_id, "before_publish") == -9
    directory = index_directory(platform)
    state = service.get(tenant_a.org_id, view.public_id)
    staged = directory / "staging" / f"upload-{view.public_id}" / state.segment_name
    assert staged.exists() and state.publish_pending
    os.rename(staged, directory / state.segment_name)  # what publish_staged did before it was killed
    if lost:
        segments.collect_garbage(directory)
        assert not (directory / state.segment_name).exists()
    tokens = leak_keys_for(platform).tokens("iin", iins)
    assert not _visible(platform, tokens, incident).any()
    assert service.reconcile() == 1
    assert _visible(platform, tokens, incident).all()
    assert sum(s.entries for s in segments.read_manifest(directory).segments) == 500
    assert not service.get(tenant_a.org_id, view.public_id).publish_pending
    assert service.reconcile() == 0
