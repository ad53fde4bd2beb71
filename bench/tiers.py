"""`tier_recalc`: members/s of the `recalculate-tiers` job at 1k, 10k and 100k members,
÷ a bare parallel-scan + conditional-update floor over the same table.

The table is seeded (straight into the bench emulator's table, `bench/emulator.py`; with
BatchWriteItem of 25 on another endpoint) with member items shaped as
the app writes them (`profile` and `state` JSON strings: wallet lots, twelve months of
spend buckets, tier state, order history): about 1 KB each. One member in ten needs a
change as of the run date, so the job writes: half of them are Gold members whose
retention ended in January with an empty window (soft landing to Silver), half are
Bronze members whose window already reaches Silver. The other nine keep their tier
(Silver and Gold within retention, Bronze below the threshold).

Ours: `framework.create("recalculate-tiers", as_of, ...)` + `framework.execute(job_id)`:
the job's parallel scan (its segments one after the other, as a single worker runs
them), the pure rule per member, one TransactWriteItems (member + tier history) and
the `tier_changed` message per change, and a checkpoint per page.

Floor: the same parallel scan with a bare boto3 client (same segments, page size,
consistent reads), the same rule written inline (json.loads of the state, a window sum,
threshold and retention checks) and one conditional UpdateItem per changed member.

Between runs the changed members are written back as seeded (the same way), so every run
does the same work. Rounds alternate ours / floor; medians.
"""
from __future__ import annotations

import json
import random
import time
from datetime import datetime, timezone

import boto3

from bench.common import entry, med, rnd

AS_OF = "2026-03-01T00:00:00Z"
MONTHS_2025 = [f"2025-{m:02d}" for m in range(1, 13)]
WINDOW = [f"2025-{m:02d}" for m in range(4, 13)] + ["2026-01", "2026-02", "2026-03"]
SILVER, GOLD = 50000, 200000


def _member(i: int, rng: random.Random) -> tuple[dict, bool]:
    """A member item in DynamoDB JSON, and whether the job must change its tier."""
    kind = i % 20
    mid = f"bm{i:07d}"
    if kind == 0:  # Gold, retention over, nothing spent in the window: lands on Silver
        tier, retained, spend, change = "gold", "2026-01-31T23:59:59Z", {}, True
    elif kind == 1:  # Bronze whose window reaches Silver (e.g. a tier list change): upgrade
        tier, retained, spend, change = "bronze", None, {m: 9000 for m in WINDOW[-8:-1]}, True
    elif kind < 6:  # Silver, earned
        tier, retained, spend, change = "silver", "2026-09-30T23:59:59Z", {m: 6000 for m in WINDOW[-11:-1]}, False
    elif kind < 8:  # Gold within retention
        tier, retained, spend, change = "gold", "2026-11-30T23:59:59Z", {m: 2000 for m in WINDOW[-6:-1]}, False
    else:  # Bronze below the threshold
        tier, retained, spend, change = "bronze", None, {m: rng.randrange(500, 3000) for m in WINDOW[-5:-1]}, False
    earned = sum(spend.values()) // 100 + rng.randrange(0, 500)
    lots = {m: max(1, earned // 3) for m in ("2025-10", "2025-12", "2026-02")}
    recent = sorted(f"{m}-{rng.randrange(1, 28):02d}T12:00:00Z" for m in spend)
    state = {
        "wallet": {"available": sum(lots.values()), "pending": 0, "lifetime_earned": sum(lots.values()) + 300,
                   "lifetime_spent": 300, "lots": lots, "pending_lots": []},
        "spend": spend,
        "tier": {"tier_id": tier, "retained_until": retained, "reached_at": "2025-01-15T10:00:00Z"},
        "seq": len(recent) + 2,
        "orders": {"count": len(recent), "first_at": recent[0] if recent else None,
                   "last_at": recent[-1] if recent else None, "recent": recent},
        "activities": {}, "referral_paid": False, "rewards": {"coffee": 1} if kind % 3 == 0 else {},
        "segment": None,
    }
    profile = {"name": f"Member {i}", "email": f"member{i}@example.com",
               "birthday": f"{1 + i % 12:02d}-{1 + i % 28:02d}",
               "locale": "ja-JP", "consents": {"email": i % 2 == 0, "push": i % 3 == 0, "sms": False},
               "enrolled_at": "2024-06-01T09:00:00Z", "referral_code": f"R{i:09d}", "referred_by": None}
    item = {"member_id": {"S": mid}, "version": {"N": str(len(recent) + 1)}, "status": {"S": "active"},
            "profile": {"S": json.dumps(profile)}, "state": {"S": json.dumps(state)}}
    return item, change


def _bulk_put(url: str, table: str, items: list) -> bool:
    """Put `items` straight into the bench emulator's table (`bench/emulator.py`, PUT_PATH):
    seconds for 100k members where BatchWriteItem calls take minutes. False when the
    emulator has no such path (another endpoint): the caller falls back to BatchWriteItem."""
    import requests

    from bench.emulator import PUT_PATH

    for i in range(0, len(items), 5000):
        r = requests.post(url + PUT_PATH, json={"table": table, "items": items[i:i + 5000]}, timeout=600)
        if r.status_code != 200 or "put" not in r.text:
            if i:
                raise RuntimeError(f"bulk put failed part-way: {r.status_code} {r.text[:200]}")
            return False
    return True


def _batch_write(ddb, table: str, items: list, url: str | None = None) -> int:
    if url and items and _bulk_put(url, table, items):
        return 0
    calls = 0
    for i in range(0, len(items), 25):
        req = {table: [{"PutRequest": {"Item": it}} for it in items[i:i + 25]]}
        while req:
            calls += 1
            req = ddb.batch_write_item(RequestItems=req).get("UnprocessedItems") or None
    return calls


class Table:
    def __init__(self, url: str, name: str):
        self.url = url
        self.ddb = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
        self.name = name
        self.changers: list = []
        self.size = 0

    def seed_to(self, n: int) -> float:
        """Grow the table to `n` members (the first ones stay as they are)."""
        rng = random.Random(n)
        t = time.perf_counter()
        batch = []
        for i in range(self.size, n):
            item, change = _member(i, rng)
            batch.append(item)
            if change:
                self.changers.append(item)
            if len(batch) >= 5000:
                _batch_write(self.ddb, self.name, batch, self.url)
                batch = []
        _batch_write(self.ddb, self.name, batch, self.url)
        self.size = n
        return time.perf_counter() - t

    def restore(self) -> None:
        _batch_write(self.ddb, self.name, self.changers, self.url)


class Floor:
    """A bare parallel scan + conditional UpdateItem per member that needs a change."""

    def __init__(self, url: str, table: str, segments: int, page_size: int):
        self.ddb = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
        self.table, self.segments, self.page_size = table, segments, page_size
        self.as_of = datetime(2026, 3, 1, tzinfo=timezone.utc)

    def _decide(self, state: dict):
        tier = state["tier"]
        spend = sum(int(state["spend"].get(m, 0)) for m in WINDOW[-12:])
        earned = "gold" if spend >= GOLD else "silver" if spend >= SILVER else "bronze"
        order = ("bronze", "silver", "gold", "platinum")
        current = tier["tier_id"]
        if order.index(earned) > order.index(current):
            return earned
        if order.index(earned) < order.index(current):
            retained = tier.get("retained_until")
            if retained and datetime.fromisoformat(retained.replace("Z", "+00:00")) >= self.as_of:
                return None
            return order[order.index(current) - 1]
        return None

    def run(self) -> int:
        changed = 0
        for segment in range(self.segments):
            kwargs = {"TableName": self.table, "Segment": segment, "TotalSegments": self.segments,
                      "Limit": self.page_size, "ConsistentRead": True}
            while True:
                page = self.ddb.scan(**kwargs)
                for item in page["Items"]:
                    state = json.loads(item["state"]["S"])
                    to = self._decide(state)
                    if to is None:
                        continue
                    state["tier"] = {**state["tier"], "tier_id": to, "reached_at": AS_OF}
                    version = int(item["version"]["N"])
                    self.ddb.update_item(
                        TableName=self.table, Key={"member_id": item["member_id"]},
                        UpdateExpression="SET #s = :s, #v = :n", ConditionExpression="#v = :v",
                        ExpressionAttributeNames={"#s": "state", "#v": "version"},
                        ExpressionAttributeValues={":s": {"S": json.dumps(state)}, ":n": {"N": str(version + 1)},
                                                   ":v": {"N": str(version)}})
                    changed += 1
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return changed


def run_job() -> dict:
    from chalicelib import clock
    from chalicelib.jobs import framework

    data = framework.create("recalculate-tiers", clock.parse_instant(AS_OF), "bench")
    return framework.execute(data["job_id"])


def measure(url: str, sizes=(1000, 10000, 100000), rounds=None, log=print) -> dict:
    from chalicelib.config import get_settings
    from chalicelib.jobs.framework import DEFAULT_SEGMENTS, JobContext

    settings = get_settings()
    table = Table(url, settings.resource_name("members"))
    segments = settings.job_segments or DEFAULT_SEGMENTS
    page = JobContext.__dataclass_fields__["page_size"]  # the job's own page size, a default or a factory
    floor = Floor(url, table.name, segments, page.default_factory() if callable(page.default_factory) else page.default)
    rounds = rounds or {1000: 7, 10000: 5, 100000: 3}
    value, fl, ratio, per_member, seed_s, detail = {}, {}, {}, {}, {}, {}
    for n in sizes:
        seed_s[n] = table.seed_to(n)
        expected = len(table.changers)
        ours_runs, floor_runs = [], []
        for r in range(rounds.get(n, 1)):
            order = ("ours", "floor") if r % 2 == 0 else ("floor", "ours")
            for who in order:
                table.restore()
                t = time.perf_counter()
                if who == "ours":
                    job = run_job()
                    got = int(job["counts"].get("changed", 0))
                else:
                    got = floor.run()
                took = time.perf_counter() - t
                if got != expected:
                    raise AssertionError(f"{who} changed {got} members, expected {expected}")
                (ours_runs if who == "ours" else floor_runs).append(n / took)
            log(f"  tier_recalc {n}: round {r + 1}: ours {ours_runs[-1]:.0f}/s, floor {floor_runs[-1]:.0f}/s")
        table.restore()
        value[str(n)], fl[str(n)] = rnd(med(ours_runs), 1), rnd(med(floor_runs), 1)
        ratio[str(n)] = rnd(med(ours_runs) / med(floor_runs))
        per_member[str(n)] = rnd(1e6 / med(ours_runs), 2)
        detail[str(n)] = {"ours_runs": [rnd(x, 1) for x in ours_runs], "floor_runs": [rnd(x, 1) for x in floor_runs],
                          "changed": expected, "seed_seconds": rnd(seed_s[n], 1)}
    lo, hi = str(min(sizes)), str(max(sizes))
    scaling = rnd(per_member[hi] / per_member[lo])
    floor_scaling = rnd((1 / fl[hi]) / (1 / fl[lo]))
    out = entry(value, fl, ratio, {"ratio": ">= 0.7", f"per_member_{hi}_vs_{lo}": "<= 1.5"}, "members/s",
                per_member_us=per_member, floor_per_member_us={k: rnd(1e6 / v, 2) for k, v in fl.items()},
                floor_scaling=floor_scaling, segments=segments, runs=detail)
    out[f"per_member_{hi}_vs_{lo}"] = scaling
    return out
