"""Migration imports (SPEC 2.17): inline rows, JSON Lines and CSV objects in the exports
bucket, re-runs, members from elsewhere, bad rows with their row numbers, expiry from
earned_at, and a paused import that resumes where it stopped."""
import json
import time

import pytest

from tests.factories import assert_invariant

NOW = "2026-03-10T10:00:00Z"
I = "/v1/admin/imports"


def start(api, body, now=NOW):
    return api.post(I, body, role="admin", sub="ops", now=now)


def status(api, import_id):
    r = api.get(f"{I}/{import_id}", role="admin")
    assert r.status == 200, r.body
    return r.body


def finished(api, import_id, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        body = status(api, import_id)
        if body["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def put_object(key, text):
    from chalicelib.clients import s3_client
    from chalicelib.config import get_settings

    s3_client().put_object(Bucket=get_settings().exports_bucket, Key=key, Body=text.encode())


@pytest.fixture(autouse=True)
def _one_writer_on_in_process_moto(request, monkeypatch):
    """In-process moto is not safe under concurrent calls (a transaction deep-copies tables that
    another thread writes): there the import enrols one row at a time. The tests on the emulator
    in its own process (locked, one call at a time, as `make run`'s) keep the 8 writers."""
    if "child_emulator" not in request.fixturenames:
        from chalicelib.services import imports

        monkeypatch.setattr(imports, "WORKERS", 1)


GOLD = {"member_id": "imp-gold", "name": "Hanako", "email": "hanako@example.com", "birthday": "04-01",
        "locale": "ja-JP", "consents": {"email": True, "push": False, "sms": False}, "tier_id": "gold",
        "tier_retained_until": "2026-12-31T23:59:59Z", "lifetime_earned": 9000,
        "balances": [{"points": 1200, "earned_at": "2025-04-20"}, {"points": 300, "earned_at": "2026-02-02T09:00:00Z"}]}


class TestInline:
    def test_a_row_enrols_the_member_with_one_import_entry_per_lot_its_tier_and_lifetime(self, api):
        r = start(api, {"import_id": "imp-1", "rows": [GOLD, {"member_id": "imp-plain"}]})
        assert r.status == 202, r.body
        assert r.body == {"import_id": "imp-1", "job_id": "import-imp-1"}
        body = finished(api, "imp-1")
        assert body["status"] == "succeeded", body
        assert body["counts"] == {"rows": 2, "imported": 2, "skipped": 0, "failed": 0}
        assert body["errors"] == []
        m = api.member("imp-gold", now=NOW)
        assert (m["name"], m["email"], m["birthday"], m["consents"]["email"]) == ("Hanako", "hanako@example.com",
                                                                                  "04-01", True)
        assert (m["points"]["available"], m["points"]["lifetime_earned"]) == (1500, 9000)
        assert (m["tier"]["tier_id"], m["tier"]["retained_until"]) == ("gold", "2026-12-31T23:59:59Z")
        assert m["referral_code"] and m["status"] == "active"
        ledger = api.ledger("imp-gold")
        assert [(e["type"], e["points"], e["occurred_at"], e["reference"]) for e in reversed(ledger)] == [
            ("import", 1200, "2025-04-20T00:00:00Z", {"import_id": "imp-1"}),
            ("import", 300, "2026-02-02T09:00:00Z", {"import_id": "imp-1"})]
        assert [e["balance_after"] for e in reversed(ledger)] == [1200, 1500]
        assert_invariant("imp-gold")
        plain = api.member("imp-plain", now=NOW)
        assert (plain["points"]["available"], plain["tier"]["tier_id"], plain["points"]["lifetime_earned"]) == (
            0, "bronze", 0)
        assert api.get("/v1/admin/jobs/import-imp-1", role="admin").body["job"] == "import"

    def test_expiry_follows_each_lots_earning_month(self, api):
        start(api, {"import_id": "imp-exp", "rows": [GOLD]})
        assert finished(api, "imp-exp")["status"] == "succeeded"
        # the April 2025 lot expires at the end of April 2026 (12 months), the February 2026 one a year later
        soon = api.member("imp-gold", now="2026-04-10T00:00:00Z")["points"]["expiring_soon"]
        assert soon == [{"points": 1200, "expires_at": "2026-04-30T23:59:59Z"}]
        r = api.post("/v1/admin/jobs", {"job": "expire-points", "as_of": "2026-05-01T00:00:00Z"}, role="admin")
        assert r.status == 202 and r.body["status"] == "succeeded", r.body
        m = api.member("imp-gold", now="2026-05-01T00:00:00Z")
        assert m["points"]["available"] == 300
        assert api.ledger("imp-gold")[0]["type"] == "expire" and api.ledger("imp-gold")[0]["points"] == -1200
        assert_invariant("imp-gold")

    def test_each_enrolment_publishes_member_enrolled_and_points_imported(self, api):
        from chalicelib.domain.events import event_id

        sent = []
        from chalicelib import relay

        original = relay.deliver

        def spy(rows):
            sent.extend(r["event"] for r in rows if "event" in r)
            return original(rows)

        relay.deliver = spy
        try:
            start(api, {"import_id": "imp-ev", "rows": [GOLD]})
            assert finished(api, "imp-ev")["status"] == "succeeded"
        finally:
            relay.deliver = original
        mine = [e for e in sent if e["member_id"] == "imp-gold"]
        assert [(e["type"], e["sequence"]) for e in mine] == [
            ("member.enrolled", 0), ("points.imported", 1), ("points.imported", 2)]
        assert mine[1]["event_id"] == event_id("points.imported", "le_imp-gold_1")
        assert mine[1]["data"]["points"] == 1200 and mine[1]["data"]["entry_type"] == "import"

    def test_a_replay_answers_200_and_another_body_with_the_same_id_is_409(self, api):
        body = {"import_id": "imp-rp", "rows": [{"member_id": "imp-rp-1"}]}
        assert start(api, body).status == 202
        again = start(api, body)
        assert (again.status, again.body) == (200, {"import_id": "imp-rp", "job_id": "import-imp-rp"})
        other = start(api, {"import_id": "imp-rp", "rows": [{"member_id": "imp-rp-2"}]})
        assert (other.status, other.error) == (409, "IDEMPOTENCY_MISMATCH")
        assert finished(api, "imp-rp")["counts"]["imported"] == 1
        assert api.get("/v1/members/imp-rp-2").status == 404

    def test_a_member_from_elsewhere_is_skipped_with_already_exists_and_left_alone(self, api):
        api.enrol("imp-old", name="Kept")
        api.adjust("imp-old", 50, now=NOW)
        start(api, {"import_id": "imp-ae", "rows": [{"member_id": "imp-new"},
                                                     {"member_id": "imp-old", "name": "Overwritten",
                                                      "balances": [{"points": 999, "earned_at": "2026-01-01"}]}]})
        body = finished(api, "imp-ae")
        assert body["counts"] == {"rows": 2, "imported": 1, "skipped": 1, "failed": 0}
        assert body["errors"] == [{"row": 2, "code": "ALREADY_EXISTS", "message": "member imp-old exists already"}]
        old = api.member("imp-old", now=NOW)
        assert (old["name"], old["points"]["available"]) == ("Kept", 50)
        assert len(api.ledger("imp-old")) == 1

    def test_another_import_of_the_same_rows_skips_them_all(self, api):
        rows = [{"member_id": f"imp-tw-{i}", "balances": [{"points": 10, "earned_at": "2026-01-01"}]}
                for i in range(3)]
        start(api, {"import_id": "imp-tw-a", "rows": rows})
        assert finished(api, "imp-tw-a")["counts"]["imported"] == 3
        start(api, {"import_id": "imp-tw-b", "rows": rows})
        body = finished(api, "imp-tw-b")
        assert body["counts"] == {"rows": 3, "imported": 0, "skipped": 3, "failed": 0}
        assert {e["code"] for e in body["errors"]} == {"ALREADY_EXISTS"}
        for i in range(3):
            assert api.member(f"imp-tw-{i}", now=NOW)["points"]["available"] == 10
            assert len(api.ledger(f"imp-tw-{i}")) == 1

    def test_bad_rows_are_reported_with_their_row_number_and_code_and_the_rest_go_on(self, api):
        rows = [
            {"member_id": "imp-ok-1"},
            {"member_id": "bad id with spaces"},
            {"member_id": "imp-bad-pts", "balances": [{"points": "100", "earned_at": "2026-01-01"}]},
            {"member_id": "imp-bad-tier", "tier_id": "diamond"},
            {"member_id": "imp-bad-future", "balances": [{"points": 5, "earned_at": "2026-06-01"}]},
            {"member_id": "imp-bad-field", "nickname": "x"},
            {"member_id": "imp-bad-life", "lifetime_earned": 5, "balances": [{"points": 10, "earned_at": "2026-01-01"}]},
            {"member_id": "imp-ok-1"},
            {"member_id": "imp-ok-2"},
        ]
        start(api, {"import_id": "imp-bad", "rows": rows})
        body = finished(api, "imp-bad")
        assert body["counts"] == {"rows": 9, "imported": 2, "skipped": 1, "failed": 6}
        by_row = {e["row"]: e for e in body["errors"]}
        assert sorted(by_row) == [2, 3, 4, 5, 6, 7, 8]
        assert [by_row[n]["code"] for n in (2, 3, 4, 5, 6, 7)] == ["VALIDATION_ERROR", "VALIDATION_ERROR",
                                                                   "UNKNOWN_TIER", "VALIDATION_ERROR",
                                                                   "VALIDATION_ERROR", "VALIDATION_ERROR"]
        assert by_row[2]["message"].startswith("member_id")
        assert by_row[3]["message"].startswith("balances.0.points")
        assert "diamond" in by_row[4]["message"]
        assert "future" in by_row[5]["message"]
        assert by_row[6]["message"].startswith("nickname")
        assert "lifetime_earned" in by_row[7]["message"]
        assert by_row[8] == {"row": 8, "code": "ALREADY_EXISTS",
                             "message": "row 1 of this import enrolled imp-ok-1 already"}
        for missing in ("imp-bad-pts", "imp-bad-tier", "imp-bad-future", "imp-bad-field", "imp-bad-life"):
            assert api.get(f"/v1/members/{missing}").status == 404
        assert api.get("/v1/members/imp-ok-2").status == 200

    def test_the_request_itself_is_checked(self, api):
        assert start(api, {"import_id": "imp-x"}).error == "VALIDATION_ERROR"  # no source
        assert start(api, {"import_id": "imp-x", "rows": [{}], "s3_key": "a.csv"}).error == "VALIDATION_ERROR"
        assert start(api, {"import_id": "imp-x", "rows": []}).error == "VALIDATION_ERROR"
        many = [{"member_id": f"m{i}"} for i in range(1001)]
        r = start(api, {"import_id": "imp-x", "rows": many})
        assert r.status == 400 and r.error == "VALIDATION_ERROR"
        assert start(api, {"import_id": "imp/x", "rows": [{}]}).error == "VALIDATION_ERROR"
        r = start(api, {"import_id": "imp-x", "s3_key": "imports/missing.csv"})
        assert (r.status, r.error) == (404, "NOT_FOUND")
        assert api.get(f"{I}/imp-x", role="admin").status == 404
        assert api.post(I, {"import_id": "imp-x", "rows": [{}]}, role="service").status == 403


class TestFromS3:
    def test_json_lines_with_a_broken_line_and_a_blank_one(self, api):
        lines = [json.dumps({"member_id": "s3j-1", "balances": [{"points": 40, "earned_at": "2026-01-05"}]}),
                 "{not json",
                 "",
                 json.dumps(["a", "list"]),
                 json.dumps({"member_id": "s3j-2", "tier_id": "silver"})]
        put_object("imports/members.jsonl", "\n".join(lines) + "\n")
        r = start(api, {"import_id": "imp-s3j", "s3_key": "imports/members.jsonl"})
        assert r.status == 202, r.body
        body = finished(api, "imp-s3j")
        assert body["status"] == "succeeded", body
        assert body["counts"] == {"rows": 4, "imported": 2, "skipped": 0, "failed": 2}
        assert [(e["row"], e["code"]) for e in body["errors"]] == [(2, "INVALID_JSON"), (4, "INVALID_JSON")]
        assert api.member("s3j-1", now=NOW)["points"]["available"] == 40
        silver = api.member("s3j-2", now=NOW)["tier"]
        # a tier given without its retention is held as if reached now (tier_retention_months)
        assert silver["tier_id"] == "silver" and silver["retained_until"].startswith("2027-03-31")

    def test_csv_with_broken_rows(self, api):
        text = ("member_id,name,email,consents,tier_id,tier_retained_until,balances,lifetime_earned\r\n"
                "csv-1,\"Sato, Hanako\",hanako@example.com,email;sms,silver,2026-09-30T23:59:59Z,"
                "1200@2026-01-15;300@2026-03-02,2000\r\n"
                "csv-2,Taro,,,,,,\r\n"
                "csv-3,Too,Many,Fields,x,y,z,1,extra\r\n"
                "csv-4,Ken,,,,,12x@2026-01-01,\r\n"
                "csv-5,\"Multi\nLine\",,push,,,50@2026-02-01,\r\n"
                "csv-6,Yui,,fax,,,,\r\n")
        put_object("imports/members.csv", text)
        start(api, {"import_id": "imp-csv", "s3_key": "imports/members.csv"})
        body = finished(api, "imp-csv")
        assert body["status"] == "succeeded", body
        assert body["counts"] == {"rows": 6, "imported": 3, "skipped": 0, "failed": 3}
        assert [(e["row"], e["code"]) for e in body["errors"]] == [
            (3, "INVALID_CSV"), (4, "VALIDATION_ERROR"), (6, "VALIDATION_ERROR")]
        one = api.member("csv-1", now=NOW)
        assert one["name"] == "Sato, Hanako"
        assert one["consents"] == {"email": True, "push": False, "sms": True}
        assert (one["points"]["available"], one["points"]["lifetime_earned"]) == (1500, 2000)
        assert (one["tier"]["tier_id"], one["tier"]["retained_until"]) == ("silver", "2026-09-30T23:59:59Z")
        five = api.member("csv-5", now=NOW)
        assert five["name"] == "Multi\nLine" and five["consents"]["push"] is True
        assert five["points"]["available"] == 50
        assert api.member("csv-2", now=NOW)["email"] is None
        for m in ("csv-1", "csv-2", "csv-5"):
            assert_invariant(m)

    def test_a_csv_whose_header_names_unknown_columns_fails_the_import_with_the_reason(self, api):
        put_object("imports/wrong.csv", "id,full_name\n1,x\n")
        start(api, {"import_id": "imp-hdr", "s3_key": "imports/wrong.csv"})
        body = finished(api, "imp-hdr")
        assert body["status"] == "failed"
        assert "unknown: id, full_name" in body["error"]


class TestResume:
    def test_a_paused_import_resumes_where_it_stopped_and_imports_every_row_once(self, api, monkeypatch):
        from chalicelib.jobs import data as data_jobs
        from chalicelib.jobs import framework
        from chalicelib.services import imports

        monkeypatch.setattr(imports, "BATCH", 10)
        monkeypatch.setattr(data_jobs, "launch", lambda job_id, wait_seconds=20.0: None)  # run it by hand
        lines = "\n".join(json.dumps({"member_id": f"rs-{i:03d}", "balances": [{"points": i + 1,
                                                                               "earned_at": "2026-01-01"}]})
                          for i in range(35)) + "\n"
        put_object("imports/resume.jsonl", lines)
        assert start(api, {"import_id": "imp-rs", "s3_key": "imports/resume.jsonl"}).status == 202
        assert status(api, "imp-rs")["status"] == "queued"
        with pytest.raises(framework.Paused):
            framework.execute("import-imp-rs", deadline=time.monotonic() - 1)  # pauses after its first batch
        paused = status(api, "imp-rs")
        assert paused["status"] == "running" and paused["counts"]["imported"] == 10
        from chalicelib.store import data as data_store

        cp = data_store.load_progress("import-imp-rs", "import")
        assert (cp["row"], cp["offset"]) == (11, len("\n".join(lines.split("\n")[:10])) + 1)
        # a crash after enrolling rows 11-12 but before their checkpoint: the next run meets them again
        for i in (10, 11):
            assert imports.import_row("imp-rs", i + 1, {"member_id": f"rs-{i:03d}", "balances": [
                {"points": i + 1, "earned_at": "2026-01-01"}]}, "admin:ops")[0] == "imported"
        framework.execute("import-imp-rs")
        done = status(api, "imp-rs")
        assert done["status"] == "succeeded"
        assert done["counts"] == {"rows": 35, "imported": 35, "skipped": 0, "failed": 0}, done["errors"]
        for i in (0, 10, 11, 34):
            assert api.member(f"rs-{i:03d}", now=NOW)["points"]["available"] == i + 1
            assert len(api.ledger(f"rs-{i:03d}")) == 1
        assert_invariant("rs-011")

    def test_a_failed_import_asked_again_resumes(self, api, monkeypatch):
        from chalicelib.services import imports

        calls = {"n": 0}
        original = imports.import_row

        def flaky(import_id, row_no, raw, actor):
            calls["n"] += 1
            if row_no == 3 and calls["n"] < 10:
                from chalicelib.errors import RetryLater

                raise RetryLater("busy")
            return original(import_id, row_no, raw, actor)

        monkeypatch.setattr(imports, "BATCH", 2)
        monkeypatch.setattr(imports, "import_row", flaky)
        body = {"import_id": "imp-fl", "rows": [{"member_id": f"fl-{i}"} for i in range(4)]}
        start(api, body)
        first = finished(api, "imp-fl")
        assert first["status"] == "failed" and first["counts"]["imported"] == 2
        calls["n"] = 100
        assert start(api, body).status == 200
        again = finished(api, "imp-fl")
        assert again["status"] == "succeeded"
        assert again["counts"] == {"rows": 4, "imported": 4, "skipped": 0, "failed": 0}


class TestReaders:
    """The streaming readers: records with the byte offset after them, so a resume reads on
    from there; CSV records whose quoted fields hold newlines; cells as row fields."""

    def test_lines_carry_the_offset_after_them_across_chunk_boundaries(self):
        from chalicelib.services.import_sources import _lines

        data = b'{"a":1}\n\n{"b":22}\r\nlast'
        chunks = [data[i:i + 3] for i in range(0, len(data), 3)]
        out = list(_lines(iter(chunks), 100))
        assert out == [(b'{"a":1}', 108), (b"", 109), (b'{"b":22}\r', 119), (b"last", 123)]

    def test_a_csv_record_may_span_lines_inside_quotes(self):
        from chalicelib.services.import_sources import _csv_records

        data = b'member_id,name\r\na,"x\r\ny"\r\nb,z\r\n'
        records = list(_csv_records(iter([data]), 0))
        assert [r for r, _ in records] == ["member_id,name", 'a,"x\ny"', "b,z"]
        assert records[-1][1] == len(data)

    def test_cells_become_row_fields(self):
        from chalicelib.services.import_sources import csv_row

        assert csv_row({"member_id": "m", "name": "", "consents": "email; SMS", "lifetime_earned": "30",
                        "balances": "10@2026-01-01; 20@2026-02-01T10:00:00Z"}) == {
            "member_id": "m", "consents": {"email": True, "push": False, "sms": True}, "lifetime_earned": 30,
            "balances": [{"points": 10, "earned_at": "2026-01-01"}, {"points": 20, "earned_at": "2026-02-01T10:00:00Z"}]}
        for bad in ({"lifetime_earned": "-3"}, {"balances": "10"}, {"balances": "x@2026-01-01"}, {"consents": "fax"}):
            with pytest.raises(ValueError):
                csv_row(bad)

    def test_the_header_names_known_columns_once_and_member_id(self):
        from chalicelib.services.import_sources import BadHeader, parse_header

        assert parse_header("\ufeffMember_ID, name") == ["member_id", "name"]
        for bad in ("name,email", "member_id,member_id", "member_id,points"):
            with pytest.raises(BadHeader):
                parse_header(bad)


@pytest.fixture
def child_emulator(aws_env, monkeypatch):
    """The emulator in its own process: what an import holds in memory is then the import's own
    (moto keeps objects in its process, and an in-process ranged GET copies the rest of the object)."""
    import socket
    import subprocess
    import sys

    from chalicelib.local import wait_for_port
    from tests.factories import reset_caches

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "chalicelib.emulator", "--port", str(port)])
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        reset_caches()
        from chalicelib.bootstrap import bootstrap

        bootstrap()
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        reset_caches()


class TestMemory:
    def test_reading_a_large_object_holds_one_chunk_whatever_its_size(self, child_emulator, monkeypatch):
        import tracemalloc

        from chalicelib.services import import_sources

        monkeypatch.setattr(import_sources, "CHUNK_BYTES", 256 * 1024)
        line = json.dumps({"member_id": "m-{:06d}", "name": "x" * 100,
                           "balances": [{"points": 10, "earned_at": "2026-01-01"}]})
        text = "".join(line.replace("{:06d}", f"{n:06d}") + "\n" for n in range(60_000))
        put_object("imports/large.jsonl", text)
        size = len(text)
        del text
        assert size > 9_000_000
        tracemalloc.start()
        try:
            rows = sum(1 for _ in import_sources.source({"s3_key": "imports/large.jsonl"}, import_sources.Position(),
                                                        {}))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert rows == 60_000
        assert peak < 2_500_000 < size / 3  # about one chunk (and the stream's buffers), not the object

    def test_eight_writers_enrol_every_row_once_and_the_first_row_of_a_member_named_twice_wins(
            self, child_emulator, monkeypatch):
        from chalice.test import Client

        from app import app
        from chalicelib.services import imports
        from tests.factories import ApiClient

        assert imports.WORKERS == 8
        monkeypatch.setattr(imports, "BATCH", 40)
        rows = [{"member_id": f"cc-{i:03d}", "balances": [{"points": i + 1, "earned_at": "2026-01-01"}]}
                for i in range(100)]
        rows[50] = {"member_id": "cc-010", "name": "second"}  # the same member again, in another batch
        rows[15] = {"member_id": "cc-012", "name": "second"}  # and in the same batch as its first row
        with Client(app) as c:
            api = ApiClient(c)
            start(api, {"import_id": "imp-cc", "rows": rows})
            body = finished(api, "imp-cc", timeout=120)
            assert body["counts"] == {"rows": 100, "imported": 98, "skipped": 2, "failed": 0}, body
            assert [(e["row"], e["code"]) for e in body["errors"]] == [(16, "ALREADY_EXISTS"), (51, "ALREADY_EXISTS")]
            for member_id, points in (("cc-010", 11), ("cc-012", 13), ("cc-099", 100)):
                m = api.member(member_id, now=NOW)
                assert (m["name"], m["points"]["available"]) == (None, points)
                assert_invariant(member_id)

    def test_the_import_job_needs_the_same_memory_for_4x_the_rows(self, child_emulator, monkeypatch):
        import tracemalloc

        from chalice.test import Client

        from app import app
        from chalicelib.jobs import data as data_jobs
        from chalicelib.jobs import framework
        from chalicelib.services import import_sources, imports
        from tests.factories import ApiClient, reset_caches

        monkeypatch.setattr(imports, "BATCH", 100)
        monkeypatch.setattr(import_sources, "CHUNK_BYTES", 16 * 1024)  # the objects span several chunks
        monkeypatch.setattr(data_jobs, "launch", lambda job_id, wait_seconds=20.0: None)  # run below, measured
        monkeypatch.setenv("LOYALTY_RELAY", "stream")  # the events stay in the outbox: the job's own work only
        reset_caches()
        peaks = {}
        with Client(app) as c:
            api = ApiClient(c)
            # The warm-up is as large as the largest run: besides imports, models and connections,
            # bounded caches fill with use (pydantic-core keeps up to 16,384 recent strings; the
            # clock's formatting cache). What is left differs by what the 8 writer threads have
            # in flight when the peak is taken (0.94 and 1.19 MB seen in one run on a busy
            # machine), so the bound is 1.5x: a job holding its rows would grow with them, about 4x here.
            for name, n in (("warm", 2400), ("small", 600), ("large", 2400)):
                put_object(f"imports/m-{name}.jsonl", "".join(json.dumps({
                    "member_id": f"mem-{name}-{i:05d}", "email": f"m{i}@example.com",
                    "balances": [{"points": 5, "earned_at": "2026-01-01"}]}) + "\n" for i in range(n)))
                assert start(api, {"import_id": f"mem-{name}", "s3_key": f"imports/m-{name}.jsonl"}).status == 202
                tracemalloc.start()
                try:
                    framework.execute(f"import-mem-{name}")
                    _, peaks[name] = tracemalloc.get_traced_memory()
                finally:
                    tracemalloc.stop()
                body = status(api, f"mem-{name}")
                assert body["counts"] == {"rows": n, "imported": n, "skipped": 0, "failed": 0}, body
        assert peaks["large"] < 1.5 * peaks["small"], peaks


def test_the_readme_migration_uploads_the_example_csv_and_imports_it(api, monkeypatch, capsys):
    """README: `cli upload docs/examples/members.csv`, POST the import, read its status."""
    from pathlib import Path

    from chalicelib import cli

    monkeypatch.setenv("LOYALTY_EMULATOR", "0")  # the test's own (in-process) AWS, not make run's
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "members.csv"
    assert cli.main(["upload", str(example)]) == 0
    assert json.loads(capsys.readouterr().out)["s3_key"] == "imports/members.csv"
    assert start(api, {"import_id": "migration-1", "s3_key": "imports/members.csv"}).status == 202
    body = finished(api, "migration-1")
    assert body["counts"] == {"rows": 4, "imported": 3, "skipped": 0, "failed": 1}
    assert [(e["row"], e["code"]) for e in body["errors"]] == [(3, "VALIDATION_ERROR")]
    gold = api.member("old-1001", now=NOW)
    assert (gold["tier"]["tier_id"], gold["points"]["available"], gold["points"]["lifetime_earned"]) == (
        "gold", 1500, 48000)
    assert cli.main(["upload", "no/such/file.csv"]) == 1
