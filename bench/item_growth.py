"""`item_growth`: the member item's size and the DynamoDB write units of one accrual, for a
new member and for one with two years of daily purchases.

The write units are computed from the very items the accrual's TransactWriteItems
carries: a botocore `before-parameter-build.dynamodb.TransactWriteItems` hook on the
app's DynamoDB client copies the request's `TransactItems` before it is sent. For each
entry, DynamoDB bills a transactional write 2 write request units per started KB of the
item (a Put replacing a larger item bills the larger of the two, so the item each Put
replaces is read too, with a separate client outside the counted path). Item sizes follow
DynamoDB's published rules (`item_size`).

The heavy member is built through the real accrual path: one order a day for 730 days
through `chalice.test.Client` with the request clock (`X-Loyalty-Now`) on that day, and
the daily `expire-points` rule applied on the first of each month, as its schedule
would. The floor is the new member's accrual (enrolled, first order) measured in the same
run; the ratio is heavy ÷ new.
"""
from __future__ import annotations

import json
import math
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from statistics import median
from typing import Callable, Optional

from bench.client import Api
from bench.common import entry, rnd

DAYS = 730
HEAVY_MEMBERS = 2
NEW_MEMBERS = 5
START = datetime(2024, 1, 15, 12, 0, tzinfo=timezone.utc)


# --- DynamoDB's item size and write units -------------------------------------------

def _number_size(text: str) -> int:
    """A number's stored size: about one byte per two significant digits, plus one."""
    d = Decimal(text)
    if d == 0:
        return 1
    digits = d.as_tuple().digits
    significant = len(str(int("".join(map(str, digits)))).rstrip("0")) or 1
    return math.ceil(significant / 2) + 1


def value_size(value: dict) -> int:
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return _number_size(v)
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS",):
        return sum(len(x.encode()) for x in v)
    if kind == "NS":
        return sum(_number_size(x) for x in v)
    if kind == "BS":
        return sum(len(x) for x in v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(x) + 1 for k, x in v.items())
    if kind == "L":
        return 3 + sum(value_size(x) + 1 for x in v)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict) -> int:
    """Bytes of an item as DynamoDB counts them: each attribute's name (UTF-8) plus its value."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    """Transactional write request units of one item: 2 per started KB (at least 2)."""
    return 2 * max(1, math.ceil(size / 1024))


def transaction_units(transact_items: list, before: Callable[[str, dict], Optional[dict]]) -> list[dict]:
    """Per entry of a TransactWriteItems: table, kind, bytes (the larger of the item written and
    the one it replaces) and write units. `before(table, key)` reads an item as it is now."""
    out = []
    for op in transact_items:
        (kind, body), = op.items()
        table = body["TableName"]
        if kind == "Put":
            new = body["Item"]
            key_names = _key_names(table)
            old = before(table, {k: new[k] for k in key_names if k in new}) or {}
            size = max(item_size(new), item_size(old))
        else:  # Update, Delete, ConditionCheck: billed on the item they touch
            size = item_size(before(table, body["Key"]) or body["Key"])
        out.append({"table": table, "kind": kind, "bytes": size, "wru": write_units(size)})
    return out


_KEYS: dict = {}


def _key_names(table: str) -> list[str]:
    return _KEYS[table]


def _load_key_schema(ddb) -> None:
    for name in ddb.list_tables()["TableNames"]:
        _KEYS[name] = [k["AttributeName"] for k in ddb.describe_table(TableName=name)["Table"]["KeySchema"]]


class TransactionCapture:
    """Copies every TransactWriteItems request the app's DynamoDB client is about to send."""

    def __init__(self, client):
        self.client = client
        self.requests: list = []

    def _hook(self, params, **_):
        self.requests.append(json.loads(json.dumps(params["TransactItems"])))

    def __enter__(self):
        self.client.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", self._hook)
        return self

    def __exit__(self, *exc):
        self.client.meta.events.unregister("before-parameter-build.dynamodb.TransactWriteItems", self._hook)


# --- the members ---------------------------------------------------------------------

def _day(n: int) -> datetime:
    return START + timedelta(days=n)


def _order(member: str, n: int) -> dict:
    return {"order_id": f"{member}-d{n}", "total_amount": 800 + (n * 37) % 4200, "currency": "JPY",
            "items": [{"sku": f"SKU{n % 11}", "category": "coffee" if n % 3 else "food",
                       "amount": 800 + (n * 37) % 4200, "quantity": 1}]}


def _enrol(api: Api, member: str, now: str) -> None:
    api.ok("POST", "/v1/members", {"member_id": member, "name": "Sakura Tanaka", "email": f"{member}@example.com",
                                    "birthday": "04-12", "consents": {"email": True, "push": True}}, now=now)


def build_heavy(api: Api, member: str, days: int = DAYS) -> None:
    """Two years of daily purchases through the real accrual path, expiry applied monthly."""
    from chalicelib import clock
    from chalicelib.services import lifecycle
    from chalicelib.store import members as store

    _enrol(api, member, clock.iso(_day(0)))
    for n in range(days):
        at = _day(n)
        if at.day == 1:  # the daily expire-points schedule: lots expire at a month's start
            with clock.pinned(at):
                lifecycle.expire_points(store.get(member), at)
        api.ok("POST", f"/v1/members/{member}/accruals", _order(member, n), now=clock.iso(at))


def _member_item(raw, table: str, member: str) -> dict:
    return raw.get_item(TableName=table, Key={"member_id": {"S": member}}, ConsistentRead=True)["Item"]


def measure_one(api: Api, raw, member: str, n: int, now: str) -> dict:
    """One accrual of `member`, its transaction captured: units per item and in all, and the
    handler's wall time."""
    from chalicelib.store.base import dynamodb_client

    def before(table: str, key: dict) -> Optional[dict]:
        return raw.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    with TransactionCapture(dynamodb_client()) as cap:
        t = time.perf_counter()
        api.ok("POST", f"/v1/members/{member}/accruals", _order(member, n), now=now)
        seconds = time.perf_counter() - t
    if len(cap.requests) != 1:
        raise AssertionError(f"an accrual made {len(cap.requests)} TransactWriteItems calls")
    return {"items": transaction_units(cap.requests[0], before), "seconds": seconds}


def measure(api: Api, url: str, days: int = DAYS, heavy_members: int = HEAVY_MEMBERS, rounds: int = 5,
            log=lambda m: None, pending_variant: bool = True) -> dict:
    """Heavy members' and new members' accruals, alternating; the units of each are exact, the
    handler times medians (they feed `cost_per_million`)."""
    import boto3

    from chalicelib import clock
    from chalicelib.store.models import MemberRecord

    raw = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
    table = MemberRecord.table_name()
    heavy = [f"heavy-{i}" for i in range(heavy_members)]
    t = time.perf_counter()
    for m in heavy:
        build_heavy(api, m, days)
    build_seconds = time.perf_counter() - t
    log(f"  built {heavy_members} members of {days} daily orders in {build_seconds:.0f} s")
    _load_key_schema(raw)  # the keys the capture reads `before` images with

    the_day = _day(days)
    now = clock.iso(the_day)
    heavy_runs, new_runs = [], []
    for r in range(rounds):
        # new: enrolled the same day, its first order; heavy: its next daily order
        new_member = f"new-{r}"
        _enrol(api, new_member, now)
        pair = [("new", lambda: new_runs.append(measure_one(api, raw, new_member, 0, now))),
                ("heavy", lambda: heavy_runs.append(measure_one(api, raw, heavy[r % len(heavy)], days + r, now)))]
        for _, fn in (pair if r % 2 == 0 else pair[::-1]):
            fn()
    variant = _with_return_window(api, raw, days, now, log) if pending_variant else None
    heavy_item = _member_item(raw, table, heavy[0])
    new_item = _member_item(raw, table, "new-0")
    heavy_wru = int(median(sum(i["wru"] for i in run["items"]) for run in heavy_runs))
    new_wru = int(median(sum(i["wru"] for i in run["items"]) for run in new_runs))
    heavy_bytes, new_bytes = item_size(heavy_item), item_size(new_item)
    state = json.loads(heavy_item["state"]["S"])
    out = entry({"member_item_bytes": heavy_bytes, "accrual_wru": heavy_wru},
                {"member_item_bytes": new_bytes, "accrual_wru": new_wru},
                {"member_item_bytes": rnd(heavy_bytes / new_bytes), "accrual_wru": rnd(heavy_wru / new_wru)},
                {"member_item_bytes": "heavy <= 4096", "accrual_wru": "heavy / new <= 1.25"},
                "bytes; write request units per accrual (value: two years of daily orders, floor: new member)",
                days=days, heavy_members=heavy_members, rounds=rounds, build_seconds=rnd(build_seconds, 1),
                heavy_transaction=heavy_runs[0]["items"], new_transaction=new_runs[0]["items"],
                heavy_state_bytes=_parts(state), new_state_bytes=_parts(json.loads(new_item["state"]["S"])),
                heavy_handler_ms=[rnd(x["seconds"] * 1000, 2) for x in heavy_runs],
                new_handler_ms=[rnd(x["seconds"] * 1000, 2) for x in new_runs],
                with_return_window=variant)
    return out


RETURN_WINDOW_DAYS = 14


def _with_return_window(api: Api, raw, days: int, now: str, log) -> dict:
    """Not judged, reported: the same heavy member in a program whose points stay pending for a
    14-day return window (`pending_days`). Each order in the window keeps a pending lot (its
    order id, for a refund) in the member item, so the item grows with the orders of the window."""
    settings = api.ok("GET", "/v1/admin/settings", role="admin")
    api.ok("PUT", "/v1/admin/settings", {**settings, "pending_days": RETURN_WINDOW_DAYS}, role="admin")
    try:
        member = "heavy-pending"
        build_heavy(api, member, days)
        run = measure_one(api, raw, member, days, now)
        from chalicelib.store.models import MemberRecord

        item = _member_item(raw, MemberRecord.table_name(), member)
        state = json.loads(item["state"]["S"])
        out = {"pending_days": RETURN_WINDOW_DAYS, "member_item_bytes": item_size(item),
               "accrual_wru": sum(i["wru"] for i in run["items"]), "pending_lots": len(state["wallet"]["pending_lots"]),
               "pending_lots_bytes": len(json.dumps(state["wallet"]["pending_lots"], separators=(",", ":")))}
        log(f"  with a {RETURN_WINDOW_DAYS}-day return window: {out}")
        return out
    finally:
        api.ok("PUT", "/v1/admin/settings", settings, role="admin")


def _parts(state: dict) -> dict:
    """Bytes of each part of the member's JSON state (what grows)."""
    out = {}
    for k, v in state.items():
        if isinstance(v, dict) and len(json.dumps(v)) > 200:
            out.update({f"{k}.{kk}": len(json.dumps(vv)) for kk, vv in v.items()})
        else:
            out[k] = len(json.dumps(v))
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def met(e: dict) -> bool:
    return e["value"]["member_item_bytes"] <= 4096 and e["ratio"]["accrual_wru"] <= 1.25
