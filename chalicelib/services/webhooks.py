"""Webhooks: admin CRUD, one delivery per (webhook, event), signed POSTs with retries (SPEC 2.16).

The relay calls `enqueue(events)` after it published a batch to the events bus: one
`pending` delivery per active webhook subscribed to each event's type, keyed by
(webhook_id, event_id) with a condition, so a second call with the same events writes
nothing. `deliver_due()` sends what is due, concurrently in a small thread pool with a
per-request timeout; `start_background()` runs it every second in a daemon thread
(`make run`). Nothing here runs on a request's thread.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import random
import secrets
import socket
import ssl
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta, timezone
from typing import Optional
from urllib.parse import urlsplit

from chalicelib import clock, messaging
from chalicelib.config import get_settings
from chalicelib.errors import AlreadyExists, NotFound, ValidationFailed, WebhookNotFound
from chalicelib.services import audit, program
from chalicelib.store import tx
from chalicelib.store import webhooks as store

log = logging.getLogger("loyalty.webhooks")

TIMEOUT_SECONDS = 10.0  # per request (SPEC 2.16); tests shorten it
MAX_ATTEMPTS = 10
MAX_DELAY_SECONDS = 8 * 3600  # the backoff's ceiling (unless the base itself is longer)
WORKERS = 16  # the sending pool
PER_WEBHOOK_IN_FLIGHT = 2  # a webhook holds at most this many workers, however slow it is
BACKLOG_PER_WEBHOOK = 10  # claimed deliveries a webhook may have waiting or in flight
LEASE_MARGIN_SECONDS = 60
PAUSED_RETRY = timedelta(minutes=5)  # a paused webhook's pending deliveries wait this long
USER_AGENT = "loyalty-webhooks/1"


# --- admin CRUD ---------------------------------------------------------------------

def _out(rec) -> dict:
    return {"webhook_id": rec.webhook_id, "url": rec.url, "events": list(rec.events), "active": rec.active,
            "created_at": rec.created_at, "updated_at": rec.updated_at}


def create(body, actor: str) -> dict:
    """Register a webhook; the answer carries its signing secret, shown only here."""
    check_url(body.url)
    webhook_id = body.webhook_id or "wh_" + secrets.token_hex(8)
    secret = "whsec_" + secrets.token_urlsafe(32)
    at = clock.iso(clock.now())
    details = {"url": body.url, "events": body.events, "active": body.active}
    try:
        tx.write([store.create_webhook_op(webhook_id, body.url, body.events, body.active, secret, at),
                  audit.entry_op(actor, "webhook.create", target=webhook_id, details=details)])
    except tx.TxCancelled:
        raise AlreadyExists(webhook_id=webhook_id)
    _invalidate()
    return {**_out(store.get_webhook(webhook_id)), "secret": secret}


def get(webhook_id: str) -> dict:
    rec = store.get_webhook(webhook_id)
    if rec is None:
        raise WebhookNotFound(webhook_id=webhook_id)
    return _out(rec)


def list_webhooks(limit: int, cursor: Optional[dict]) -> tuple[list, Optional[dict]]:
    items, last = store.webhooks_page(limit, cursor)
    return [_out(r) for r in items], last


def update(webhook_id: str, body, actor: str) -> dict:
    changes = body.model_dump(exclude_none=True)
    if "url" in changes:
        check_url(changes["url"])
    try:
        tx.write([store.update_webhook_op(webhook_id, changes, clock.iso(clock.now())),
                  audit.entry_op(actor, "webhook.update", target=webhook_id, details=changes)])
    except tx.TxCancelled:
        raise WebhookNotFound(webhook_id=webhook_id)
    _invalidate()
    if changes.get("active") and _queue_mode():
        _requeue_pending(webhook_id)
    return get(webhook_id)


def _requeue_pending(webhook_id: str) -> None:
    """A webhook active again: its pending deliveries back on the delivery queue (a paused
    webhook's messages were let go; their rows waited)."""
    cursor = None
    while True:
        items, cursor = store.deliveries_page(webhook_id, store.PENDING, 100, cursor)
        _to_queue([(webhook_id, r.event_id) for r in items])
        if not cursor:
            return


def delete(webhook_id: str, actor: str) -> None:
    """Remove a webhook; its pending deliveries fail at their next attempt."""
    try:
        tx.write([store.delete_webhook_op(webhook_id), audit.entry_op(actor, "webhook.delete", target=webhook_id)])
    except tx.TxCancelled:
        raise WebhookNotFound(webhook_id=webhook_id)
    _invalidate()


def _delivery_out(rec) -> dict:
    return {"event_id": rec.event_id, "type": rec.type, "status": rec.status, "attempts": int(rec.attempts or 0),
            "last_status_code": int(rec.last_status_code) if rec.last_status_code is not None else None,
            "last_attempt_at": _iso_of(rec.last_attempt_at),
            "next_attempt_at": _iso_of(rec.next_attempt_at) if rec.status == store.PENDING else None}


def list_deliveries(webhook_id: str, status: Optional[str], limit: int,
                    cursor: Optional[dict]) -> tuple[list, Optional[dict]]:
    """A webhook's deliveries, newest first; `status="failed"` is the dead-letter view."""
    get(webhook_id)
    if status not in (None, store.PENDING, store.DELIVERED, store.FAILED):
        raise ValidationFailed("status must be pending, delivered or failed",
                               fields=[{"field": "status", "message": "pending, delivered or failed"}])
    items, last = store.deliveries_page(webhook_id, status, limit, cursor)
    return [_delivery_out(r) for r in items], last


def redeliver(webhook_id: str, event_id: str, actor: str) -> dict:
    """Pending again and due now, with a fresh retry schedule (a failed one, or any other)."""
    get(webhook_id)
    try:
        tx.write([store.reset_op(webhook_id, event_id, clock.sortable(_wall())),
                  audit.entry_op(actor, "webhook.redeliver", target=webhook_id, details={"event_id": event_id})])
    except tx.TxCancelled:
        raise NotFound("no such delivery for this webhook", webhook_id=webhook_id, event_id=event_id)
    if _queue_mode():
        _to_queue([(webhook_id, event_id)])
    else:
        _wake.set()
    return {"webhook_id": webhook_id, "event_id": event_id, "status": store.PENDING}


# --- URL rules (no SSRF) ---------------------------------------------------------------

def _is_local() -> bool:
    return get_settings().is_local


def _public(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_global and not (addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_multicast
                                   or addr.is_reserved or addr.is_unspecified)


def _bad_url(message: str) -> ValidationFailed:
    return ValidationFailed(f"url {message}", fields=[{"field": "url", "message": message}])


def resolve(url: str, local: Optional[bool] = None) -> tuple[str, int, str]:
    """(scheme, port, address to connect to) of a webhook URL, or a 400. Outside the local
    stage the URL is https and every address its host resolves to is public (never private,
    loopback or link-local); the request then goes to the address checked, so a DNS answer
    that changes between the check and the connection cannot point it inside."""
    local = _is_local() if local is None else local
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _bad_url("is not a valid URL")
    allowed = ("https", "http") if local else ("https",)
    if parts.scheme not in allowed:
        raise _bad_url("must be https" if not local else "must be http or https")
    host = parts.hostname
    if not host or parts.username or parts.password:
        raise _bad_url("needs a host and no credentials")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):  # gaierror, a bad IDNA label, a NUL byte
        raise _bad_url("has a host that does not resolve")
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise _bad_url("has a host that does not resolve")
    if not local and not all(_public(a) for a in addresses):
        raise _bad_url("must not point to a private, loopback or link-local address")
    return parts.scheme, port, addresses[0]


def check_url(url: str) -> None:
    resolve(url)


# --- enqueue ---------------------------------------------------------------------------

_cache_lock = threading.Lock()
_cache: dict = {"at": 0.0, "webhooks": None, "settings": None}
CACHE_SECONDS = 2.0  # enqueue reads the webhooks at most this often per process


def _invalidate() -> None:
    with _cache_lock:
        _cache["webhooks"] = None


def _webhooks() -> list:
    settings = get_settings()
    with _cache_lock:
        fresh = time.monotonic() - _cache["at"] < CACHE_SECONDS and _cache["settings"] is settings
        if _cache["webhooks"] is not None and fresh:
            return _cache["webhooks"]
    hooks = store.all_webhooks()
    with _cache_lock:
        _cache.update(at=time.monotonic(), webhooks=hooks, settings=settings)
    return hooks


def _subscribed(hook, type_: str) -> bool:
    return hook.active and ("*" in hook.events or type_ in hook.events)


def enqueue(events: list[dict]) -> None:
    """One pending delivery per active webhook subscribed to each event's type (its `events`
    list, or ["*"]). Idempotent: a delivery is keyed by (webhook_id, event_id) and written
    only if absent, so the relay may call this again with the same events after a crash.
    In the queue mode each delivery is also handed to the delivery queue, whether its row is
    new or not: a relay that crashed between the rows and the send sends them on its retry
    (a duplicate message finds the delivery done, or claimed, and does nothing)."""
    if not events:
        return
    hooks = [h for h in _webhooks() if h.active]
    if not hooks:
        return
    now = clock.sortable(_wall())
    pairs = []
    for event in events:
        for hook in hooks:
            if _subscribed(hook, event["type"]):
                store.create_delivery(hook.webhook_id, event, now, now)
                pairs.append((hook.webhook_id, event["event_id"]))
    if _queue_mode():
        _to_queue(pairs)
    else:
        _wake.set()


# --- delivery --------------------------------------------------------------------------

def _wall() -> datetime:
    return datetime.now(timezone.utc)


def _iso_of(sortable: Optional[str]) -> Optional[str]:
    return clock.iso(clock.parse_instant(sortable)) if sortable else None


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=` + hex HMAC-SHA256(secret, "{timestamp}.{body}")."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def retry_delay(attempts: int, base: int, rand: random.Random = random) -> float:
    """Seconds before the next attempt after `attempts` failed ones: base × 4^(attempts-1),
    at most 8 hours (or the base), times a jitter of ±10%. With the default base of 30 s the
    10 attempts span about 35 hours (at least 31 with the jitter)."""
    delay = min(base * 4 ** (attempts - 1), max(MAX_DELAY_SECONDS, base))
    return delay * rand.uniform(0.9, 1.1)


def schedule(base: int) -> list[float]:
    """The retry schedule without jitter: seconds after the first attempt of each later one."""
    total, out = 0.0, []
    for n in range(1, MAX_ATTEMPTS):
        total += min(base * 4 ** (n - 1), max(MAX_DELAY_SECONDS, base))
        out.append(total)
    return out


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address checked, whatever the host name resolves to by now."""

    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _post(url: str, body: bytes, headers: dict, timeout: float) -> int:
    """POST once; the status code, or raises (a refused URL, no answer within `timeout`)."""
    scheme, port, address = resolve(url)
    parts = urlsplit(url)
    cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    conn = cls(parts.hostname, port, address, timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(65536)  # the answer's body is not used
        return response.status
    finally:
        conn.close()


_pool_lock = threading.Lock()
_pool: dict = {"executor": None}
_queues: dict[str, deque] = {}  # webhook_id -> claimed deliveries waiting for one of its workers
_draining: dict[str, int] = {}  # webhook_id -> its workers running now


def _executor() -> ThreadPoolExecutor:
    with _pool_lock:
        if _pool["executor"] is None:
            _pool["executor"] = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="webhook")
        return _pool["executor"]


def _lease_seconds() -> float:
    """How long a claimed delivery may wait for its worker and its answer: behind a full
    backlog of timeouts, plus a margin. After that it is due again (its sender died)."""
    return TIMEOUT_SECONDS * (BACKLOG_PER_WEBHOOK / PER_WEBHOOK_IN_FLIGHT + 1) + LEASE_MARGIN_SECONDS


def _attempt(hook, rec, leased_until: str, now: datetime, base: int) -> tuple[str, Optional[float]]:
    """One attempt of one delivery; records its outcome. Returns delivered|retried|failed and,
    when retried, the seconds until the next attempt."""
    body = json.dumps(rec.envelope, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(now.timestamp())
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "Loyalty-Event-Id": rec.event_id,
               "Loyalty-Timestamp": str(timestamp), "Loyalty-Signature": sign(hook.secret, timestamp, body)}
    status_code, error = None, None
    try:
        status_code = _post(hook.url, body, headers, TIMEOUT_SECONDS)
    except ValidationFailed as exc:
        error = exc.message
    except Exception as exc:  # noqa: BLE001 - refused, timed out, a broken answer: a failed attempt
        error = f"{type(exc).__name__}: {exc}"[:200]
    attempts = int(rec.attempts or 0) + 1
    if status_code is not None and 200 <= status_code < 300:
        outcome, next_at = store.DELIVERED, None
    elif attempts >= MAX_ATTEMPTS:
        outcome, next_at = store.FAILED, None
    else:
        outcome, delay = store.PENDING, retry_delay(attempts, base)
        next_at = clock.sortable(now + timedelta(seconds=delay))
    store.record_attempt(hook.webhook_id, rec.event_id, leased_until=leased_until, status=outcome, attempts=attempts,
                         status_code=status_code, error=error, attempted_at=clock.sortable(now),
                         next_attempt_at=next_at)
    if outcome != store.DELIVERED:
        log.info("webhook %s event %s: attempt %d %s (%s)", hook.webhook_id, rec.event_id, attempts, outcome,
                 status_code or error)
    if outcome == store.PENDING:
        return "retried", delay
    return outcome, None


def _drain(webhook_id: str) -> None:
    """One of a webhook's workers: its claimed deliveries, one after the other."""
    while True:
        with _pool_lock:
            queue = _queues.get(webhook_id)
            if not queue:
                _draining[webhook_id] -= 1
                return
            hook, rec, leased_until, base, at, future = queue.popleft()
        try:
            # The attempt's own time (unless the caller gave one): a delivery that waited for
            # its worker is signed when it leaves.
            future.set_result(_attempt(hook, rec, leased_until, at or _wall(), base)[0])
        except Exception:  # noqa: BLE001 - the lease lapses and the delivery is due again
            log.warning("webhook %s event %s: attempt not recorded", webhook_id, rec.event_id, exc_info=True)
            future.set_result("errors")


def _hand_over(hook, rec, leased_until: str, base: int, at: Optional[datetime]) -> Future:
    future: Future = Future()
    start = False
    with _pool_lock:
        _queues.setdefault(hook.webhook_id, deque()).append((hook, rec, leased_until, base, at, future))
        if _draining.get(hook.webhook_id, 0) < PER_WEBHOOK_IN_FLIGHT:
            _draining[hook.webhook_id] = _draining.get(hook.webhook_id, 0) + 1
            start = True
    if start:
        _executor().submit(_drain, hook.webhook_id)
    return future


def _backlog(webhook_id: str) -> int:
    with _pool_lock:
        return len(_queues.get(webhook_id) or ()) + _draining.get(webhook_id, 0)


def deliver_due(now: Optional[datetime] = None, limit: int = 100, wait_for_results: bool = True) -> dict:
    """Send the deliveries due by `now` (the wall clock by default). Each webhook gets at
    most PER_WEBHOOK_IN_FLIGHT workers of the sending pool, each request its own timeout, so
    a slow or dead endpoint holds only its own deliveries. Returns counts: due, sent
    (attempts handed to a worker), delivered, retried, failed, skipped (another sender holds
    it, or its webhook's backlog is full: it stays due), paused, errors. With
    `wait_for_results=False` (the background loop) it returns once the attempts are handed
    over; the counts of outcomes are then zero."""
    pinned, now = now, now or _wall()
    counts = {"due": 0, "sent": 0, "delivered": 0, "retried": 0, "failed": 0, "skipped": 0, "paused": 0,
              "errors": 0}
    due = store.due(clock.sortable(now), limit)
    counts["due"] = len(due)
    if not due:
        return counts
    base = program.settings().webhook_retry_base_seconds
    lease = clock.sortable(now + timedelta(seconds=_lease_seconds()))
    hooks: dict = {}
    futures = []
    for rec in due:
        webhook_id, event_id = rec.webhook_id, rec.event_id
        if _backlog(webhook_id) >= BACKLOG_PER_WEBHOOK:
            counts["skipped"] += 1
            continue
        if webhook_id not in hooks:
            hooks[webhook_id] = store.get_webhook(webhook_id)
        hook = hooks[webhook_id]
        if not store.claim(webhook_id, event_id, rec.next_attempt_at, lease):
            counts["skipped"] += 1
            continue
        if hook is None:  # deleted: nothing to send to
            store.record_attempt(webhook_id, event_id, leased_until=lease, status=store.FAILED,
                                 attempts=int(rec.attempts or 0), status_code=None, error="the webhook was deleted",
                                 attempted_at=clock.sortable(now), next_attempt_at=None)
            counts["failed"] += 1
            continue
        if not hook.active:
            store.postpone(webhook_id, event_id, lease, clock.sortable(now + PAUSED_RETRY))
            counts["paused"] += 1
            continue
        futures.append(_hand_over(hook, rec, lease, base, pinned))
        counts["sent"] += 1
    if wait_for_results and futures:
        wait(futures)
        for future in futures:
            counts[future.result()] += 1
    return counts


# --- make run ----------------------------------------------------------------------

_wake = threading.Event()
_stop = threading.Event()
_background: dict = {"thread": None}


def start_background(interval: float = 1.0) -> threading.Thread:
    """A daemon thread calling `deliver_due` every `interval` seconds (sooner when `enqueue`
    wakes it), for `make run`: a delivery reaches a local receiver about a second after its
    commit. Sends run in the pool, so the loop never waits on an endpoint. Idempotent."""
    with _pool_lock:
        thread = _background["thread"]
        if thread is not None and thread.is_alive():
            return thread

        _stop.clear()

        def loop() -> None:
            while not _stop.is_set():
                _wake.wait(interval)
                _wake.clear()
                if _stop.is_set():
                    break
                try:
                    deliver_due(wait_for_results=False)
                except Exception:  # noqa: BLE001 - keep delivering; the next round retries
                    log.warning("webhook delivery round failed", exc_info=True)

        thread = threading.Thread(target=loop, name="webhook-deliveries", daemon=True)
        _background["thread"] = thread
        thread.start()
        return thread


def stop_background(timeout: float = 5.0) -> None:
    """Stop the loop of `start_background` (tests; `make run` lets it die with the process)."""
    thread = _background["thread"]
    _stop.set()
    _wake.set()
    if thread is not None:
        thread.join(timeout)
    _background["thread"] = None


# --- production: the delivery queue -------------------------------------------------------
#
# Outside `local` the relay function hands each delivery to the `webhook-deliveries` queue
# and the `webhook-delivery` function (app.py) makes the attempts, ten messages at a time,
# each on its own thread with its own 10 s timeout: a slow endpoint holds one message, never
# the others, the relay or the API. A retry is not a new message: the failed message's
# visibility is set to the retry delay and it is reported as a batch item failure, so SQS
# hands it out again when the next attempt is due (SQS allows up to 12 hours; the backoff
# stops at 8). A message that crashes the function maxReceiveCount times lands in the
# queue's dead-letter queue, whose alarm pages; the delivery row keeps its state, so a
# redrive or `redeliver` resumes it.

QUEUE = "webhook-deliveries"
MAX_VISIBILITY_SECONDS = 12 * 3600 - 60  # SQS's ceiling, less a margin


def _queue_mode() -> bool:
    return get_settings().webhook_delivery_mode == "queue"


def _to_queue(pairs: list[tuple[str, str]]) -> None:
    messaging.send(({"webhook_id": w, "event_id": e} for w, e in pairs), queue=QUEUE)


def _due_in(sortable: Optional[str], now: datetime) -> float:
    if not sortable:
        return 0.0
    return (clock.parse_instant(sortable) - now).total_seconds()


def deliver_one(webhook_id: str, event_id: str, now: Optional[datetime] = None) -> tuple[str, Optional[float]]:
    """One queued delivery: attempt it if it is due. Returns (outcome, seconds until this
    message should come back, or None when it is finished with). Outcomes: delivered,
    retried, failed, done (delivered or failed before: a duplicate message), not_due, busy
    (another sender holds its lease), paused (its webhook is inactive: the message is let go
    and `update` queues the pending deliveries again when the webhook is made active)."""
    now = now or _wall()
    rec = store.get_delivery(webhook_id, event_id)
    if rec is None or rec.status != store.PENDING:
        return "done", None
    wait_s = _due_in(rec.next_attempt_at, now)
    if wait_s > 0:
        return "not_due", wait_s
    lease = clock.sortable(now + timedelta(seconds=_lease_seconds()))
    if not store.claim(webhook_id, event_id, rec.next_attempt_at, lease):
        return "busy", _lease_seconds()
    hook = store.get_webhook(webhook_id)
    if hook is None:
        store.record_attempt(webhook_id, event_id, leased_until=lease, status=store.FAILED,
                             attempts=int(rec.attempts or 0), status_code=None, error="the webhook was deleted",
                             attempted_at=clock.sortable(now), next_attempt_at=None)
        return "failed", None
    if not hook.active:  # the row waits; making the webhook active again queues it anew
        store.postpone(webhook_id, event_id, lease, clock.sortable(now + PAUSED_RETRY))
        return "paused", None
    return _attempt(hook, rec, lease, now, program.settings().webhook_retry_base_seconds)


def handle_queue_event(records: list[dict]) -> dict:
    """The `webhook-delivery` function's batch (SQS records as Lambda gives them). Answers
    `{"batchItemFailures": [...]}` naming the messages that must come back later; their
    visibility has been set to when. A record that raised also comes back, after the
    queue's own visibility timeout."""
    def one(record: dict) -> Optional[float]:
        body = json.loads(record["body"])
        return deliver_one(str(body["webhook_id"]), str(body["event_id"]))[1]

    failures = []
    with ThreadPoolExecutor(max_workers=max(1, min(len(records), 10)), thread_name_prefix="webhook-q") as pool:
        results = [(record, pool.submit(one, record)) for record in records]
    for record, future in results:
        try:
            back_in = future.result()
        except Exception:  # noqa: BLE001 - comes back after the visibility timeout
            log.warning("webhook delivery message %s failed", record.get("messageId"), exc_info=True)
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        if back_in is None:
            continue
        try:
            messaging.sqs_client().change_message_visibility(
                QueueUrl=messaging.queue_url(QUEUE), ReceiptHandle=record["receiptHandle"],
                VisibilityTimeout=int(min(max(back_in, 0), MAX_VISIBILITY_SECONDS)) + 1)
        except Exception:  # noqa: BLE001 - then it comes back sooner, and waits again
            log.warning("could not delay webhook delivery message %s", record.get("messageId"), exc_info=True)
        failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
