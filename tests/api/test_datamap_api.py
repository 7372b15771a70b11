"""Scan jobs and the data map over real HTTP: uploads, server paths, progress, exports, roles, tenants, secrets."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from pathlib import Path

import pytest

from conftest import LiveServer, Tenant
from qorgau.core import audit, auth
from qorgau.core.platform import Platform
from qorgau.core.settings import Settings
from qorgau.discovery import jobs

IIN = "791028302728"
PASSWORD = "Pg-Pass-w0rd!"
CSV = ("id,ИИН,Телефон,диагноз,salary\n" + "".join(f"{i},{IIN},+7 701 234 56 78,J45,100\n" for i in range(12))).encode()


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    return tmp_path / "srv"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, roots: Path) -> Settings:
    # Workers are run by the tests themselves (scan_workers=0), except where a test says otherwise.
    return Settings(data_dir=tmp_path / "var", database_url=database_url, sth_interval_seconds=0, scan_workers=0,
                    scan_roots=[str(roots / "{bin}")], scan_job_heartbeat_seconds=0.5)


def tenant_dir(roots: Path, tenant: Tenant) -> Path:
    path = roots / tenant.bin
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_jobs(platform: Platform) -> None:
    worker = jobs.ScanWorker(platform, name="test-worker")
    while worker.run_once() is not None:
        pass


def key_with(platform: Platform, tenant: Tenant, *roles: str) -> str:
    with platform.db.transaction() as s:
        _, secret = auth.create_api_key(s, organization_id=tenant.org_id, name="+".join(roles), roles=list(roles),
                                        actor="test")
    return secret


def upload(client, *files: tuple[str, bytes], **form: str):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/scan-jobs/upload", files=[("files", (name, data, "application/octet-stream"))
                                                          for name, data in files], data=form)


def test_upload_scan_browse_export_and_forget(platform: Platform, live_server: LiveServer, tenant_a: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        r = upload(c, ("clients.csv", CSV), ("notes.txt", f"ИИН {IIN}\n".encode()), identifiers_only="true")
        assert r.status_code == 201, r.text
        queued = r.json()
        assert queued["status"] == "queued" and queued["sources"] == ["upload:clients.csv", "upload:notes.txt"]
        assert queued["options"]["identifiers_only"] is True
        run_jobs(platform)
        done = c.get(f"/api/v1/scan-jobs/{queued['id']}").json()
        assert (done["status"], done["sources_done"], done["findings"]) == ("succeeded", 2, 25)
        listing = c.get("/api/v1/datamap/sources").json()
        assert listing["total"] == 2 and [s["locator"] for s in listing["items"]] == ["upload:clients.csv",
                                                                                      "upload:notes.txt"]
        clients = listing["items"][0]
        assert clients["fields_by_category"] == {"identifying": 2, "personal_data": 2}
        assert clients["special"] == ["financial", "health"] and clients["findings_by_type"] == {"KZ_IIN": 12,
                                                                                                "PHONE_NUMBER": 12}
        detail = c.get(f"/api/v1/datamap/sources/{clients['id']}").json()
        fields = {f["field"]: f for f in detail["fields"]}
        assert fields["ИИН"]["rule"] == "name: иин + values: 100% KZ_IIN" and fields["ИИН"]["counts"][0]["count"] == 12
        assert fields["диагноз"]["special"] == "health" and fields["диагноз"]["sensitive"] is True
        summary = c.get("/api/v1/datamap/summary").json()
        assert summary["sources"] == 2 and summary["findings_by_type"]["KZ_IIN"] == 13
        exported = c.get("/api/v1/datamap/export", params={"format": "csv"})
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        assert exported.headers["content-disposition"].startswith('attachment; filename="qorgau-datamap-')
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert {(r["locator"], r["field"], r["entity_type"]) for r in rows} >= {
            ("upload:clients.csv", "ИИН", "KZ_IIN"), ("upload:clients.csv", "salary", ""),
            ("upload:notes.txt", "(text)", "KZ_IIN")}
        as_json = c.get("/api/v1/datamap/export").json()  # JSON is the default
        assert [s["locator"] for s in as_json["sources"]] == ["upload:clients.csv", "upload:notes.txt"]
        only_text = c.get("/api/v1/datamap/export", params={"format": "json", "kind": "text"}).json()
        assert [s["locator"] for s in only_text["sources"]] == ["upload:notes.txt"]
        assert IIN not in exported.text and IIN not in json.dumps(as_json)
        assert c.delete(f"/api/v1/datamap/sources/{clients['id']}").status_code == 204
        assert c.get(f"/api/v1/datamap/sources/{clients['id']}").status_code == 404
        assert c.get("/api/v1/datamap/sources").json()["total"] == 1
    with platform.db.reader(tenant_a.org_id) as s:
        done_actions = [e.action for e in audit.list_entries(s, limit=20)]
    assert done_actions[0] == "discovery.datamap.forget" and "discovery.scan_job.submit" in done_actions
    assert list(jobs.uploads_root(platform).iterdir()) == []


def test_server_paths_are_checked_and_bad_input_names_the_line(platform: Platform, live_server: LiveServer,
                                                              tenant_a: Tenant, roots: Path) -> None:
    home = tenant_dir(roots, tenant_a)
    (home / "clients.csv").write_bytes(CSV)
    with live_server.client(tenant_a.api_key) as c:
        bad = c.post("/api/v1/scan-jobs", json={"sources": [str(home / "clients.csv"), "/etc"]})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "sources[1]"
        assert "scan roots" in bad.json()["error"]["message"]
        assert c.post("/api/v1/scan-jobs", json={"sources": [str(home), "relative.csv"]}).json()["error"]["field"] == \
            "sources[1]"
        assert c.post("/api/v1/scan-jobs", json={"sources": []}).json()["error"]["field"] == "sources"
        assert c.post("/api/v1/scan-jobs", json={"sources": [str(home)], "options": {"min_score": 2}}).json()[
            "error"]["field"] == "options.min_score"
        assert c.post("/api/v1/scan-jobs", json={"sources": [str(home)], "options": {"types": ["NOPE"]}}).json()[
            "error"]["field"] == "options.types"
        assert c.get("/api/v1/scan-jobs").json()["total"] == 0  # nothing half-written
        ok = c.post("/api/v1/scan-jobs", json={"sources": [str(home)], "options": {"types": ["KZ_IIN"]}})
        assert ok.status_code == 201 and ok.json()["sources"] == [str(home)]
        run_jobs(platform)
        done = c.get(f"/api/v1/scan-jobs/{ok.json()['id']}").json()
        assert done["status"] == "succeeded" and done["findings"] == 12  # KZ_IIN only
        assert c.get("/api/v1/scan-jobs", params={"status": "succeeded"}).json()["total"] == 1
        assert c.get("/api/v1/scan-jobs", params={"status": "nope"}).status_code == 422
        assert c.get("/api/v1/datamap/sources", params={"category": "nope"}).status_code == 422
        assert c.get("/api/v1/datamap/sources", params={"limit": 0}).status_code == 422


def test_a_database_password_never_leaves_the_server(platform: Platform, live_server: LiveServer,
                                                     tenant_a: Tenant, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"postgresql://scanner:{PASSWORD}@127.0.0.1:1/crm"
    with live_server.client(tenant_a.api_key) as c:
        created = c.post("/api/v1/scan-jobs", json={"sources": [url]})
        assert created.status_code == 201 and created.json()["sources"] == ["postgresql://scanner:***@127.0.0.1:1/crm"]
        run_jobs(platform)
        answers = [created.text, c.get("/api/v1/scan-jobs").text, c.get(f"/api/v1/scan-jobs/{created.json()['id']}").text,
                   c.get("/api/v1/datamap/sources").text, c.get("/api/v1/datamap/export?format=csv").text,
                   c.get("/api/v1/audit/entries").text]
    assert all(PASSWORD not in a for a in answers) and PASSWORD not in caplog.text
    assert json.loads(answers[2])["status"] == "failed"
    assert json.loads(answers[3])["items"][0]["locator"] == "postgresql://scanner:***@127.0.0.1:1/crm"


def test_roles_decide_who_scans_and_who_reads(platform: Platform, live_server: LiveServer, tenant_a: Tenant,
                                             roots: Path) -> None:
    home = tenant_dir(roots, tenant_a)
    reviewer, regulator, dpo = (key_with(platform, tenant_a, r) for r in ("reviewer", "regulator", "dpo"))
    with live_server.client(dpo) as c:
        job_id = c.post("/api/v1/scan-jobs", json={"sources": [str(home)]}).json()["id"]
    with live_server.client(reviewer) as c:
        for method, path in (("GET", "/api/v1/scan-jobs"), ("GET", "/api/v1/datamap/sources"),
                             ("GET", "/api/v1/datamap/export"), ("POST", "/api/v1/scan-jobs")):
            assert c.request(method, path, json={"sources": [str(home)]} if method == "POST" else None).status_code == 403
    with live_server.client(regulator) as c:
        assert c.get("/api/v1/scan-jobs").json()["total"] == 1
        assert c.get("/api/v1/datamap/export").status_code == 200
        assert c.post("/api/v1/scan-jobs", json={"sources": [str(home)]}).status_code == 403
        assert c.post(f"/api/v1/scan-jobs/{job_id}/cancel").status_code == 403
        assert upload(c, ("a.csv", b"x")).status_code == 403
    with live_server.client(dpo) as c:
        cancelled = c.post(f"/api/v1/scan-jobs/{job_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        again = c.post(f"/api/v1/scan-jobs/{job_id}/cancel")
        assert again.status_code == 409 and again.json()["error"]["field"] == "job_id"


def test_another_organization_finds_nothing(platform: Platform, live_server: LiveServer, tenant_a: Tenant,
                                            tenant_b: Tenant) -> None:
    with live_server.client(tenant_a.api_key) as c:
        job_id = upload(c, ("clients.csv", CSV)).json()["id"]
        run_jobs(platform)
        source_id = c.get("/api/v1/datamap/sources").json()["items"][0]["id"]
    with live_server.client(tenant_b.api_key) as c:
        assert c.get(f"/api/v1/scan-jobs/{job_id}").status_code == 404
        assert c.post(f"/api/v1/scan-jobs/{job_id}/cancel").status_code == 404
        assert c.get(f"/api/v1/datamap/sources/{source_id}").status_code == 404
        assert c.delete(f"/api/v1/datamap/sources/{source_id}").status_code == 404
        assert c.get("/api/v1/scan-jobs").json()["total"] == 0
        assert c.get("/api/v1/datamap/sources").json()["total"] == 0
        assert c.get("/api/v1/datamap/export").json()["sources"] == []
        assert c.get("/api/v1/datamap/summary").json()["sources"] == 0
    with live_server.client(tenant_a.api_key) as c:
        assert c.get(f"/api/v1/datamap/sources/{source_id}").status_code == 200


def test_uploads_over_the_limit_are_refused_and_leave_nothing(platform: Platform, tenant_a: Tenant) -> None:
    platform.settings = platform.settings.model_copy(update={"scan_upload_max_bytes": 4096})
    with LiveServer(platform) as server, server.client(tenant_a.api_key) as c:
        assert upload(c, ("small.csv", b"iin\n" * 100)).status_code == 201
        over_cap = upload(c, ("big.csv", b"x" * 5000))
        assert over_cap.status_code == 413 and over_cap.json()["error"]["field"] == "files"
        huge = upload(c, ("huge.csv", b"x" * (2 * 1024 * 1024)))
        assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"
        assert c.get("/api/v1/scan-jobs").json()["total"] == 1
        # Above the general request limit, but within the upload limit: the upload route takes it.
        platform.settings = platform.settings.model_copy(update={"scan_upload_max_bytes": 30 * 1024 * 1024})
    with LiveServer(platform) as server, server.client(tenant_a.api_key) as c:
        big = b"iin\n" + (IIN.encode() + b"\n") * 1_000_000  # 13 MB > max_request_bytes (10 MiB)
        assert upload(c, ("big.csv", big)).status_code == 201
        assert c.post("/api/v1/users", content=b"x" * (11 * 1024 * 1024),
                      headers={"content-type": "application/json"}).status_code == 413
    assert len(list(jobs.uploads_root(platform).iterdir())) == 2  # the two accepted uploads, nothing else


def test_the_server_runs_scan_jobs_in_its_own_worker_threads(platform: Platform, tenant_a: Tenant,
                                                             roots: Path) -> None:
    platform.settings = platform.settings.model_copy(update={"scan_workers": 1})
    (tenant_dir(roots, tenant_a) / "clients.csv").write_bytes(CSV)
    with LiveServer(platform) as server, server.client(tenant_a.api_key) as c:
        job_id = c.post("/api/v1/scan-jobs", json={"sources": [str(roots / tenant_a.bin)]}).json()["id"]
        deadline = time.monotonic() + 60
        while (status := c.get(f"/api/v1/scan-jobs/{job_id}").json()["status"]) in ("queued", "running"):
            assert time.monotonic() < deadline, "the server's worker did not run the job"
            time.sleep(0.1)
        assert status == "succeeded" and c.get("/api/v1/datamap/sources").json()["total"] == 1
