"""Webhooks (admin): CRUD, the delivery log and redelivery (SPEC 2.16, 4.5)."""
from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.api.http import decode_cursor, encode_cursor, endpoint, lazy, page_limit

bp = Blueprint(__name__)
webhooks = lazy("chalicelib.services.webhooks")
ADMIN = ("admin",)
W = "/v1/admin/webhooks"
ONE = W + "/{webhook_id}"


@endpoint(bp, "POST", W, roles=ADMIN, body="webhooks.WebhookCreate", response="webhooks.WebhookCreated", status=201,
          tag="webhooks")
def create_webhook(req):
    """Register a webhook; the answer carries its signing `secret`, shown only here (audited)."""
    return webhooks.create(req.body, req.actor)


@endpoint(bp, "GET", W, roles=ADMIN, response="webhooks.WebhookPage", tag="webhooks", query=("limit", "cursor"))
def list_webhooks(req):
    """Every webhook (no secrets)."""
    items, last = webhooks.list_webhooks(page_limit(req.query), decode_cursor(req.query))
    return {"items": items, "next_cursor": encode_cursor(last)}


@endpoint(bp, "GET", ONE, roles=ADMIN, response="webhooks.Webhook", tag="webhooks")
def get_webhook(req, webhook_id):
    """One webhook (no secret)."""
    return webhooks.get(webhook_id)


@endpoint(bp, "PATCH", ONE, roles=ADMIN, body="webhooks.WebhookPatch", response="webhooks.Webhook", tag="webhooks")
def patch_webhook(req, webhook_id):
    """Change a webhook's url, events or active flag (audited)."""
    return webhooks.update(webhook_id, req.body, req.actor)


@endpoint(bp, "DELETE", ONE, roles=ADMIN, status=204, tag="webhooks")
def delete_webhook(req, webhook_id):
    """Remove a webhook (audited); its pending deliveries fail."""
    webhooks.delete(webhook_id, req.actor)
    return Response(body="", status_code=204)


@endpoint(bp, "GET", ONE + "/deliveries", roles=ADMIN, response="webhooks.DeliveryPage", tag="webhooks",
          query=("limit", "cursor", "status"))
def list_deliveries(req, webhook_id):
    """The webhook's deliveries, newest first; `?status=failed` is its dead-letter view."""
    items, last = webhooks.list_deliveries(webhook_id, req.query.get("status"), page_limit(req.query),
                                              decode_cursor(req.query))
    return {"items": items, "next_cursor": encode_cursor(last)}


@endpoint(bp, "POST", ONE + "/deliveries/{event_id}/redeliver", roles=ADMIN, response="webhooks.RedeliveryAccepted",
          status=202, tag="webhooks")
def redeliver(req, webhook_id, event_id):
    """Send an event again: the delivery is pending and due now, with a fresh retry schedule (audited)."""
    return webhooks.redeliver(webhook_id, event_id, req.actor)
