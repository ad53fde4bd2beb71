"""Exports (SPEC 2.17): ledger for a period, members, a coupon campaign's codes; one gzip
JSON Lines object written as a multipart upload whose parts bound the memory used; a
pre-signed URL that downloads it; closed members without personal data; resumable."""
import gzip
import json
import time

import pytest
import requests

NOW = "2026-03-10T10:00:00Z"
E = "/v1/admin/exports"


def start(api, body, now=NOW):
    return api.post(E, body, role="admin", sub="ops", now=now)


def finished(api, export_id, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        r = api.get(f"{E}/{export_id}", role="admin")
        assert r.status == 200, r.body
        if r.body["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return r.body
        time.sleep(0.05)


def download(url) -> list:
    r = requests.get(url, timeout=30)
    assert r.status_code == 200, r.text[:200]
    return [json.loads(line) for line in gzip.decompress(r.content).decode().splitlines()]


@pytest.fixture
def history(api):
    """Three members: m-a (Jan and Feb entries), m-b (March), m-c closed after an entry in Feb."""
    api.enrol("ex-a", name="Aiko", email="aiko@example.com")
    api.enrol("ex-b", name="Ben", email="ben@example.com")
    api.enrol("ex-c", name="Chie", email="chie@example.com", birthday="02-03")
    api.adjust("ex-a", 100, reason="january", now="2026-01-10T00:00:00Z")
    api.adjust("ex-a", 200, reason="february", now="2026-02-10T00:00:00Z")
    api.adjust("ex-b", 300, reason="march", now="2026-03-05T00:00:00Z")
    api.adjust("ex-c", 50, reason="note about Chie", now="2026-02-20T00:00:00Z")
    assert api.post("/v1/members/ex-c/close", role="admin").status == 200


class TestKinds:
    def test_the_ledger_of_a_period_downloads_from_the_pre_signed_url(self, api, history):
        r = start(api, {"export_id": "led-feb", "kind": "ledger", "from": "2026-02-01T00:00:00Z",
                        "to": "2026-03-01T00:00:00Z"})
        assert (r.status, r.body) == (202, {"export_id": "led-feb", "job_id": "export-led-feb"})
        body = finished(api, "led-feb")
        assert (body["status"], body["rows"], body["kind"]) == ("succeeded", 2, "ledger")
        assert "X-Amz-Signature" in body["url"] and "exports/ledger/led-feb.jsonl.gz" in body["url"]
        rows = sorted(download(body["url"]), key=lambda e: e["member_id"])
        assert [(e["member_id"], e["points"], e["occurred_at"]) for e in rows] == [
            ("ex-a", 200, "2026-02-10T00:00:00Z"), ("ex-c", 50, "2026-02-20T00:00:00Z")]
        assert rows[0]["note"] == "february" and "member_status" not in rows[0]
        # a closed member's entry keeps its amounts and loses the free text
        assert (rows[1]["note"], rows[1]["member_status"], rows[1]["type"]) == (None, "closed", "adjust")

    def test_the_whole_ledger_without_bounds(self, api, history):
        start(api, {"export_id": "led-all", "kind": "ledger"})
        body = finished(api, "led-all")
        rows = download(body["url"])
        assert body["rows"] == len(rows) == 4
        assert sum(e["points"] for e in rows) == 650

    def test_members_enrolled_in_a_period_and_closed_members_without_personal_data(self, api, history):
        api.enrol("ex-late", name="Late")  # enrolled at the wall clock's now, after the bound below
        start(api, {"export_id": "mem", "kind": "members", "to": "2030-01-01T00:00:00Z"})
        rows = {m["member_id"]: m for m in download(finished(api, "mem")["url"])}
        assert {"ex-a", "ex-b", "ex-c", "ex-late"} <= set(rows)
        a = rows["ex-a"]
        assert (a["name"], a["email"], a["points"]["available"], a["tier"]["tier_id"]) == (
            "Aiko", "aiko@example.com", 300, "bronze")
        c = rows["ex-c"]
        assert c["status"] == "closed"
        assert all(c[k] is None for k in ("name", "email", "birthday", "referral_code", "locale"))
        assert "Chie" not in json.dumps(c) and "chie@" not in json.dumps(c)
        enrolled = rows["ex-a"]["enrolled_at"]
        start(api, {"export_id": "mem-none", "kind": "members", "to": enrolled})  # to is exclusive
        body = finished(api, "mem-none")
        assert (body["status"], body["rows"]) == ("succeeded", 0)
        assert download(body["url"]) == []

    def test_a_coupon_campaigns_codes_for_printing(self, api):
        camp = {"campaign_id": "print-1", "name": "Print", "discount": {"type": "percent", "value": 10},
                "min_order_amount": 0, "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-12-31T23:59:59Z",
                "code_mode": "unique", "status": "active"}
        assert api.post("/v1/admin/coupon-campaigns", camp, role="admin").status == 201
        r = api.post("/v1/admin/coupon-campaigns/print-1/codes", {"count": 30}, role="admin")
        assert r.status in (201, 202), r.body
        other = {**camp, "campaign_id": "print-2"}
        assert api.post("/v1/admin/coupon-campaigns", other, role="admin").status == 201
        api.post("/v1/admin/coupon-campaigns/print-2/codes", {"count": 5}, role="admin")
        start(api, {"export_id": "codes-1", "kind": "coupon_codes", "campaign_id": "print-1"})
        body = finished(api, "codes-1")
        rows = download(body["url"])
        assert body["rows"] == len(rows) == 30
        assert len({r["code"] for r in rows}) == 30
        assert {(r["campaign_id"], r["status"]) for r in rows} == {("print-1", "unissued")}


class TestRequests:
    def test_a_replay_answers_200_and_another_body_is_409(self, api, history):
        body = {"export_id": "rp", "kind": "members"}
        assert start(api, body).status == 202
        again = start(api, body)
        assert (again.status, again.body) == (200, {"export_id": "rp", "job_id": "export-rp"})
        assert start(api, {**body, "kind": "ledger"}).error == "IDEMPOTENCY_MISMATCH"

    def test_bad_requests_are_400_and_an_unknown_campaign_404(self, api):
        for bad in ({"export_id": "x", "kind": "coupon_codes"},
                    {"export_id": "x", "kind": "ledger", "campaign_id": "c"},
                    {"export_id": "x", "kind": "coupon_codes", "campaign_id": "c", "from": "2026-01-01T00:00:00Z"},
                    {"export_id": "x", "kind": "ledger", "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
                    {"export_id": "x", "kind": "orders"},
                    {"export_id": "x/y", "kind": "ledger"},
                    {"export_id": "x", "kind": "ledger", "from": "yesterday"},
                    {"export_id": "x", "kind": "ledger", "extra": 1}):
            r = start(api, bad)
            assert (r.status, r.error) == (400, "VALIDATION_ERROR"), (bad, r.body)
        r = start(api, {"export_id": "x", "kind": "coupon_codes", "campaign_id": "nope"})
        assert (r.status, r.error) == (404, "COUPON_NOT_FOUND")
        assert api.get(f"{E}/x", role="admin").status == 404
        assert api.get(f"{E}/x", role="service").status == 403


class TestStreaming:
    def test_a_large_export_is_written_in_several_parts_with_a_bounded_buffer(self, api, monkeypatch):
        import moto.s3.models

        from chalicelib.services import exports
        from chalicelib.store.base import dynamodb_client
        from chalicelib.store.models import LedgerRecord

        monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1)
        part = 16 * 1024
        monkeypatch.setenv("LOYALTY_EXPORT_PART_BYTES", str(part))
        monkeypatch.setattr(exports, "PAGE", 100)
        api.enrol("big")
        # 3,000 ledger entries with incompressible notes (~190 KB compressed) written directly
        import secrets

        table = LedgerRecord.table_name()
        client = dynamodb_client()
        for i in range(0, 3000, 25):
            items = [LedgerRecord.to_item(member_id="big", seq=n, entry={
                "entry_id": f"le_big_{n}", "member_id": "big", "type": "adjust", "points": 1, "balance_after": n,
                "occurred_at": "2026-01-01T00:00:00Z", "recorded_at": "2026-01-01T00:00:00Z",
                "reference": {}, "actor": "admin:ops", "note": secrets.token_hex(32)}) for n in range(i + 1, i + 26)]
            client.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": it}} for it in items]})
        start(api, {"export_id": "big", "kind": "ledger"})
        body = finished(api, "big", timeout=120)
        assert (body["status"], body["rows"]) == ("succeeded", 3000), body
        job = api.get("/v1/admin/jobs/export-big", role="admin").body
        from chalicelib.store import data as data_store

        cp = data_store.load_progress("export-big", "export")
        assert job["counts"]["parts"] == len(cp["parts"]) >= 5
        # memory: never more than one part (plus one page of rows) in hand, whatever the size
        whole = requests.get(body["url"], timeout=30).content
        assert cp["peak_part_bytes"] < part + 40 * 1024 < len(whole) / 2
        rows = [json.loads(line) for line in gzip.decompress(whole).decode().splitlines()]
        assert sorted(r["balance_after"] for r in rows) == list(range(1, 3001))

    def test_a_paused_export_resumes_after_its_last_part(self, api, monkeypatch, history):
        import moto.s3.models

        from chalicelib.jobs import data as data_jobs
        from chalicelib.jobs import framework
        from chalicelib.services import exports

        monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1)
        monkeypatch.setenv("LOYALTY_EXPORT_PART_BYTES", "1")  # a part after every page
        monkeypatch.setattr(exports, "PAGE", 1)
        monkeypatch.setattr(data_jobs, "launch", lambda job_id, wait_seconds=20.0: None)
        start(api, {"export_id": "ps", "kind": "ledger"})
        with pytest.raises(framework.Paused):
            framework.execute("export-ps", deadline=time.monotonic() - 1)
        mid = finished(api, "ps", timeout=0)
        assert (mid["status"], mid["url"]) == ("running", None)
        framework.execute("export-ps")
        body = finished(api, "ps")
        assert (body["status"], body["rows"]) == ("succeeded", 4)
        rows = download(body["url"])
        assert sorted(e["points"] for e in rows) == [50, 100, 200, 300]
