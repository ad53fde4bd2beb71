"""Webhooks (SPEC 2.16): admin CRUD, signed deliveries to a real local receiver, retries with
backoff, `failed` after the last attempt, redelivery, slow and dead endpoints, idempotent
enqueue, URL rules (no SSRF)."""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.services import webhooks

W = "/v1/admin/webhooks"


class Receiver:
    """An HTTP endpoint on 127.0.0.1 in a thread: records every request and answers with the
    next of `statuses` (the last one repeats), after `delay` seconds."""

    def __init__(self, statuses=(200,), delay: float = 0.0):
        self.statuses = list(statuses)
        self.delay = delay
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"headers": dict(self.headers), "body": body, "at": time.monotonic()})
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    made = []

    def make(*args, **kwargs):
        made.append(Receiver(*args, **kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


def refused_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connection refused
    return f"http://127.0.0.1:{port}/hook"


def envelope(n: int = 1, type_: str = "points.earned", member_id: str = "m-1") -> dict:
    return {"event_id": f"ev-{n}", "type": type_, "occurred_at": "2026-03-10T10:00:00Z", "member_id": member_id,
            "sequence": 100 * n, "data": {"points": 10 * n, "balance": {"available": 10 * n, "pending": 0, "held": 0},
                                          "entry_id": f"e-{n}", "reference": f"o-{n}"}}


def create(api, url, events=("*",), **fields):
    r = api.post(W, {"url": url, "events": list(events), **fields}, role="admin")
    assert r.status == 201, r.body
    return r.body


def deliveries(api, webhook_id, query=""):
    r = api.get(f"{W}/{webhook_id}/deliveries{query}", role="admin")
    assert r.status == 200, r.body
    return r.body["items"]


def wall() -> datetime:
    return datetime.now(timezone.utc)


def verify(secret: str, headers: dict, body: bytes, tolerance: int = 300) -> bool:
    """What a receiver does (docs/WEBHOOKS.md): recompute the signature, compare in constant
    time, refuse a timestamp older than five minutes."""
    timestamp = headers["Loyalty-Timestamp"]
    expected = "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, headers["Loyalty-Signature"]):
        return False
    return abs(time.time() - int(timestamp)) <= tolerance


class TestAdmin:
    def test_create_shows_the_secret_once_then_get_list_patch_delete(self, api):
        made = create(api, "http://127.0.0.1:9/a", events=["points.earned", "tier.changed"], webhook_id="wh-1")
        assert made["webhook_id"] == "wh-1" and made["active"] is True and made["secret"].startswith("whsec_")
        assert made["events"] == ["points.earned", "tier.changed"]
        one = api.get(f"{W}/wh-1", role="admin")
        assert one.status == 200 and "secret" not in one.body and one.body["url"] == "http://127.0.0.1:9/a"
        generated = create(api, "http://127.0.0.1:9/b")
        assert generated["webhook_id"].startswith("wh_")
        listed = api.get(W, role="admin").body
        assert {w["webhook_id"] for w in listed["items"]} == {"wh-1", generated["webhook_id"]}
        assert all("secret" not in w for w in listed["items"]) and listed["next_cursor"] is None
        patched = api.patch(f"{W}/wh-1", {"active": False, "events": ["*"]}, role="admin")
        assert patched.status == 200 and patched.body["active"] is False and patched.body["events"] == ["*"]
        assert patched.body["url"] == "http://127.0.0.1:9/a"
        assert api.delete(f"{W}/wh-1", role="admin").status == 204
        assert api.get(f"{W}/wh-1", role="admin").error == "WEBHOOK_NOT_FOUND"

    def test_unknown_webhooks_are_404(self, api):
        assert api.get(f"{W}/nope", role="admin").status == 404
        assert api.get(f"{W}/nope", role="admin").error == "WEBHOOK_NOT_FOUND"
        assert api.patch(f"{W}/nope", {"active": True}, role="admin").error == "WEBHOOK_NOT_FOUND"
        assert api.delete(f"{W}/nope", role="admin").error == "WEBHOOK_NOT_FOUND"
        assert api.get(f"{W}/nope/deliveries", role="admin").error == "WEBHOOK_NOT_FOUND"
        assert api.post(f"{W}/nope/deliveries/ev-1/redeliver", role="admin").error == "WEBHOOK_NOT_FOUND"
        create(api, "http://127.0.0.1:9/a", webhook_id="wh-2")
        r = api.post(f"{W}/wh-2/deliveries/ev-404/redeliver", role="admin")
        assert (r.status, r.error) == (404, "NOT_FOUND")

    def test_bodies_are_validated(self, api):
        create(api, "http://127.0.0.1:9/a", webhook_id="wh-3")
        again = api.post(W, {"webhook_id": "wh-3", "url": "http://127.0.0.1:9/a", "events": ["*"]}, role="admin")
        assert again.error == "ALREADY_EXISTS"
        for body in ({"url": "http://127.0.0.1:9/a", "events": ["points.nope"]},
                     {"url": "http://127.0.0.1:9/a", "events": []},
                     {"url": "http://127.0.0.1:9/a", "events": ["*", "points.earned"]},
                     {"url": "ftp://127.0.0.1/a", "events": ["*"]},
                     {"url": "http://127.0.0.1:9/a", "events": ["*"], "secret": "mine"}):
            assert api.post(W, body, role="admin").error == "VALIDATION_ERROR", body
        r = api.get(f"{W}/wh-3/deliveries?status=lost", role="admin")
        assert r.error == "VALIDATION_ERROR"
        assert api.post(W, {"url": "http://127.0.0.1:9/a", "events": ["*"]}, role="service").status == 403

    def test_every_admin_change_is_audited_without_the_secret(self, api):
        made = create(api, "http://127.0.0.1:9/a", webhook_id="wh-4")
        api.patch(f"{W}/wh-4", {"active": False}, role="admin")
        webhooks.enqueue([envelope(1)])  # inactive: nothing
        api.patch(f"{W}/wh-4", {"active": True}, role="admin")
        webhooks.enqueue([envelope(1)])
        assert api.post(f"{W}/wh-4/deliveries/ev-1/redeliver", role="admin").status == 202
        assert api.delete(f"{W}/wh-4", role="admin").status == 204
        entries = api.get("/v1/admin/audit?limit=100", role="admin").body["items"]
        mine = [(e["action"], e["target"]) for e in entries if e["action"].startswith("webhook.")]
        assert sorted(mine) == sorted([("webhook.create", "wh-4"), ("webhook.update", "wh-4"),
                                       ("webhook.update", "wh-4"), ("webhook.redeliver", "wh-4"),
                                       ("webhook.delete", "wh-4")])
        assert made["secret"] not in json.dumps(entries)


class TestUrls:
    def test_outside_local_only_public_https(self, monkeypatch):
        public = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))]
        private = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 443))]
        real = socket.getaddrinfo

        def fake(host, *args, **kwargs):
            return {"hooks.example.com": public, "inside.example.com": private}.get(host) or real(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", fake)
        assert webhooks.resolve("https://hooks.example.com/x", local=False) == ("https", 443, "93.184.216.34")
        for url in ("http://hooks.example.com/x", "https://inside.example.com/x", "https://127.0.0.1/x",
                    "https://10.0.0.1/x", "https://192.168.1.1/x", "https://169.254.169.254/latest",
                    "https://[::1]/x", "https://[fe80::1]/x", "https://[::ffff:127.0.0.1]/x", "https://0.0.0.0/x",
                    "https://user:pw@hooks.example.com/x", "https:///x"):
            with pytest.raises(Exception) as err:
                webhooks.resolve(url, local=False)
            assert getattr(err.value, "code", None) == "VALIDATION_ERROR", url
        assert webhooks.resolve("http://127.0.0.1:8080/x", local=True) == ("http", 8080, "127.0.0.1")

    def test_creation_outside_local_refuses_a_loopback_url(self, api, monkeypatch):
        monkeypatch.setattr(webhooks, "_is_local", lambda: False)
        r = api.post(W, {"url": "https://127.0.0.1/hook", "events": ["*"]}, role="admin")
        assert r.error == "VALIDATION_ERROR" and r.body["error"]["details"]["fields"][0]["field"] == "url"
        assert api.post(W, {"url": "http://127.0.0.1/hook", "events": ["*"]}, role="admin").error == "VALIDATION_ERROR"

    def test_each_delivery_checks_the_url_again(self, api, receivers, monkeypatch):
        rx = receivers()
        made = create(api, rx.url)
        webhooks.enqueue([envelope(1)])
        monkeypatch.setattr(webhooks, "_is_local", lambda: False)  # as if the stage (or DNS) changed
        counts = webhooks.deliver_due()
        assert counts["retried"] == 1 and rx.requests == []
        [d] = deliveries(api, made["webhook_id"])
        assert (d["status"], d["attempts"], d["last_status_code"]) == ("pending", 1, None)


class TestDelivery:
    def test_the_receiver_verifies_the_signature_and_the_body_is_the_envelope(self, api, receivers):
        rx = receivers()
        made = create(api, rx.url)
        event = envelope(1)
        webhooks.enqueue([event])
        counts = webhooks.deliver_due()
        assert counts["delivered"] == 1
        [req] = rx.requests
        assert verify(made["secret"], req["headers"], req["body"])
        assert not verify("whsec_other", req["headers"], req["body"])
        assert not verify(made["secret"], req["headers"], req["body"] + b" ")
        assert json.loads(req["body"]) == event
        assert req["headers"]["Loyalty-Event-Id"] == "ev-1"
        assert abs(int(req["headers"]["Loyalty-Timestamp"]) - time.time()) < 60
        assert req["headers"]["Content-Type"] == "application/json"
        [d] = deliveries(api, made["webhook_id"])
        assert {k: d[k] for k in ("event_id", "type", "status", "attempts", "last_status_code")} == {
            "event_id": "ev-1", "type": "points.earned", "status": "delivered", "attempts": 1,
            "last_status_code": 200}
        assert d["last_attempt_at"].endswith("Z")

    def test_a_replayed_request_older_than_five_minutes_is_refused_by_the_receiver(self, api, receivers):
        rx = receivers()
        made = create(api, rx.url)
        webhooks.enqueue([envelope(1)])
        webhooks.deliver_due(now=wall() - timedelta(minutes=6) + timedelta(seconds=0))
        assert rx.requests == []  # not due yet at that time
        webhooks.deliver_due()
        [req] = rx.requests
        old = dict(req["headers"], **{"Loyalty-Timestamp": str(int(time.time()) - 301)})
        old["Loyalty-Signature"] = "v1=" + hmac.new(made["secret"].encode(), f"{old['Loyalty-Timestamp']}.".encode()
                                                    + req["body"], hashlib.sha256).hexdigest()
        assert not verify(made["secret"], old, req["body"])  # signed right, but too old

    def test_enqueue_is_idempotent_and_filters_by_type_and_active(self, api, receivers):
        every, earned, paused = receivers(), receivers(), receivers()
        all_ = create(api, every.url)
        only = create(api, earned.url, events=["points.earned"])
        create(api, paused.url, active=False)
        batch = [envelope(1), envelope(2, "tier.changed")]
        webhooks.enqueue(batch)
        webhooks.enqueue(batch)  # the relay again after a crash
        webhooks.enqueue([envelope(1)])
        assert len(deliveries(api, all_["webhook_id"])) == 2
        assert [d["event_id"] for d in deliveries(api, only["webhook_id"])] == ["ev-1"]
        assert webhooks.deliver_due()["delivered"] == 3
        assert webhooks.deliver_due()["due"] == 0
        assert sorted(r["headers"]["Loyalty-Event-Id"] for r in every.requests) == ["ev-1", "ev-2"]
        assert [r["headers"]["Loyalty-Event-Id"] for r in earned.requests] == ["ev-1"]
        assert paused.requests == []

    def test_retries_back_off_then_fail_after_the_last_attempt_and_redeliver_sends_again(self, api, receivers):
        rx = receivers(statuses=[500])
        made = create(api, rx.url)
        hook = made["webhook_id"]
        webhooks.enqueue([envelope(1)])
        now = wall()
        times = []
        for attempt in range(1, webhooks.MAX_ATTEMPTS + 1):
            counts = webhooks.deliver_due(now=now)
            assert counts["sent"] == 1, (attempt, counts)
            times.append(now)
            [d] = deliveries(api, hook)
            assert d["attempts"] == attempt and d["last_status_code"] == 500
            if attempt < webhooks.MAX_ATTEMPTS:
                assert d["status"] == "pending"
                due = datetime.fromisoformat(d["next_attempt_at"].replace("Z", "+00:00"))
                delay = (due - now).total_seconds()
                expected = min(30 * 4 ** (attempt - 1), webhooks.MAX_DELAY_SECONDS)
                assert 0.9 * expected - 1 <= delay <= 1.1 * expected, (attempt, delay)  # whole seconds shown
                assert webhooks.deliver_due(now=due - timedelta(seconds=1))["due"] == 0  # not before its time
                now = due + timedelta(seconds=1)  # the answer shows whole seconds
        assert d["status"] == "failed" and d["next_attempt_at"] is None
        assert len(rx.requests) == webhooks.MAX_ATTEMPTS
        assert (times[-1] - times[0]) >= timedelta(hours=24)  # the default schedule spans more than a day
        assert [x["event_id"] for x in deliveries(api, hook, "?status=failed")] == ["ev-1"]  # the dead letters
        assert deliveries(api, hook, "?status=pending") == []
        assert webhooks.deliver_due(now=now + timedelta(days=30))["due"] == 0

        rx.statuses = [204]
        r = api.post(f"{W}/{hook}/deliveries/ev-1/redeliver", role="admin")
        assert r.status == 202 and r.body == {"webhook_id": hook, "event_id": "ev-1", "status": "pending"}
        [d] = deliveries(api, hook, "?status=pending")
        assert d["attempts"] == 0
        assert webhooks.deliver_due()["delivered"] == 1
        [d] = deliveries(api, hook)
        assert (d["status"], d["attempts"], d["last_status_code"]) == ("delivered", 1, 204)
        assert deliveries(api, hook, "?status=failed") == []

    def test_a_small_retry_base_is_a_program_setting(self, api, receivers):
        assert api.settings(webhook_retry_base_seconds=1)["webhook_retry_base_seconds"] == 1
        current = api.get("/v1/admin/settings", role="admin").body
        refused = api.put("/v1/admin/settings", {**current, "webhook_retry_base_seconds": 0}, role="admin")
        assert refused.error == "VALIDATION_ERROR"
        rx = receivers(statuses=[503, 503, 200])
        made = create(api, rx.url)
        webhooks.enqueue([envelope(1)])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and deliveries(api, made["webhook_id"])[0]["status"] == "pending":
            webhooks.deliver_due()
            time.sleep(0.2)
        [d] = deliveries(api, made["webhook_id"])
        assert (d["status"], d["attempts"], d["last_status_code"]) == ("delivered", 3, 200)
        gaps = [b["at"] - a["at"] for a, b in zip(rx.requests, rx.requests[1:])]
        assert 0.8 <= gaps[0] and 3.4 <= gaps[1]  # ~1 s then ~4 s

    def test_a_slow_or_dead_endpoint_does_not_delay_a_healthy_one(self, api, receivers, monkeypatch):
        monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 2.0)
        healthy, slow = receivers(), receivers(delay=5.0)
        good = create(api, healthy.url)
        sleepy = create(api, slow.url)
        dead = create(api, refused_url())
        webhooks.enqueue([envelope(n) for n in range(1, 5)])
        result = {}
        started = time.monotonic()
        sender = threading.Thread(target=lambda: result.update(webhooks.deliver_due()))
        sender.start()
        while len(healthy.requests) < 4 and time.monotonic() - started < 10:
            time.sleep(0.01)
        healthy_done = time.monotonic() - started
        still_waiting_on_the_slow_one = sender.is_alive()
        sender.join(15)
        took = time.monotonic() - started
        assert len(healthy.requests) == 4 and result["delivered"] == 4
        assert healthy_done < webhooks.TIMEOUT_SECONDS and still_waiting_on_the_slow_one
        assert took < 2 * webhooks.TIMEOUT_SECONDS + 1.5  # its 4 events 2 at a time, not 4 x 5 s in a row
        assert all(d["status"] == "delivered" for d in deliveries(api, good["webhook_id"]))
        # a webhook holds at most PER_WEBHOOK_IN_FLIGHT workers: its other events wait their turn
        arrivals = sorted(r["at"] for r in slow.requests)
        assert len(arrivals) == 4 and arrivals[2] - arrivals[0] >= webhooks.TIMEOUT_SECONDS * 0.9
        for row in deliveries(api, sleepy["webhook_id"]) + deliveries(api, dead["webhook_id"]):
            assert (row["status"], row["attempts"], row["last_status_code"]) == ("pending", 1, None), row

    def test_a_url_the_client_cannot_send_to_is_a_counted_failed_attempt(self, api, receivers):
        rx = receivers()
        made = create(api, rx.url + "/caf\u00e9 au lait")  # not sendable as an HTTP request line
        webhooks.enqueue([envelope(1)])
        assert webhooks.deliver_due()["retried"] == 1 and rx.requests == []
        [d] = deliveries(api, made["webhook_id"])
        assert (d["status"], d["attempts"], d["last_status_code"]) == ("pending", 1, None)  # not retried forever

    def test_a_deleted_webhooks_pending_deliveries_fail(self, api, receivers):
        rx = receivers()
        made = create(api, rx.url)
        webhooks.enqueue([envelope(1)])
        assert api.delete(f"{W}/{made['webhook_id']}", role="admin").status == 204
        assert webhooks.deliver_due()["failed"] == 1 and rx.requests == []

    def test_deliveries_list_pages_newest_first(self, api):
        made = create(api, "http://127.0.0.1:9/a")
        for n in range(1, 4):
            webhooks.enqueue([envelope(n)])
            time.sleep(0.002)
        first = api.get(f"{W}/{made['webhook_id']}/deliveries?limit=2", role="admin").body
        assert [d["event_id"] for d in first["items"]] == ["ev-3", "ev-2"] and first["next_cursor"]
        second = api.get(f"{W}/{made['webhook_id']}/deliveries?limit=2&cursor={first['next_cursor']}",
                         role="admin").body
        assert [d["event_id"] for d in second["items"]] == ["ev-1"] and second["next_cursor"] is None

    def test_the_background_loop_delivers_within_seconds(self, api, receivers):
        rx = receivers()
        create(api, rx.url)
        webhooks.start_background()
        try:
            started = time.monotonic()
            webhooks.enqueue([envelope(1)])
            while not rx.requests and time.monotonic() - started < 5:
                time.sleep(0.05)
            assert rx.requests and rx.requests[0]["at"] - started < 5
        finally:
            webhooks.stop_background()


class TestQueueDelivery:
    """Production's path (LOYALTY_WEBHOOK_DELIVERY=queue, the default outside `local`): one SQS
    message per delivery, the `webhook-delivery` function's partial batch failures, retries
    by visibility delay."""

    @pytest.fixture(autouse=True)
    def queue_mode(self, api, monkeypatch):
        from tests.factories import reset_caches

        monkeypatch.setenv("LOYALTY_WEBHOOK_DELIVERY", "queue")
        reset_caches()
        yield
        reset_caches()

    @staticmethod
    def receive(visibility: int = 0) -> list[dict]:
        """The queued messages, as Lambda's SQS event hands them over."""
        from chalicelib import messaging

        got = messaging.sqs_client().receive_message(
            QueueUrl=messaging.queue_url(webhooks.QUEUE), MaxNumberOfMessages=10,
            **({"VisibilityTimeout": visibility} if visibility else {})).get("Messages", [])
        return [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]} for m in got]

    def test_a_failed_attempt_comes_back_after_its_delay_and_a_duplicate_does_nothing(self, api, receivers):
        from app import webhook_delivery

        rx = receivers(statuses=[503, 200])
        hook = create(api, rx.url)["webhook_id"]
        webhooks.enqueue([envelope(1)])
        webhooks.enqueue([envelope(1)])  # the relay again after a crash: a second message, no second row
        records = self.receive()
        assert [json.loads(r["body"]) for r in records] == [{"webhook_id": hook, "event_id": "ev-1"}] * 2
        assert len(deliveries(api, hook)) == 1

        # through the function as Lambda calls it: the first message attempts (503) and comes
        # back later; the second finds the delivery not due any more and waits too
        answer = webhook_delivery({"Records": records}, None)
        assert sorted(f["itemIdentifier"] for f in answer["batchItemFailures"]) == sorted(
            r["messageId"] for r in records)
        assert len(rx.requests) == 1
        [d] = deliveries(api, hook)
        assert (d["status"], d["attempts"], d["last_status_code"]) == ("pending", 1, 503)
        assert self.receive() == []  # both hidden until the retry is due (about 30 s)

        due = datetime.fromisoformat(d["next_attempt_at"].replace("Z", "+00:00"))
        assert webhooks.deliver_one(hook, "ev-1", now=due + timedelta(seconds=1)) == ("delivered", None)
        assert len(rx.requests) == 2 and json.loads(rx.requests[1]["body"]) == envelope(1)
        assert webhooks.deliver_one(hook, "ev-1") == ("done", None)  # a late duplicate
        [d] = deliveries(api, hook)
        assert (d["status"], d["attempts"], d["last_status_code"]) == ("delivered", 2, 200)

    def test_a_delivered_message_is_acknowledged(self, api, receivers):
        from app import webhook_delivery

        rx = receivers()
        hook = create(api, rx.url)["webhook_id"]
        webhooks.enqueue([envelope(1), envelope(2)])
        records = self.receive()
        assert len(records) == 2
        assert webhook_delivery({"Records": records}, None) == {"batchItemFailures": []}
        assert sorted(r["headers"]["Loyalty-Event-Id"] for r in rx.requests) == ["ev-1", "ev-2"]
        assert {d["status"] for d in deliveries(api, hook)} == {"delivered"}

    def test_a_slow_endpoint_does_not_hold_the_other_messages_of_the_batch(self, api, receivers, monkeypatch):
        monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 1.5)
        slow, quick = receivers(delay=3.0), receivers()
        slow_hook = create(api, slow.url, events=["tier.changed"])["webhook_id"]
        quick_hook = create(api, quick.url, events=["points.earned"])["webhook_id"]
        webhooks.enqueue([envelope(1, "tier.changed")] + [envelope(n) for n in range(2, 6)])
        records = self.receive()
        assert len(records) == 5
        started = time.monotonic()
        answer = webhooks.handle_queue_event(records)
        assert time.monotonic() - started < 3.0  # in parallel: one timeout, not five
        [failed] = answer["batchItemFailures"]
        assert json.loads(next(r["body"] for r in records if r["messageId"] == failed["itemIdentifier"])) == {
            "webhook_id": slow_hook, "event_id": "ev-1"}
        assert {d["status"] for d in deliveries(api, quick_hook)} == {"delivered"}
        [d] = deliveries(api, slow_hook)
        assert (d["status"], d["attempts"], d["last_status_code"]) == ("pending", 1, None)

    def test_a_paused_webhook_lets_its_messages_go_and_resuming_it_queues_them_again(self, api, receivers):
        rx = receivers()
        hook = create(api, rx.url)["webhook_id"]
        webhooks.enqueue([envelope(1)])
        assert api.patch(f"{W}/{hook}", {"active": False}, role="admin").status == 200
        records = self.receive()
        assert webhooks.handle_queue_event(records) == {"batchItemFailures": []}
        assert rx.requests == []
        for r in records:  # Lambda deletes what the function did not name
            from chalicelib import messaging

            messaging.sqs_client().delete_message(QueueUrl=messaging.queue_url(webhooks.QUEUE),
                                                  ReceiptHandle=r["receiptHandle"])
        assert api.patch(f"{W}/{hook}", {"active": True}, role="admin").status == 200
        again = self.receive()
        assert [json.loads(r["body"]) for r in again] == [{"webhook_id": hook, "event_id": "ev-1"}]
        # postponed while paused (5 minutes): the message waits for that time, then delivers
        assert webhooks.handle_queue_event(again)["batchItemFailures"] == [{"itemIdentifier": again[0]["messageId"]}]
        assert webhooks.deliver_one(hook, "ev-1", now=wall() + timedelta(minutes=6)) == ("delivered", None)

    def test_redeliver_queues_the_delivery(self, api, receivers):
        rx = receivers(statuses=[500])
        hook = create(api, rx.url)["webhook_id"]
        webhooks.enqueue([envelope(1)])
        for r in self.receive():
            webhooks.handle_queue_event([r])
        r = api.post(f"{W}/{hook}/deliveries/ev-1/redeliver", {}, role="admin")
        assert r.status == 202, r.body
        [msg] = self.receive()
        assert json.loads(msg["body"]) == {"webhook_id": hook, "event_id": "ev-1"}
        assert webhooks.handle_queue_event([msg])["batchItemFailures"] == [{"itemIdentifier": msg["messageId"]}]
        assert len(rx.requests) == 2
