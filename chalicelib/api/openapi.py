"""OpenAPI 3.1 for every registered route, from the pydantic models (built on first request)."""
from __future__ import annotations

import functools
import re

from pydantic.json_schema import models_json_schema

from chalicelib.api.http import ENDPOINTS
from chalicelib.schemas.common import ErrorResponse

_ERRORS = {
    "400": "VALIDATION_ERROR (details.fields lists field errors)",
    "401": "UNAUTHENTICATED",
    "403": "FORBIDDEN",
    "404": "NOT_FOUND and friends",
    "409": "ALREADY_EXISTS or IDEMPOTENCY_MISMATCH",
    "422": "a business rule said no (INSUFFICIENT_POINTS, ...)",
    "503": "RETRY_LATER",
}


@functools.lru_cache(maxsize=1)
def document() -> dict:
    models = {m for e in ENDPOINTS for m in (e.body, e.response) if m is not None} | {ErrorResponse}
    keyed = sorted(((m, mode) for m in models for mode in ("validation", "serialization")),
                   key=lambda x: (x[0].__name__, x[1]))
    refs, defs = models_json_schema(keyed, ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})
    error_ref = refs[(ErrorResponse, "serialization")]
    paths: dict = {}
    for e in ENDPOINTS:
        op: dict = {"summary": e.summary, "operationId": f"{e.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', e.path.lower()).strip('_')}",
                    "tags": [e.tag] if e.tag else [], "responses": {}}
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in re.findall(r"{(\w+)}", e.path)]
        params += [{"name": q, "in": "query", "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100} if q == "limit" else {"type": "string"}}
                   for q in e.query]
        if e.method == "POST":
            params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                           "schema": {"type": "string", "maxLength": 128}})
        if params:
            op["parameters"] = params
        if e.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": refs[(e.body, "validation")]}}}
        ok: dict = {"description": "OK"}
        if e.status != 204:
            ok["content"] = {"application/json": {"schema": refs[(e.response, "serialization")]
                                                  if e.response is not None else {"type": "object"}}}
        op["responses"][str(e.status)] = ok
        for extra in e.also:
            op["responses"][str(extra)] = {"description": "accepted: the work continues as a job",
                                           "content": {"application/json": {"schema": {"type": "object"}}}}
        if e.status in (201, 202) and e.method == "POST":
            op["responses"]["200"] = {"description": "a replay of the original request", **(
                {"content": ok["content"]} if "content" in ok else {})}
        for code, desc in _ERRORS.items():
            if code in ("401", "403") and not e.roles:
                continue
            op["responses"][code] = {"description": desc, "content": {"application/json": {"schema": error_ref}}}
        if e.roles:
            op["security"] = [{"bearer": []}]
            op["x-roles"] = list(e.roles)
        paths.setdefault(e.path, {})[e.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Loyalty & Rewards API", "version": "1.0.0"},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }
