"""`cost_per_million`: dollars per million accruals and per million member reads at AWS
on-demand list prices (`bench/prices.py`, us-east-1, with the date they reflect).

Per request: one API Gateway REST API request, one Lambda request, Lambda duration at
the memory `.chalice/config.json` gives the API function of the `prod` stage times the
handler time measured here, and DynamoDB request units: the write units of the accrual's
transaction as `item_growth` computed them from the items written (a new member and a
member with two years of daily purchases), one read unit for the consistent GetItem of
a member item under 4 KB.

The handler time is measured through `chalice.test.Client` on the embedded emulator,
alternating with a floor: the same DynamoDB calls made by a bare boto3 loop
(`bench.accrual.Floor` for accruals, a bare consistent GetItem for member reads). The
floor's cost is what the same calls would cost with no handler around them; the ratio
is ours ÷ floor. Time spent inside the DynamoDB calls (botocore `before-call` to
`after-call`) is reported beside it: on the emulator a call costs milliseconds of moto's
Python, in AWS an in-region call takes a few milliseconds of network.
"""
from __future__ import annotations

import json
import math
import os
import time

import boto3

from bench import prices
from bench.client import Api
from bench.common import ROOT, entry, med, rnd

MEMBERS = 20


def lambda_memory_mb(stage: str = "prod") -> int:
    """The API function's memory in `.chalice/config.json` (the stage's, else the top level's)."""
    with open(os.path.join(ROOT, ".chalice", "config.json")) as f:
        config = json.load(f)
    st = config.get("stages", {}).get(stage, {})
    return int(st.get("lambda_memory_size") or config.get("lambda_memory_size") or 128)


def per_million(handler_ms: float, memory_mb: int, rru: float, wru: float, p: dict = prices.PRICES) -> dict:
    """Dollars per million requests, by part. Lambda bills duration per started millisecond."""
    billed_s = math.ceil(handler_ms) / 1000
    parts = {
        "api_gateway": p["apigw_rest_per_million_requests"],
        "lambda_requests": p["lambda_per_million_requests"],
        "lambda_duration": billed_s * memory_mb / 1024 * p["lambda_per_gb_second"] * 1e6,
        "dynamodb_reads": rru * p["dynamodb_per_million_rru"],
        "dynamodb_writes": wru * p["dynamodb_per_million_wru"],
    }
    return {"total": rnd(sum(parts.values()), 3), **{k: rnd(v, 4) for k, v in parts.items()}}


def _read_units(item_bytes: int) -> int:
    """A strongly consistent GetItem: 1 read request unit per started 4 KB."""
    return max(1, math.ceil(item_bytes / 4096))


class CallClock:
    """Wall time spent inside the app's DynamoDB calls (botocore before-call → after-call)."""

    def __init__(self, client):
        self.client, self.seconds, self._t = client, 0.0, None

    def _before(self, **_):
        self._t = time.perf_counter()

    def _after(self, **_):
        if self._t is not None:
            self.seconds += time.perf_counter() - self._t
            self._t = None

    def __enter__(self):
        self.client.meta.events.register("before-call.dynamodb.*", self._before)
        self.client.meta.events.register("after-call.dynamodb.*", self._after)
        return self

    def __exit__(self, *exc):
        self.client.meta.events.unregister("before-call.dynamodb.*", self._before)
        self.client.meta.events.unregister("after-call.dynamodb.*", self._after)


def measure(api: Api, url: str, growth: dict, per_round: int = 20, rounds: int = 15) -> dict:
    from bench.accrual import Floor, _order
    from chalicelib.config import get_settings
    from chalicelib.store.base import dynamodb_client

    prefix = get_settings().resource_name("x")[:-1]
    members = [f"cost-{n}" for n in range(MEMBERS)]
    for m in members:
        api.ok("POST", "/v1/members", {"member_id": m, "name": "Sakura Tanaka", "email": f"{m}@example.com",
                                        "birthday": "04-12", "consents": {"email": True, "push": True}})
    counter = {"n": 0}

    def accruals(n: int) -> None:
        for _ in range(n):
            i = counter["n"]
            counter["n"] += 1
            m = members[i % MEMBERS]
            status, body = api.call("POST", f"/v1/members/{m}/accruals", _order(i, m))
            if status != 201:
                raise AssertionError(f"accrual -> {status} {body}")

    def reads(n: int) -> None:
        for i in range(n):
            status, body = api.call("GET", f"/v1/members/{members[i % MEMBERS]}")
            if status != 200:
                raise AssertionError(f"member read -> {status} {body}")

    accruals(3 * MEMBERS)
    raw = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
    ledger_item = raw.query(TableName=prefix + "ledger", KeyConditionExpression="member_id = :m",
                            ExpressionAttributeValues={":m": {"S": members[0]}}, Limit=1)["Items"][0]
    order_item = raw.scan(TableName=prefix + "orders", Limit=1)["Items"][0]
    floor = Floor(url, prefix, members, ledger_item, order_item)
    for _ in range(MEMBERS):
        floor.accrue()

    def floor_reads(n: int) -> None:
        for i in range(n):
            raw.get_item(TableName=prefix + "members", Key={"member_id": {"S": members[i % MEMBERS]}},
                         ConsistentRead=True)

    floor_reads(MEMBERS)
    runs: dict = {k: [] for k in ("accrual", "accrual_floor", "read", "read_floor", "accrual_calls", "read_calls")}
    app_client = dynamodb_client()
    for r in range(rounds):
        plan = [("accrual", accruals), ("accrual_floor", lambda n: [floor.accrue() for _ in range(n)]),
                ("read", reads), ("read_floor", floor_reads)]
        if r % 2:
            plan = [plan[1], plan[0], plan[3], plan[2]]
        for name, fn in plan:
            with CallClock(app_client) as clk:
                t = time.perf_counter()
                fn(per_round)
                ms = (time.perf_counter() - t) * 1000 / per_round
            runs[name].append(ms)
            if name in ("accrual", "read"):
                runs[name + "_calls"].append(clk.seconds * 1000 / per_round)
    ms = {k: med(v) for k, v in runs.items()}

    memory = lambda_memory_mb("prod")
    heavy, new = growth["value"], growth["floor"]
    rru_accrual_heavy, rru_accrual_new = _read_units(heavy["member_item_bytes"]), _read_units(new["member_item_bytes"])
    rru_read = _read_units(heavy["member_item_bytes"])
    ours = {"accrual_new_member": per_million(ms["accrual"], memory, rru_accrual_new, new["accrual_wru"]),
            "accrual_heavy_member": per_million(ms["accrual"], memory, rru_accrual_heavy, heavy["accrual_wru"]),
            "member_read": per_million(ms["read"], memory, rru_read, 0)}
    bare = {"accrual_new_member": per_million(ms["accrual_floor"], memory, rru_accrual_new, new["accrual_wru"]),
            "accrual_heavy_member": per_million(ms["accrual_floor"], memory, rru_accrual_heavy, heavy["accrual_wru"]),
            "member_read": per_million(ms["read_floor"], memory, rru_read, 0)}
    p = prices.PRICES
    # After the commit, per accrual: the relay deletes the outbox row (1 WRU, not transactional)
    # and puts the points.earned event on the bus (stream reads by a Lambda trigger are free).
    after = {"outbox_delete": rnd(1 * p["dynamodb_per_million_wru"], 4),
             "eventbridge_event": rnd(1 * p["eventbridge_per_million_events"], 4)}
    value = {k: v["total"] for k, v in ours.items()}
    fl = {k: v["total"] for k, v in bare.items()}
    return entry(value, fl, {k: rnd(value[k] / fl[k]) for k in value}, "reported (README compares)",
                 "USD per million requests (us-east-1 on-demand list prices)",
                 prices=prices.table(), lambda_memory_mb=memory, lambda_memory_stage="prod",
                 handler_ms={k: rnd(v, 3) for k, v in ms.items()},
                 handler_runs_ms={k: [rnd(x, 3) for x in v] for k, v in runs.items()},
                 breakdown=ours, floor_breakdown=bare, after_commit_per_accrual=after,
                 read_units={"accrual_new_member": rru_accrual_new, "accrual_heavy_member": rru_accrual_heavy,
                             "member_read": rru_read},
                 write_units={"accrual_new_member": new["accrual_wru"], "accrual_heavy_member": heavy["accrual_wru"]},
                 rounds=rounds, per_round=per_round)
