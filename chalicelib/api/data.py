"""Exports and migration imports (SPEC 2.17, 4.5): admin only, both run as jobs."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import endpoint, lazy

bp = Blueprint(__name__)
exports = lazy("chalicelib.services.exports")
imports = lazy("chalicelib.services.imports")


@endpoint(bp, "POST", "/v1/admin/exports", roles=("admin",), body="data.ExportRequest",
          response="data.ExportAccepted", status=202, tag="data", also=(200,))
def start_export(req):
    """Export the ledger (of a period), the members or a coupon campaign's codes to one gzip JSON
    Lines object in the exports bucket; idempotent per export_id (a replay answers 200)."""
    return exports.submit(req.body, req.actor)


@endpoint(bp, "GET", "/v1/admin/exports/{export_id}", roles=("admin",), response="data.Export", tag="data")
def get_export(req, export_id):
    """An export's status and rows; `url` is a pre-signed download link (one hour) once it succeeded."""
    return exports.status(export_id)


@endpoint(bp, "POST", "/v1/admin/imports", roles=("admin",), body="data.ImportRequest",
          response="data.ImportAccepted", status=202, tag="data", also=(200,))
def start_import(req):
    """Import members with their balances and tiers: inline rows (at most 1,000) or a JSON Lines or
    CSV object in the exports bucket; idempotent per import_id (a replay answers 200)."""
    return imports.submit(req.body, req.actor)


@endpoint(bp, "GET", "/v1/admin/imports/{import_id}", roles=("admin",), response="data.Import", tag="data")
def get_import(req, import_id):
    """An import's status, counts (rows, imported, skipped, failed) and its first 1,000 errors."""
    return imports.status(import_id)
