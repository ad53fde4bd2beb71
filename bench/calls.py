"""`calls_per_op`: DynamoDB API calls per warm operation through the full handler.

Counted with botocore `before-call.dynamodb.*` hooks on the app's one DynamoDB client
(`chalicelib.store.base.dynamodb_client()`), SQS sends (`before-call.sqs.*`) on the
messaging client beside them. "Warm": settings, tiers and the coupon campaign are
already cached, as in a Lambda container that has served a request. Each operation is
measured on several fresh members/orders; the figure is the largest count seen.
"""
from __future__ import annotations

from bench.client import Api
from bench.common import counting, entry

# SPEC 3 "cost per call": a points mutation is one GetItem + one TransactWriteItems, a
# member read one GetItem. These minima are the floor; the goals are SPEC 6's.
FLOOR = {"enrol": 2, "accrual": 2, "refund": 2, "redemption": 2, "coupon_redeem": 2, "member_read": 1,
         "hold": 2, "capture": 2, "transfer": 2}
GOAL = {"enrol": 2, "accrual": 2, "refund": 2, "redemption": 2, "coupon_redeem": 2, "member_read": 1,
        "hold": 2, "capture": 2, "transfer": 2}
SAMPLES = 5


def _setup(api: Api) -> None:
    api.ok("POST", "/v1/admin/rewards", {"reward_id": "bench-coffee", "name": "Coffee", "cost_points": 10},
           role="admin", expect=(201, 409))
    api.ok("POST", "/v1/admin/coupon-campaigns", {
        "campaign_id": "bench-shared", "name": "Bench 10% off", "discount": {"type": "percent", "value": 10},
        "starts_at": "2025-01-01T00:00:00Z", "ends_at": "2027-01-01T00:00:00Z", "code_mode": "shared",
        "shared_code": "BENCH10", "max_per_member": 1000}, role="admin", expect=(201, 409))


def measure(api: Api) -> dict:
    _setup(api)
    # Warm-up: the first requests load settings, tiers and the campaign into the caches.
    api.ok("POST", "/v1/members", {"member_id": "warm-0", "name": "Warm"})
    api.ok("POST", "/v1/members/warm-0/accruals", {"order_id": "warm-o0", "total_amount": 5000, "currency": "JPY"})
    api.ok("POST", "/v1/members/warm-0/redemptions", {"reward_id": "bench-coffee"})
    api.ok("POST", "/v1/coupons/redeem", {"code": "BENCH10", "member_id": "warm-0", "order_id": "warm-c0",
                                          "order": {"total_amount": 5000}})
    api.ok("GET", "/v1/members/warm-0")
    api.ok("POST", "/v1/members/warm-0/point-holds", {"hold_id": "warm-h0", "points": 1})
    api.ok("POST", "/v1/members", {"member_id": "warm-1", "name": "Warm too"})
    api.ok("POST", "/v1/members/warm-0/transfers", {"transfer_id": "warm-t0", "to_member_id": "warm-1", "points": 1})

    seen: dict[str, list] = {op: [] for op in FLOOR}
    sqs: dict[str, list] = {op: [] for op in FLOOR}
    detail: dict[str, dict] = {}

    def count(op: str, method: str, path: str, body=None):
        with counting() as c:
            api.ok(method, path, body)
        seen[op].append(c.total("dynamodb"))
        sqs[op].append(c.total("sqs"))
        detail[op] = {**c.by_operation("dynamodb"), **{"sqs." + k: v for k, v in c.by_operation("sqs").items()}}

    for i in range(SAMPLES):
        m = f"calls-{i}"
        count("enrol", "POST", "/v1/members", {"member_id": m, "name": "Hanako", "email": f"{m}@example.com",
                                                "consents": {"email": True}})
        # The member's first order (first-purchase rules, referral check), then a repeat order.
        api.ok("POST", f"/v1/members/{m}/accruals", {"order_id": f"{m}-o1", "total_amount": 3000, "currency": "JPY"})
        count("accrual", "POST", f"/v1/members/{m}/accruals",
              {"order_id": f"{m}-o2", "total_amount": 4200, "currency": "JPY",
               "items": [{"sku": "A1", "category": "coffee", "amount": 1200, "quantity": 1},
                         {"sku": "B2", "category": "food", "amount": 3000, "quantity": 2}]})
        count("refund", "POST", f"/v1/members/{m}/refunds", {"refund_id": f"{m}-r1", "order_id": f"{m}-o2",
                                                             "amount": 1000})
        count("redemption", "POST", f"/v1/members/{m}/redemptions", {"reward_id": "bench-coffee"})
        count("coupon_redeem", "POST", "/v1/coupons/redeem",
              {"code": "BENCH10", "member_id": m, "order_id": f"{m}-c1", "order": {"total_amount": 4200}})
        count("member_read", "GET", f"/v1/members/{m}")
        # Paying with points at the till: hold at the basket, capture at payment.
        count("hold", "POST", f"/v1/members/{m}/point-holds", {"hold_id": f"{m}-h1", "points": 5})
        count("capture", "POST", f"/v1/members/{m}/point-holds/{m}-h1/capture", {})
        # A gift of points to a friend: both members, one read and one write.
        count("transfer", "POST", f"/v1/members/{m}/transfers", {"transfer_id": f"{m}-t1", "to_member_id": "warm-1",
                                                                  "points": 3})

    value = {op: max(v) for op, v in seen.items()}
    sends = {op: max(v) for op, v in sqs.items()}
    ratio = {op: round(value[op] / FLOOR[op], 3) for op in FLOOR}
    out = entry(value, dict(FLOOR), ratio, {op: f"<= {g}" for op, g in GOAL.items()},
                "DynamoDB API calls per warm operation", samples=seen, sqs_samples=sqs, calls=detail)
    out["sqs_sends"] = sends
    return out


def met(result: dict) -> dict:
    return {op: result["value"][op] <= GOAL[op] for op in GOAL}
