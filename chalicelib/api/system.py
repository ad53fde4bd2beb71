"""Health, the OpenAPI document and public catalogue reads."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import endpoint
from chalicelib.services import program

bp = Blueprint(__name__)


@endpoint(bp, "GET", "/v1/health", tag="system")
def health(req):
    """Liveness."""
    return {"status": "ok"}


@endpoint(bp, "GET", "/v1/openapi.json", tag="system")
def openapi(req):
    """This document: OpenAPI 3.1, generated from the pydantic models."""
    from chalicelib.api.openapi import document

    return document()


@endpoint(bp, "GET", "/v1/tiers", roles=("member", "service", "admin"), response="program.TierList", tag="catalogue")
def list_tiers(req):
    """The tiers, lowest first."""
    return program.tier_list().model_dump(mode="json")
