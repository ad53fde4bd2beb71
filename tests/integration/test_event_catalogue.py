"""Every event type of SPEC 2.16 comes out of a real write, and docs/EVENTS.md documents each
one with an example whose `data` has the keys the real event has (the catalogue cannot
drift from the code). `LOYALTY_WRITE_EVENT_EXAMPLES=path` writes the examples seen, for
refreshing the document."""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from chalicelib.domain.events import TYPES
from tests.integration.test_events import tap  # noqa: F401
from tests.integration.test_tiers_expiry import run_job

DOC = Path(__file__).resolve().parents[2] / "docs" / "EVENTS.md"
NOW = "2026-03-10T10:00:00Z"
ENVELOPE = {"event_id", "type", "occurred_at", "member_id", "sequence", "data"}


def ok(r, *codes):
    assert r.status in (codes or (200, 201, 202)), r.body
    return r.body


def scenario(api) -> None:
    """One of every effect, through the public API."""
    post = lambda path, body=None, **kw: ok(api.post(path, body, now=kw.pop("now", NOW), **kw))  # noqa: E731
    api.enrol("cat-a")
    api.enrol("cat-b")
    ok(api.patch("/v1/members/cat-a", {"name": "Renamed"}, now=NOW))
    post("/v1/members/cat-a/accruals", {"order_id": "cat-o1", "total_amount": 60000, "currency": "JPY"})
    post("/v1/members/cat-a/refunds", {"refund_id": "cat-r1", "order_id": "cat-o1", "amount": 1000})
    post("/v1/admin/members/cat-a/adjustments", {"adjustment_id": "cat-adj", "points": 10, "reason": "goodwill"},
         role="admin")
    post("/v1/admin/rewards", {"reward_id": "cat-cup", "name": "Cup", "cost_points": 50, "kind": "voucher"},
         role="admin")
    first = post("/v1/members/cat-a/redemptions", {"reward_id": "cat-cup"}, role="member", sub="cat-a")
    post(f"/v1/members/cat-a/redemptions/{first['redemption_id']}/cancel", role="member", sub="cat-a")
    second = post("/v1/members/cat-a/redemptions", {"reward_id": "cat-cup"}, role="member", sub="cat-a")
    gifted = post(f"/v1/members/cat-a/redemptions/{second['redemption_id']}/gift", {"to_member_id": "cat-b"},
                  role="member", sub="cat-a")
    post(f"/v1/vouchers/{gifted['code']}/use", {"order_id": "cat-pos"})
    post("/v1/members/cat-a/point-holds", {"hold_id": "cat-h1", "points": 40})
    post("/v1/members/cat-a/point-holds/cat-h1/capture", {"points": 30})
    post("/v1/members/cat-a/point-holds", {"hold_id": "cat-h2", "points": 20})
    post("/v1/members/cat-a/point-holds/cat-h2/release")
    post("/v1/members/cat-a/transfers", {"transfer_id": "cat-t1", "to_member_id": "cat-b", "points": 25})
    post("/v1/admin/coupon-campaigns", {
        "campaign_id": "cat-c", "name": "Ten off", "discount": {"type": "amount", "value": 100},
        "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-12-31T23:59:59Z", "code_mode": "unique"},
        role="admin")
    post("/v1/admin/coupon-campaigns/cat-c/codes", {"count": 2}, role="admin")
    post("/v1/admin/coupon-campaigns/cat-c/issue", {"member_ids": ["cat-a"]}, role="admin")
    code = ok(api.get("/v1/members/cat-a/coupons", now=NOW))["items"][0]["code"]
    red = post("/v1/coupons/redeem", {"code": code, "member_id": "cat-a", "order_id": "cat-o2",
                                      "order": {"total_amount": 5000}})
    post(f"/v1/coupons/redemptions/{red['coupon_redemption_id']}/rollback")
    # expiry: points earned in 2025-01 expire at the end of 2026-01 (12 months)
    api.enrol("cat-x")
    post("/v1/members/cat-x/accruals", {"order_id": "cat-ox", "total_amount": 10000, "currency": "JPY"},
         now="2025-01-20T00:00:00Z")
    run_job(api, "expire-points", "2026-02-01")
    # a duplicate account merged into cat-a
    api.enrol("cat-d")
    post("/v1/members/cat-d/accruals", {"order_id": "cat-od", "total_amount": 3000, "currency": "JPY"})
    post("/v1/admin/members/cat-a/merge", {"merge_id": "cat-m1", "source_member_id": "cat-d"}, role="admin")
    # a member migrated from another platform
    post("/v1/admin/imports", {"import_id": "cat-imp", "rows": [
        {"member_id": "cat-i", "balances": [{"points": 70, "earned_at": "2026-02-01"}]}]}, role="admin")
    deadline = time.monotonic() + 30
    while ok(api.get("/v1/admin/imports/cat-imp", role="admin"))["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    post("/v1/members/cat-b/close", role="admin")


def documented() -> dict[str, dict]:
    """docs/EVENTS.md: `### \\`type\\`` headings, each followed by a JSON example."""
    text = DOC.read_text()
    found = {}
    for type_, body in re.findall(r"^### `([a-z_.]+)`\n.*?```json\n(.*?)```", text, re.S | re.M):
        found[type_] = json.loads(body)
    return found


def test_every_event_type_is_published_and_documented(api, tap):  # noqa: F811
    tap()
    scenario(api)
    seen: dict[str, dict] = {}
    for e in tap():
        assert set(e) == ENVELOPE, e
        seen.setdefault(e["type"], e)
    assert sorted(seen) == sorted(TYPES), sorted(set(TYPES) ^ set(seen))
    if os.environ.get("LOYALTY_WRITE_EVENT_EXAMPLES"):
        Path(os.environ["LOYALTY_WRITE_EVENT_EXAMPLES"]).write_text(json.dumps(seen, indent=2) + "\n")
    docs = documented()
    assert sorted(docs) == sorted(TYPES), sorted(set(TYPES) ^ set(docs))
    for type_, example in docs.items():
        assert set(example) == ENVELOPE and example["type"] == type_, type_
        assert set(example["data"]) == set(seen[type_]["data"]), (type_, sorted(set(example["data"]) ^
                                                                           set(seen[type_]["data"])))
    for type_ in (t for t in TYPES if t.startswith("points.")):
        assert {"points", "balance", "entry_id", "reference"} <= set(seen[type_]["data"]), type_
