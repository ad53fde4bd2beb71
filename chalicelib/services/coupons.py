"""Coupon campaigns (SPEC 2.9, 2.10): campaigns, code generation, issuing, validate,
redeem and rollback. The design (sharded limits, revision checks, caches) is explained
in docs/COUPONS.md.

Redeem, the hot path, costs one TransactGetItems (the order's redemption record, the
member and, unless the shared code is already known to this process, the code) and one
TransactWriteItems:

    0 redemption record   put, condition: no redemption for this order yet (idempotency)
    1 member's wallet     ADD uses 1, condition: uses < max_per_member
    2 one counter shard   ADD used 1, condition: rev = the definition we judged by
                          (and used < cap when the campaign is limited)
    3 unique code         SET redeemed, condition: still in the state we read

The campaign definition comes from a short per-process cache; condition 2 makes a stale
copy harmless: every change of the definition rewrites `rev` on every shard in the same
transaction, so a redemption judged by an old definition fails and is judged again.

SPEC 2.20 adds two more conditions to the same transaction (docs/RULES.md):
- stacking: the order's coupon record (`store.order_key`) counts its redemptions in force
  and the non-stackable ones among them; a non-stackable coupon needs `active = 0`, any
  coupon needs `exclusive = 0`; a rollback decrements them in its own transaction.
- the money budget: `budget_amount` is sliced over the shards like the count limit; a
  redemption takes its discount from one or more slices (`spent <= budget - part` on each),
  so the slices never sum past the budget, and COUPON_BUDGET_EXHAUSTED comes only after a
  fresh read shows all slices together lack the room.
"""
from __future__ import annotations

import random
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from chalicelib import clock, messaging, observability
from chalicelib.domain.hashing import canonical_hash
from chalicelib.config import get_settings
from chalicelib.domain import coupons as rules_
from chalicelib.domain import events
from chalicelib.domain.codes import normalize
from chalicelib.errors import (
    AlreadyExists,
    CouponRejected,
    CurrencyMismatch,
    IdempotencyMismatch,
    MemberInactive,
    MemberNotFound,
    NotFound,
    RetryLater,
    ValidationFailed,
)
from chalicelib.schemas.coupons import MAX_CODES_PER_CAMPAIGN, READ_ONLY_FIELDS, CampaignDefinition
from chalicelib.services import audit, program
from chalicelib.store import coupons as store
from chalicelib.store import tx
from chalicelib.store.base import Conflict, retrying
from chalicelib.store.coupons import (
    SHARDS,
    CampaignRecord,
    CodeRecord,
    CounterRecord,
    OrderCouponsRecord,
    RedemptionRecord,
    WalletRecord,
)
from chalicelib.services.uow import UnitOfWork
from chalicelib.store import members as member_store
from chalicelib.store.models import MemberRecord

CAMPAIGN_CACHE_SECONDS = 5.0
SYNC_GENERATION_LIMIT = 10_000  # above this, POST .../codes answers 202 and a job generates
GENERATION_CHUNK = 5_000  # codes per checkpoint
ISSUE_GROUP = 24  # members per issuing transaction: code, wallet, message, event each (≤ 97 items with the counter)
REDEEM_ATTEMPTS = 16
LONG_CODE_LENGTH = 12  # 60 bits: batch writes; shorter patterns use conditional puts
_CODE_SHAPE = re.compile(r"^[A-Z0-9]{1,64}$")
_STATUS_MOVES = {"draft": {"draft", "active", "paused", "ended"}, "active": {"active", "paused", "ended"},
                 "paused": {"paused", "active", "ended"}, "ended": {"ended"}}
_IMMUTABLE = ("campaign_id", "code_mode", "shared_code", "code_pattern")


# --- the campaign as the services see it ---------------------------------------------------

@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    rev: str
    definition: dict
    caps: tuple
    budgets: Optional[tuple]
    codes: int
    created_at: Optional[str]
    updated_at: Optional[str]
    rules: rules_.Rules

    @property
    def mode(self) -> str:
        return self.definition["code_mode"]

    @property
    def shards(self) -> int:
        return len(self.caps)

    @property
    def stackable(self) -> bool:
        return bool(self.definition.get("stackable", False))

    @classmethod
    def from_record(cls, rec: CampaignRecord) -> "Campaign":
        d = rec.data
        caps = tuple(rec.caps) if rec.caps else tuple(rules_.shard_caps(d.get("max_redemptions"), SHARDS))
        budgets = tuple(rec.budgets) if rec.budgets and d.get("budget_amount") is not None else None
        return cls(rec.campaign_id, rec.rev, d, caps, budgets, int(rec.codes or 0), rec.created_at,
                   rec.updated_at, _rules(d))


def _rules(d: dict) -> rules_.Rules:
    aud = d.get("audience") or {}
    return rules_.Rules(
        discount_type=d["discount"]["type"], discount_value=int(d["discount"].get("value") or 0),
        min_order_amount=int(d.get("min_order_amount") or 0),
        categories=frozenset(d["categories"]) if d.get("categories") else None,
        starts_at=clock.parse_instant(d["starts_at"]), ends_at=clock.parse_instant(d["ends_at"]),
        status=d["status"], max_per_member=int(d.get("max_per_member") or 1),
        audience_tiers=frozenset(aud["tiers"]) if aud.get("tiers") else None,
        audience_segments=frozenset(aud["segments"]) if aud.get("segments") else None,
        audience_members=frozenset(aud["member_ids"]) if aud.get("member_ids") else None)


def _definition_json(model: CampaignDefinition) -> dict:
    d = model.model_dump(mode="json")
    d["starts_at"] = clock.iso(model.starts_at)
    d["ends_at"] = clock.iso(model.ends_at)
    return d


def _new_rev() -> str:
    return secrets.token_hex(8)


# --- per-process caches (bound to the settings object, so tests and stages never mix) -------

_lock = threading.Lock()
_cache: dict[str, Any] = {"settings": None}


def _c() -> dict:
    settings = get_settings()
    if _cache.get("settings") is not settings:
        with _lock:
            if _cache.get("settings") is not settings:
                _cache.clear()
                _cache.update(settings=settings, campaigns={}, shared={}, full={}, rooms={})
    return _cache


def _remember(camp: Campaign) -> Campaign:
    cache = _c()["campaigns"]
    if len(cache) > 10_000:
        cache.clear()
    cache[camp.campaign_id] = (time.monotonic(), camp)
    return camp


def forget(campaign_id: str) -> None:
    _c()["campaigns"].pop(campaign_id, None)


def _fresh(campaign_id: str) -> Optional[Campaign]:
    rec = store.get_campaign(campaign_id)
    if rec is None or rec.data is None:
        return None
    return _remember(Campaign.from_record(rec))


def _cached(campaign_id: str) -> tuple[Optional[Campaign], bool]:
    hit = _c()["campaigns"].get(campaign_id)
    if hit and time.monotonic() - hit[0] < CAMPAIGN_CACHE_SECONDS:
        return hit[1], True
    return _fresh(campaign_id), False


def require(campaign_id: str) -> Campaign:
    camp = _fresh(campaign_id)
    if camp is None:
        raise NotFound("no such coupon campaign", campaign_id=campaign_id)
    return camp


# --- admin: campaigns ------------------------------------------------------------------------

def view(camp: Campaign, totals: Optional[dict] = None) -> dict:
    totals = totals or {"used": 0, "issued": 0}
    d = {"stackable": False, "budget_amount": None, **camp.definition}
    return {**d, "created_at": camp.created_at, "updated_at": camp.updated_at,
            "stats": rules_.stats(camp.mode, camp.codes, int(totals["issued"]), int(totals["used"]),
                                  int(totals.get("spent", 0)))}


def create(body, actor: str) -> dict:
    """Create a campaign with its counter shards (and its shared code); 409 on a taken id or code."""
    d = _definition_json(body)
    cid = d["campaign_id"]
    now = clock.now()
    rev = _new_rev()
    caps = rules_.shard_caps(d["max_redemptions"], SHARDS)
    budgets = rules_.shard_caps(d["budget_amount"], SHARDS) if d.get("budget_amount") is not None else None
    shared = d["code_mode"] == "shared"
    rec = CampaignRecord(cid, rev=rev, data=d, caps=caps, budgets=budgets, codes=1 if shared else 0, reserved=0,
                         created_at=clock.iso(now), updated_at=clock.iso(now), list_pk=store.LIST_PK,
                         created_sk=f"{clock.sortable(now)}#{cid}")
    ops = [tx.put(rec, CampaignRecord.campaign_id.does_not_exist())]
    ops += [tx.put(CounterRecord(store.shard_key(cid, n), cap=caps[n], used=0, issued=0, rev=rev, spent=0,
                                 budget=budgets[n] if budgets else None))
            for n in range(SHARDS)]
    code_index = len(ops)
    if shared:
        ops.append(tx.put(CodeRecord(d["shared_code"], campaign_id=cid, kind="shared"),
                          CodeRecord.code.does_not_exist()))
    ops.append(audit.entry_op(actor, "coupon_campaign.create", target=cid, details={"definition": d}))
    try:
        tx.write(ops)
    except tx.TxCancelled as c:
        if c.failed(0):
            raise AlreadyExists("a coupon campaign with this id exists", campaign_id=cid)
        if shared and c.failed(code_index):
            raise AlreadyExists("this code is already in use", shared_code=d["shared_code"])
        raise
    return view(_remember(Campaign.from_record(rec)))


def get(campaign_id: str) -> dict:
    camp = require(campaign_id)
    return _with_revenue([view(camp, store.shard_totals({campaign_id: camp.shards})[campaign_id])])[0]


def list_campaigns(limit: int, cursor: Optional[dict]) -> tuple[list[dict], Optional[dict]]:
    recs, last = store.campaigns_page(limit, cursor)
    camps = [Campaign.from_record(r) for r in recs if r.data is not None]
    totals = store.shard_totals({c.campaign_id: c.shards for c in camps}) if camps else {}
    return _with_revenue([view(c, totals[c.campaign_id]) for c in camps]), last


def _with_revenue(views: list[dict]) -> list[dict]:
    """SPEC 2.18: stats gain `revenue` once measure-campaigns has run (docs/UPLIFT.md)."""
    from chalicelib.services import attribution

    return attribution.with_coupon_revenue(views)


def patch(campaign_id: str, body, actor: str) -> dict:
    """Change fields (and pause, resume or end through `status`). A new `max_redemptions` is
    re-sliced over the shards from their current use, in the same transaction."""
    dumped = body.model_dump(mode="json")
    changes = {k: dumped[k] for k in body.model_fields_set if k not in READ_ONLY_FIELDS}

    def attempt():
        camp = require(campaign_id)
        current = camp.definition
        for key in _IMMUTABLE:
            if key in changes and changes[key] != current.get(key):
                raise ValidationFailed(f"{key} cannot change after creation",
                                       fields=[{"field": key, "message": "fixed at creation"}])
        if "status" in changes and changes["status"] not in _STATUS_MOVES[current["status"]]:
            raise ValidationFailed(f"a campaign cannot go from {current['status']} to {changes['status']}",
                                   fields=[{"field": "status", "message": "transition not allowed"}])
        new_def = _definition_json(CampaignDefinition.model_validate({**current, **changes}))
        _, shards = store.get_shards(campaign_id, camp.shards)
        used = [int(s.used or 0) if s is not None else 0 for s in shards]
        spent = [int(s.spent or 0) if s is not None else 0 for s in shards]
        limit_changed = new_def["max_redemptions"] != current.get("max_redemptions")
        caps = rules_.redistribute(new_def["max_redemptions"], used) if limit_changed else list(camp.caps)
        # the money budget is re-sliced the same way, from what each slice has spent (SPEC 2.20)
        budget_changed = new_def.get("budget_amount") != current.get("budget_amount")
        budgets = (rules_.redistribute(new_def.get("budget_amount"), spent) if budget_changed
                   else list(camp.budgets) if camp.budgets else None)
        if budgets is not None and all(b is None for b in budgets):
            budgets = None
        rev = _new_rev()
        now = clock.iso(clock.now())
        ops = [tx.update(CampaignRecord(campaign_id),
                         [CampaignRecord.data.set(new_def), CampaignRecord.rev.set(rev),
                          CampaignRecord.caps.set(caps), CampaignRecord.updated_at.set(now)]
                         + ([CampaignRecord.budgets.set(budgets)] if budgets else [CampaignRecord.budgets.remove()]),
                         CampaignRecord.rev == camp.rev)]
        for n in range(camp.shards):
            actions = [CounterRecord.rev.set(rev)]
            condition = None
            if limit_changed:
                actions.append(CounterRecord.cap.set(caps[n]) if caps[n] is not None else CounterRecord.cap.remove())
                condition = CounterRecord.used == used[n]
            if budget_changed:
                actions.append(CounterRecord.budget.set(budgets[n]) if budgets else CounterRecord.budget.remove())
                same = (CounterRecord.spent == spent[n]) if spent[n] else (
                    CounterRecord.spent.does_not_exist() | (CounterRecord.spent == 0))
                condition = same if condition is None else condition & same
            ops.append(tx.update(CounterRecord(store.shard_key(campaign_id, n)), actions, condition))
        ops.append(audit.entry_op(actor, "coupon_campaign.update", target=campaign_id, details={"changes": changes}))
        try:
            tx.write(ops)
        except tx.TxCancelled:
            raise Conflict()
        forget(campaign_id)
        return get(campaign_id)

    return retrying()(attempt)


# --- admin: code generation ----------------------------------------------------------------------

def _pattern(camp: Campaign) -> tuple[str, int]:
    p = camp.definition.get("code_pattern") or {}
    return p.get("prefix") or "", int(p.get("length") or LONG_CODE_LENGTH)


def code_capacity(length: int) -> int:
    """Codes a campaign may hold: SPEC's 1,000,000, and for short patterns at most a quarter of
    the code space, so conditional puts rarely collide."""
    return min(MAX_CODES_PER_CAMPAIGN, (2 ** rules_.code_bits(length)) // 4)


def request_codes(campaign_id: str, count: int, actor: str) -> tuple[int, dict]:
    """POST .../codes: up to SYNC_GENERATION_LIMIT inline (201), else a background job (202)."""
    camp = require(campaign_id)
    if camp.mode != "unique":
        raise ValidationFailed("a shared-code campaign has its one code",
                               fields=[{"field": "count", "message": "code_mode is shared"}])
    if camp.rules.status == "ended":
        raise CouponRejected(rules_.INACTIVE, "the campaign has ended")
    _, length = _pattern(camp)
    capacity = code_capacity(length)
    if count > capacity:
        raise ValidationFailed(f"at most {capacity} codes for this campaign",
                               fields=[{"field": "count", "message": f"at most {capacity}"}])
    gen_id = secrets.token_hex(6)
    details = {"count": count, "gen_id": gen_id, "mode": "inline" if count <= SYNC_GENERATION_LIMIT else "job"}
    try:
        tx.write([tx.update(CampaignRecord(campaign_id), [CampaignRecord.reserved.add(count)],
                            CampaignRecord.reserved <= capacity - count),
                  audit.entry_op(actor, "coupon_campaign.generate_codes", target=campaign_id, details=details)])
    except tx.TxCancelled:
        raise ValidationFailed(f"the campaign would hold more than {capacity} codes",
                               fields=[{"field": "count", "message": f"at most {capacity} in all"}])
    if count <= SYNC_GENERATION_LIMIT:
        generate(campaign_id, count, gen_id)
        camp = require(campaign_id)
        return 201, {"campaign_id": campaign_id, "generated": count, "codes_total": camp.codes}
    from chalicelib.jobs import framework

    job = framework.start("generate-coupon-codes", clock.now(), actor,
                          {"campaign_id": campaign_id, "count": count, "gen_id": gen_id}, wait_seconds=0)
    return 202, {"campaign_id": campaign_id, "job_id": job["job_id"], "status": job["status"], "count": count}


def generate_codes(campaign_id: str, count: int, actor: str = "system") -> dict:
    """Generate `count` codes now, whatever the count (benchmarks, CLI, jobs)."""
    camp = require(campaign_id)
    _, length = _pattern(camp)
    capacity = code_capacity(length)
    try:
        tx.write([tx.update(CampaignRecord(campaign_id), [CampaignRecord.reserved.add(count)],
                            CampaignRecord.reserved <= capacity - count)])
    except tx.TxCancelled:
        raise ValidationFailed(f"the campaign would hold more than {capacity} codes")
    generated = generate(campaign_id, count, secrets.token_hex(6))
    return {"campaign_id": campaign_id, "generated": generated, "codes_total": require(campaign_id).codes}


def generate(campaign_id: str, count: int, gen_id: str, progress=None) -> int:
    """Write `count` new unissued codes; resumable and exact.

    Each chunk is announced first (its candidate codes saved in the generation checkpoint,
    `seq` odd), then written, then committed (`seq` even, `done` and the campaign's `codes`
    counter raised in one transaction). A run that stopped between announce and commit
    finds the pending chunk on restart, writes only the codes that are missing and commits:
    the total never overshoots `count`. (Short codes carry their chunk's tag, so a colliding
    code of someone else is never counted as ours.)
    """
    camp = require(campaign_id)
    prefix, length = _pattern(camp)
    long_codes = length >= LONG_CODE_LENGTH
    chunk_size = max(100, min(GENERATION_CHUNK, 200_000 // (len(prefix) + length + 4)))
    gkey = store.gen_key(campaign_id, gen_id)
    rec = store.get_gen(campaign_id, gen_id)
    if rec is None:
        rec = CampaignRecord(gkey, seq=0, gen={"count": count, "done": 0, "pending": None})
        try:
            tx.write([tx.put(rec, CampaignRecord.campaign_id.does_not_exist())])
        except tx.TxCancelled:
            rec = store.get_gen(campaign_id, gen_id)
    seq, state = int(rec.seq or 0), dict(rec.gen)
    count = int(state["count"])
    resumed = bool(state.get("pending"))  # a pending chunk from an earlier run: check what exists
    barren = 0
    while True:
        if state.get("pending"):
            written = _write_chunk(campaign_id, state["pending"], long_codes, check_existing=resumed)
            resumed = False
            done = int(state["done"]) + written
            try:
                tx.write([tx.update(CampaignRecord(gkey), [CampaignRecord.seq.set(seq + 1), CampaignRecord.gen.set(
                    {"count": count, "done": done, "pending": None})], CampaignRecord.seq == seq),
                    tx.update(CampaignRecord(campaign_id), [CampaignRecord.codes.add(written)])])
            except tx.TxCancelled:  # another run committed it: continue from its state
                rec = store.get_gen(campaign_id, gen_id)
                seq, state, resumed = int(rec.seq), dict(rec.gen), True
                continue
            seq, state = seq + 1, {"count": count, "done": done, "pending": None}
            if progress:
                progress(written)
            barren = barren + 1 if written == 0 else 0
            if barren >= 3:
                raise RetryLater("the code space of this pattern is exhausted")
        if state["done"] >= count:
            return int(state["done"])
        n = min(chunk_size, count - int(state["done"]))
        pending = {"tag": f"{gen_id}:{seq + 1}", "codes": rules_.random_codes(n, length, prefix)}
        new_state = {**state, "pending": pending}
        try:
            tx.write([tx.update(CampaignRecord(gkey), [CampaignRecord.seq.set(seq + 1),
                                                       CampaignRecord.gen.set(new_state)],
                                CampaignRecord.seq == seq)])
        except tx.TxCancelled:
            rec = store.get_gen(campaign_id, gen_id)
            seq, state, resumed = int(rec.seq), dict(rec.gen), True
            continue
        seq, state = seq + 1, new_state


def _write_chunk(campaign_id: str, pending: dict, long_codes: bool, check_existing: bool) -> int:
    """Write an announced chunk; returns how many of its codes are now ours. On a resume,
    codes already there are not written again (a long code found is ours: 60 random bits
    do not collide; a short one is ours only if it carries this chunk's tag)."""
    tag, candidates = pending["tag"], pending["codes"]
    ours = 0
    todo = list(enumerate(candidates))
    if check_existing:
        found = store.existing_codes(candidates)
        ours = sum(1 for c in candidates if c in found and (long_codes or found[c] == tag))
        todo = [(i, c) for i, c in todo if c not in found]
    if long_codes:
        store.parallel_batch_put("coupon-codes", [store.code_item(c, campaign_id, i) for i, c in todo])
        return ours + len(todo)
    return ours + _conditional_puts([store.code_item(c, campaign_id, i, tag) for i, c in todo])


def _conditional_puts(items: Sequence[dict], workers: int = 8) -> int:
    if not items:
        return 0
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return sum(pool.map(lambda item: store.put_if_absent("coupon-codes", item, "code"), items))


# --- admin: issuing ------------------------------------------------------------------------------

def _facts(rec: MemberRecord) -> rules_.MemberFacts:
    state = rec.state or {}
    return rules_.MemberFacts(rec.member_id, (state.get("tier") or {}).get("tier_id"),
                              (state.get("segment") or {}).get("label"))


def _audience_members(audience: dict) -> list[str]:
    """Members an issuing audience selects: its member_ids, plus active members matching all of
    its tier and segment filters (a scan: issuing by audience is a marketer's batch action)."""
    ids = list(audience.get("member_ids") or [])
    tiers, segments = audience.get("tiers"), audience.get("segments")
    if tiers or segments:
        for rec in MemberRecord.scan(MemberRecord.status == "active"):
            if rules_.matches_audience(tiers, segments, None, _facts(rec)):
                ids.append(rec.member_id)
    return ids


class _Issuer:
    """Assigns codes to members in transactions of ISSUE_GROUP members each."""

    def __init__(self, camp: Campaign, notify: bool, plan: rules_.IssuePlan):
        self.camp = camp
        self.notify = notify
        self.plan = plan
        self.queue: list[str] = []
        self.cursors: dict = {}

    def run(self, member_ids: Sequence[str]) -> None:
        cid = self.camp.campaign_id
        recs = {r.member_id: r for r in MemberRecord.batch_get(list(member_ids), consistent_read=True)}
        wallets = store.batch_get_wallets(list(member_ids), cid)
        todo = []
        for m in member_ids:
            rec = recs.get(m)
            if rec is None:
                self.plan.not_found += 1
            elif rec.status != "active":
                self.plan.inactive += 1
            elif not rules_.in_audience(self.camp.rules, _facts(rec)):
                self.plan.ineligible += 1
            elif wallets.get(m) is not None and wallets[m].code:
                self.plan.already_issued += 1
                self.plan.codes[m] = wallets[m].code
            else:
                todo.append(rec)
        for i in range(0, len(todo), ISSUE_GROUP):
            self._group(todo[i:i + ISSUE_GROUP])

    def _take_codes(self, n: int) -> list[str]:
        if self.camp.mode == "shared":
            return [self.camp.definition["shared_code"]] * n
        if len(self.queue) < n:
            self.queue += store.unissued_codes(self.camp.campaign_id, max(n - len(self.queue), ISSUE_GROUP * 4),
                                               self.cursors)
        taken, self.queue = self.queue[:n], self.queue[n:]
        return taken

    def _message(self, rec: MemberRecord, code: str) -> Optional[dict]:
        if not self.notify:
            return None
        profile = rec.profile or {}
        channel = messaging.first_consented(profile.get("consents"))
        if channel is None:  # a marketing message goes only to a consented channel
            return None
        d = self.camp.definition
        return messaging.compose(
            template="coupon_issued", member_id=rec.member_id, profile=profile, channel=channel,
            variables={"coupon_code": code, "campaign_name": d["name"], "discount_type": d["discount"]["type"],
                       "discount_value": d["discount"]["value"], "ends_at": d["ends_at"]},
            source="coupon_issued", period=self.camp.campaign_id, campaign_id=self.camp.campaign_id)

    def _group(self, group: list) -> None:
        cid = self.camp.campaign_id
        unique = self.camp.mode == "unique"
        assigned: dict[str, str] = {}
        already: list[str] = []
        for _attempt in range(12):
            missing = [r for r in group if r.member_id not in assigned]
            codes = self._take_codes(len(missing))
            for rec, code in zip(missing, codes):
                assigned[rec.member_id] = code
            if len(codes) < len(missing):  # the pool ran dry
                self.plan.out_of_codes += len(missing) - len(codes)
                group = [r for r in group if r.member_id in assigned]
            if not group:
                break
            now = clock.now()
            at, sk = clock.iso(now), f"{clock.sortable(now)}#{cid}"
            ops, index, messages = [], {}, []
            for rec in group:
                m, code = rec.member_id, assigned[rec.member_id]
                if unique:
                    index[len(ops)] = ("code", m)
                    ops.append(tx.update(CodeRecord(code, campaign_id=cid), [
                        CodeRecord.status.set("issued"), CodeRecord.member_id.set(m), CodeRecord.issued_at.set(at),
                        CodeRecord.pool.remove()], CodeRecord.status.does_not_exist()))
                index[len(ops)] = ("wallet", m)
                ops.append(tx.update(WalletRecord(m, cid), [
                    WalletRecord.code.set(code), WalletRecord.issued_at.set(at), WalletRecord.issued_sk.set(sk),
                    WalletRecord.uses.add(0)], WalletRecord.code.does_not_exist()))
                msg = self._message(rec, code)
                if msg is not None:
                    messages.append(msg)
            ops.append(tx.update(CounterRecord(store.shard_key(cid, random.randrange(self.camp.shards))),
                                 [CounterRecord.issued.add(len(group))]))
            uow = UnitOfWork()
            anchor = min(i for i, (kind, _) in index.items() if kind == "wallet")
            for i, op in enumerate(ops):
                uow.add(op, anchor=WalletRecord if i == anchor else None)
            uow.publish(messages)  # outbox rows after every indexed op
            uow.publish_events([{**events.envelope("coupon.issued", f"{cid}:{rec.member_id}", rec.member_id, at,
                                                   {"campaign_id": cid, "code": assigned[rec.member_id],
                                                    "member_id": rec.member_id, "issued_at": at}),
                                 "sequence": int(rec.version or 0) * events.SEQUENCE_STEP + 50} for rec in group])
            try:
                uow.commit()
            except tx.TxCancelled as c:
                failed = {index[i] for i in index if c.failed(i)}
                for kind, m in sorted(failed):
                    if kind == "code":  # someone else took this code: draw another
                        assigned.pop(m, None)
                    else:  # the member holds a code of this campaign already
                        already.append(m)
                        code = assigned.pop(m, None)
                        if unique and code and ("code", m) not in failed:
                            self.queue.insert(0, code)  # still unissued: give it to someone else
                        group = [r for r in group if r.member_id != m]
                continue
            except Conflict:
                time.sleep(random.uniform(0, 0.05))
                continue
            self.plan.issued += len(group)
            self.plan.notified += len(messages)
            for rec in group:
                self.plan.codes[rec.member_id] = assigned[rec.member_id]
            break
        else:
            raise RetryLater("issuing met too much contention; retry (issuing is idempotent per member)")
        if already:
            self.plan.already_issued += len(already)
            for m, w in store.batch_get_wallets(already, cid).items():
                if w.code:
                    self.plan.codes[m] = w.code


def issue(campaign_id: str, member_ids: Optional[Sequence[str]], audience: Optional[dict], notify: bool,
          actor: str) -> rules_.IssuePlan:
    """Put codes in members' wallets: one per member per campaign (re-issuing is a no-op), only
    to active members in the campaign's audience; unique campaigns draw unissued codes."""
    camp = require(campaign_id)
    if camp.rules.status == "ended":
        raise CouponRejected(rules_.INACTIVE, "the campaign has ended")
    if clock.now() > camp.rules.ends_at:
        raise CouponRejected(rules_.EXPIRED, "the campaign is over")
    selected = list(dict.fromkeys([*(member_ids or []), *(_audience_members(audience) if audience else [])]))
    plan = rules_.IssuePlan()
    issuer = _Issuer(camp, notify, plan)
    for i in range(0, len(selected), 100):
        issuer.run(selected[i:i + 100])
    audit.record(actor, "coupon_campaign.issue", target=campaign_id,
                 details={**plan.counts(), "selected": len(selected), "notify": notify})
    return plan


def issue_codes(campaign_id: str, member_ids: Sequence[str], notify: bool = False,
                actor: str = "system") -> dict[str, str]:
    """For message campaigns: each given member's code of this campaign (issued now, or the one
    they already hold). Members who cannot get one (unknown, inactive, outside the campaign's
    audience, no unissued code left) are absent from the result."""
    return issue(campaign_id, member_ids, None, notify, actor).codes


# --- the member's wallet --------------------------------------------------------------------------

def wallet(member_id: str, limit: int, cursor: Optional[dict]) -> tuple[list[dict], Optional[dict]]:
    from chalicelib.services import members

    members.require(member_id)
    records, last = store.wallet_page(member_id, limit, cursor)
    now = clock.now()
    camps: dict[str, Campaign] = {}
    missing = []
    for w in records:
        camp, _ = _cached_only(w.campaign_id)
        if camp is None:
            missing.append(w.campaign_id)
        else:
            camps[w.campaign_id] = camp
    for cid, rec in store.batch_get_campaigns(missing).items():
        camps[cid] = _remember(Campaign.from_record(rec))
    items = []
    for w in records:
        camp = camps.get(w.campaign_id)
        if camp is None:
            continue
        d = camp.definition
        items.append({"code": w.code, "campaign_id": w.campaign_id, "name": d["name"], "discount": d["discount"],
                      "status": rules_.wallet_status(camp.mode, camp.rules, now, int(w.uses or 0), bool(w.redeemed)),
                      "issued_at": w.issued_at, "ends_at": d["ends_at"], "starts_at": d["starts_at"],
                      "min_order_amount": d["min_order_amount"], "uses": int(w.uses or 0),
                      "max_per_member": d["max_per_member"]})
    return items, last


def _cached_only(campaign_id: str) -> tuple[Optional[Campaign], bool]:
    hit = _c()["campaigns"].get(campaign_id)
    if hit and time.monotonic() - hit[0] < CAMPAIGN_CACHE_SECONDS:
        return hit[1], True
    return None, False


# --- checkout: validate, redeem, rollback -------------------------------------------------------------

def _check_currency(order) -> None:
    expected = program.settings().currency
    if order.currency is not None and order.currency != expected:
        raise CurrencyMismatch(expected=expected, got=order.currency)


def _lines(order) -> list[rules_.Line]:
    return [rules_.Line(i.category, i.amount) for i in (order.items or [])]


def _code_facts(code_rec: Optional[CodeRecord]) -> rules_.CodeFacts:
    if code_rec is None or code_rec.kind != "unique":
        return rules_.CodeFacts()
    owner = code_rec.member_id if code_rec.status in ("issued", "redeemed") else None
    return rules_.CodeFacts(owner=owner, redeemed=code_rec.status == "redeemed")


def _shared_campaign(code: str) -> Optional[str]:
    return _c()["shared"].get(code)


def _remember_shared(code: str, campaign_id: str) -> None:
    shared = _c()["shared"]
    if len(shared) > 10_000:
        shared.clear()
    shared[code] = campaign_id  # a shared code never moves to another campaign


def validate(body) -> dict:
    """Would this code apply to this order for this member? Nothing is written."""
    _check_currency(body.order)
    code = normalize(body.code)
    plausible = bool(_CODE_SHAPE.match(code))
    keys = [(MemberRecord, body.member_id)] + ([(CodeRecord, code)] if plausible else [])
    got = tx.get_many(*keys)
    member = got[0]
    code_rec = got[1] if plausible else None
    if member is None:
        raise MemberNotFound(member_id=body.member_id)
    if member.status != "active":
        return {"valid": False, "discount_amount": 0, "reason": MemberInactive.code}
    if code_rec is None:
        observability.count("CouponCodeNotFound", route="validate")  # enumeration alarm (docs/COUPONS.md)
        return {"valid": False, "discount_amount": 0, "reason": rules_.NOT_FOUND}
    cid = code_rec.campaign_id
    known, _ = _cached(cid)  # a campaign's shard count never changes
    if known is None:
        return {"valid": False, "discount_amount": 0, "reason": rules_.NOT_FOUND}
    reads = tx.get_many((CampaignRecord, cid), (WalletRecord, body.member_id, cid),
                        *[(CounterRecord, store.shard_key(cid, n)) for n in range(known.shards)])
    camp_rec, wallet_rec, shards = reads[0], reads[1], reads[2:]
    if camp_rec is None or camp_rec.data is None:
        return {"valid": False, "discount_amount": 0, "reason": rules_.NOT_FOUND}
    camp = _remember(Campaign.from_record(camp_rec))  # judged by the fresh definition
    caps = [s.cap if s is not None else None for s in shards]
    used = [int(s.used or 0) if s is not None else 0 for s in shards]
    budget_left = None
    if camp.budgets:
        budget_left = sum(rules_.budget_rooms(camp.budgets, [int(s.spent or 0) if s is not None else 0
                                                             for s in shards]))
    verdict = rules_.evaluate(camp.rules, now=clock.now(), member=_facts(member), total=body.order.total_amount,
                              lines=_lines(body.order), code=_code_facts(code_rec),
                              member_uses=int(wallet_rec.uses or 0) if wallet_rec is not None else 0,
                              remaining=rules_.remaining(caps, used), budget_left=budget_left)
    out = {"valid": verdict.valid, "discount_amount": verdict.discount_amount if verdict.valid else 0,
           "reason": verdict.reason}
    if verdict.valid:
        out["campaign_id"] = cid
    return out


def redeem(body, actor: str) -> tuple[int, dict]:
    """Apply a code to an order: 201 with the discount, or the stored answer (200) when this
    campaign already redeemed on this order (409 IDEMPOTENCY_MISMATCH if the payload differs).
    Another campaign's code on the same order is another redemption, subject to stacking."""
    _check_currency(body.order)
    code = normalize(body.code)
    req_hash = canonical_hash({"code": code, "member_id": body.member_id, "order_id": body.order_id,
                               "order": body.order.model_dump(mode="json")})
    for attempt in range(REDEEM_ATTEMPTS):
        try:
            return _redeem_once(body, code, req_hash, actor)
        except Conflict:
            time.sleep(random.uniform(0, min(0.005 * (2 ** attempt), 0.2)))
    raise RetryLater("too much contention on this coupon; retry the same request")


def _replay(prior: RedemptionRecord, order_id: str, req_hash: str) -> tuple[int, dict]:
    if prior.order_id != order_id or prior.request_hash != req_hash:
        raise IdempotencyMismatch("this order redeemed a coupon with another payload", order_id=order_id)
    if prior.status == "rolled_back":  # the order was cancelled: nothing is reserved any more
        return 200, {**prior.response, "status": "rolled_back", "discount_amount": 0}
    return 200, {**prior.response, "status": "redeemed"}


def _prior(rid: str) -> Optional[RedemptionRecord]:
    try:
        return RedemptionRecord.get(rid, consistent_read=True)
    except RedemptionRecord.DoesNotExist:
        return None


def _stacking_refused(camp: Campaign, order_rec: Optional[OrderCouponsRecord]) -> bool:
    """SPEC 2.20: a non-stackable coupon joins only an order without coupons in force; no coupon
    joins an order holding a non-stackable one."""
    if order_rec is None:
        return False
    active, exclusive = int(order_rec.active or 0), int(order_rec.exclusive or 0)
    return exclusive > 0 or (not camp.stackable and active > 0)


def _budget_parts(camp: Campaign, shard: int, amount: int) -> dict[int, int]:
    """Where the discount is taken from: the counting shard when its slice has room (as far as
    this process knows), else spread over the slices a fresh read shows with room.
    COUPON_BUDGET_EXHAUSTED only after that fresh read."""
    if not camp.budgets or amount <= 0:
        return {}
    rooms = _c()["rooms"].get(_full_key(camp))
    if rooms is None and int(camp.budgets[shard] or 0) >= amount:
        return {shard: amount}
    parts = rules_.allocate(amount, rooms, prefer=shard) if rooms is not None else None
    if parts is None:
        if _read_full_shards(camp) is None:
            raise Conflict()  # judged by an old definition: again with the new one
        parts = rules_.allocate(amount, _c()["rooms"][_full_key(camp)], prefer=shard)
    if parts is None:
        raise CouponRejected(rules_.BUDGET)
    return parts


def _redeem_once(body, code: str, req_hash: str, actor: str) -> tuple[int, dict]:
    now = clock.now()
    member_id = body.member_id
    cid = _shared_campaign(code)
    read_code = cid is None and bool(_CODE_SHAPE.match(code))
    okey = store.order_key(body.order_id)
    # the order's redemption under the id of before stacking (one per order), in the same read
    legacy_rid = store.redemption_id(body.order_id)
    keys = [(OrderCouponsRecord, okey), (MemberRecord, member_id), (RedemptionRecord, legacy_rid)]
    keys += [(CodeRecord, code)] if read_code else []
    got = tx.get_many(*keys)
    order_rec, member, legacy = got[0], got[1], got[2]
    code_rec = got[3] if read_code else None
    if cid is None and code_rec is not None:
        cid = code_rec.campaign_id
    rid = store.redemption_id(body.order_id, cid) if cid is not None else None
    if legacy is not None and (legacy.campaign_id == cid or cid is None):
        return _replay(legacy, body.order_id, req_hash)
    if rid is not None and order_rec is not None and cid in (order_rec.campaigns or ()):
        prior = _prior(rid)
        if prior is not None:
            return _replay(prior, body.order_id, req_hash)
    if member is None:
        raise MemberNotFound(member_id=member_id)
    if member.status != "active":
        raise MemberInactive(status=member.status)
    if cid is None:
        observability.count("CouponCodeNotFound", route="redeem")
        raise CouponRejected(rules_.NOT_FOUND)
    if code_rec is not None and code_rec.kind == "shared":
        _remember_shared(code, cid)
    unique = code_rec is not None and code_rec.kind == "unique"
    camp, cached = _cached(cid)
    if camp is None:
        raise CouponRejected(rules_.NOT_FOUND)
    facts, lines, code_facts = _facts(member), _lines(body.order), _code_facts(code_rec)

    def judge(c: Campaign) -> rules_.Verdict:
        return rules_.evaluate(c.rules, now=now, member=facts, total=body.order.total_amount, lines=lines,
                               code=code_facts)

    verdict = judge(camp)
    if not verdict.valid and cached:  # never reject on a cached definition
        camp, cached = _fresh(cid), False
        if camp is None:
            raise CouponRejected(rules_.NOT_FOUND)
        verdict = judge(camp)
    if not verdict.valid:
        raise CouponRejected(verdict.reason)
    if legacy is not None and legacy.status == "redeemed":
        raise CouponRejected(rules_.NOT_STACKABLE)  # an order of before stacking held one coupon
    if _stacking_refused(camp, order_rec):
        if cached and _stale(camp):
            raise Conflict()  # judged by an old definition (stackable may have changed)
        raise CouponRejected(rules_.NOT_STACKABLE)
    shard = _pick_shard(camp)
    if shard is None:
        raise CouponRejected(rules_.LIMIT)
    discount = verdict.discount_amount
    parts = _budget_parts(camp, shard, discount)

    response = {"coupon_redemption_id": rid, "status": "redeemed", "discount_amount": discount,
                "code": code,
                "campaign_id": cid, "member_id": member_id, "order_id": body.order_id,
                "redeemed_at": clock.iso(now)}
    was_unissued = unique and code_rec.status is None
    own_code = unique and code_rec.status == "issued"
    # without a budget the whole discount is counted on the counting shard (stats' discount_total)
    spent_parts = parts if camp.budgets else ({shard: discount} if discount else {})
    record = RedemptionRecord(rid, order_id=body.order_id, member_id=member_id, campaign_id=cid, code=code,
                              shard=shard, status="redeemed", request_hash=req_hash, response=response,
                              data={"discount_amount": discount,
                                    "order_total": body.order.total_amount, "redeemed_at": clock.iso(now),
                                    "kind": "unique" if unique else "shared", "own_code": own_code,
                                    "was_unissued": was_unissued, "actor": actor,
                                    "stackable": camp.stackable, "order_tracked": True,
                                    "spent_parts": {str(n): a for n, a in spent_parts.items()}})
    wallet_actions = [WalletRecord.uses.add(1)] + ([WalletRecord.redeemed.set(True)] if own_code else [])
    ops = [
        tx.put(record, RedemptionRecord.coupon_redemption_id.does_not_exist()),
        tx.update(WalletRecord(member_id, cid), wallet_actions,
                  WalletRecord.uses.does_not_exist() | (WalletRecord.uses < camp.rules.max_per_member)),
    ]
    shard_index: dict[int, int] = {}
    for n in sorted({shard, *spent_parts}):
        actions, condition = [], CounterRecord.rev == camp.rev
        if n == shard:
            actions += [CounterRecord.used.add(1)] + ([CounterRecord.issued.add(1)] if was_unissued else [])
            if camp.caps[shard] is not None:
                condition &= CounterRecord.used < CounterRecord.cap
        part = spent_parts.get(n)
        if part:
            actions.append(CounterRecord.spent.add(part))
            if camp.budgets:  # this slice keeps its part within its budget: spent + part <= budget
                room_left = int(camp.budgets[n] or 0) - part
                condition &= CounterRecord.spent.does_not_exist() | (CounterRecord.spent <= room_left)
        shard_index[n] = len(ops)
        ops.append(tx.update(CounterRecord(store.shard_key(cid, n)), actions, condition))
    if unique:
        code_actions = [CodeRecord.status.set("redeemed"), CodeRecord.member_id.set(member_id),
                        CodeRecord.redemption_id.set(rid)]
        if was_unissued:
            code_actions += [CodeRecord.pool.remove(), CodeRecord.issued_at.set(clock.iso(now))]
        code_condition = (CodeRecord.status.does_not_exist() if was_unissued
                          else CodeRecord.status == code_rec.status)
        if own_code:
            code_condition &= CodeRecord.member_id == member_id
        ops.append(tx.update(CodeRecord(code, campaign_id=cid), code_actions, code_condition))
    # the order's coupon record: stacking, exact under concurrency (a conditional counter)
    order_actions = [OrderCouponsRecord.order_id.set(body.order_id), OrderCouponsRecord.active.add(1),
                     OrderCouponsRecord.campaigns.add({cid})]
    if camp.stackable:
        order_condition = OrderCouponsRecord.exclusive.does_not_exist() | (OrderCouponsRecord.exclusive == 0)
    else:
        order_actions.append(OrderCouponsRecord.exclusive.add(1))
        order_condition = OrderCouponsRecord.active.does_not_exist() | (OrderCouponsRecord.active == 0)
    order_index = len(ops)
    ops.append(tx.update(OrderCouponsRecord(okey), order_actions, order_condition))
    uow = UnitOfWork()
    uow.add(ops[0], anchor=RedemptionRecord)
    uow.extend(ops[1:])
    # the member item is read, not written (one write per redemption): numbered after its version
    redeemed = events.envelope("coupon.redeemed", rid, member_id, clock.iso(now), response)
    uow.publish_events([{**redeemed, "sequence": int(member.version or 0) * events.SEQUENCE_STEP + 50}])
    try:
        uow.commit()
    except tx.TxCancelled as c:
        if c.failed(0):  # a twin of this request committed first
            return _replay(RedemptionRecord.get(rid, consistent_read=True), body.order_id, req_hash)
        if any(c.failed(i) for i in shard_index.values()):
            _shard_refused(camp, shard)
            raise Conflict()
        if c.failed(order_index):
            if cached and _stale(camp):
                raise Conflict()
            raise CouponRejected(rules_.NOT_STACKABLE)
        if c.failed(1):
            if cached and _stale(camp):
                raise Conflict()
            raise CouponRejected(rules_.MEMBER_LIMIT)
        raise Conflict()  # the code changed under us: judge again
    rooms = _c()["rooms"].get(_full_key(camp))
    if rooms is not None:  # what this process knows of the slices' room follows its own redemptions
        for n, a in parts.items():
            rooms[n] = max(rooms[n] - a, 0)
    observability.count("CouponRedemptions")
    observability.count("CouponDiscountAmount", discount)
    return 201, response


def _stale(camp: Campaign) -> bool:
    fresh = _fresh(camp.campaign_id)
    return fresh is None or fresh.rev != camp.rev


def _full_key(camp: Campaign) -> tuple:
    return camp.campaign_id, camp.rev


def _read_full_shards(camp: Campaign) -> Optional[set]:
    """Fresh read of the campaign and its shards: the full ones (and, with a budget, each slice's
    room), or None if the definition moved on."""
    rec, shards = store.get_shards(camp.campaign_id, camp.shards, with_campaign=True)
    if rec is None or rec.rev != camp.rev:
        if rec is not None and rec.data is not None:
            _remember(Campaign.from_record(rec))
        return None
    full = {n for n, s in enumerate(shards)
            if s is None or (s.cap is not None and int(s.used or 0) >= int(s.cap))}
    fulls, rooms = _c()["full"], _c()["rooms"]
    if len(fulls) > 10_000:
        fulls.clear()
    if len(rooms) > 10_000:
        rooms.clear()
    fulls[_full_key(camp)] = full
    if camp.budgets:
        rooms[_full_key(camp)] = rules_.budget_rooms(
            [s.budget if s is not None else 0 for s in shards],
            [int(s.spent or 0) if s is not None else 0 for s in shards])
    return full


def _pick_shard(camp: Campaign) -> Optional[int]:
    """A random shard with room. The process remembers shards it saw full; it answers
    LIMIT_REACHED only after a fresh read shows every shard full."""
    full = _c()["full"].get(_full_key(camp), set())
    candidates = [n for n, cap in enumerate(camp.caps) if (cap is None or cap > 0) and n not in full]
    if candidates:
        return random.choice(candidates)
    full = _read_full_shards(camp)
    if full is None:
        raise Conflict()  # judged by an old definition: again with the new one
    candidates = [n for n in range(camp.shards) if n not in full]
    return random.choice(candidates) if candidates else None


def _shard_refused(camp: Campaign, shard: int) -> None:
    """A shard said no: it is full, its budget slice lacks the room, or the definition changed;
    a fresh read tells which (and refreshes the cached definition in the last case)."""
    _read_full_shards(camp)


def rollback(coupon_redemption_id: str, actor: str) -> dict:
    """Give a redemption's use back (order cancelled): counters down (its discount back to the
    budget), a unique code is issued again, the order no longer counts it for stacking. A
    second rollback answers the same body."""

    def attempt():
        try:
            rec = RedemptionRecord.get(coupon_redemption_id, consistent_read=True)
        except RedemptionRecord.DoesNotExist:
            raise NotFound("no such coupon redemption", coupon_redemption_id=coupon_redemption_id)
        data = dict(rec.data or {})
        if rec.status == "rolled_back":
            return data["rollback"]
        response = {"coupon_redemption_id": rec.coupon_redemption_id, "status": "rolled_back",
                    "discount_amount": int(data.get("discount_amount", 0)), "order_id": rec.order_id,
                    "member_id": rec.member_id, "campaign_id": rec.campaign_id, "code": rec.code,
                    "rolled_back_at": clock.iso(clock.now())}
        data.update(rollback=response, rollback_actor=actor)
        cid = rec.campaign_id
        ops = [
            tx.update(RedemptionRecord(rec.coupon_redemption_id),
                      [RedemptionRecord.status.set("rolled_back"), RedemptionRecord.data.set(data)],
                      RedemptionRecord.status == "redeemed"),
            tx.update(WalletRecord(rec.member_id, cid),
                      [WalletRecord.uses.add(-1)] + ([WalletRecord.redeemed.set(False)] if data.get("own_code") else []),
                      WalletRecord.uses > 0),
        ]
        parts = {int(n): int(a) for n, a in (data.get("spent_parts") or {}).items()}
        for n in sorted({int(rec.shard), *parts}):
            actions, condition = [], None
            if n == int(rec.shard):
                actions.append(CounterRecord.used.add(-1))
                condition = CounterRecord.used > 0
            if parts.get(n):
                actions.append(CounterRecord.spent.add(-parts[n]))
                enough = CounterRecord.spent >= parts[n]
                condition = enough if condition is None else condition & enough
            ops.append(tx.update(CounterRecord(store.shard_key(cid, n)), actions, condition))
        if data.get("kind") == "unique":
            ops.append(tx.update(CodeRecord(rec.code, campaign_id=cid),
                                 [CodeRecord.status.set("issued"), CodeRecord.redemption_id.remove()],
                                 (CodeRecord.status == "redeemed")
                                 & (CodeRecord.redemption_id == rec.coupon_redemption_id)))
        if data.get("order_tracked"):
            order_actions = [OrderCouponsRecord.active.add(-1)]
            if not data.get("stackable"):
                order_actions.append(OrderCouponsRecord.exclusive.add(-1))
            ops.append(tx.update(OrderCouponsRecord(store.order_key(rec.order_id)), order_actions,
                                 OrderCouponsRecord.active > 0))
        uow = UnitOfWork()
        uow.add(ops[0], anchor=RedemptionRecord)
        uow.extend(ops[1:])
        member = member_store.get(rec.member_id)
        rolled = events.envelope("coupon.rolled_back", rec.coupon_redemption_id, rec.member_id,
                                 response["rolled_back_at"], response)
        uow.publish_events([{**rolled, "sequence": int(member.version if member else 0) * events.SEQUENCE_STEP + 51}])
        try:
            uow.commit()
        except tx.TxCancelled:
            raise Conflict()  # a concurrent rollback won: the re-read answers with its body
        for cache in (_c()["full"], _c()["rooms"]):
            for key in [k for k in cache if k[0] == cid]:
                cache.pop(key, None)  # a slot (and budget) came back
        return response

    return retrying()(attempt)
