"""Deliver composed messages with the rules of SPEC 2.12, in batches.

For a batch of candidates: pick the channel (marketing: the first consented channel in
the order email, push, sms — a broadcast's own channel only if consented; transactional:
the first consented or email; cs_alert: the cs_alert channel), read the members'
outreach logs (BatchGetItem), drop messages already queued (deterministic
message_id) and marketing messages over the weekly cap, send the rest with
SendMessageBatch (10 a call, failed entries retried), then record them in the logs
(BatchWriteItem). Sending before recording means a crash can at worst queue a message
twice — with the same message_id, which the delivery service dedupes — never lose it.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Optional

from chalicelib import clock, messaging, observability
from chalicelib.store.marketing import OutreachRecord, batch_get_outreach, batch_put

DEDUPE_DAYS = 400
CAP_DAYS = 7
BATCH = 100


@dataclass
class Candidate:
    member_id: str
    profile: dict
    template: str
    source: str
    period: str
    variables: dict
    kind: str = "marketing"  # marketing | transactional | cs_alert
    channel: Optional[str] = None  # a broadcast's channel
    campaign_id: Optional[str] = None


def channel_for(c: Candidate) -> Optional[str]:
    consents = c.profile.get("consents") or {}
    if c.kind == "cs_alert":
        return "cs_alert"
    if c.kind == "transactional":
        return messaging.transactional_channel(consents)
    if c.channel:
        return c.channel if consents.get(c.channel) else None
    return messaging.first_consented(consents)


def _recent(times: list, now: datetime, days: int) -> list:
    horizon = clock.iso(now - timedelta(days=days))
    return [t for t in times if t >= horizon]


def deliver(candidates: Iterable[Candidate], cap_per_week: int, dry_run: bool = False) -> Counter:
    counts: Counter = Counter()
    batch: list = []
    for c in candidates:
        batch.append(c)
        if len(batch) >= BATCH:
            counts.update(_deliver_batch(batch, cap_per_week, dry_run))
            batch = []
    if batch:
        counts.update(_deliver_batch(batch, cap_per_week, dry_run))
    return counts


def _deliver_batch(batch: list, cap_per_week: int, dry_run: bool) -> Counter:
    now = clock.now()
    now_iso = clock.iso(now)
    counts: Counter = Counter(candidates=len(batch))
    logs = batch_get_outreach(c.member_id for c in batch)
    touched: dict[str, OutreachRecord] = {}
    outgoing = []
    for c in batch:
        channel = channel_for(c)
        if channel is None:
            counts["no_consent"] += 1
            continue
        msg = messaging.compose(template=c.template, member_id=c.member_id, profile=c.profile, channel=channel,
                                variables=c.variables, source=c.source, period=c.period, campaign_id=c.campaign_id)
        log = touched.get(c.member_id) or logs.get(c.member_id) or OutreachRecord(c.member_id, sent_ids={},
                                                                                   marketing=[])
        if msg["message_id"] in (log.sent_ids or {}):
            counts["duplicate"] += 1
            continue
        recent = _recent(list(log.marketing or []), now, CAP_DAYS)
        if c.kind == "marketing" and len(recent) >= cap_per_week:
            counts["capped"] += 1
            continue
        counts["eligible"] += 1
        if dry_run:
            continue
        log.sent_ids = {k: v for k, v in (log.sent_ids or {}).items()
                        if v >= clock.iso(now - timedelta(days=DEDUPE_DAYS))}
        log.sent_ids[msg["message_id"]] = now_iso
        log.marketing = recent + ([now_iso] if c.kind == "marketing" else [])
        touched[c.member_id] = log
        outgoing.append(msg)
    if outgoing:
        messaging.send(outgoing)
        batch_put(touched.values())
        counts["queued"] += len(outgoing)
        observability.count("MessagesQueued", len(outgoing))
    return counts
