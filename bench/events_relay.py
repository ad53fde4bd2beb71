"""`events_relay`: domain events relayed per second by the outbox stream's relay function
(`relay.handle_stream_event`, what the `outbox-relay` Lambda runs) ÷ a bare `PutEvents` loop
of the same envelopes.

Ours: batches of 100 stream records (the event source's batch size), as DynamoDB Streams
hands them over: the rows' events go to the bus ten per PutEvents, the webhook subscriptions
are looked up (none here: the bench measures the bus path), and the sent rows are deleted
from the outbox, 25 per BatchWriteItem.

Floor: a bare boto3 EventBridge client sending the same envelopes, ten per PutEvents, to the
same bus on the same emulator: no outbox reads, no deletes.

The outbox rows are written before each of our rounds (not timed: the writes that committed
them are the accruals' own). Rounds alternate; medians. The ratio is ours ÷ floor in events
per second (higher is better). It is reported, not judged: ours makes the floor's PutEvents
calls plus one BatchWriteItem per 25 rows to remove what was sent, and on the one-call-at-a-
time emulator those deletes cost about as much as the PutEvents themselves (0.45-0.46 in
the first runs, 2026-12-02). In AWS the calls run four at a time and overlap.
"""
from __future__ import annotations

import json
import time

import boto3

from bench.common import entry, med, rnd

BATCH = 100  # infra/resources.py outbox_stream_event BatchSize


def _envelope(n: int, round_: int) -> dict:
    member = f"bench-ev-{n % 500:04d}"
    return {"event_id": f"bench-{round_}-{n}", "type": "points.earned", "occurred_at": "2026-01-15T10:00:00Z",
            "member_id": member, "sequence": 100 * (n + 1),
            "data": {"points": 120, "balance": {"available": 1200, "pending": 0, "held": 0},
                     "entry_id": f"le_{member}_{n}", "reference": {"order_id": f"o-{round_}-{n}"},
                     "entry_type": "earn"}}


def _stream_event(rows: list[dict], first_seq: int) -> dict:
    return {"Records": [{"eventID": str(first_seq + i), "eventName": "INSERT", "eventSource": "aws:dynamodb",
                         "dynamodb": {"SequenceNumber": str(first_seq + i), "NewImage": {
                             "message_id": {"S": r["message_id"]}, "body": {"S": json.dumps(r)}}}}
                        for i, r in enumerate(rows)]}


def measure(url: str, per_round: int = 2000, rounds: int = 5) -> dict:
    from chalicelib import events, relay
    from chalicelib.store import outbox, tx

    client = boto3.client("events", endpoint_url=url, region_name="us-east-1")
    bus = events.bus_name()
    ours_rates, floor_rates, leftovers = [], [], []

    def ours(r: int) -> float:
        rows = [outbox.event_row(_envelope(n, r)) for n in range(per_round)]
        for i in range(0, len(rows), 100):
            tx.write([outbox.put_op(row) for row in rows[i:i + 100]])
        started = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            out = relay.handle_stream_event(_stream_event(rows[i:i + BATCH], i))
            if out["batchItemFailures"]:
                raise AssertionError(f"relay reported failures: {out['batchItemFailures'][:3]}")
        took = time.perf_counter() - started
        leftovers.append(len(outbox.leftovers("9999", 10)))
        return per_round / took

    def floor(r: int) -> float:
        envs = [_envelope(n, r) for n in range(per_round)]
        started = time.perf_counter()
        for i in range(0, len(envs), 10):
            entries = [{"Source": events.SOURCE, "DetailType": e["type"], "EventBusName": bus,
                        "Detail": json.dumps(e, separators=(",", ":"))} for e in envs[i:i + 10]]
            if client.put_events(Entries=entries).get("FailedEntryCount"):
                raise AssertionError("PutEvents failed entries")
        return per_round / (time.perf_counter() - started)

    for r in range(rounds):
        pair = ((ours, ours_rates), (floor, floor_rates)) if r % 2 == 0 else ((floor, floor_rates), (ours, ours_rates))
        for fn, out in pair:
            out.append(fn(r))
    value, fl = med(ours_rates), med(floor_rates)
    return entry(rnd(value, 1), rnd(fl, 1), rnd(value / fl), "reported", "events/s",
                 per_round=per_round, rounds=rounds, batch=BATCH, ours_runs=[rnd(x, 1) for x in ours_rates],
                 floor_runs=[rnd(x, 1) for x in floor_rates], outbox_rows_left=max(leftovers))
