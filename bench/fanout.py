"""`fanout_ratio`: campaign messages queued/s ÷ a bare SendMessageBatch loop of the same
messages; and SQS calls per 1,000 messages.

Ours: `chalicelib.services.outreach.deliver` — the path broadcasts, automations and
triggers use: per chunk of members one BatchGetItem of their outreach logs (dedupe
and weekly cap), the pure decisions, one TransactWriteItems claiming the messages
(logs + a pending-messages item), SendMessageBatch of ten on four sender threads while
the next chunks are claimed, and the pending items' deletes. Every member is consented and
new, so every candidate is queued.

Around each round the emulator's CPU time is read too (`emulator_cpu`): how busy each
side kept it, and so how far ours is from the emulator's own limit.

Floor: the same composed message bodies sent with SendMessageBatch, ten a call, by a
bare boto3 client: no dedupe, no cap, no claim.

Each round uses fresh member ids (the weekly cap would otherwise stop a member's
fourth message); rounds alternate; medians.
"""
from __future__ import annotations

import json
import time
from typing import Optional

import boto3

from bench.common import counting, emulator_cpu, entry, med, rnd


def _candidates(r: int, n: int) -> list:
    from chalicelib.services.outreach import Candidate

    return [Candidate(member_id=f"fan-{r}-{i}", profile={"name": f"Member {i}", "locale": "ja-JP",
                                                          "consents": {"email": True, "push": i % 2 == 0}},
                      template="spring_sale", source="campaign:bench-spring", period="once",
                      variables={"points": 1200 + i, "tier": "silver", "next_tier": "gold",
                                 "spend_to_next_tier": 150000 - i, "coupon_code": None},
                      channel="email", campaign_id="bench-spring")
            for i in range(n)]


def measure(url: str, per_round: int = 1000, rounds: int = 9) -> dict:
    from chalicelib import messaging
    from chalicelib.services import outreach

    sqs = boto3.client("sqs", endpoint_url=url, region_name="us-east-1")
    queue = messaging.queue_url()
    ours_rates, floor_rates, sqs_calls, ddb_calls, queued = [], [], [], [], []
    emu = {"ours": [], "floor": []}  # emulator CPU seconds per round

    def emu_delta(side: str, before: Optional[float]) -> None:
        after = emulator_cpu()
        if before is not None and after is not None:
            emu[side].append(after - before)

    def ours(r: int) -> float:
        cands = _candidates(r, per_round)
        with counting() as c:
            cpu, t = emulator_cpu(), time.perf_counter()
            counts = outreach.deliver(cands, cap_per_week=3)
            took = time.perf_counter() - t
            emu_delta("ours", cpu)
        if counts.get("queued") != per_round:
            raise AssertionError(f"deliver queued {counts.get('queued')} of {per_round}: {dict(counts)}")
        sqs_calls.append(c.total("sqs"))
        ddb_calls.append(c.total("dynamodb"))
        queued.append(counts["queued"])
        return per_round / took

    def floor(r: int) -> float:
        bodies = [json.dumps(messaging.compose(template=c.template, member_id=c.member_id, profile=c.profile,
                                               channel="email", variables=c.variables, source=c.source,
                                               period=c.period, campaign_id=c.campaign_id), separators=(",", ":"))
                  for c in _candidates(10_000 + r, per_round)]
        cpu, t = emulator_cpu(), time.perf_counter()
        for i in range(0, len(bodies), 10):
            resp = sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": str(k), "MessageBody": b}
                                                                    for k, b in enumerate(bodies[i:i + 10])])
            if resp.get("Failed"):
                raise AssertionError("floor send failed")
        took = time.perf_counter() - t
        emu_delta("floor", cpu)
        return per_round / took

    for r in range(rounds):
        for fn, out in (((ours, ours_rates), (floor, floor_rates)) if r % 2 == 0
                        else ((floor, floor_rates), (ours, ours_rates))):
            out.append(fn(r))
    value, fl = med(ours_rates), med(floor_rates)
    per_1000 = rnd(med(sqs_calls) * 1000 / per_round, 1)
    out = entry(rnd(value, 1), rnd(fl, 1), rnd(value / fl), {"ratio": ">= 0.5", "sqs_calls_per_1000": "<= 100"},
                "messages/s", messages_per_round=per_round, rounds=rounds,
                ours_runs=[rnd(x, 1) for x in ours_rates], floor_runs=[rnd(x, 1) for x in floor_rates],
                dynamodb_calls_per_1000=rnd(med(ddb_calls) * 1000 / per_round, 1), path="outreach.deliver",
                emulator_cpu_s_per_1000={side: rnd(med(xs) * 1000 / per_round, 3) if xs else None
                                         for side, xs in emu.items()})
    out["sqs_calls_per_1000"] = per_1000
    return out
