"""`emulator_scale`: does the embedded emulator (`chalicelib/emulator.py`, the one `make run`
starts) hold a real program? Its memory (RSS) and the median accrual latency through it
at 10k and 100k members with their orders.

For each size a fresh emulator process is started and bootstrapped. A template member is
enrolled and given three orders through the full handler (`chalice.test.Client`), so
every item an accrual writes exists in its real shape (member, ledger entries, orders,
whatever else the app keeps per member). Every item that names the template member is
then cloned for N members inside the emulator process (its bulk-load hook, enabled by
LOYALTY_EMULATOR_HOOKS=1: loading is not what is measured, and 100k members through
BatchWriteItem take most of an hour on this shared machine). Then:

- memory: the emulator's RSS (`/proc/PID/status`) after loading, minus its RSS before,
  per member; goal: per-member memory at 100k ÷ at 10k ≤ 1.5 (memory linear in the data);
- latency: the median of `ACCRUALS` accruals through the full handler for members drawn
  across the whole table (each a GetItem and a TransactWriteItems on the emulator); goal:
  latency at 100k ≤ 1.5 × at 10k (per-call time flat).

The entry's `floor` holds the 10k figures each ratio divides by.
"""
from __future__ import annotations

import json
import os
import random
import time
from statistics import median
from typing import Callable, Optional

from bench.common import NOW, entry, rnd

SIZES = (10_000, 100_000)
ACCRUALS = 300
TEMPLATE = "tplmember0"


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _order(i: int) -> dict:
    return {"order_id": f"{TEMPLATE}-o{i}", "total_amount": 2500 + i * 900, "currency": "JPY",
            "items": [{"sku": f"SKU{i}", "category": "coffee", "amount": 1000 + i * 900, "quantity": 1},
                      {"sku": "BAG", "category": "goods", "amount": 1500, "quantity": 1}]}


def _template_items(raw) -> dict:
    """Every item of every table that names the template member, as DynamoDB JSON text."""
    out: dict = {}
    for table in raw.list_tables()["TableNames"]:
        kwargs = {"TableName": table}
        while True:
            page = raw.scan(**kwargs)
            for item in page["Items"]:
                text = json.dumps(item)
                if TEMPLATE in text:
                    out.setdefault(table, []).append(text)
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return out


def _load(url: str, members: int, log: Callable[[str], None]) -> float:
    """Clone the template member's items for `members` ids inside the emulator (its bulk-load
    hook, `chalicelib/emulator.py`) in one call: the hook finds the template's items once."""
    import requests

    from chalicelib.emulator import CLONE_PATH

    width = len(TEMPLATE)
    started = time.perf_counter()
    ids = [f"m{i:0{width - 1}d}" for i in range(members)]  # the template id's length: same item sizes
    r = requests.post(url + CLONE_PATH, json={"template": TEMPLATE, "ids": ids}, timeout=3600)
    r.raise_for_status()
    log(f"    loaded {members:,} members: {r.json()['copied']:,} items")
    return time.perf_counter() - started


def _one_size(members: int, log: Callable[[str], None]) -> dict:
    from chalice.test import Client

    import boto3

    from app import app
    from bench.client import Api
    from bench.common import _child, configure, emulator, fresh_stack

    os.environ["LOYALTY_EMULATOR_HOOKS"] = "1"  # the emulator process inherits it: its bulk-load hook
    with emulator() as url:
        configure(url)
        fresh_stack(url)
        pid = _child["pid"]
        with Client(app) as c:
            api = Api(c)
            api.ok("POST", "/v1/members", {"member_id": TEMPLATE, "name": "Sakura Tanaka",
                                            "email": "sakura@example.com", "birthday": "04-12",
                                            "consents": {"email": True, "push": True}})
            for i in range(3):
                api.ok("POST", f"/v1/members/{TEMPLATE}/accruals", _order(i))
            raw = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
            templates = _template_items(raw)
            per_member_items = sum(len(v) for v in templates.values())
            time.sleep(0.5)
            rss_before = _rss_mb(pid)
            seconds = _load(url, members, log)
            time.sleep(1.0)
            rss_after = _rss_mb(pid)
            rng = random.Random(members)
            width = len(TEMPLATE)
            latencies = []
            for n in range(ACCRUALS + 20):
                mid = f"m{rng.randrange(members):0{width - 1}d}"
                order = {"order_id": f"es-{members}-{n}", "total_amount": 3100, "currency": "JPY"}
                t = time.perf_counter()
                status, body = api.call("POST", f"/v1/members/{mid}/accruals", order, now=NOW)
                elapsed = time.perf_counter() - t
                if status != 201:
                    raise AssertionError(f"accrual for {mid} -> {status} {body}")
                if n >= 20:  # the first ones warm connections and caches
                    latencies.append(elapsed * 1000)
        return {"members": members, "items_per_member": per_member_items,
                "items": per_member_items * members, "tables": {k: len(v) for k, v in templates.items()},
                "rss_before_mb": rnd(rss_before, 1), "rss_mb": rnd(rss_after, 1),
                "per_member_kb": rnd((rss_after - rss_before) * 1024 / members, 3),
                "accrual_median_ms": rnd(median(latencies), 3),
                "accrual_p90_ms": rnd(sorted(latencies)[int(len(latencies) * 0.9)], 3),
                "load_seconds": rnd(seconds, 1)}


def measure(sizes: tuple = SIZES, log: Optional[Callable[[str], None]] = None) -> dict:
    log = log or (lambda _msg: None)
    runs = {}
    for members in sizes:
        log(f"  emulator_scale: {members:,} members")
        runs[str(members)] = _one_size(members, log)
        r = runs[str(members)]
        log(f"    RSS {r['rss_mb']} MB ({r['per_member_kb']} KB a member), accrual median "
            f"{r['accrual_median_ms']} ms, loaded in {r['load_seconds']} s")
    small, large = runs[str(sizes[0])], runs[str(sizes[-1])]
    value = {"rss_mb": {n: r["rss_mb"] for n, r in runs.items()},
             "per_member_kb": {n: r["per_member_kb"] for n, r in runs.items()},
             "accrual_median_ms": {n: r["accrual_median_ms"] for n, r in runs.items()}}
    floor = {"per_member_kb": small["per_member_kb"], "accrual_median_ms": small["accrual_median_ms"]}
    ratio = {"per_member_memory": rnd(large["per_member_kb"] / small["per_member_kb"]),
             "accrual_latency": rnd(large["accrual_median_ms"] / small["accrual_median_ms"])}
    goal = {"per_member_memory": "<= 1.5", "accrual_latency": "<= 1.5"}
    return entry(value, floor, ratio, goal, "MB RSS, KB per member, ms per accrual (median)",
                 runs=runs, accruals_per_size=ACCRUALS)
