"""`/v1/docs`: the API reference (Swagger UI over /v1/openapi.json), served from files in
the project (`chalicelib/static/swagger-ui/`), so reading it asks no third party for
anything: the Content-Security-Policy allows this origin only."""
from __future__ import annotations

import functools
import os

from chalice import Response

STATIC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "static", "swagger-ui")
# Nothing but this origin: no CDN, no fonts, no online validator.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")

# Relative URLs: the page works under any prefix (API Gateway's stage, a proxy).
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Loyalty &amp; Rewards API reference</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
  <div id="reference"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script src="docs/init.js"></script>
</body>
</html>
"""

INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#reference",
    validatorUrl: null,
    deepLinking: true,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    persistAuthorization: false
  });
});
"""

ASSETS = {
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}


@functools.lru_cache(maxsize=None)
def _read(name: str) -> str:
    with open(os.path.join(STATIC, name), encoding="utf-8") as f:
        return f.read()


def _headers(content_type: str) -> dict:
    return {"Content-Type": content_type, "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Cache-Control": "public, max-age=3600"}


def page() -> Response:
    return Response(body=PAGE, status_code=200, headers=_headers("text/html; charset=utf-8"))


def init_script() -> Response:
    return Response(body=INIT, status_code=200, headers=_headers("application/javascript; charset=utf-8"))


def asset(name: str) -> Response:
    return Response(body=_read(name), status_code=200, headers=_headers(ASSETS[name]))
