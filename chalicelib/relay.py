"""The outbox relay: moves the rows a write committed to the campaign queue, then deletes them.

Every message (and event) a write causes is an outbox row in that write's own transaction
(`services/uow.py`), so a crash between the commit and the send delays it and never loses
it. Who sends (setting `relay`, env `LOYALTY_RELAY`):

- `inline`: right after the commit, on the request's thread (the test suite);
- `background`: a thread of this process, woken by each commit (`make run`);
- `stream`: the DynamoDB Streams relay function (`app.outbox_relay`, production): the request
  path makes no call for it.

Whatever the mode, a row still there a minute after it was written (the send failed, the
process died) is sent by the sweep (`sweep`, run by the background thread, the stream
function's retries and the hourly `run-triggers`). Message ids are deterministic, so a row
sent twice (a crash between the send and the delete) carries the same `message_id`, which
consumers deduplicate on.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
from datetime import datetime, timedelta, timezone
from chalicelib import clock, events, messaging
from chalicelib.config import get_settings
from chalicelib.store import outbox

log = logging.getLogger("loyalty.relay")

STALE_AFTER = timedelta(seconds=60)
_batching = threading.local()
_wake: "queue.SimpleQueue[list]" = queue.SimpleQueue()


def deliver(rows: list[dict]) -> bool:
    """Send these committed outbox rows — campaign messages to SQS, domain events to the
    events bus and the webhooks — and delete what was sent. False when some could not be
    sent (their rows stay for the sweep)."""
    return not _deliver(rows)


def _deliver(rows: list[dict]) -> set[str]:
    """`deliver`, answering the ids of the rows that could not be sent (messages and events
    go out as two parts; a part that fails keeps all its rows)."""
    if not rows:
        return set()
    messages = [r for r in rows if "event" not in r]
    events = [r for r in rows if "event" in r]
    done: list[str] = []
    failed: set[str] = set()
    for part, send in ((messages, messaging.send), (events, _publish_events)):
        if not part:
            continue
        try:
            send(part)
            done += [r["message_id"] for r in part]
        except Exception:  # noqa: BLE001 - the rows stay; the sweep sends them
            log.warning("send of %d committed outbox rows failed; the outbox keeps them", len(part), exc_info=True)
            failed.update(r["message_id"] for r in part)
    if done:
        try:
            outbox.delete(done)
        except Exception:  # noqa: BLE001 - sent; a later sweep may send them again under the same ids
            log.warning("sent rows could not be removed from the outbox", exc_info=True)
    return failed


def _publish_events(rows: list[dict]) -> None:
    """PutEvents to `loyalty-{stage}-events` (10 per call, failed entries retried), then one
    pending webhook delivery per subscribed webhook."""
    envelopes = [r["event"] for r in rows]
    events.publish(envelopes)
    from chalicelib.services import webhooks

    webhooks.enqueue(envelopes)


def after_commit(messages: list[dict]) -> None:
    """Called by the unit of work once its transaction committed."""
    if not messages:
        return
    mode = get_settings().relay_mode
    if mode == "stream":  # the stream function sends them, a job's rows too
        return
    buffer = getattr(_batching, "buffer", None)
    if buffer is not None:  # a job's page: ten per SendMessageBatch
        buffer.extend(messages)
        if sum(1 for r in buffer if "event" not in r) >= 10:  # ten messages per SendMessageBatch
            _batching.buffer = []
            deliver(buffer)
        return
    if mode == "inline":
        deliver(messages)
    else:  # background
        _wake.put(list(messages))


class batched:
    """For jobs: the rows of many small commits are sent ten per call when the scope closes
    (or each time ten are waiting), instead of one call per member. With the stream relay
    (production) the rows are the stream function's to send: nothing is buffered."""

    def __enter__(self):
        self.outer = getattr(_batching, "buffer", None)
        _batching.buffer = []
        return self

    def flush(self) -> None:
        waiting, _batching.buffer = _batching.buffer, []
        deliver(waiting)

    def __exit__(self, *exc):
        waiting, _batching.buffer = _batching.buffer, self.outer
        deliver(waiting)


def sweep(limit: int = 1000) -> int:
    """Send leftovers: rows older than a minute. Returns how many were sent."""
    stale = clock.iso(datetime.now(timezone.utc) - STALE_AFTER)  # rows carry the wall clock
    rows = outbox.leftovers(stale, limit)
    sent = 0
    for i in range(0, len(rows), 100):
        chunk = rows[i:i + 100]
        if deliver(chunk):
            sent += len(chunk)
    return sent


def handle_stream_event(event: dict) -> dict:
    """The DynamoDB Streams relay function: the batch's newly inserted outbox rows are sent
    together (ten events per PutEvents, ten messages per SendMessageBatch, one delete per 25
    rows), then removed. The records of a part that could not be sent are reported as batch
    item failures, so the stream retries from there; what was sent carries the same ids
    again, which consumers (and the webhook deliveries) deduplicate on."""
    from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecordEventName

    rows: list[tuple[str, dict]] = []
    for record in DynamoDBStreamEvent(event).records:
        image = record.dynamodb.new_image if record.dynamodb else None
        if record.event_name != DynamoDBRecordEventName.INSERT or not image:
            continue  # removals (sent rows deleted, TTL) need nothing
        body = image["body"]
        rows.append((record.dynamodb.sequence_number, json.loads(body) if isinstance(body, str) else body))
    failed = _deliver([row for _, row in rows])
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq, row in rows if row["message_id"] in failed]}


def start_background(interval: float = 1.0, sweep_every: float = 15.0) -> threading.Thread:
    """`make run`'s relay thread: sends what commits hand it, sweeps leftovers now and then."""

    def loop() -> None:
        since_sweep = sweep_every
        while True:
            try:
                rows = _wake.get(timeout=interval)
                while True:
                    try:
                        rows += _wake.get_nowait()
                    except queue.Empty:
                        break
                deliver(rows)
            except queue.Empty:
                pass
            since_sweep += interval
            if since_sweep >= sweep_every:
                since_sweep = 0.0
                try:
                    sweep()
                except Exception:  # noqa: BLE001 - the emulator is starting or stopping
                    log.debug("outbox sweep failed", exc_info=True)

    thread = threading.Thread(target=loop, name="outbox-relay", daemon=True)
    thread.start()
    return thread
