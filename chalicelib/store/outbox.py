"""The outbox table: messages (and events) committed in the transaction of the write that
caused them. The relay sends them and then deletes their rows; a row older than a minute
is a leftover (a crash, a failed send) and is picked up again by the sweep."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterable

from chalicelib import clock
from chalicelib.store import tx
from chalicelib.store.base import dynamodb_client
from chalicelib.store.models import OutboxRecord

TTL = timedelta(days=14)  # a row nobody could send for two weeks expires (alarmed on the DLQ before)


def put_op(message: dict) -> tx.Op:
    """The outbox row of one message, for the write's own transaction. Unconditional: the id is
    deterministic, so a second write of the same row carries the same message."""
    written = datetime.now(timezone.utc)  # the wall clock, not a pinned "now": the sweep's age test
    return tx.put_item(OutboxRecord, OutboxRecord.to_item(message_id=message["message_id"], body=message,
                                                          created_at=clock.iso(written),
                                                          expires_at=int((written + TTL).timestamp())))


EVENT_PREFIX = "event#"


def event_row(envelope: dict) -> dict:
    """The outbox body of a domain event: its row id derives from the event id."""
    return {"message_id": EVENT_PREFIX + envelope["event_id"], "created_at": envelope["occurred_at"],
            "event": envelope}


def delete(message_ids: Iterable[str]) -> None:
    """Remove sent rows, 25 per BatchWriteItem (up to four calls in flight), re-sending
    unprocessed ones."""
    ids = list(dict.fromkeys(message_ids))
    chunks = [ids[i:i + 25] for i in range(0, len(ids), 25)]
    if len(chunks) <= 1:
        for chunk in chunks:
            _delete_chunk(chunk)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(4, len(chunks)), thread_name_prefix="outbox-delete") as pool:
        list(pool.map(_delete_chunk, chunks))


def _delete_chunk(ids: list[str]) -> None:
    requests = {OutboxRecord.table_name(): [{"DeleteRequest": {"Key": {"message_id": {"S": m}}}} for m in ids]}
    for _ in range(5):
        requests = dynamodb_client().batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
        if not requests:
            return


def leftovers(older_than: str, limit: int = 1000) -> list[dict]:
    """Bodies of rows created at or before `older_than` (ISO), oldest first, at most `limit`."""
    rows = [r.body for r in OutboxRecord.scan(OutboxRecord.created_at <= older_than, consistent_read=True)]
    rows.sort(key=lambda b: b.get("created_at") or "")
    return rows[:limit]
