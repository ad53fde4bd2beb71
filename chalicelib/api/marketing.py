"""Events, feedback, product signals, message campaigns and segments (SPEC 4.4)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import decode_cursor, encode_cursor, endpoint, lazy, page_limit

bp = Blueprint(__name__)
marketing = lazy("chalicelib.services.marketing")
segments = lazy("chalicelib.services.segments")
triggers = lazy("chalicelib.services.triggers")
ADMIN = ("admin",)


@endpoint(bp, "POST", "/v1/members/{member_id}/events", roles=("service",), body="marketing.EventRequest",
          response="marketing.EventAccepted", status=202, tag="marketing")
def record_event(req, member_id):
    """A storefront behaviour event (cart abandoned, product viewed, favourites); replay → 200."""

    return triggers.record_event(member_id, req.body)


@endpoint(bp, "POST", "/v1/members/{member_id}/feedback", roles=("member", "service"), owner="member_id",
          body="marketing.FeedbackRequest", response="marketing.FeedbackResult", status=201, tag="marketing")
def give_feedback(req, member_id):
    """A 0–10 score with an optional comment; earns the survey activity points; replay → 200."""

    return marketing.give_feedback(member_id, req.body, req.actor)


@endpoint(bp, "POST", "/v1/admin/product-signals", roles=ADMIN, body="marketing.ProductSignalRequest",
          response="marketing.ProductSignalResult", status=202, tag="marketing")
def product_signal(req):
    """Back in stock, price drop or low stock: messages to the sku's followers, queued now."""

    return triggers.product_signal(req.body, req.actor)


@endpoint(bp, "POST", "/v1/admin/message-campaigns", roles=ADMIN, body="marketing.MessageCampaignRequest",
          response="marketing.MessageCampaign", status=201, tag="marketing", idempotent=True)
def create_message_campaign(req):
    """Send (or dry-run) a personalised message to an audience, optionally with coupon codes."""

    return marketing.create_campaign(req.body, req.actor)


@endpoint(bp, "GET", "/v1/admin/message-campaigns", roles=ADMIN, response="marketing.MessageCampaignPage", tag="marketing",
          query=("limit", "cursor"))
def list_message_campaigns(req):
    """Message campaigns, newest first."""

    items, nxt = marketing.list_campaigns(page_limit(req.query), decode_cursor(req.query))
    return {"items": items, "next_cursor": encode_cursor(nxt)}


@endpoint(bp, "GET", "/v1/admin/message-campaigns/{campaign_id}", roles=ADMIN, response="marketing.MessageCampaign",
          tag="marketing")
def get_message_campaign(req, campaign_id):
    """One message campaign with its counts."""

    return marketing.get_campaign(campaign_id)


@endpoint(bp, "GET", "/v1/admin/segments", roles=ADMIN, response="marketing.SegmentsReport", tag="marketing")
def segments_report(req):
    """Counts by segment and touch model, f2_rate and NPS (90 days), as of the last scoring."""

    return segments.report()


@endpoint(bp, "GET", "/v1/admin/segments/{segment}/members", roles=ADMIN, response="members.SegmentMemberPage", tag="marketing",
          query=("limit", "cursor"))
def segment_members(req, segment):
    """The members of one segment (unknown segment → 404)."""

    items, nxt = segments.segment_members(segment, page_limit(req.query), decode_cursor(req.query))
    return {"items": items, "next_cursor": encode_cursor(nxt)}
