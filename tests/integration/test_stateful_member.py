"""A hypothesis state machine of two members' lives against a simple in-memory model.

The members (`main` and a `friend`) are enrolled, accrue orders, get refunds, earn
review points, get admin adjustments, redeem a reward, cancel, use and gift the
vouchers to each other, use coupons (a shared code with a total and a per-member
limit, and a unique code issued to `main` whose campaign ends) and roll them back,
and see their points expire (the `expire-points` job on a clock the machine moves
forward). Every request carries `X-Loyalty-Now` from the model's clock, and every
example starts from empty tables (so the job's counts are exactly the model's).

After every step, for both members: the balance, lifetime_spent and expiring_soon
equal the model's; Σ ledger = available + pending = Σ lots; the newest ledger entry's
balance_after is the balance; no order is credited twice; the vouchers each member
holds (and their status) and the reward's stock equal the model's; the coupon
campaigns' stats and the members' coupon wallets equal the model's and never exceed
the campaign limits.

Where SPEC is silent the model follows the documented/implemented choice:
- points of a cancelled redemption come back to the lots (earning months) they were
  taken from, so cancelling never extends their life;
- reversals and negative adjustments take the oldest lots first (like spending);
- the order in which several reasons to refuse are reported (reward: limit, stock,
  points; coupon validate and redeem alike: min order, total limit, member limit).
"""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.factories import assert_invariant

_ids = itertools.count()

START = datetime(2026, 1, 5, 12, 0, 0, tzinfo=timezone.utc)
EXPIRY_MONTHS = 12  # SPEC 2.6 default
WARNING_DAYS = 30  # SPEC 2.6 default
VOUCHER_DAYS = 30  # SPEC 2.8 default voucher_valid_days
REVIEW_POINTS, REVIEWS_PER_DAY = 50, 3  # default activity rule (docs/DECISIONS.md)
REWARD_COST, REWARD_STOCK, REWARD_PER_MEMBER = 100, 3, 2
WELCOME_POINTS = 250
SHARED_MAX, SHARED_PER_MEMBER, SHARED_MIN_ORDER, SHARED_PERCENT = 3, 2, 1000, 10
UNIQUE_AMOUNT, UNIQUE_DAYS = 500, 120
C = "/v1/admin/coupon-campaigns"


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def month_of(dt: datetime) -> tuple:
    return dt.year, dt.month


def month_start(month: tuple, plus: int = 0) -> datetime:
    idx = month[0] * 12 + month[1] - 1 + plus
    return datetime(idx // 12, idx % 12 + 1, 1, tzinfo=timezone.utc)


class Wallet:
    """SPEC 2.5/2.6: available points as FIFO lots by earning month; a negative balance
    is a deficit that later credits cover first."""

    def __init__(self):
        self.available = 0
        self.lots: dict[tuple, int] = {}
        self.spent = 0  # lifetime_spent: redemptions net of cancellations

    def credit(self, points: int, month: tuple) -> None:
        before = max(self.available, 0)
        self.available += points
        gained = max(self.available, 0) - before
        if gained:
            self.lots[month] = self.lots.get(month, 0) + gained

    def _take(self, points: int) -> dict:
        taken = {}
        for month in sorted(self.lots):
            if points <= 0:
                break
            take = min(self.lots[month], points)
            self.lots[month] -= take
            taken[month] = take
            points -= take
            if not self.lots[month]:
                del self.lots[month]
        return taken

    def debit(self, points: int) -> None:  # reversals, negative adjustments: may go negative
        self._take(min(points, max(self.available, 0)))
        self.available -= points

    def spend(self, points: int) -> dict:  # redemptions: never below zero; the lots taken
        assert self.available >= points
        taken = self._take(points)
        self.available -= points
        self.spent += points
        return taken

    def give_back(self, lots: dict) -> None:  # a cancellation: back to the months they came from
        self.spent -= sum(lots.values())
        for month in sorted(lots):
            self.credit(lots[month], month)

    def expire(self, as_of: datetime) -> int:
        gone = sum(self.lots.pop(m) for m in sorted(self.lots) if as_of >= month_start(m, EXPIRY_MONTHS + 1))
        self.available -= gone
        return gone

    def expiring_soon(self, now: datetime) -> list:
        horizon = now + timedelta(days=WARNING_DAYS)
        out = []
        for m in sorted(self.lots):
            expires = month_start(m, EXPIRY_MONTHS + 1) - timedelta(seconds=1)
            if expires <= horizon:
                out.append({"points": self.lots[m], "expires_at": iso(expires)})
        return out


def empty_tables() -> None:
    """Delete every item, so that each example starts from an empty program (moto copies a
    table on every transaction: a table grown by earlier examples slows every step down)."""
    from chalicelib.store.base import dynamodb_client
    from chalicelib.store.registry import all_models

    client = dynamodb_client()
    for model in all_models():
        table = model.Meta.table_name
        keys = [k["AttributeName"] for k in client.describe_table(TableName=table)["Table"]["KeySchema"]]
        doomed = [{k: item[k] for k in keys} for page in client.get_paginator("scan").paginate(TableName=table)
                  for item in page["Items"]]
        for i in range(0, len(doomed), 25):
            client.batch_write_item(RequestItems={table: [{"DeleteRequest": {"Key": k}} for k in doomed[i:i + 25]]})


def fresh_program(api) -> None:
    empty_tables()
    # One tier (multiplier 1) keeps the model small; tier maths has its own tests.
    r = api.put("/v1/admin/tiers", [{"tier_id": "base", "name": "Base", "threshold": 0, "multiplier": "1"}],
                role="admin")
    assert r.status == 200
    s = api.get("/v1/admin/settings", role="admin").body
    assert (s["points_expiry_months"], s["expiry_warning_days"], s["pending_days"]) == (EXPIRY_MONTHS, WARNING_DAYS, 0)
    assert s["base_rate"] == {"points": 1, "per_amount": 100} and s["promotions"] == []


def test_member_life(api):
    class MemberLife(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            fresh_program(api)
            n = next(_ids)
            self.now = START
            self.main, self.friend = f"sm-{n}", f"sm-{n}-friend"
            self.who = {"main": self.main, "friend": self.friend}
            for m in (self.main, self.friend):
                body = api.enrol(m)
                assert body["member_id"] == m and body["status"] == "active"
                assert body["points"]["available"] == 0
            self.wallets = {m: Wallet() for m in (self.main, self.friend)}
            for m in (self.main, self.friend):  # a welcome gift, so that rewards are in reach early
                r = api.adjust(m, WELCOME_POINTS, adjustment_id=f"{m}-welcome", now=self.iso())
                assert (r.status, r.body["points"], r.body["balance_after"]) == (201, WELCOME_POINTS, WELCOME_POINTS)
                self.wallets[m].credit(WELCOME_POINTS, month_of(self.now))
            self.reviews: dict[tuple, int] = {}  # (member, day) -> reviews that day
            # Rules draw from these dicts in insertion order (ids are random or carry a global
            # counter, so sorting them would make replays of an example draw different items).
            self.orders: dict[str, dict] = {}
            # the reward
            self.reward_id = f"rw-{n}"
            r = api.post("/v1/admin/rewards", {"reward_id": self.reward_id, "name": "Latte",
                                               "cost_points": REWARD_COST, "kind": "voucher",
                                               "stock": REWARD_STOCK, "per_member_limit": REWARD_PER_MEMBER},
                         role="admin", now=self.iso())
            assert r.status == 201, r.body
            assert (r.body["stock"], r.body["voucher_valid_days"], r.body["active"]) == (REWARD_STOCK, VOUCHER_DAYS,
                                                                                        True)
            self.stock = REWARD_STOCK
            self.reward_counts = {self.main: 0, self.friend: 0}  # per payer, net of cancellations
            self.vouchers: dict[str, dict] = {}
            # a shared code with limits, issued to main's wallet
            self.shared_code = f"SM{n}X"
            self.camps = {
                "S": {"id": f"{self.main}-shared", "code": self.shared_code,
                      "ends": datetime(2099, 12, 31, 23, 59, 59, tzinfo=timezone.utc),
                      "uses": {self.main: 0, self.friend: 0}},
                "U": {"id": f"{self.main}-unique", "code": None,
                      "ends": (START + timedelta(days=UNIQUE_DAYS)).replace(hour=23, minute=59, second=59),
                      "uses": {self.main: 0, self.friend: 0}, "redeemed": False},
            }
            self._create_campaign("S", {"discount": {"type": "percent", "value": SHARED_PERCENT},
                                        "min_order_amount": SHARED_MIN_ORDER, "code_mode": "shared",
                                        "shared_code": self.shared_code, "max_redemptions": SHARED_MAX,
                                        "max_per_member": SHARED_PER_MEMBER})
            self._create_campaign("U", {"discount": {"type": "amount", "value": UNIQUE_AMOUNT},
                                        "min_order_amount": 0, "code_mode": "unique"})
            r = api.post(f"{C}/{self.camps['U']['id']}/codes", {"count": 2}, role="admin", now=self.iso())
            assert r.status == 201 and r.body == {"campaign_id": self.camps["U"]["id"], "generated": 2,
                                                  "codes_total": 2}, r.body
            for key in ("S", "U"):
                r = api.post(f"{C}/{self.camps[key]['id']}/issue", {"member_ids": [self.main]}, role="admin",
                             now=self.iso())
                assert r.status == 200 and r.body["issued"] == 1, r.body
            [w] = [w for w in self.coupon_wallet(self.main) if w["campaign_id"] == self.camps["U"]["id"]]
            self.camps["U"]["code"] = w["code"]
            self.coupon_redemptions: dict[str, dict] = {}
            self.merged = 0  # duplicate accounts merged into main

        # --- helpers ------------------------------------------------------------------------
        def iso(self) -> str:
            return iso(self.now)

        def _create_campaign(self, key, fields):
            c = self.camps[key]
            body = {"campaign_id": c["id"], "name": f"camp {key}", "starts_at": "2025-01-01T00:00:00Z",
                    "ends_at": iso(c["ends"]), "status": "active", **fields}
            r = api.post(C, body, role="admin", now=self.iso())
            assert r.status == 201, r.body
            c["max"] = r.body["max_redemptions"]
            c["per_member"] = r.body["max_per_member"]
            c["min_order"] = r.body["min_order_amount"]
            assert (c["max"], c["per_member"]) == (fields.get("max_redemptions"), fields.get("max_per_member", 1))

        def coupon_wallet(self, member):
            r = api.get(f"/v1/members/{member}/coupons?limit=100", now=self.iso())
            assert r.status == 200, r.body
            return r.body["items"]

        def ledger(self, member):
            items, cursor = [], None
            while True:
                r = api.get(f"/v1/members/{member}/ledger?limit=100" + (f"&cursor={cursor}" if cursor else ""),
                            now=self.iso())
                assert r.status == 200, r.body
                items += r.body["items"]
                cursor = r.body["next_cursor"]
                if not cursor:
                    return items

        def voucher_status(self, v) -> str:
            if v["status"] == "issued" and v["expires_at"] <= self.now:
                return "expired"
            return v["status"]

        def _tick(self):
            self.now += timedelta(minutes=1)  # every write happens at its own instant

        # --- the clock ---------------------------------------------------------------------------
        @rule(days=st.sampled_from([1, 3, 10, 31, 95]))
        def advance_clock(self, days):
            self.now += timedelta(days=days)

        # --- earning and refunds -------------------------------------------------------------------
        @rule(who=st.sampled_from(["main", "friend"]), amount=st.integers(0, 200_000), data=st.data())
        def accrue(self, who, amount, data):
            self._tick()
            if self.orders and data.draw(st.booleans(), label="replay an earlier order"):
                order_id = data.draw(st.sampled_from(list(self.orders)), label="order")
                o = self.orders[order_id]
                r = api.accrue(o["member"], o["total"], order_id=order_id, now=self.iso())
                assert r.status == 200 and r.body == o["body"]  # credited once, the first answer again
                # SPEC 3: the same order_id with another payload (total, or member) is refused
                r = api.accrue(o["member"], o["total"] + 100, order_id=order_id, now=self.iso())
                assert (r.status, r.error) == (409, "IDEMPOTENCY_MISMATCH"), r.body
                other = self.friend if o["member"] == self.main else self.main
                r = api.accrue(other, o["total"], order_id=order_id, now=self.iso())
                assert (r.status, r.error) == (409, "IDEMPOTENCY_MISMATCH"), r.body
                return
            member = self.who[who]
            order_id = f"{member}-o{next(_ids)}"
            r = api.accrue(member, amount, order_id=order_id, now=self.iso())
            assert r.status == 201, r.body
            points = amount // 100
            assert (r.body["order_id"], r.body["points_earned"], r.body["pending"], r.body["tier_change"]) == (
                order_id, points, 0, None)
            assert sum(b["points"] for b in r.body["breakdown"]) == points
            self.orders[order_id] = {"member": member, "total": amount, "points": points, "refunded": 0,
                                     "reversed": 0, "body": r.body}
            self.wallets[member].credit(points, month_of(self.now))
            assert r.body["balance"] == {"available": self.wallets[member].available, "pending": 0, "held": 0}

        @rule(data=st.data(), fraction=st.floats(0.0, 1.3))
        def refund(self, data, fraction):
            self._tick()
            if not self.orders:
                who = data.draw(st.sampled_from([self.main, self.friend]), label="member")
                r = api.refund(who, f"nope-{next(_ids)}", 1, refund_id=f"rf-{next(_ids)}", now=self.iso())
                assert (r.status, r.error) == (404, "ORDER_NOT_FOUND"), r.body
                return
            order_id = data.draw(st.sampled_from(list(self.orders)), label="order")
            o = self.orders[order_id]
            member = o["member"]
            other = self.friend if member == self.main else self.main
            # SPEC 2.5: an order of another member is unknown on this member's path
            r = api.refund(other, order_id, 1, refund_id=f"rf-{next(_ids)}", now=self.iso())
            assert (r.status, r.error) == (404, "ORDER_NOT_FOUND"), r.body
            amount = max(1, int(o["total"] * fraction))
            body = {"refund_id": f"{order_id}-r{next(_ids)}", "order_id": order_id, "amount": amount}
            r = api.post(f"/v1/members/{member}/refunds", body, now=self.iso())
            if o["refunded"] + amount > o["total"]:
                assert (r.status, r.error) == (422, "REFUND_EXCEEDS_ORDER"), r.body
                event("refund: exceeds the order")
                return
            assert r.status == 201, r.body
            after = o["points"] * (o["refunded"] + amount) // o["total"]  # SPEC 2.5, cumulative
            reverse = after - o["reversed"]
            o["refunded"] += amount
            o["reversed"] = after
            self.wallets[member].debit(reverse)
            assert r.body == {"refund_id": body["refund_id"], "order_id": order_id, "points_reversed": reverse,
                              "points_returned": 0, "balance": {"available": self.wallets[member].available, "pending": 0, "held": 0}}
            again = api.post(f"/v1/members/{member}/refunds", body, now=self.iso())
            assert again.status == 200 and again.body == r.body  # a replay changes nothing
            again = api.post(f"/v1/members/{member}/refunds", {**body, "amount": amount + 1}, now=self.iso())
            assert (again.status, again.error) == (409, "IDEMPOTENCY_MISMATCH"), again.body
            event(f"refund: balance {'negative' if self.wallets[member].available < 0 else 'ok'}")

        @rule(who=st.sampled_from(["main", "friend"]))
        def review(self, who):
            member = self.who[who]
            self._tick()
            activity_id = f"{member}-act{next(_ids)}"
            r = api.activity(member, "review", activity_id=activity_id, now=self.iso())
            day = (member, self.now.date())
            if self.reviews.get(day, 0) >= REVIEWS_PER_DAY:
                assert (r.status, r.error) == (422, "ACTIVITY_LIMIT_REACHED"), r.body
                return
            assert r.status == 201, r.body
            self.reviews[day] = self.reviews.get(day, 0) + 1
            self.wallets[member].credit(REVIEW_POINTS, month_of(self.now))
            assert r.body == {"activity_id": activity_id, "points_earned": REVIEW_POINTS,
                              "balance": {"available": self.wallets[member].available, "pending": 0, "held": 0}}
            again = api.activity(member, "review", activity_id=activity_id, now=self.iso())
            assert again.status == 200 and again.body == r.body  # SPEC 3: once per activity_id

        @rule(who=st.sampled_from(["main", "friend"]), points=st.integers(-500, 500).filter(bool))
        def adjust(self, who, points):
            member = self.who[who]
            self._tick()
            adjustment_id = f"{member}-a{next(_ids)}"
            r = api.adjust(member, points, adjustment_id=adjustment_id, now=self.iso())
            assert r.status == 201, r.body
            again = api.adjust(member, points, adjustment_id=adjustment_id, now=self.iso())
            assert again.status == 200 and again.body == r.body  # SPEC 3: once per adjustment_id
            again = api.adjust(member, points * 2, adjustment_id=adjustment_id, now=self.iso())
            assert (again.status, again.error) == (409, "IDEMPOTENCY_MISMATCH"), again.body
            w = self.wallets[member]
            if points > 0:
                w.credit(points, month_of(self.now))
            else:
                w.debit(-points)
            assert (r.body["type"], r.body["points"], r.body["balance_after"]) == ("adjust", points, w.available)

        # --- transfers (SPEC 2.15) --------------------------------------------------------------------
        @rule(who=st.sampled_from(["main", "friend"]), points=st.integers(1, 1500))
        def transfer(self, who, points):
            sender = self.who[who]
            recipient = self.friend if sender == self.main else self.main
            self._tick()
            transfer_id = f"{sender}-t{next(_ids)}"
            body = {"transfer_id": transfer_id, "to_member_id": recipient, "points": points}
            r = api.post(f"/v1/members/{sender}/transfers", body, now=self.iso())
            ws, wr = self.wallets[sender], self.wallets[recipient]
            if points > ws.available:
                assert (r.status, r.error) == (422, "INSUFFICIENT_POINTS"), r.body
                return
            assert r.status == 201, r.body
            for month, n in sorted(ws._take(points).items()):  # oldest first, each keeping its month
                wr.credit(n, month)
            ws.available -= points
            assert r.body == {**body, "from_member_id": sender,
                              "balance": {"available": ws.available, "pending": 0, "held": 0}}
            again = api.post(f"/v1/members/{sender}/transfers", body, now=self.iso())
            assert again.status == 200 and again.body == r.body  # SPEC 3: once per transfer_id

        # --- merges (SPEC 2.15) -----------------------------------------------------------------------
        @rule(lots=st.lists(st.integers(1, 900), min_size=0, max_size=3))
        def merge_a_duplicate_into_main(self, lots):
            """A duplicate account with a few lots earned over the last months is merged into
            main: its lots arrive with their months, it is closed with merged_into, refused after."""
            dup = f"{self.main}-dup{next(_ids)}"
            assert api.enrol(dup)["member_id"] == dup
            self.merged += 1
            moved = Wallet()
            for i, points in enumerate(lots):  # one lot per month going back from now
                at = self.now - timedelta(days=31 * (len(lots) - 1 - i))
                r = api.adjust(dup, points, adjustment_id=f"{dup}-a{i}", now=iso(at))
                assert r.status == 201, r.body
                moved.credit(points, month_of(at))
            self._tick()
            merge_id = f"{dup}-m"
            r = api.post(f"/v1/admin/members/{self.main}/merge", {"merge_id": merge_id, "source_member_id": dup},
                         role="admin", now=self.iso())
            assert r.status == 200, r.body
            w = self.wallets[self.main]
            for month, n in sorted(moved.lots.items()):
                w.credit(n, month)
            assert r.body["member_id"] == self.main and r.body["points"]["available"] == w.available
            again = api.post(f"/v1/admin/members/{self.main}/merge", {"merge_id": merge_id, "source_member_id": dup},
                             role="admin", now=self.iso())
            assert again.status == 200 and again.body["points"]["available"] == w.available  # once per merge_id
            src = api.member(dup, now=self.iso())
            assert (src["status"], src["merged_into"], src["points"]["available"]) == ("closed", self.main, 0)
            assert self.ledger(dup)[0]["type"] == "merge_out"
            r = api.accrue(dup, 10000, order_id=f"{dup}-late", now=self.iso())
            assert (r.status, r.error) == (422, "MEMBER_INACTIVE"), r.body
            assert_invariant(dup)

        # --- expiry ----------------------------------------------------------------------------------
        @rule(days=st.sampled_from([0, 20, 60, 200, 400]))
        def expire_points(self, days):
            self.now += timedelta(days=days)
            tops = {m: (self.ledger(m) or [{"entry_id": None}])[0]["entry_id"] for m in self.wallets}
            r = api.post("/v1/admin/jobs", {"job": "expire-points", "as_of": self.iso()}, role="admin")
            assert r.status == 202, r.body
            job = api.get(f"/v1/admin/jobs/{r.body['job_id']}", role="admin").body
            assert (job["status"], job["job"], job["as_of"]) == ("succeeded", "expire-points", self.iso()), job
            total = expired_members = 0
            for m, w in self.wallets.items():
                expired = w.expire(self.now)
                total += expired
                expired_members += bool(expired)
                top = (self.ledger(m) or [{"entry_id": None}])[0]
                if expired:
                    assert top["entry_id"] != tops[m]
                    assert (top["type"], top["points"], top["balance_after"]) == ("expire", -expired, w.available)
                else:
                    assert top["entry_id"] == tops[m]  # nothing written for this member
            # each example starts from empty tables: our two members and the merged duplicates
            assert job["counts"]["scanned"] == 2 + self.merged
            assert job["counts"].get("points_expired", 0) == total
            assert job["counts"].get("members_expired", 0) == expired_members
            event(f"expire: {'some' if total else 'none'}")
            # and the vouchers past their expires_at: `expired` for good, their points stay spent
            due = [v for v in self.vouchers.values() if v["status"] == "issued" and v["expires_at"] <= self.now]
            r = api.post("/v1/admin/jobs", {"job": "expire-vouchers", "as_of": self.iso()}, role="admin")
            assert r.status == 202, r.body
            job = api.get(f"/v1/admin/jobs/{r.body['job_id']}", role="admin").body
            assert job["status"] == "succeeded", job
            assert job["counts"].get("vouchers_expired", 0) == len(due)
            for v in due:
                v["status"] = "expired"

        # --- rewards and vouchers ----------------------------------------------------------------------
        def redeem_reward(self, member):
            w = self.wallets[member]
            self._tick()
            key = {"Idempotency-Key": f"redeem-{next(_ids)}"}
            r = api.post(f"/v1/members/{member}/redemptions", {"reward_id": self.reward_id}, role="member",
                         sub=member, headers=key, now=self.iso())
            if self.reward_counts[member] >= REWARD_PER_MEMBER:
                expected = "REWARD_LIMIT_REACHED"
            elif self.stock <= 0:
                expected = "OUT_OF_STOCK"
            elif w.available < REWARD_COST:
                expected = "INSUFFICIENT_POINTS"
            else:
                expected = None
            event(f"reward: {expected}")
            if expected:
                assert (r.status, r.error) == (422, expected), r.body
                return
            assert r.status == 201, r.body
            expires = self.now + timedelta(days=VOUCHER_DAYS)
            b = r.body
            assert (b["member_id"], b["reward_id"], b["status"], b["points_spent"], b["issued_at"], b["expires_at"],
                    b["gifted_from"]) == (member, self.reward_id, "issued", REWARD_COST, self.iso(), iso(expires), None)
            assert len(b["code"]) == 16
            # SPEC 3: the same Idempotency-Key replays the first answer and debits nothing more
            again = api.post(f"/v1/members/{member}/redemptions", {"reward_id": self.reward_id}, role="member",
                             sub=member, headers=key, now=self.iso())
            assert again.status == 200 and again.body == b
            other = api.post(f"/v1/members/{member}/redemptions", {"reward_id": f"{self.reward_id}-x"},
                             role="member", sub=member, headers=key, now=self.iso())
            assert (other.status, other.error) == (409, "IDEMPOTENCY_MISMATCH"), other.body
            lots = w.spend(REWARD_COST)
            self.stock -= 1
            self.reward_counts[member] += 1
            self.vouchers[b["redemption_id"]] = {"owner": member, "payer": member, "status": "issued",
                                                 "expires_at": expires, "code": b["code"], "gifted_from": None,
                                                 "lots": lots}

        @rule(data=st.data(), who=st.sampled_from(["main", "friend"]),
              action=st.sampled_from(["redeem", "redeem", "cancel", "cancel by the other member", "gift", "use",
                                      "use (messy code)"]))
        def voucher(self, data, who, action):
            """Redeem the reward; cancel, gift or use a voucher (SPEC 2.8)."""
            if action == "redeem" or not self.vouchers:
                return self.redeem_reward(self.who[who])
            rid = data.draw(st.sampled_from(list(self.vouchers)), label="redemption")
            v = self.vouchers[rid]
            owner = v["owner"]
            other = self.friend if owner == self.main else self.main
            status = self.voucher_status(v)
            event(f"voucher {action}: {status}")
            self._tick()
            key = {"Idempotency-Key": f"voucher-{next(_ids)}"}
            if action.startswith("cancel"):
                caller = owner if action == "cancel" else other
                path, body, sub = f"/v1/members/{caller}/redemptions/{rid}/cancel", None, caller
            elif action == "gift":
                path, body, sub = f"/v1/members/{owner}/redemptions/{rid}/gift", {"to_member_id": other}, owner
            if action.startswith(("cancel", "gift")):
                r = api.post(path, body, role="member", sub=sub, headers=key, now=self.iso())
            else:
                code = (v["code"][:8] + "-" + v["code"][8:]).lower() if "messy" in action else v["code"]
                r = api.post(f"/v1/vouchers/{code}/use", {"order_id": f"store-{next(_ids)}"}, now=self.iso())
            if action == "cancel by the other member":
                assert (r.status, r.error) == (404, "NOT_FOUND"), r.body  # not theirs (any more)
                return
            if status != "issued":
                assert (r.status, r.error) == (422, "VOUCHER_NOT_ISSUED"), r.body
                assert r.body["error"]["details"] == {"status": status}
                return
            assert r.status == 200, r.body
            if action in ("cancel", "gift"):  # SPEC 3: the same Idempotency-Key answers the same again
                again = api.post(path, body, role="member", sub=sub, headers=key, now=self.iso())
                assert again.status == 200 and again.body == r.body
            if action == "cancel":
                assert (r.body["redemption_id"], r.body["status"], r.body["member_id"]) == (rid, "cancelled", owner)
                v["status"] = "cancelled"
                # SPEC 2.8: points (to whoever paid) and stock come back
                self.wallets[v["payer"]].give_back(v["lots"])
                self.stock += 1
                self.reward_counts[v["payer"]] -= 1
            elif action == "gift":
                assert (r.body["redemption_id"], r.body["member_id"], r.body["gifted_from"], r.body["status"]) == (
                    rid, other, owner, "issued")
                # SPEC 2.8: the voucher gets a new code; the one the giver saw answers 404 at the till
                assert r.body["code"] != v["code"] and len(r.body["code"]) == 16
                stale = api.post(f"/v1/vouchers/{v['code']}/use", {"order_id": f"store-{next(_ids)}"}, now=self.iso())
                assert (stale.status, stale.error) == (404, "NOT_FOUND"), stale.body
                v["owner"], v["gifted_from"], v["code"] = other, owner, r.body["code"]
            else:
                assert (r.body["redemption_id"], r.body["status"], r.body["member_id"], r.body["used_at"]) == (
                    rid, "used", owner, self.iso())
                v["status"] = "used"

        # --- coupons ----------------------------------------------------------------------------------
        def coupon_verdict(self, key, member, total, validate):
            """(reason, discount) for this code, member and order (SPEC 2.9)."""
            c = self.camps[key]
            if self.now > c["ends"]:
                return "COUPON_EXPIRED", 0
            if key == "U":
                if c["redeemed"]:
                    return "COUPON_ALREADY_USED", 0
                if member != self.main:
                    return "COUPON_NOT_ELIGIBLE", 0  # issued to someone else
            checks = [("COUPON_MIN_ORDER", total < c["min_order"]),
                      ("COUPON_LIMIT_REACHED", c["max"] is not None and sum(c["uses"].values()) >= c["max"]),
                      ("COUPON_MEMBER_LIMIT_REACHED", c["uses"][member] >= c["per_member"])]
            for reason, failed in checks:  # validate and redeem report the same first reason
                if failed:
                    return reason, 0
            discount = total * SHARED_PERCENT // 100 if key == "S" else min(UNIQUE_AMOUNT, total)
            return None, discount

        @rule(data=st.data(), action=st.sampled_from(["S", "S", "U", "rollback"]),
              who=st.sampled_from(["main", "friend"]), total=st.one_of(st.integers(0, 1500), st.integers(1500, 30_000)))
        def coupon(self, data, action, who, total):
            """The shared (S) or the unique (U) code: validate, then redeem for a new order; or
            roll a redemption back."""
            if action != "rollback":
                return self.redeem_coupon(action, who, total)
            if not self.coupon_redemptions:
                r = api.post(f"/v1/coupons/redemptions/cr_nope{next(_ids)}/rollback", now=self.iso())
                assert (r.status, r.error) == (404, "NOT_FOUND"), r.body
                return
            self.rollback_coupon(data)

        def redeem_coupon(self, key, who, total):
            """Validate (no side effects), then redeem the same code for the same order."""
            member = self.who[who]
            c = self.camps[key]
            r = api.post("/v1/coupons/validate", {"code": c["code"].lower(), "member_id": member,
                                                  "order": {"total_amount": total}}, now=self.iso())
            assert r.status == 200, r.body
            reason, discount = self.coupon_verdict(key, member, total, validate=True)
            if reason:
                assert r.body == {"valid": False, "discount_amount": 0, "reason": reason}
            else:
                assert r.body == {"valid": True, "discount_amount": discount, "reason": None, "campaign_id": c["id"]}
            order_id = f"{member}-co{next(_ids)}"
            req = {"code": c["code"], "member_id": member, "order_id": order_id, "order": {"total_amount": total}}
            self._tick()
            r = api.post("/v1/coupons/redeem", req, now=self.iso())
            reason, discount = self.coupon_verdict(key, member, total, validate=False)
            event(f"coupon {key}: {reason}")
            if reason:
                assert (r.status, r.error) == (422, reason), r.body
                return
            assert r.status == 201, r.body
            assert (r.body["discount_amount"], r.body["campaign_id"], r.body["member_id"], r.body["order_id"]) == (
                discount, c["id"], member, order_id)
            assert discount <= total
            c["uses"][member] += 1
            if key == "U":
                c["redeemed"] = True
            self.coupon_redemptions[r.body["coupon_redemption_id"]] = {
                "key": key, "member": member, "req": req, "body": r.body, "rollback": None}

        def rollback_coupon(self, data):
            crid = data.draw(st.sampled_from(list(self.coupon_redemptions)), label="coupon redemption")
            cr = self.coupon_redemptions[crid]
            self._tick()
            r = api.post(f"/v1/coupons/redemptions/{crid}/rollback", now=self.iso())
            assert r.status == 200, r.body
            if cr["rollback"] is not None:
                assert r.body == cr["rollback"]  # idempotent: the first answer again
            else:
                assert (r.body["coupon_redemption_id"], r.body["status"], r.body["discount_amount"],
                        r.body["member_id"]) == (crid, "rolled_back", cr["body"]["discount_amount"], cr["member"])
                cr["rollback"] = r.body
                c = self.camps[cr["key"]]
                c["uses"][cr["member"]] -= 1
                if cr["key"] == "U":
                    c["redeemed"] = False
            r = api.post("/v1/coupons/redeem", cr["req"], now=self.iso())
            # once per order: a replay is the first answer, now saying that nothing is reserved (SPEC 2.9)
            assert r.status == 200 and r.body == {**cr["body"], "status": "rolled_back", "discount_amount": 0}

        # --- a suspended friend ------------------------------------------------------------------------
        @rule()
        def suspended_friend_is_refused(self):
            """SPEC 2.2/2.8: a suspended member cannot earn or redeem, nor receive a gift; the
            friend is reactivated at the end, so nothing changes in the model."""
            f = self.friend
            self._tick()
            r = api.post("/v1/members", {"member_id": f}, now=self.iso())
            assert (r.status, r.error) == (409, "ALREADY_EXISTS")
            r = api.patch(f"/v1/members/{f}", {"status": "suspended"}, now=self.iso())
            assert (r.status, r.body["status"]) == (200, "suspended")
            r = api.accrue(f, 10_000, order_id=f"{f}-o{next(_ids)}", now=self.iso())
            assert (r.status, r.error) == (422, "MEMBER_INACTIVE"), r.body
            r = api.activity(f, "review", activity_id=f"{f}-act{next(_ids)}", now=self.iso())
            assert (r.status, r.error) == (422, "MEMBER_INACTIVE"), r.body
            r = api.post(f"/v1/members/{f}/redemptions", {"reward_id": self.reward_id}, now=self.iso())
            assert (r.status, r.error) == (422, "MEMBER_INACTIVE"), r.body
            r = api.post("/v1/coupons/redeem", {"code": self.shared_code, "member_id": f,
                                                "order_id": f"{f}-co{next(_ids)}", "order": {"total_amount": 5000}},
                         now=self.iso())
            assert (r.status, r.error) == (422, "MEMBER_INACTIVE"), r.body
            r = api.post("/v1/coupons/validate", {"code": self.shared_code, "member_id": f,
                                                  "order": {"total_amount": 5000}}, now=self.iso())
            assert r.status == 200 and r.body == {"valid": False, "discount_amount": 0, "reason": "MEMBER_INACTIVE"}
            gifts = [rid for rid, v in self.vouchers.items()
                     if v["owner"] == self.main and self.voucher_status(v) == "issued"]
            if gifts:
                r = api.post(f"/v1/members/{self.main}/redemptions/{gifts[0]}/gift", {"to_member_id": f},
                             role="member", sub=self.main, now=self.iso())
                assert (r.status, r.error) == (422, "MEMBER_INACTIVE"), r.body
            r = api.patch(f"/v1/members/{f}", {"status": "active"}, now=self.iso())
            assert (r.status, r.body["status"]) == (200, "active")

        # --- invariants ------------------------------------------------------------------------------
        @invariant()
        def balances_match(self):
            for m, w in self.wallets.items():
                p = api.member(m, now=self.iso())["points"]
                assert (p["available"], p["pending"], p["lifetime_spent"]) == (w.available, 0, w.spent), (m, p)
                assert p["expiring_soon"] == w.expiring_soon(self.now), (m, p)
                assert_invariant(m)  # Σ ledger = available + pending, Σ lots = max(available, 0)

        @invariant()
        def ledger_matches_and_no_order_credited_twice(self):
            for m, w in self.wallets.items():
                entries = self.ledger(m)
                assert sum(e["points"] for e in entries) == w.available
                if entries:
                    assert entries[0]["balance_after"] == w.available
                earned = [e["reference"]["order_id"] for e in entries if e["type"] == "earn"]
                assert len(earned) == len(set(earned))
                assert set(earned) == {o for o, d in self.orders.items() if d["member"] == m and d["points"]}

        @invariant()
        def vouchers_match(self):
            for m in self.wallets:
                r = api.get(f"/v1/members/{m}/redemptions?limit=100", role="member", sub=m, now=self.iso())
                assert r.status == 200
                got = {v["redemption_id"]: (v["status"], v["gifted_from"]) for v in r.body["items"]}
                assert got == {rid: (self.voucher_status(v), v["gifted_from"])
                               for rid, v in self.vouchers.items() if v["owner"] == m}
            rewards = api.get("/v1/rewards?limit=100", now=self.iso()).body["items"]
            [mine] = [x for x in rewards if x["reward_id"] == self.reward_id]
            assert mine["remaining"] == self.stock
            assert 0 <= self.stock == REWARD_STOCK - sum(self.reward_counts.values())
            assert all(0 <= n <= REWARD_PER_MEMBER for n in self.reward_counts.values())

        @invariant()
        def coupons_within_limits(self):
            for key, c in self.camps.items():
                r = api.get(f"{C}/{c['id']}", role="admin", now=self.iso())
                assert r.status == 200
                used = sum(c["uses"].values())
                if key == "S":
                    expected = {"codes": 1, "issued": 1, "redeemed": used, "redemption_rate": 1.0 if used else 0.0}
                else:
                    expected = {"codes": 2, "issued": 1, "redeemed": used, "redemption_rate": float(used)}
                # SPEC 2.20: the discount of the redemptions in force
                expected["discount_total"] = sum(cr["body"]["discount_amount"] for cr in self.coupon_redemptions.values()
                                                 if cr["key"] == key and cr["rollback"] is None)
                assert r.body["stats"] == expected
                assert c["max"] is None or r.body["stats"]["redeemed"] <= c["max"]
                assert all(0 <= n <= c["per_member"] for n in c["uses"].values())
            wallet = {w["campaign_id"]: w for w in self.coupon_wallet(self.main)}
            s, u = self.camps["S"], self.camps["U"]
            assert set(wallet) == {s["id"], u["id"]}
            ws, wu = wallet[s["id"]], wallet[u["id"]]
            assert (ws["code"], ws["uses"]) == (self.shared_code, s["uses"][self.main])
            assert ws["uses"] <= ws["max_per_member"] == SHARED_PER_MEMBER
            assert ws["status"] == ("redeemed" if s["uses"][self.main] >= SHARED_PER_MEMBER else "issued")
            assert (wu["code"], wu["uses"]) == (u["code"], u["uses"][self.main])
            assert wu["status"] == ("redeemed" if u["redeemed"] else "expired" if self.now > u["ends"] else "issued")
            assert self.coupon_wallet(self.friend) == []  # nothing was issued to the friend

    MemberLife.TestCase.settings = settings(max_examples=35, stateful_step_count=15, deadline=None,
                                            suppress_health_check=list(HealthCheck))
    MemberLife.TestCase().runTest()
