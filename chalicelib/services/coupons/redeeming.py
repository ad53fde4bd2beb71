"""Checkout: validate and redeem a code, replays, stacking, the sharded limit and money budget
(SPEC 2.9, 2.20; the design in docs/COUPONS.md and the package's docstring)."""
from __future__ import annotations

import random
import re
from typing import Optional

from chalicelib import clock, observability
from chalicelib.domain import coupons as rules_
from chalicelib.domain import events
from chalicelib.domain.audience import MemberFacts
from chalicelib.domain.codes import normalize
from chalicelib.domain.hashing import canonical_hash
from chalicelib.errors import (
    CouponRejected,
    CurrencyMismatch,
    IdempotencyMismatch,
    MemberInactive,
    MemberNotFound,
)
from chalicelib.services import program
from chalicelib.services.coupons.campaigns import Campaign, _c, _cached, _fresh, _remember
from chalicelib.services.uow import UnitOfWork, retry
from chalicelib.store import coupons as store
from chalicelib.store import members as member_store
from chalicelib.store import tx
from chalicelib.store.base import Conflict

REDEEM_ATTEMPTS = 16
_CODE_SHAPE = re.compile(r"^[A-Z0-9]{1,64}$")


def _facts(member) -> MemberFacts:
    return MemberFacts.of(member)


def _check_currency(order) -> None:
    expected = program.settings().currency
    if order.currency is not None and order.currency != expected:
        raise CurrencyMismatch(expected=expected, got=order.currency)


def _lines(order) -> list[rules_.Line]:
    return [rules_.Line(i.category, i.amount) for i in (order.items or [])]


def _code_facts(code_rec) -> rules_.CodeFacts:
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
    keys = [member_store.key(body.member_id)] + ([store.code_key(code)] if plausible else [])
    got = tx.get_many(*keys)
    member = member_store.from_record(got[0])
    code_rec = got[1] if plausible else None
    if member is None:
        raise MemberNotFound(member_id=body.member_id)
    if not member.active:
        return {"valid": False, "discount_amount": 0, "reason": MemberInactive.code}
    if code_rec is None:
        observability.count("CouponCodeNotFound", route="validate")  # enumeration alarm (docs/COUPONS.md)
        return {"valid": False, "discount_amount": 0, "reason": rules_.NOT_FOUND}
    cid = code_rec.campaign_id
    known, _ = _cached(cid)  # a campaign's shard count never changes
    if known is None:
        return {"valid": False, "discount_amount": 0, "reason": rules_.NOT_FOUND}
    reads = tx.get_many(store.campaign_key(cid), store.wallet_key(body.member_id, cid),
                        *store.shard_keys(cid, known.shards))
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
    # a hot code's counters conflict often: more, shorter waits than a member's writes
    return retry(lambda: _redeem_once(body, code, req_hash, actor), REDEEM_ATTEMPTS, 0.005, 0.2)


def _replay(prior, order_id: str, req_hash: str) -> tuple[int, dict]:
    if prior.order_id != order_id or prior.request_hash != req_hash:
        raise IdempotencyMismatch("this order redeemed a coupon with another payload", order_id=order_id)
    if prior.status == "rolled_back":  # the order was cancelled: nothing is reserved any more
        return 200, {**prior.response, "status": "rolled_back", "discount_amount": 0}
    return 200, {**prior.response, "status": "redeemed"}


def _prior(rid: str):
    return store.get_redemption(rid)


def _stacking_refused(camp: Campaign, order_rec) -> bool:
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
    # the order's redemption under the id of before stacking (one per order), in the same read
    keys = [store.order_coupons_key(body.order_id), member_store.key(member_id), store.redemption_key(body.order_id)]
    keys += [store.code_key(code)] if read_code else []
    got = tx.get_many(*keys)
    order_rec, member, legacy = got[0], member_store.from_record(got[1]), got[2]
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
    if not member.active:
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
    ops = [
        store.redemption_put_op(rid, order_id=body.order_id, member_id=member_id, campaign_id=cid, code=code,
                                shard=shard, request_hash=req_hash, response=response,
                                data={"discount_amount": discount,
                                      "order_total": body.order.total_amount, "redeemed_at": clock.iso(now),
                                      "kind": "unique" if unique else "shared", "own_code": own_code,
                                      "was_unissued": was_unissued, "actor": actor,
                                      "stackable": camp.stackable, "order_tracked": True,
                                      "spent_parts": {str(n): a for n, a in spent_parts.items()}}),
        store.wallet_use_op(member_id, cid, camp.rules.max_per_member, own_code),
    ]
    shard_index: dict[int, int] = {}
    for n in sorted({shard, *spent_parts}):
        part = spent_parts.get(n)
        # this slice keeps its part within its budget: spent + part <= budget
        room_left = int(camp.budgets[n] or 0) - part if (part and camp.budgets) else None
        shard_index[n] = len(ops)
        ops.append(store.shard_use_op(cid, n, camp.rev, counts=n == shard, was_unissued=was_unissued,
                                      capped=camp.caps[shard] is not None, part=part, room_left=room_left))
    if unique:
        ops.append(store.code_redeem_op(code, cid, member_id, rid, read_status=code_rec.status, own_code=own_code,
                                        at=clock.iso(now)))
    # the order's coupon record: stacking, exact under concurrency (a conditional counter)
    order_index = len(ops)
    ops.append(store.order_coupons_redeem_op(body.order_id, cid, camp.stackable))
    uow = UnitOfWork()
    uow.add(ops[0], anchor=store.redemption_anchor())
    uow.extend(ops[1:])
    # the member item is read, not written (one write per redemption): numbered after its version
    redeemed = events.envelope("coupon.redeemed", rid, member_id, clock.iso(now), response)
    uow.publish_events([{**redeemed, "sequence": int(member.version or 0) * events.SEQUENCE_STEP + 50}])
    try:
        uow.commit()
    except tx.TxCancelled as c:
        if c.failed(0):  # a twin of this request committed first
            return _replay(store.get_redemption(rid), body.order_id, req_hash)
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
