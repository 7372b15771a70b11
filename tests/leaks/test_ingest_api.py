"""The ingest over real HTTP: raw and multipart uploads, review, confirm, discard, list; other organizations get
404; the upload route takes bodies larger than the general limit, up to its own."""

from __future__ import annotations

import json

import pytest
from conftest import LiveServer, Tenant
from qorgau.core.platform import Platform
from qorgau.leaks.register import leak_index_for, leak_keys_for

from .ingest_helpers import invalid_iin, make_incident, valid_iins


def test_upload_review_confirm_over_http(platform: Platform, live_server: LiveServer, tenant_a: Tenant,
                                         tenant_b: Tenant) -> None:
    incident = make_incident(platform, tenant_a.org_id)
    iins = valid_iins(30, start=40000)
    body = "ИИН;Телефон\n" + "".join(f"{iin};8 701 {2000000 + i}\n" for i, iin in enumerate(iins))
    body += f"{invalid_iin(iins[0])};\n"
    with live_server.client(tenant_a.api_key) as c:
        r = c.post(f"/api/v1/leaks/incidents/{incident}/uploads", params={"filename": "leak.csv"},
                   content=body.encode("cp1251"), headers={"content-type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        review = r.json()
        assert review["counts"] == {"iin": 30, "phone": 30, "email": 0} and review["status"] == "parsed"
        assert review["rejected"] == [{"line": 32, "reason": "iin_invalid", "column": 1}]
        assert iins[0] not in r.text and review["expires_in_seconds"] > 3600
        upload_id = review["public_id"]
        # multipart, as a browser sends it
        r2 = c.post(f"/api/v1/leaks/incidents/{incident}/uploads",
                    files={"file": ("more.jsonl", json.dumps({"email": "Someone@Example.KZ"}).encode())},
                    data={"format": "jsonl"})
        assert r2.status_code == 201, r2.text
        assert r2.json()["counts"]["email"] == 1 and r2.json()["format"] == "jsonl"
        listed = c.get(f"/api/v1/leaks/incidents/{incident}/uploads").json()
        assert {u["public_id"] for u in listed} == {upload_id, r2.json()["public_id"]}
        with live_server.client(tenant_b.api_key) as intruder:
            assert intruder.get(f"/api/v1/leaks/uploads/{upload_id}").status_code == 404
            assert intruder.post(f"/api/v1/leaks/uploads/{upload_id}/confirm").status_code == 404
            assert intruder.post(f"/api/v1/leaks/uploads/{upload_id}/discard").status_code == 404
            assert intruder.get(f"/api/v1/leaks/incidents/{incident}/uploads").status_code == 404
            r = intruder.post(f"/api/v1/leaks/incidents/{incident}/uploads", params={"filename": "x.txt"},
                              content=iins[1].encode())
            assert r.status_code == 404
        r = c.post(f"/api/v1/leaks/uploads/{upload_id}/confirm")
        assert r.status_code == 200 and r.json()["status"] == "confirmed" and r.json()["tokens_committed"] == 60
        assert c.post(f"/api/v1/leaks/uploads/{upload_id}/confirm").json()["tokens_committed"] == 60
        r = c.post(f"/api/v1/leaks/uploads/{upload_id}/discard")
        assert r.status_code == 409 and r.json()["error"]["field"] == "upload"
        d = c.post(f"/api/v1/leaks/uploads/{r2.json()['public_id']}/discard")
        assert d.status_code == 200 and d.json()["status"] == "discarded"
        assert c.post(f"/api/v1/leaks/incidents/{incident}/uploads", content=b"x").status_code == 422
        for content_type in ("multipart/form-data", "multipart/form-data; boundary=zz"):
            r = c.post(f"/api/v1/leaks/incidents/{incident}/uploads", content=b"--zz\r\ngarbage",
                       headers={"content-type": content_type})
            assert r.status_code == 422 and r.json()["error"]["field"] in ("body", "file")
    index = leak_index_for(platform)
    index.refresh()
    assert index.lookup(leak_keys_for(platform).token("iin", iins[5])) == (incident,)


def test_the_upload_route_has_its_own_body_limit(platform: Platform, tenant_a: Tenant,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    incident = make_incident(platform, tenant_a.org_id)
    general = platform.settings.max_request_bytes
    monkeypatch.setattr(platform.settings, "leaks_upload_max_bytes", general * 2)
    line = (valid_iins(1, start=50000)[0] + "\n").encode()
    padding = b"x" * 4095 + b"\n"  # cheap to parse: no identifier candidates
    big = line + padding * (general // len(padding) + 10)  # over the general limit, under the upload limit
    with LiveServer(platform) as server, server.client(tenant_a.api_key) as c:
        r = c.post(f"/api/v1/leaks/incidents/{incident}/uploads", params={"filename": "big.txt"}, content=big)
        assert r.status_code == 201, r.text[:300]
        assert r.json()["counts"]["iin"] == 1
        too_big = padding * ((general * 3 + (1 << 21)) // len(padding))
        r = c.post(f"/api/v1/leaks/incidents/{incident}/uploads", params={"filename": "huge.txt"}, content=too_big)
        assert r.status_code == 413
