"""Paying with points (holds) and status match (SPEC 2.14, 2.15, 4.5)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import decode_cursor, encode_cursor, endpoint, lazy, page_limit

bp = Blueprint(__name__)
holds = lazy("chalicelib.services.holds")
status_match = lazy("chalicelib.services.status_match")
H = "/v1/members/{member_id}/point-holds"


@endpoint(bp, "POST", H, roles=("member", "service"), owner="member_id", body="holds.HoldRequest",
          response="holds.Hold", status=201, tag="points", also=(200,))
def create_hold(req, member_id):
    """Reserve points to pay part of an order (idempotent per hold_id: a replay answers 200)."""
    return holds.create(member_id, req.body, req.actor)


@endpoint(bp, "GET", H, roles=("member", "service", "admin"), owner="member_id", response="holds.HoldPage",
          tag="points", query=("limit", "cursor"))
def list_holds(req, member_id):
    """The member's holds, newest first (a hold past its time shows as released)."""
    items, last = holds.list_holds(member_id, page_limit(req.query), decode_cursor(req.query))
    return {"items": items, "next_cursor": encode_cursor(last)}


@endpoint(bp, "POST", H + "/{hold_id}/capture", roles=("service",), body="holds.CaptureRequest",
          response="holds.Hold", tag="points")
def capture_hold(req, member_id, hold_id):
    """Spend held points (all, or `points` of them) at payment; one `spend` ledger entry."""
    return holds.capture(member_id, hold_id, req.body, req.actor)


@endpoint(bp, "POST", H + "/{hold_id}/release", roles=("member", "service"), owner="member_id",
          response="holds.Hold", tag="points")
def release_hold(req, member_id, hold_id):
    """Give held points back (the order failed or was abandoned); no ledger entry."""
    return holds.release(member_id, hold_id, req.actor)


@endpoint(bp, "PUT", "/v1/admin/members/{member_id}/tier", roles=("admin",), body="holds.StatusMatchRequest",
          response="members.Member", tag="members")
def set_tier(req, member_id):
    """Status match: the member holds `tier_id` until `until` (tier history, tier_changed message; audited)."""

    return status_match.set_tier(member_id, req.body, req.actor)
