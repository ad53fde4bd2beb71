"""Member routes: profile, points, ledger (SPEC 4.4)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import decode_cursor, encode_cursor, endpoint, lazy, page_limit
from chalicelib.errors import Forbidden
from chalicelib.services import members

bp = Blueprint(__name__)
points = lazy("chalicelib.services.points")
ANY = ("member", "service", "admin")
M = "/v1/members/{member_id}"


@endpoint(bp, "POST", "/v1/members", roles=ANY, body="members.EnrolRequest", response="members.Member", status=201,
          tag="members", idempotent=True)
def enrol(req):
    """Enrol a member (a member token may enrol only its own `sub`)."""
    if not req.principal.has("service", "admin") and req.body.member_id != req.principal.sub:
        raise Forbidden()
    idem = req.extra.get("idempotency")  # (key, hash) when the client sent an Idempotency-Key
    if idem:
        req.extra["idempotency_recorded"] = True  # written in the enrolment's own transaction
        return members.enrol_idempotent(req.body, req.actor, idem)
    return 201, members.enrol(req.body, req.actor)


@endpoint(bp, "GET", M, roles=ANY, owner="member_id", response="members.Member", tag="members")
def get_member(req, member_id):
    """Read a member: profile, points, tier, segment (one read)."""
    return members.get(member_id)


@endpoint(bp, "PATCH", M, roles=ANY, owner="member_id", body="members.PatchMemberRequest", response="members.Member",
          tag="members")
def patch_member(req, member_id):
    """Update profile and consent fields (status: service and admin only)."""
    return members.patch(member_id, req.body, may_set_status=req.principal.has("service", "admin"), actor=req.actor)


@endpoint(bp, "POST", M + "/close", roles=("member", "admin"), owner="member_id", response="members.Member",
          tag="members")
def close_member(req, member_id):
    """Close the membership and erase personal data."""
    return members.close(member_id, req.actor)


@endpoint(bp, "GET", M + "/ledger", roles=ANY, owner="member_id", response="members.LedgerPage", tag="points",
          query=("limit", "cursor"))
def list_ledger(req, member_id):
    """The member's ledger, newest first."""
    cursor = decode_cursor(req.query, keys={"member_id": ("S", member_id), "seq": ("N", None)})
    items, last = points.ledger(member_id, page_limit(req.query), cursor)
    return {"items": items, "next_cursor": encode_cursor(last)}


@endpoint(bp, "POST", M + "/accruals", roles=("service",), body="members.AccrualRequest", response="members.Accrual",
          status=201, tag="points")
def accrue(req, member_id):
    """Credit the points of a purchase (idempotent per order_id)."""
    return points.accrue(member_id, req.body, req.actor)


@endpoint(bp, "POST", M + "/accruals/preview", roles=("member", "service"), owner="member_id",
          body="members.AccrualRequest", response="members.AccrualPreview", tag="points")
def preview_accrual(req, member_id):
    """What an order would earn; nothing is written."""
    return points.preview(member_id, req.body)


@endpoint(bp, "POST", M + "/refunds", roles=("service",), body="members.RefundRequest", response="members.RefundResult",
          status=201, tag="points")
def refund(req, member_id):
    """Reverse points for a (partial) refund (idempotent per refund_id)."""
    return points.refund(member_id, req.body, req.actor)


@endpoint(bp, "POST", M + "/activities", roles=("service",), body="members.ActivityRequest", response="members.ActivityResult",
          status=201, tag="points")
def activity(req, member_id):
    """Points for a non-purchase activity (idempotent per activity_id)."""
    return points.record_activity(member_id, req.body, req.actor)
