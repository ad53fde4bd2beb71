"""The member item stays small however long a member buys (SPEC 6 `item_growth`): every
accrual rewrites it whole and DynamoDB bills 2 write units per started KB. The order
timestamps are kept in epoch seconds, the JSON without separator spaces, and what the
item holds is read back exactly as before (RFM inputs, refunds, the ledger invariant)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3

from bench.item_growth import TransactionCapture, item_size, transaction_units
from chalicelib import clock
from chalicelib.domain import order_stats, rfm
from chalicelib.store.base import dynamodb_client
from chalicelib.store.models import MemberRecord
from tests.factories import assert_invariant

START = datetime(2025, 1, 10, 9, 30, tzinfo=timezone.utc)


def _raw_member(member_id: str) -> dict:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    return ddb.get_item(TableName=MemberRecord.table_name(), Key={"member_id": {"S": member_id}},
                        ConsistentRead=True)["Item"]


def test_a_daily_buyer_s_item_stays_under_2_kb_and_reads_back_the_same(api):
    api.enrol("daily", name="さくら 田中", email="daily@example.com")
    stamps = []
    for day in range(90):
        at = START + timedelta(days=day, minutes=day)
        stamps.append(at)
        r = api.accrue("daily", 1200 + day * 10, order_id=f"daily-{day}", now=clock.iso(at))
        assert r.status == 201, r.body
    item = _raw_member("daily")
    state = json.loads(item["state"]["S"])
    recent = state["orders"]["recent"]
    # the newest 40 order instants, in whole seconds, oldest first
    assert recent == [order_stats.encode(t) for t in stamps[-40:]]
    assert ", " not in item["state"]["S"] and '": ' not in item["state"]["S"]
    assert "さくら 田中" in item["profile"]["S"]  # UTF-8 as is, not \\u escapes
    assert item_size(item) < 2048
    assert "tx_token" not in item  # the accrual's commit token is on its order, not on the member
    assert state["orders"]["count"] == 90
    # RFM reads the seconds as it read ISO strings
    as_of = stamps[-1] + timedelta(days=3)
    as_iso = {**state, "orders": {**state["orders"], "recent": [order_stats.decode(s) for s in recent]}}
    got = rfm.inputs_from_state("daily", state, as_of)
    assert got == rfm.inputs_from_state("daily", as_iso, as_of)
    assert got.recency_days == 3 and got.frequency == 40 and got.orders == 90
    # refunds and the invariant work on the compact item
    r = api.refund("daily", "daily-89", 500, now=clock.iso(stamps[-1] + timedelta(hours=1)))
    assert r.status == 201, r.body
    assert_invariant("daily")
    assert api.member("daily", now=clock.iso(as_of))["name"] == "さくら 田中"


def test_an_item_written_with_iso_timestamps_keeps_working_and_converts_on_its_next_order(api):
    api.enrol("legacy")
    assert api.accrue("legacy", 3000, order_id="legacy-1", now="2025-03-01T10:00:00Z").status == 201
    item = _raw_member("legacy")
    state = json.loads(item["state"]["S"])
    state["orders"]["recent"] = ["2025-02-20T08:00:00Z", "2025-03-01T10:00:00Z"]  # as older code wrote it
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.put_item(TableName=MemberRecord.table_name(), Item={**item, "state": {"S": json.dumps(state)}})
    assert api.accrue("legacy", 2000, order_id="legacy-2", now="2025-03-05T12:00:00Z").status == 201
    after = json.loads(_raw_member("legacy")["state"]["S"])["orders"]["recent"]
    assert after == [order_stats.encode(datetime(2025, 2, 20, 8, tzinfo=timezone.utc)),
                     order_stats.encode(datetime(2025, 3, 1, 10, tzinfo=timezone.utc)),
                     order_stats.encode(datetime(2025, 3, 5, 12, tzinfo=timezone.utc))]


def test_the_capture_sees_the_accrual_s_one_transaction_and_bills_each_item(api):
    api.enrol("cap")
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    with TransactionCapture(dynamodb_client()) as cap:
        assert api.accrue("cap", 4000, order_id="cap-1").status == 201
    assert len(cap.requests) == 1
    tables = [next(iter(op.values()))["TableName"].split("-")[-1] for op in cap.requests[0]]
    assert tables[:3] == ["members", "ledger", "orders"]
    keys = {t["TableName"]: [k["AttributeName"] for k in t["KeySchema"]]
            for t in (ddb.describe_table(TableName=n)["Table"] for n in ddb.list_tables()["TableNames"])}
    from bench import item_growth

    item_growth._KEYS.update(keys)
    units = transaction_units(cap.requests[0], lambda table, key: ddb.get_item(TableName=table, Key=key).get("Item"))
    assert [u["wru"] for u in units] == [2] * len(units)  # every item under 1 KB for a new member
    member = units[0]
    assert member["bytes"] == item_size(_raw_member("cap"))  # a new item: billed on what was written


def test_a_shared_busy_member_in_a_return_window_stays_under_4_kb(api):
    """A busy shared id (a family card, a till's default member): six orders a day with long
    order ids, every one pending for a 14-day return window. Pending lots merge beyond their
    bound, so the item stays under 4 KB, nothing matures early and the ledger still sums."""
    from chalicelib.domain.wallet import MAX_PENDING_LOTS

    api.settings(pending_days=14)
    api.enrol("busy", name="Family card", email="busy@example.com")
    sizes, earned = [], []
    for day in range(21):
        for n in range(6):
            at = START + timedelta(days=day, hours=2 * n)
            oid = f"store-0042-till-07-{at:%Y%m%d%H%M}-{n}-" + "x" * 30
            r = api.accrue("busy", 2500 + n, order_id=oid, now=clock.iso(at))
            assert r.status == 201 and r.body["pending"] == r.body["points_earned"] > 0, r.body
            earned.append((at + timedelta(days=14), r.body["points_earned"]))
        sizes.append(item_size(_raw_member("busy")))
    state = json.loads(_raw_member("busy")["state"]["S"])
    assert len(state["wallet"]["pending_lots"]) <= MAX_PENDING_LOTS
    assert max(sizes) < 4096, sizes
    assert_invariant("busy")
    last = START + timedelta(days=20, hours=10)
    total = sum(p for _, p in earned)
    # from the last order on, no point is available before its order's window closed
    for when in (last, last + timedelta(days=2), last + timedelta(days=5, hours=3), last + timedelta(days=9)):
        m = api.member("busy", now=clock.iso(when))
        assert m["points"]["available"] <= sum(p for release, p in earned if release <= when)
    assert api.member("busy", now=clock.iso(last))["points"]["available"] == \
        sum(p for release, p in earned if release <= last)  # no merged lot straddles this moment
    m = api.member("busy", now=clock.iso(last))
    assert m["points"]["available"] + m["points"]["pending"] == total
    after = api.member("busy", now=clock.iso(last + timedelta(days=15)))
    assert (after["points"]["available"], after["points"]["pending"]) == (total, 0)
    # and with a full return window and as many open holds as a member may have
    from chalicelib.services.holds import MAX_OPEN_HOLDS

    for n in range(MAX_OPEN_HOLDS):
        r = api.post("/v1/members/busy/point-holds", {"hold_id": f"web-checkout-{n:04d}-0123456789abcdef",
                                                "points": 10, "order_id": f"web-order-{n:06d}-0123456789ab"},
                     now=clock.iso(last))
        assert r.status == 201, r.body
    assert api.post("/v1/members/busy/point-holds", {"hold_id": "one-too-many", "points": 10},
                    now=clock.iso(last)).status == 400
    raw = _raw_member("busy")
    assert item_size(raw) < 4096
    assert_invariant("busy")
