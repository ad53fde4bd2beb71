"""The marketers' and customer-success console (SPEC 5): static files under /console.

The console is a browser application over the public API: it holds no route of its
own but these file reads, so every admin action it takes is an ordinary, audited API
call. Its pages are plain ES modules served as they are (no build step). Every answer
carries a strict Content-Security-Policy: scripts and styles only from this origin,
nothing inline, no third-party requests.

These routes are not JSON API routes: they are registered with `bp.route` rather than
`endpoint(...)`, so they stay out of the OpenAPI document and the auth matrix.
"""
from __future__ import annotations

import json
import os
import re

from chalice import Blueprint, Response

bp = Blueprint(__name__)

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "console")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
ASSET_NAME = re.compile(r"^[a-z0-9_-]{1,64}\.(js|css|svg)$")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def _file(folder: str, name: str, cache: str) -> Response:
    path = os.path.join(ROOT, folder, name) if folder else os.path.join(ROOT, name)
    if not os.path.isfile(path):
        return _not_found()
    with open(path, encoding="utf-8") as f:
        body = f.read()
    return Response(body=body, status_code=200, headers={
        "Content-Type": TYPES[os.path.splitext(name)[1]], "Cache-Control": cache, **SECURITY_HEADERS})


def _not_found() -> Response:
    body = {"error": {"code": "NOT_FOUND", "message": "no such console file", "details": {}}}
    return Response(body=json.dumps(body), status_code=404,
                    headers={"Content-Type": "application/json", **SECURITY_HEADERS})


@bp.route("/console", methods=["GET"])
def console_index():
    return _file("", "index.html", "no-cache")


@bp.route("/console/assets/{name}", methods=["GET"])
def console_asset(name):
    if not ASSET_NAME.match(name or ""):
        return _not_found()
    return _file("assets", name, "no-cache")


@bp.route("/console/assets/pages/{name}", methods=["GET"])
def console_page(name):
    if not ASSET_NAME.match(name or ""):
        return _not_found()
    return _file(os.path.join("assets", "pages"), name, "no-cache")


@bp.route("/console/config.json", methods=["GET"])
def console_config():
    """Where the console finds the API, and in the `local` stage only the admin token
    `make run` prints (an equivalent one, same subject and role), so the page can offer it.
    Never cached; the token travels in the body only, never in a URL."""
    from chalicelib.config import get_settings

    config: dict = {"api_base": "", "stage": "production"}
    if get_settings().is_local:
        from chalicelib.auth import mint_token

        config = {"api_base": "", "stage": "local", "local_admin_token": mint_token("admin", "admin")}
    return Response(body=json.dumps(config), status_code=200, headers={
        "Content-Type": "application/json", "Cache-Control": "no-store", **SECURITY_HEADERS})
