"""OpenAPI 3.1 for every registered route, from the pydantic models (built on first request).

Each operation carries a summary and a description (the view's docstring, then who may
call it, how it replays, how it pages), a request example where it takes a body, and a
response example; list responses are typed pages (`Page[T]`). `/v1/docs` renders it.
"""
from __future__ import annotations

import functools
import re
from typing import Any

from pydantic.json_schema import models_json_schema

from chalicelib.api.http import ENDPOINTS
from chalicelib.schemas.common import ErrorResponse

_ERRORS = {
    "400": "VALIDATION_ERROR (details.fields lists field errors)",
    "401": "UNAUTHENTICATED",
    "403": "FORBIDDEN",
    "404": "NOT_FOUND and friends",
    "409": "ALREADY_EXISTS, IDEMPOTENCY_MISMATCH or REQUEST_IN_PROGRESS",
    "422": "a business rule said no (INSUFFICIENT_POINTS, ...)",
    "503": "RETRY_LATER",
}
_ERROR_EXAMPLES = {
    "400": ("VALIDATION_ERROR", "the request is not valid",
            {"fields": [{"field": "total_amount", "message": "Input should be a valid integer", "type": "int_type"}]}),
    "401": ("UNAUTHENTICATED", "a valid bearer token is required", {}),
    "403": ("FORBIDDEN", "this token may not do that", {}),
    "404": ("NOT_FOUND", "not found", {}),
    "405": ("METHOD_NOT_ALLOWED", "this route does not take that method", {"allowed": ["GET"]}),
    "409": ("IDEMPOTENCY_MISMATCH", "this key was used before with a different payload", {}),
    "422": ("INSUFFICIENT_POINTS", "not enough available points", {}),
    "503": ("RETRY_LATER", "the service is busy; retry the same request", {}),
}

_AUDIENCE = {"tiers": ["gold"], "segments": ["at_risk"]}
# Request bodies, by model ("module.Class"): what a client would really send.
REQUEST_EXAMPLES: dict[str, Any] = {
    "members.EnrolRequest": {"member_id": "m-1001", "name": "Hanako", "email": "hanako@example.com",
                             "birthday": "04-01", "locale": "ja-JP",
                             "consents": {"email": True, "push": False, "sms": False}},
    "members.PatchMemberRequest": {"name": "Hanako Y.", "consents": {"push": True}},
    "members.AccrualRequest": {"order_id": "ord-1", "total_amount": 12800, "currency": "JPY",
                               "occurred_at": "2026-11-30T10:15:00Z", "channel": "store",
                               "items": [{"sku": "COFFEE-1", "category": "coffee", "amount": 2800, "quantity": 1},
                                         {"sku": "MUG-2", "category": "home", "amount": 10000, "quantity": 1}]},
    "members.RefundRequest": {"refund_id": "rf-1", "order_id": "ord-1", "amount": 2800},
    "members.ActivityRequest": {"activity_id": "act-1", "type": "review"},
    "members.AdjustmentRequest": {"adjustment_id": "adj-1", "points": 500, "reason": "goodwill: late delivery"},
    "rewards.Reward": {"reward_id": "latte", "name": "Free latte", "cost_points": 50, "kind": "voucher",
                       "stock": 100, "voucher_valid_days": 30},
    "rewards.RewardUpdate": {"name": "Free latte (large)", "cost_points": 60, "kind": "voucher", "stock": 100},
    "rewards.RedeemRequest": {"reward_id": "latte"},
    "rewards.GiftRequest": {"to_member_id": "m-2002"},
    "rewards.UseVoucherRequest": {"order_id": "ord-2"},
    "coupons.CreateCampaignRequest": {"campaign_id": "spring-10", "name": "Spring 10% off",
                                      "discount": {"type": "percent", "value": 10}, "min_order_amount": 3000,
                                      "starts_at": "2026-03-01T00:00:00Z", "ends_at": "2026-05-31T23:59:59Z",
                                      "code_mode": "unique", "code_pattern": {"prefix": "SPR", "length": 10},
                                      "max_per_member": 1},
    "coupons.PatchCampaignRequest": {"status": "paused"},
    "coupons.GenerateCodesRequest": {"count": 1000},
    "coupons.IssueRequest": {"member_ids": ["m-1001", "m-2002"], "notify": True},
    "coupons.ValidateRequest": {"code": "SPR7K2M9QXD4", "member_id": "m-1001",
                                "order": {"total_amount": 5000, "currency": "JPY"}},
    "coupons.RedeemRequest": {"code": "SPR7K2M9QXD4", "member_id": "m-1001", "order_id": "ord-3",
                              "order": {"total_amount": 5000, "currency": "JPY"}},
    "marketing.EventRequest": {"event_id": "ev-1", "type": "cart_abandoned",
                               "cart": {"items": [{"sku": "MUG-2", "amount": 10000}]}},
    "marketing.FeedbackRequest": {"feedback_id": "fb-1", "score": 9, "comment": "quick checkout"},
    "marketing.ProductSignalRequest": {"signal_id": "sig-1", "sku": "MUG-2", "type": "back_in_stock"},
    "marketing.MessageCampaignRequest": {"name": "We miss you", "template": "winback", "channel": "email",
                                         "audience": _AUDIENCE, "coupon_campaign_id": "spring-10", "control_share": "0.1",
                                         "dry_run": True},
    "program.ProgramSettings": {"currency": "JPY", "base_rate": {"points": 1, "per_amount": 100},
                                "category_multipliers": {"coffee": "2"}, "pending_days": 0,
                                "points_expiry_months": 12},
    "program.TierList": {"items": [
        {"tier_id": "bronze", "name": "Bronze", "threshold": 0, "multiplier": "1.0", "benefits": []},
        {"tier_id": "silver", "name": "Silver", "threshold": 50000, "multiplier": "1.25",
         "benefits": ["free shipping"]}]},
    "jobs.JobRequest": {"job": "recalculate-tiers", "as_of": "2026-03-01"},
    "transfers.TransferRequest": {"transfer_id": "tr-1", "to_member_id": "m-2002", "points": 300},
    "transfers.MergeRequest": {"merge_id": "mg-1", "source_member_id": "m-1001-dup"},
    "simulate.SimulateRequest": {
        "settings": {"base_rate": {"points": 1, "per_amount": 100},
                     "promotions": [{"promotion_id": "app-3x", "name": "Triple points in the app", "multiplier": "3",
                                     "channels": ["app"], "starts_at": "2026-12-01T00:00:00Z",
                                     "ends_at": "2027-01-01T00:00:00Z"}],
                     "earning_caps": {"per_member_per_day": 5000, "per_member_per_month": None}},
        "orders": [{"member_id": "m-1001", "order_id": "ord-1", "total_amount": 12800, "currency": "JPY",
                    "channel": "app", "occurred_at": "2026-12-01T10:15:00Z"}],
        "last_days": 7},
    "data.ExportRequest": {"export_id": "ledger-2026-03", "kind": "ledger", "from": "2026-03-01T00:00:00Z",
                           "to": "2026-04-01T00:00:00Z"},
    "data.ImportRequest": {"import_id": "migration-1", "rows": [
        {"member_id": "m-1001", "name": "Hanako", "email": "hanako@example.com", "tier_id": "silver",
         "tier_retained_until": "2027-03-31T23:59:59Z", "lifetime_earned": 5200,
         "balances": [{"points": 1200, "earned_at": "2026-01-15"}, {"points": 300, "earned_at": "2026-03-02"}]}]},
}

# Values by field name for the generated response examples; anything else by type.
_SAMPLE_VALUES: dict[str, Any] = {
    "member_id": "m-1001", "order_id": "ord-1", "refund_id": "rf-1", "activity_id": "act-1",
    "adjustment_id": "adj-1", "reward_id": "latte", "redemption_id": "rd_3f9a0c1b2d4e5f607182",
    "campaign_id": "spring-10", "coupon_redemption_id": "cr_5b1c2d3e4f", "job_id": "job_8c1d2e3f",
    "feedback_id": "fb-1", "event_id": "ev-1", "signal_id": "sig-1", "audit_id": "au_1a2b3c4d5e6f7a8b",
    "entry_id": "m-1001#000000000001", "code": "LATTE-7K2M-9QXD", "name": "Hanako", "email": "hanako@example.com",
    "currency": "JPY", "status": "active", "tier_id": "silver", "tier": "silver", "locale": "ja-JP",
    "actor": "service:pos-1", "next_cursor": None, "sku": "MUG-2", "job": "recalculate-tiers",
    "multiplier": "1.25", "birthday": "04-01", "rfm": "345", "label": "loyal",
}
_TIME_FIELDS = re.compile(r"(_at|_until|^at|^as_of)$")


def _example(schema: dict, defs: dict, name: str = "", depth: int = 0) -> Any:
    """A plausible instance of a JSON schema (for response examples)."""
    if depth > 6:
        return None
    if "$ref" in schema:
        return _example(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, name, depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return _example(options[0], defs, name, depth + 1)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if name in _SAMPLE_VALUES:
        return _SAMPLE_VALUES[name]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: _example(v, defs, k, depth + 1) for k, v in props.items()}
    if kind == "array":
        item = _example(schema.get("items", {}), defs, name, depth + 1)
        return [item] if item is not None else []
    if kind == "integer":
        return 0 if name.startswith(("already", "not_", "inactive", "capped", "no_")) else 128
    if kind == "number":
        return 0.25
    if kind == "boolean":
        return True
    if kind == "string":
        if _TIME_FIELDS.search(name) or schema.get("format") == "date-time":
            return "2026-11-30T10:15:00Z"
        return name or "string"
    return None


def _description(e) -> str:
    from chalicelib.api.http import model

    doc = " ".join(line.strip() for line in (e.doc or "").strip().splitlines() if line.strip())
    parts = [doc or e.summary]
    if not e.roles:
        parts.append("No token needed.")
    else:
        who = ", ".join(f"`{r}`" for r in e.roles)
        parts.append(f"Roles: {who}." + (f" A `member` token reaches only its own `{e.owner_param}`."
                                          if e.owner_param else ""))
    if e.method == "POST" and e.status in (201, 202):
        parts.append("Idempotent: replaying the same request answers 200 with the original body; the same id "
                     "or Idempotency-Key with another payload is 409 IDEMPOTENCY_MISMATCH.")
    if "cursor" in e.query:
        parts.append("A list (newest first where time-ordered): `limit` 1-100 (default 20); pass `next_cursor` "
                     "back as `cursor` for the next page; a cursor from another list is a 400.")
    if e.body is not None and getattr(model(e.body_ref), "bare_list_field", None):
        parts.append("The body may also be the bare list.")
    return "\n\n".join(parts)


def _ref_name(ref) -> str:
    if isinstance(ref, str):
        return ref
    return f"{ref.__module__.rsplit('.', 1)[-1]}.{ref.__name__}"


# Query parameters other than a list's `limit` and `cursor`.
_QUERY_DESCRIPTIONS = {"email": "an email address: exact match, compared case-insensitively (required)"}


@functools.lru_cache(maxsize=1)
def document() -> dict:
    models = {m for e in ENDPOINTS for m in (e.body, e.response) if m is not None} | {ErrorResponse}
    keyed = sorted(((m, mode) for m in models for mode in ("validation", "serialization")),
                   key=lambda x: (x[0].__name__, x[1]))
    refs, defs = models_json_schema(keyed, ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})
    error_ref = refs[(ErrorResponse, "serialization")]
    paths: dict = {}
    for e in ENDPOINTS:
        op: dict = {"summary": e.summary, "description": _description(e),
                    "operationId": f"{e.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', e.path.lower()).strip('_')}",
                    "tags": [e.tag] if e.tag else [], "responses": {}}
        params = [{"name": n, "in": "path", "required": True,
                   "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._:@-]{1,64}$"} if n == "member_id"
                   else {"type": "string", "pattern": r"^[A-Za-z0-9._:@#~-]{1,128}$"},
                   "example": _SAMPLE_VALUES.get(n, n)}
                  for n in re.findall(r"{(\w+)}", e.path)]
        params += [{"name": q, "in": "query", "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100} if q == "limit" else {"type": "string"},
                    "description": "page size, 1-100 (default 20)" if q == "limit"
                    else _QUERY_DESCRIPTIONS.get(q, "the `next_cursor` of the previous page of this same list")}
                   for q in e.query]
        if e.method == "POST":
            params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                           "description": "1-128 visible ASCII characters; a retry with the same key replays "
                                          "the first answer",
                           "schema": {"type": "string", "minLength": 1, "maxLength": 128,
                                      "pattern": r"^[\x21-\x7e]{1,128}$"}})
        if params:
            op["parameters"] = params
        if e.body is not None:
            body_schema = refs[(e.body, "validation")]
            example = REQUEST_EXAMPLES.get(_ref_name(e.body_ref))
            if example is None:
                example = _example(body_schema, schemas)
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": body_schema, "example": example}}}
        ok: dict = {"description": "OK" if e.status == 200 else {201: "created", 202: "accepted",
                                                                  204: "deleted"}.get(e.status, "OK")}
        if e.status != 204:
            schema = refs[(e.response, "serialization")] if e.response is not None else {"type": "object"}
            ok["content"] = {"application/json": {"schema": schema, "example": _example(schema, schemas)}}
        op["responses"][str(e.status)] = ok
        for extra in e.also:
            op["responses"][str(extra)] = {"description": "accepted: the work continues as a job",
                                           "content": {"application/json": {"schema": {"type": "object"}}}}
        if e.status in (201, 202) and e.method == "POST":
            op["responses"]["200"] = {"description": "a replay of the original request", **(
                {"content": ok["content"]} if "content" in ok else {})}
        for code, desc in _ERRORS.items():
            if code in ("401", "403") and not e.roles:
                continue
            err_code, message, details = _ERROR_EXAMPLES[code]
            op["responses"][code] = {"description": desc, "content": {"application/json": {
                "schema": error_ref,
                "example": {"error": {"code": err_code, "message": message, "details": details}}}}}
        if e.roles:
            op["security"] = [{"bearer": []}]
            op["x-roles"] = list(e.roles)
        paths.setdefault(e.path, {})[e.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Loyalty & Rewards API", "version": "1.0.0",
                 "description": "Points, tiers, rewards, coupons and campaigns for a loyalty programme. "
                                "Every error is `{\"error\": {\"code\", \"message\", \"details\"}}`; "
                                "lists are `{\"items\", \"next_cursor\"}`. The guide is docs/API.md."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }
