"""`codegen`: 100,000 unique coupon codes — seconds, DynamoDB calls, and ÷ a bare
BatchWriteItem floor.

Ours: `chalicelib.services.coupons.generate_codes` (what the generation job runs):
Crockford codes from `secrets` (60 random bits), a checkpoint announcing each chunk of
5,000 before it is written and a commit after it (so a restarted run never overshoots
the count), BatchWriteItem of 25 in concurrent streams (`LOYALTY_CODEGEN_WORKERS`).

Floor: the same number of items of the same shape (`store.code_item`) written with
bare BatchWriteItem calls of 25, in the same number of concurrent streams, by a bare
boto3 client: no codes drawn, no checkpoints.

The codes table is emptied before every run so that each run starts alike; rounds
alternate; medians. The ratio is the floor's seconds ÷ ours (higher is better).
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import boto3

from bench.common import counting, entry, med, rnd

CAMPAIGN = {"campaign_id": "bench-codes", "name": "Bench unique codes", "discount": {"type": "amount", "value": 500},
            "starts_at": "2025-01-01T00:00:00Z", "ends_at": "2027-01-01T00:00:00Z", "code_mode": "unique"}


def _empty_codes_table() -> None:
    from chalicelib.store.coupons import CodeRecord

    CodeRecord.delete_table()
    CodeRecord.create_table(wait=True, billing_mode="PAY_PER_REQUEST")


def measure(api, url: str, count: int = 100_000, rounds: int = 3) -> dict:
    from chalicelib.services import coupons
    from chalicelib.store import coupons as store

    api.ok("POST", "/v1/admin/coupon-campaigns", CAMPAIGN, role="admin", expect=(201, 409))
    table = store._table("coupon-codes")
    workers = store.codegen_workers()
    ddb = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
    items = [store.code_item(f"FLOOR{n:011d}", CAMPAIGN["campaign_id"], n) for n in range(count)]
    ours_s, floor_s, calls, floor_calls = [], [], [], []

    def ours() -> float:
        with counting() as c:
            t = time.perf_counter()
            out = coupons.generate_codes(CAMPAIGN["campaign_id"], count, "bench")
            took = time.perf_counter() - t
        if out["generated"] != count:
            raise AssertionError(f"generated {out['generated']} of {count}")
        calls.append(c.total("dynamodb"))
        return took

    def floor() -> float:
        n = {"calls": 0}

        def put(part):
            for i in range(0, len(part), 25):
                req = {table: [{"PutRequest": {"Item": it}} for it in part[i:i + 25]]}
                while req:
                    n["calls"] += 1
                    req = ddb.batch_write_item(RequestItems=req).get("UnprocessedItems") or None

        per = -(-len(items) // workers)
        per = -(-per // 25) * 25
        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(put, [items[i:i + per] for i in range(0, len(items), per)]))
        took = time.perf_counter() - t
        floor_calls.append(n["calls"])
        return took

    for r in range(rounds):
        for fn, out in (((ours, ours_s), (floor, floor_s)) if r % 2 == 0 else ((floor, floor_s), (ours, ours_s))):
            _empty_codes_table()
            out.append(fn())
    _empty_codes_table()
    value, fl = med(ours_s), med(floor_s)
    out = entry(rnd(value, 2), rnd(fl, 2), rnd(fl / value), ">= 0.7", f"seconds per {count:,} codes",
                workers=workers, rounds=rounds, ours_runs=[rnd(x, 2) for x in ours_s],
                floor_runs=[rnd(x, 2) for x in floor_s], floor_dynamodb_calls=max(floor_calls))
    out["dynamodb_calls"] = max(calls)
    return out
