"""Uplift results of message campaigns and automations (SPEC 2.18, 4.5)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import endpoint, lazy

bp = Blueprint(__name__)
attribution = lazy("chalicelib.services.attribution")
ADMIN = ("admin",)


@endpoint(bp, "GET", "/v1/admin/message-campaigns/{campaign_id}/results", roles=ADMIN,
          response="results.UpliftReport", tag="marketing")
def campaign_results(req, campaign_id):
    """The broadcast's treatment and control groups, their conversion and revenue, and the
    uplift (as of the last measure-campaigns job; 404 NOT_FOUND before the first one)."""
    return attribution.campaign_results(campaign_id)


@endpoint(bp, "GET", "/v1/admin/automations/{name}/results", roles=ADMIN, response="results.UpliftReport",
          tag="marketing", query=("from", "to"))
def automation_results(req, name):
    """An automation's or trigger's uplift for the members messaged or held out on the days
    `from`..`to` (dates, inclusive; default the 30 days up to the last measurement)."""
    return attribution.automation_results(name, req.query)
