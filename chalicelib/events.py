"""Domain events out to the EventBridge bus `loyalty-{stage}-events` (SPEC 2.16).

`source` is `loyalty`, `detail-type` the event type, `detail` the envelope. PutEvents takes
10 entries a call; entries it reports failed are retried with backoff, and if some still
fail the call raises, so the outbox keeps the rows and the sweep sends them later.
"""
from __future__ import annotations

import json
import random
import time
from typing import Iterable

from chalicelib import clients
from chalicelib.config import get_settings
from chalicelib.errors import RetryLater

SOURCE = "loyalty"
def events_client():
    return clients.client("events", pool=16)


def bus_name() -> str:
    return get_settings().resource_name("events")


PARALLEL = 4  # PutEvents calls in flight for one batch (a stream batch of 100 is ten calls)


def publish(envelopes: Iterable[dict], attempts: int = 5) -> int:
    """Publish the envelopes, ten per PutEvents, up to PARALLEL calls at a time. Returns how
    many were published; raises RetryLater if some still fail after `attempts` (the caller
    keeps their outbox rows)."""
    envelopes = list(envelopes)
    chunks = [envelopes[i:i + 10] for i in range(0, len(envelopes), 10)]
    if len(chunks) <= 1:
        return sum(_publish_chunk(c, attempts) for c in chunks)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(chunks)), thread_name_prefix="put-events") as pool:
        return sum(pool.map(lambda c: _publish_chunk(c, attempts), chunks))


def _publish_chunk(pending: list[dict], attempts: int) -> int:
    bus = bus_name()
    sent = 0
    for attempt in range(attempts):
        entries = [{"Source": SOURCE, "DetailType": e["type"], "Detail": json.dumps(e, separators=(",", ":")),
                    "EventBusName": bus} for e in pending]
        result = events_client().put_events(Entries=entries)
        failed = [e for e, r in zip(pending, result.get("Entries", [])) if r.get("ErrorCode")]
        sent += len(pending) - len(failed)
        pending = failed
        if not pending:
            return sent
        time.sleep(random.uniform(0, 0.05 * (2 ** attempt)))
    raise RetryLater(f"{len(pending)} events could not be published")
