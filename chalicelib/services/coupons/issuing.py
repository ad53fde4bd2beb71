"""Issuing coupons into members' wallets (to listed members or an audience) and the member's
coupon wallet (SPEC 2.9)."""
from __future__ import annotations

import random
import time
from typing import Optional, Sequence

from chalicelib import clock, messaging
from chalicelib.domain import coupons as rules_
from chalicelib.domain import events
from chalicelib.domain.audience import NOBODY, Audience, MemberFacts, in_audience
from chalicelib.errors import CouponRejected, RetryLater
from chalicelib.services import audit, members
from chalicelib.services.coupons.campaigns import Campaign, _cached_only, _remember, require
from chalicelib.services.uow import UnitOfWork
from chalicelib.store import coupons as store
from chalicelib.store import members as member_store
from chalicelib.store import tx
from chalicelib.store.base import Conflict

ISSUE_GROUP = 24  # members per issuing transaction: code, wallet, message, event each (≤ 97 items with the counter)


def _facts(member) -> MemberFacts:
    return MemberFacts.of(member)


def _audience_members(audience: dict) -> list[str]:
    """Members an issuing audience selects: its member_ids, plus the active members in it by its
    tier and segment filters (a scan: issuing by audience is a marketer's batch action). A
    selection: an audience with nothing in it selects no one."""
    ids = list(audience.get("member_ids") or [])
    selection = Audience.of(audience)
    if selection.has_filters:
        for member in member_store.scan(active_only=True):
            if in_audience(selection, _facts(member), when_empty=NOBODY):
                ids.append(member.member_id)
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
        found = member_store.batch_get(list(member_ids), consistent=True)
        wallets = store.batch_get_wallets(list(member_ids), cid)
        todo = []
        for m in member_ids:
            member = found.get(m)
            if member is None:
                self.plan.not_found += 1
            elif not member.active:
                self.plan.inactive += 1
            elif not rules_.in_audience(self.camp.rules, _facts(member)):
                self.plan.ineligible += 1
            elif wallets.get(m) is not None and wallets[m].code:
                self.plan.already_issued += 1
                self.plan.codes[m] = wallets[m].code
            else:
                todo.append(member)
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

    def _message(self, member, code: str) -> Optional[dict]:
        if not self.notify:
            return None
        profile = member.profile or {}
        channel = messaging.first_consented(profile.get("consents"))
        if channel is None:  # a marketing message goes only to a consented channel
            return None
        d = self.camp.definition
        return messaging.compose(
            template="coupon_issued", member_id=member.member_id, profile=profile, channel=channel,
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
            for member, code in zip(missing, codes):
                assigned[member.member_id] = code
            if len(codes) < len(missing):  # the pool ran dry
                self.plan.out_of_codes += len(missing) - len(codes)
                group = [r for r in group if r.member_id in assigned]
            if not group:
                break
            now = clock.now()
            at = clock.iso(now)
            ops, index, messages = [], {}, []
            for member in group:
                m, code = member.member_id, assigned[member.member_id]
                if unique:
                    index[len(ops)] = ("code", m)
                    ops.append(store.code_issue_op(code, cid, m, at))
                index[len(ops)] = ("wallet", m)
                ops.append(store.wallet_issue_op(m, cid, code, now))
                msg = self._message(member, code)
                if msg is not None:
                    messages.append(msg)
            ops.append(store.issued_count_op(cid, random.randrange(self.camp.shards), len(group)))
            uow = UnitOfWork()
            anchor = min(i for i, (kind, _) in index.items() if kind == "wallet")
            for i, op in enumerate(ops):
                uow.add(op, anchor=store.wallet_anchor() if i == anchor else None)
            uow.publish(messages)  # outbox rows after every indexed op
            uow.publish_events([{**events.envelope("coupon.issued", f"{cid}:{r.member_id}", r.member_id, at,
                                                   {"campaign_id": cid, "code": assigned[r.member_id],
                                                    "member_id": r.member_id, "issued_at": at}),
                                 "sequence": int(r.version or 0) * events.SEQUENCE_STEP + 50} for r in group])
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
            for member in group:
                self.plan.codes[member.member_id] = assigned[member.member_id]
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
