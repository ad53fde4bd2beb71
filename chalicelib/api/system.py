"""Health, the OpenAPI document, its rendered reference (/v1/docs) and public catalogue reads."""
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


# The API reference: public pages, not API operations (so not in the OpenAPI document).
@bp.route("/v1/docs", methods=["GET"])
def docs_page():
    from chalicelib.api import docs

    return docs.page()


@bp.route("/v1/docs/init.js", methods=["GET"])
def docs_init():
    from chalicelib.api import docs

    return docs.init_script()


@bp.route("/v1/docs/swagger-ui-bundle.js", methods=["GET"])
def docs_bundle():
    from chalicelib.api import docs

    return docs.asset("swagger-ui-bundle.js")


@bp.route("/v1/docs/swagger-ui.css", methods=["GET"])
def docs_css():
    from chalicelib.api import docs

    return docs.asset("swagger-ui.css")


@endpoint(bp, "GET", "/v1/tiers", roles=("member", "service", "admin"), response="program.TierList", tag="catalogue")
def list_tiers(req):
    """The tiers, lowest first."""
    return program.tier_list().model_dump(mode="json")
