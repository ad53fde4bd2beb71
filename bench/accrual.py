"""`accrual_ratio`: accruals/s through the full handler ÷ a bare boto3 loop making the
same DynamoDB calls on the same emulator.

Ours: `POST /v1/members/{id}/accruals` through `chalice.test.Client` (token check,
validation, earning rules, tier upgrade check, one GetItem, one TransactWriteItems,
the JSON response), cycling over a pool of members.

Floor: for the same number of orders, one GetItem of one of ours' member items and one
TransactWriteItems with the same three items: that member item put back conditional on
its version, a ledger entry put and an order put (each conditional on not existing),
copies of items ours wrote. Many short rounds alternate ours / floor (and which goes
first), so a burst of load from elsewhere on a shared machine hits both; the figures
are medians of the per-round rates.
"""
from __future__ import annotations

import json
import time

import boto3

from bench.client import Api
from bench.common import entry, med, rnd

MEMBERS = 40


def _order(i: int, member: str) -> dict:
    return {"order_id": f"acc-{member}-{i}", "total_amount": 2500 + (i % 7) * 900, "currency": "JPY",
            "items": [{"sku": f"SKU{i % 13}", "category": "coffee" if i % 3 == 0 else "food",
                       "amount": 1000 + (i % 7) * 900, "quantity": 1},
                      {"sku": "BAG", "category": "goods", "amount": 1500, "quantity": 1}]}


class Floor:
    """The bare loop: the same two DynamoDB calls per accrual, nothing else. It reads and
    rewrites ours' member items themselves (unchanged but for the version), so its items
    are the same size as ours all along; its ledger entries go under their own keys."""

    def __init__(self, url: str, table_prefix: str, members: list, ledger: dict, order: dict):
        self.ddb = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
        self.t = {k: f"{table_prefix}{k}" for k in ("members", "ledger", "orders")}
        self.ledger, self.order = ledger, order
        self.ids = list(members)
        self.seq = {m: 0 for m in self.ids}
        self.n = 0

    def accrue(self) -> None:
        m = self.ids[self.n % len(self.ids)]
        self.n += 1
        item = self.ddb.get_item(TableName=self.t["members"], Key={"member_id": {"S": m}},
                                 ConsistentRead=True)["Item"]
        version = int(item["version"]["N"])
        self.seq[m] += 1
        new = {**item, "version": {"N": str(version + 1)}}
        self.ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": self.t["members"], "Item": new, "ConditionExpression": "#v = :v",
                     "ExpressionAttributeNames": {"#v": "version"},
                     "ExpressionAttributeValues": {":v": {"N": str(version)}}}},
            {"Put": {"TableName": self.t["ledger"],
                     "Item": {**self.ledger, "member_id": {"S": "floor-" + m}, "seq": {"N": str(self.seq[m])}},
                     "ConditionExpression": "attribute_not_exists(#s)", "ExpressionAttributeNames": {"#s": "seq"}}},
            {"Put": {"TableName": self.t["orders"], "Item": {**self.order, "order_id": {"S": f"floor-o{self.n}"}},
                     "ConditionExpression": "attribute_not_exists(#o)",
                     "ExpressionAttributeNames": {"#o": "order_id"}}},
        ])


def measure(api: Api, url: str, per_round: int = 40, rounds: int = 31) -> dict:
    from chalicelib.config import get_settings

    prefix = get_settings().resource_name("x")[:-1]
    members = [f"acc-{n}" for n in range(MEMBERS)]
    for m in members:
        api.ok("POST", "/v1/members", {"member_id": m, "name": "Sakura Tanaka", "email": f"{m}@example.com",
                                        "birthday": "04-12", "consents": {"email": True, "push": True}})
    counter = {"n": 0}

    def ours_batch(n: int) -> None:
        for _ in range(n):
            i = counter["n"]
            counter["n"] += 1
            m = members[i % MEMBERS]
            status, body = api.call("POST", f"/v1/members/{m}/accruals", _order(i, m))
            if status != 201:
                raise AssertionError(f"accrual -> {status} {body}")

    ours_batch(3 * MEMBERS)  # a few orders each: realistic wallets, spend buckets, ledgers
    raw = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
    ledger_item = raw.query(TableName=prefix + "ledger", KeyConditionExpression="member_id = :m",
                            ExpressionAttributeValues={":m": {"S": members[0]}}, Limit=1)["Items"][0]
    order_item = raw.scan(TableName=prefix + "orders", Limit=1)["Items"][0]
    floor = Floor(url, prefix, members, ledger_item, order_item)
    for _ in range(MEMBERS):
        floor.accrue()  # warm-up: connections, botocore's first-call work

    ours_rates, floor_rates = [], []
    for r in range(rounds):
        pair = [("ours", ours_batch), ("floor", lambda n: [floor.accrue() for _ in range(n)])]
        for name, fn in (pair if r % 2 == 0 else pair[::-1]):
            t = time.perf_counter()
            fn(per_round)
            rate = per_round / (time.perf_counter() - t)
            (ours_rates if name == "ours" else floor_rates).append(rate)
    value, fl = med(ours_rates), med(floor_rates)
    member_item = raw.get_item(TableName=prefix + "members", Key={"member_id": {"S": members[0]}})["Item"]
    return entry(rnd(value, 1), rnd(fl, 1), rnd(value / fl), ">= 0.85", "accruals/s",
                 ours_ms_per_accrual=rnd(1000 / value, 3), floor_ms_per_accrual=rnd(1000 / fl, 3),
                 rounds=rounds, per_round=per_round, ours_runs=[rnd(x, 1) for x in ours_rates],
                 floor_runs=[rnd(x, 1) for x in floor_rates],
                 member_item_json_bytes_at_end=len(json.dumps(member_item)))
