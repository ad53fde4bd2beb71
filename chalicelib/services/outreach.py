"""Deliver composed messages under the rules of SPEC 2.12: consent, the weekly cap, no
duplicates, batches of 10, nothing lost (docs/MESSAGING.md).

For a chunk of candidates (at most 97 members, 300 messages):
1. read the members' outreach logs (one BatchGetItem);
2. decide each message in order with the pure rules of `domain.automations.OutreachLog`:
   no consented channel, already queued (deterministic message_id), over the cap, or
   eligible;
3. claim, in one TransactWriteItems: each touched member's log, conditional on the version
   read, and the eligible message bodies in pending items. A log another job changed in
   between fails its condition: that member is left out, re-read and decided again, so
   the cap and the dedupe hold under concurrent jobs;
4. send the claimed messages with SendMessageBatch (10 a call, failed entries retried);
5. delete the pending items.
Steps 4 and 5 of a chunk run on background threads while the next chunk goes through
1 to 3 (`_Sender`). A crash or a failed send between 3 and 5 leaves the pending items,
and `run-triggers` sends the messages whose claim is recorded (same message_ids):
at-least-once, never lost once claimed, never queued twice by a re-run.
"""
from __future__ import annotations

import random
import secrets
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from chalicelib import clock, messaging, observability
from chalicelib.domain import uplift
from chalicelib.domain.automations import OutreachLog
from chalicelib.errors import RetryLater
from chalicelib.store import attribution as attribution_store
from chalicelib.store import marketing as store

MESSAGES_PER_PENDING_ITEM = 100  # ~60 KB, far below the 400 KB item limit
MESSAGES_PER_CHUNK = 300  # at most 3 pending items
# one BatchGetItem of logs; logs + pending items + the exposure batch: one TransactWriteItems (≤ 100)
MEMBERS_PER_CHUNK = 96
ROUNDS = 8

Enrich = Callable[[list], list]


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
    control_share: str = "0"  # SPEC 2.18: the share held out (marketing messages only)


def control_key(c: Candidate, now) -> str:
    """SPEC 2.18's assignment key: the campaign's for a broadcast, else the automation's or
    trigger's with the day of the run's as_of (the pinned clock's now)."""
    if c.campaign_id:
        return uplift.control_key_broadcast(c.campaign_id, c.member_id)
    return uplift.control_key_automation(c.source, clock.iso(now)[:10], c.member_id)


def channel_for(c: Candidate) -> Optional[str]:
    consents = c.profile.get("consents") or {}
    if c.kind == "cs_alert":
        return "cs_alert"
    if c.kind == "transactional":
        return messaging.transactional_channel(consents)
    if c.channel:
        return c.channel if consents.get(c.channel) else None
    return messaging.first_consented(consents)


def deliver(candidates: Iterable[Candidate], cap_per_week: int, dry_run: bool = False,
            enrich: Optional[Enrich] = None, outcomes: Optional[dict] = None) -> Counter:
    """Decide and queue. Counts: candidates, no_consent, duplicate, capped, eligible,
    queued (and no_code when `enrich` drops a candidate). `enrich(eligible)` may fill
    variables (e.g. a coupon code) and returns the candidates that may be sent.
    `outcomes`, when given, receives id(candidate) → its final decision ('queued' once sent)."""
    counts: Counter = Counter()
    chunk: list = []
    members: set = set()
    with _Sender() as sender:
        for c in candidates:
            if c.member_id not in members and (len(members) >= MEMBERS_PER_CHUNK or len(chunk) >= MESSAGES_PER_CHUNK):
                counts.update(_deliver_chunk(chunk, cap_per_week, dry_run, enrich, outcomes, sender))
                chunk, members = [], set()
            chunk.append(c)
            members.add(c.member_id)
        if chunk:
            counts.update(_deliver_chunk(chunk, cap_per_week, dry_run, enrich, outcomes, sender))
    return counts


class _Sender:
    """Sends the claimed messages, and then drops their pending items, on background
    threads while the next chunks are read and claimed: a delivery takes about as long as
    its sends or its claims, whichever is longer, instead of their sum.

    Messages go out in full batches of ten across chunks (the few left over from a chunk
    wait for the next one). A hand-over's batches are sent by `WORKERS` threads at once (a
    standard queue keeps no order, and a send is mostly waiting on the network), and up to
    `DEPTH` hand-overs are in flight, so the senders never wait for a claim. A pending item
    is deleted (25 at a time, with a later hand-over) only once every send of its messages
    is known to have succeeded; leaving the `with` block sends the rest and drops every
    pending item left. A failed send raises at a later hand-over or on leaving the block,
    and the pending items of what was in flight stay for `run-triggers`."""

    BATCH = 10
    DELETE_EVERY = 25
    WORKERS = 4
    DEPTH = 2

    def __init__(self):
        self.pool: Optional[ThreadPoolExecutor] = None
        self.inflight: list = []  # per hand-over in flight: (futures, pending items it sends)
        self.carry: list = []  # (batch_id, message) not sent yet: fewer than ten
        self.held: list = []  # pending items not deleted yet

    def submit(self, claimed: list, batch_ids: list) -> None:
        """`claimed`: (batch_id, message) pairs whose claim committed; `batch_ids`: the
        chunk's pending items."""
        while len(self.inflight) >= self.DEPTH:
            self._finish_oldest()
        queue = self.carry + claimed
        full = len(queue) // self.BATCH * self.BATCH
        outgoing, self.carry = queue[:full], queue[full:]
        self.held.extend(batch_ids)
        busy = {b for b, _ in queue}.union(*(items for _, items in self.inflight))
        done = [b for b in self.held if b not in busy]
        drop = done if len(done) >= self.DELETE_EVERY else []
        if drop:
            self.held = [b for b in self.held if b in busy]
        self._start(outgoing, drop)

    def _start(self, outgoing: list, drop: list) -> None:
        if not outgoing and not drop:
            return
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.WORKERS, thread_name_prefix="outreach-send")
        messages = [m for _, m in outgoing]
        futures = [self.pool.submit(messaging.send, messages[i:i + self.BATCH])
                   for i in range(0, len(messages), self.BATCH)]
        if drop:
            futures.append(self.pool.submit(store.pending_delete, drop))
        self.inflight.append((futures, {b for b, _ in outgoing}))

    def _finish_oldest(self) -> None:
        futures, _ = self.inflight.pop(0)
        queued, error = 0, None
        for future in futures:  # all of them, so none is still running when this raises
            try:
                queued += future.result() or 0
            except Exception as exc:  # noqa: BLE001 - re-raised below
                error = error or exc
        if queued:
            observability.count("MessagesQueued", queued)
        if error is not None:
            raise error

    def wait(self) -> None:
        try:
            while self.inflight:
                self._finish_oldest()
        finally:
            for futures, _ in self.inflight:  # after a failure: let the rest finish, report nothing
                for future in futures:
                    future.exception()
            self.inflight = []

    def __enter__(self) -> "_Sender":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        try:
            self.wait()
            if exc_type is None:
                self._start(self.carry, [])
                self.carry = []
                self.wait()
                self._start([], self.held)
                self.held = []
                self.wait()
        finally:
            if self.pool is not None:
                self.pool.shutdown()


def _plan(cands: list, logs: dict, now, cap: int) -> tuple[list, dict]:
    """[(candidate, channel, message_id, decision)] in order, and each member's new log."""
    state: dict[str, OutreachLog] = {}
    decisions = []
    for c in cands:
        channel = channel_for(c)
        if channel is None:
            decisions.append((c, None, None, "no_consent"))
            continue
        mid = messaging.message_id(c.source, c.member_id, c.period)
        log = state.get(c.member_id)
        if log is None:
            rec = logs.get(c.member_id)
            log = state[c.member_id] = OutreachLog(dict(rec.sent or {}) if rec else {},
                                                   list(rec.marketing or []) if rec else [])
        held_out = c.kind == "marketing" and c.control_share not in ("0", "", None) and \
            uplift.in_control(control_key(c, now), c.control_share)
        decision = log.decide(mid, c.kind, now, cap)
        if decision == "eligible" and held_out:
            # SPEC 2.18: after consent, cap and dedupe. Recorded in the log with the same time
            # (so a re-run finds it), without a marketing send: no cap used, no message.
            decision = "control"
            log.record(mid, "control", now)
        elif decision == "eligible":
            log.record(mid, c.kind, now)
        elif decision == "duplicate" and held_out:
            decision = "control_recorded"  # held out by an earlier run of the same period
        decisions.append((c, channel, mid, decision))
    return decisions, state


def _exposures(decisions: list) -> list:
    """The chunk's new treatment and control records (marketing messages only): written in
    the claims' transaction as one exposure batch (docs/UPLIFT.md)."""
    return [{"m": c.member_id, "s": c.source, "p": c.period, "mid": mid,
             "g": "control" if d == "control" else "treatment"}
            for c, _, mid, d in decisions if d == "control" or (d == "eligible" and c.kind == "marketing")]


def _deliver_chunk(chunk: list, cap: int, dry_run: bool, enrich: Optional[Enrich],
                   outcomes: Optional[dict], sender: _Sender) -> Counter:
    counts: Counter = Counter(candidates=len(chunk))
    outcomes = {} if outcomes is None else outcomes
    todo = list(chunk)
    for attempt in range(ROUNDS):
        if not todo:
            return counts
        now = clock.now()
        logs = store.batch_get_outreach(c.member_id for c in todo)
        decisions, state = _plan(todo, logs, now, cap)
        if dry_run:
            counts.update("control" if d == "control_recorded" else d for *_, d in decisions)
            outcomes.update((id(d[0]), "control" if d[3] == "control_recorded" else d[3]) for d in decisions)
            return counts
        if enrich:
            eligible = [d[0] for d in decisions if d[3] == "eligible"]
            kept = {id(c) for c in enrich(eligible)} if eligible else set()
            dropped = [c for c in eligible if id(c) not in kept]
            if dropped:
                counts["no_code"] += len(dropped)
                outcomes.update((id(c), "no_code") for c in dropped)
                gone = {id(c) for c in dropped}
                todo = [c for c in todo if id(c) not in gone]
                decisions, state = _plan(todo, logs, now, cap)
        touched = list(dict.fromkeys(d[0].member_id for d in decisions if d[3] in ("eligible", "control")))
        done = _claim_and_send(decisions, touched, state, logs, now, sender)
        # `done`: the members whose claim committed, plus those with nothing to claim.
        finished = [d for d in decisions if d[0].member_id in done]
        counts.update("control" if d == "control_recorded" else d for *_, d in finished)
        counts["queued"] += sum(1 for d in finished if d[3] == "eligible")
        outcomes.update((id(d[0]), "queued" if d[3] == "eligible" else
                         "control" if d[3] == "control_recorded" else d[3]) for d in finished)
        todo = [c for c in todo if c.member_id not in done]
        if todo:
            time.sleep(random.uniform(0, 0.01 * (2 ** attempt)))
    if todo:
        raise RetryLater(f"could not claim messages for {len({c.member_id for c in todo})} members")
    return counts


def _claim_and_send(decisions: list, touched: list, state: dict, logs: dict, now, sender: _Sender) -> set:
    """Record the pending messages, claim them (conditional writes of the logs in one
    transaction), hand what was claimed to `sender` (which sends it, then drops the pending
    items). Returns the members finished; members whose log changed since it was read are
    left out (the caller re-reads them)."""
    finished = {d[0].member_id for d in decisions} - set(touched)
    if not touched:
        return finished
    by_member: dict[str, list] = {m: [] for m in touched}
    for c, channel, mid, decision in decisions:
        if decision == "eligible":
            by_member[c.member_id].append(messaging.compose(
                template=c.template, member_id=c.member_id, profile=c.profile, channel=channel,
                variables=c.variables, source=c.source, period=c.period, campaign_id=c.campaign_id, mid=mid))
    everything = [m for msgs in by_member.values() for m in msgs]
    batches = {"pm_" + secrets.token_hex(10): everything[i:i + MESSAGES_PER_PENDING_ITEM]
               for i in range(0, len(everything), MESSAGES_PER_PENDING_ITEM)}
    batch_of = {id(msg): b for b, msgs in batches.items() for msg in msgs}
    writes = []
    for m in touched:
        rec, log = logs.get(m), state[m].pruned(now)
        writes.append((m, int(rec.version or 0) if rec else None, log.sent, log.marketing))
    exposures = _exposures(decisions)
    extra = [attribution_store.exposure_batch_op(exposures, now)] if exposures else []
    committed = store.claim_outreach(writes, batches, extra)
    claimed = [m for m in touched if m in committed]
    sender.submit([(batch_of[id(msg)], msg) for m in claimed for msg in by_member[m]], list(batches))
    return finished | set(claimed)


def flush_pending(older_than: str) -> int:
    """Messages left pending before `older_than` by a crash or a failed send: the ones whose
    claim is in the member's log are sent (with their original ids, so a consumer can
    dedupe the rare second copy); unclaimed ones were never decided and are dropped (the
    job or request that made them re-decides on its re-run)."""
    sent = 0
    for rec in store.stale_pending(older_than):
        logs = store.batch_get_outreach(m["member_id"] for m in rec.messages)
        claimed = [m for m in rec.messages
                   if m["message_id"] in ((logs[m["member_id"]].sent or {}) if m["member_id"] in logs else {})]
        if claimed:
            messaging.send(claimed)
        store.pending_delete([rec.batch_id])
        sent += len(claimed)
    return sent
