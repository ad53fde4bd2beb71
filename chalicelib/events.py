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


def publish(envelopes: Iterable[dict], attempts: int = 5) -> int:
    envelopes = list(envelopes)
    bus = bus_name()
    sent = 0
    for i in range(0, len(envelopes), 10):
        pending = envelopes[i:i + 10]
        for attempt in range(attempts):
            entries = [{"Source": SOURCE, "DetailType": e["type"], "Detail": json.dumps(e, separators=(",", ":")),
                        "EventBusName": bus} for e in pending]
            result = events_client().put_events(Entries=entries)
            failed = [e for e, r in zip(pending, result.get("Entries", [])) if r.get("ErrorCode")]
            sent += len(pending) - len(failed)
            pending = failed
            if not pending:
                break
            time.sleep(random.uniform(0, 0.05 * (2 ** attempt)))
        if pending:
            raise RetryLater(f"{len(pending)} events could not be published")
    return sent
