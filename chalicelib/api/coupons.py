"""Coupon routes (SPEC 4.4): campaigns (admin), the member's coupon wallet, and checkout
(validate, redeem, rollback) for storefronts."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import decode_cursor, encode_cursor, endpoint, lazy, page_limit

bp = Blueprint(__name__)
coupons = lazy("chalicelib.services.coupons")


ADMIN = ("admin",)
SERVICE = ("service",)
ANY = ("member", "service", "admin")
C = "/v1/admin/coupon-campaigns"


@endpoint(bp, "POST", C, roles=ADMIN, body="coupons.CreateCampaignRequest", response="coupons.Campaign", status=201,
          tag="coupons", idempotent=True)
def create_campaign(req):
    """Create a coupon campaign (an existing campaign_id or shared code is 409)."""
    return 201, coupons.create(req.body, req.actor)


@endpoint(bp, "GET", C, roles=ADMIN, response="coupons.CampaignList", tag="coupons", query=("limit", "cursor"))
def list_campaigns(req):
    """Coupon campaigns, newest first, with their stats."""
    items, last = coupons.list_campaigns(page_limit(req.query), decode_cursor(req.query))
    return {"items": items, "next_cursor": encode_cursor(last)}


@endpoint(bp, "GET", C + "/{campaign_id}", roles=ADMIN, response="coupons.Campaign", tag="coupons")
def get_campaign(req, campaign_id):
    """A coupon campaign with its stats (codes, issued, redeemed, redemption_rate)."""
    return coupons.get(campaign_id)


@endpoint(bp, "PATCH", C + "/{campaign_id}", roles=ADMIN, body="coupons.PatchCampaignRequest", response="coupons.Campaign",
          tag="coupons")
def patch_campaign(req, campaign_id):
    """Update a campaign; `status` pauses, resumes or ends it (audited)."""
    return coupons.patch(campaign_id, req.body, req.actor)


@endpoint(bp, "POST", C + "/{campaign_id}/codes", roles=ADMIN, body="coupons.GenerateCodesRequest", response="coupons.CodesResult",
          status=201, also=(202,), tag="coupons", idempotent=True)
def generate_codes(req, campaign_id):
    """Generate unique codes: 201 when done inline (≤ 10,000), 202 with a job_id above."""
    return coupons.request_codes(campaign_id, req.body.count, req.actor)


@endpoint(bp, "POST", C + "/{campaign_id}/issue", roles=ADMIN, body="coupons.IssueRequest", response="coupons.IssueResult",
          tag="coupons", idempotent=True)
def issue(req, campaign_id):
    """Put codes in members' wallets (one per member per campaign), optionally notifying them."""
    audience = req.body.audience.model_dump() if req.body.audience is not None else None
    plan = coupons.issue(campaign_id, req.body.member_ids, audience, req.body.notify, req.actor)
    return plan.counts()


@endpoint(bp, "GET", "/v1/members/{member_id}/coupons", roles=ANY, owner="member_id", response="coupons.WalletPage",
          tag="coupons", query=("limit", "cursor"))
def member_coupons(req, member_id):
    """The member's coupon wallet, newest first."""
    items, last = coupons.wallet(member_id, page_limit(req.query), decode_cursor(req.query))
    return {"items": items, "next_cursor": encode_cursor(last)}


@endpoint(bp, "POST", "/v1/coupons/validate", roles=SERVICE, body="coupons.ValidateRequest", response="coupons.ValidateResult",
          tag="coupons")
def validate(req):
    """Would this code apply to this order? No side effects."""
    return coupons.validate(req.body)


@endpoint(bp, "POST", "/v1/coupons/redeem", roles=SERVICE, body="coupons.RedeemRequest", response="coupons.RedeemResult",
          status=201, tag="coupons")
def redeem(req):
    """Redeem a code against an order (atomic; idempotent per order_id)."""
    return coupons.redeem(req.body, req.actor)


@endpoint(bp, "POST", "/v1/coupons/redemptions/{coupon_redemption_id}/rollback", roles=SERVICE,
          response="coupons.RollbackResult", tag="coupons")
def rollback(req, coupon_redemption_id):
    """Give a redemption's use back (order cancelled); idempotent."""
    return coupons.rollback(coupon_redemption_id, req.actor)
