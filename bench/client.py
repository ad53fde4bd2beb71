"""A JSON client over `chalice.test.Client`: the full handler (routing, token check,
validation, service, serialisation), as API Gateway's Lambda proxy would call it."""
from __future__ import annotations

import json
from typing import Any, Optional

from bench.common import NOW


class Api:
    def __init__(self, raw):
        from chalicelib.auth import mint_token

        self.raw = raw
        # Tokens are minted once, as a real client holds its token between calls.
        self.tokens = {role: mint_token(role, sub) for role, sub in
                       (("service", "pos-1"), ("admin", "admin"))}

    def call(self, method: str, path: str, body: Any = None, role: str = "service",
             now: Optional[str] = NOW, headers: Optional[dict] = None) -> tuple[int, Any]:
        h = {"Content-Type": "application/json", "Authorization": "Bearer " + self.tokens[role]}
        if now:
            h["X-Loyalty-Now"] = now
        h.update(headers or {})
        r = self.raw.http.request(method, path, headers=h,
                                  body=json.dumps(body).encode() if body is not None else b"")
        return r.status_code, json.loads(r.body) if r.body else None

    def ok(self, method: str, path: str, body: Any = None, expect: tuple = (200, 201, 202), **kw) -> Any:
        status, out = self.call(method, path, body, **kw)
        if status not in expect:
            raise AssertionError(f"{method} {path} -> {status} {out}")
        return out
