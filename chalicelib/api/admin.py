"""Admin routes: program settings, tiers, adjustments, audit (SPEC 4.4)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import decode_cursor, encode_cursor, endpoint, lazy, page_limit
from chalicelib.services import audit, program

bp = Blueprint(__name__)
points = lazy("chalicelib.services.points")
ADMIN = ("admin",)


@endpoint(bp, "GET", "/v1/admin/settings", roles=ADMIN, response="program.ProgramSettings", tag="admin")
def get_settings(req):
    """Program settings (the body is a valid PUT body)."""
    return program.settings().model_dump(mode="json")


@endpoint(bp, "PUT", "/v1/admin/settings", roles=ADMIN, body="program.ProgramSettings", response="program.ProgramSettings",
          tag="admin")
def put_settings(req):
    """Replace the program settings (omitted fields take their defaults)."""
    return program.put_settings(req.body, req.actor).model_dump(mode="json")


@endpoint(bp, "GET", "/v1/admin/tiers", roles=ADMIN, response="program.TierList", tag="admin")
def get_tiers(req):
    """The ordered tier list."""
    return program.tier_list().model_dump(mode="json")


@endpoint(bp, "PUT", "/v1/admin/tiers", roles=ADMIN, body="program.TierList", response="program.TierList", tag="admin")
def put_tiers(req):
    """Replace the ordered tier list (`{"items": [...]}` or a bare list)."""
    return program.put_tiers(req.body, req.actor).model_dump(mode="json")


@endpoint(bp, "POST", "/v1/admin/members/{member_id}/adjustments", roles=ADMIN, body="members.AdjustmentRequest",
          response="members.LedgerEntry", status=201, tag="admin")
def adjust(req, member_id):
    """Adjust a member's points with a reason (idempotent per adjustment_id; audited)."""

    return points.adjust(member_id, req.body, req.actor)


@endpoint(bp, "GET", "/v1/admin/audit", roles=ADMIN, response="rewards.AuditPage", tag="admin", query=("limit", "cursor"))
def list_audit(req):
    """Admin actions, newest first."""
    cursor = decode_cursor(req.query, keys={"pk": ("S", "audit"), "sk": ("S", None)})
    items, last = audit.list_entries(page_limit(req.query), cursor)
    return {"items": items, "next_cursor": encode_cursor(last)}
