"""Finance and data (SPEC 2.17, 4.5): the liability report, a member's access export, and
the admin lookups (members by email, the whole rewards catalogue)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import decode_cursor, encode_cursor, endpoint, lazy, page_limit
from chalicelib.errors import ValidationFailed

bp = Blueprint(__name__)
finance = lazy("chalicelib.services.finance")

MAX_EMAIL = 254  # the longest address SMTP carries


@endpoint(bp, "GET", "/v1/admin/reports/liability", roles=("admin",), response="finance.LiabilityReport",
          tag="finance")
def liability_report(req):
    """The latest points liability report (the `report-liability` job's), with its `as_of`; 404 before any run."""
    return finance.latest_liability()


@endpoint(bp, "GET", "/v1/members/{member_id}/export", roles=("member", "admin"), owner="member_id",
          response="finance.MemberExport", tag="members")
def export_member(req, member_id):
    """Everything held about the member in one document: profile, consents, points, tier history, ledger,
    orders, vouchers, coupons, holds, transfers, events, feedback, messages (data-subject access)."""
    return finance.export_member(member_id)


@endpoint(bp, "GET", "/v1/admin/members", roles=("admin",), response="finance.MemberPage", tag="members",
          query=("email", "limit", "cursor"))
def find_members(req):
    """Members with this email (`?email=`: exact, case-insensitive); closed members have none."""
    email = (req.query.get("email") or "").strip()
    if not email or len(email) > MAX_EMAIL:
        raise ValidationFailed("email is required (at most 254 characters)",
                               fields=[{"field": "email", "message": "required, 1-254 characters"}])
    key = finance.email_key(email)
    cursor = decode_cursor(req.query, {"email_key": ("S", key), "member_id": ("S", None)})
    items, last = finance.members_by_email(email, page_limit(req.query), cursor)
    return {"items": items, "next_cursor": encode_cursor(last)}


@endpoint(bp, "GET", "/v1/admin/rewards", roles=("admin",), response="finance.RewardPage", tag="rewards",
          query=("limit", "cursor"))
def all_rewards(req):
    """Every reward, inactive and out-of-window ones too, by reward_id, each with `stock` and `remaining`."""
    cursor = decode_cursor(req.query)
    items, last = finance.all_rewards(page_limit(req.query), cursor)
    return {"items": items, "next_cursor": encode_cursor(last)}
