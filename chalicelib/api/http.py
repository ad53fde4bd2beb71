"""The one wrapper every route goes through.

`endpoint(...)` registers a Chalice route and records it (roles, body and
response models) for the OpenAPI document and the auth-matrix test. Around the
view it: pins the clock (X-Loyalty-Now, local stage only), verifies the bearer
token and the role/ownership rule, parses and validates the JSON body, handles
`Idempotency-Key` replays, and maps every error to SPEC 4.2's shape.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import importlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from chalice import Blueprint, Response
from pydantic import BaseModel, ValidationError

from chalicelib import clock
from chalicelib.auth import Principal, authorize, verify_token
from chalicelib.config import get_settings
from chalicelib.errors import LoyaltyError, RetryLater, ValidationFailed

log = logging.getLogger("loyalty.api")

JSON_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded"]


ModelRef = Any  # a pydantic model class, or "module.Class" under chalicelib.schemas


@functools.lru_cache(maxsize=None)
def _import_model(ref: str) -> type:
    module, _, name = ref.rpartition(".")
    return getattr(importlib.import_module("chalicelib.schemas." + module), name)


def model(ref: ModelRef) -> Optional[type]:
    """The model a route names. Routes name their models as strings ("members.Member"),
    so the schema modules (~80 pydantic classes) are imported by a route's first call,
    not by `import app` (cold start, SPEC 3)."""
    return _import_model(ref) if isinstance(ref, str) else ref


@dataclass(frozen=True)
class EndpointSpec:
    method: str
    path: str
    roles: tuple  # () = public
    owner_param: Optional[str]
    body_ref: ModelRef
    response_ref: ModelRef
    status: int
    summary: str
    tag: str
    query: tuple = ()
    also: tuple = ()  # other success statuses the route may answer, e.g. (202,)

    @property
    def body(self) -> Optional[type]:
        return model(self.body_ref)

    @property
    def response(self) -> Optional[type]:
        return model(self.response_ref)


ENDPOINTS: list[EndpointSpec] = []


@dataclass
class Request:
    principal: Optional[Principal]
    body: Any
    query: dict
    headers: dict
    params: dict
    idempotency_key: Optional[str] = None
    extra: dict = field(default_factory=dict)

    @property
    def actor(self) -> str:
        return self.principal.actor if self.principal else "system"


def canonical_hash(payload: Any) -> str:
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def json_response(status: int, payload: Any = None, headers: Optional[dict] = None) -> Response:
    body = "" if payload is None else json.dumps(payload, separators=(",", ":"), default=str)
    return Response(body=body, status_code=status,
                    headers={"Content-Type": "application/json", **(headers or {})})


def error_response(err: LoyaltyError) -> Response:
    return json_response(err.status, err.body())


def validation_error(exc: ValidationError) -> ValidationFailed:
    fields = []
    for e in exc.errors(include_url=False, include_context=False):
        fields.append({"field": ".".join(str(p) for p in e.get("loc", ())) or "body",
                       "message": e.get("msg", "invalid"), "type": e.get("type")})
    return ValidationFailed("the request is not valid", fields=fields)


def _parse_body(raw: Optional[bytes], ref: ModelRef) -> Any:
    if ref is None:
        return None
    raw = raw or b""
    if len(raw) > get_settings().max_body_bytes:
        raise ValidationFailed("the request body is too large", fields=[{"field": "body", "message": "too large"}])
    try:
        text = raw.decode("utf-8")
        data: Any = json.loads(text) if text.strip() else {}
    except (UnicodeDecodeError, ValueError):
        raise ValidationFailed("the body is not valid JSON", fields=[{"field": "body", "message": "invalid JSON"}])
    try:
        return model(ref).model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc)


def _pin_now(headers: dict):
    value = headers.get("x-loyalty-now")
    if value is None:
        return None
    if not get_settings().is_local:
        raise ValidationFailed("X-Loyalty-Now is accepted only in the local stage",
                               fields=[{"field": "X-Loyalty-Now", "message": "not allowed in this stage"}])
    try:
        return clock.parse_instant(value)
    except ValueError:
        raise ValidationFailed("X-Loyalty-Now must be an ISO-8601 timestamp",
                               fields=[{"field": "X-Loyalty-Now", "message": "invalid timestamp"}])


def to_response(result: Any, default_status: int) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple):
        status, payload = result
        return json_response(status, payload)
    return json_response(default_status, result)


def endpoint(bp: Blueprint, method: str, path: str, *, roles: tuple = (), owner: Optional[str] = None,
             body: ModelRef = None, response: ModelRef = None, status: int = 200,
             summary: str = "", tag: str = "", query: tuple = (), idempotent: bool = False,
             also: tuple = ()):
    """Register a route. `roles=()` makes it public; `owner` names the path parameter
    holding the member id a `member` token must match; `body` and `response` name its
    models (see `model`). `idempotent=True` stores the
    response under the client's `Idempotency-Key` and replays it (status 200)."""

    def decorate(fn: Callable[..., Any]):
        ENDPOINTS.append(EndpointSpec(method, path, tuple(roles), owner, body, response, status,
                                      summary or (fn.__doc__ or "").strip().split("\n")[0], tag, query, tuple(also)))

        @functools.wraps(fn)
        def view(**params: str) -> Response:
            started = time.perf_counter()
            request = bp.current_request
            headers = {k.lower(): v for k, v in (request.headers or {}).items()}
            response = _handle(request, headers, params)
            from chalicelib import observability

            context = request.context or {}
            observability.request_log(method, path, response.status_code, (time.perf_counter() - started) * 1000,
                                      context.get("requestId") or headers.get("x-request-id"), tuple(roles))  # route roles, not who
            return response

        def _handle(request, headers: dict, params: dict) -> Response:
            try:
                at = _pin_now(headers)
                with clock.pinned(at):
                    principal = None
                    if roles:
                        principal = verify_token(headers.get("authorization"))
                        authorize(principal, roles, owner=params.get(owner) if owner else None)
                    parsed = _parse_body(request.raw_body, body)
                    req = Request(principal=principal, body=parsed, query=dict(request.query_params or {}),
                                  headers=headers, params=params,
                                  idempotency_key=headers.get("idempotency-key"))
                    if idempotent and req.idempotency_key:
                        from chalicelib.services import idempotency

                        return idempotency.run(req, method, path, lambda: to_response(fn(req, **params), status))
                    return to_response(fn(req, **params), status)
            except LoyaltyError as err:
                return error_response(err)
            except ValidationError as exc:
                return error_response(validation_error(exc))
            except Exception as exc:  # noqa: BLE001 - the edge must never leak a stack trace
                from chalicelib.store.base import error_code, is_transient

                # A cancelled transaction that no service turned into a domain error (failed
                # conditions become TxCancelled) was cancelled for throttling or a conflict.
                if is_transient(exc) or error_code(exc) == "TransactionCanceledException":
                    log.warning("transient AWS failure on %s %s: %r", method, path, exc)
                    return error_response(RetryLater())
                if error_code(exc) == "ValidationException" and (request.query_params or {}).get("cursor"):
                    # DynamoDB refused the ExclusiveStartKey: a cursor from another list or tampered
                    return error_response(ValidationFailed("cursor is not valid",
                                                           fields=[{"field": "cursor", "message": "invalid"}]))
                log.exception("unhandled error on %s %s", method, path)
                return json_response(500, {"error": {"code": "INTERNAL_ERROR",
                                                     "message": "unexpected error", "details": {}}})

        view.__name__ = fn.__name__
        bp.route(path, methods=[method], content_types=JSON_TYPES)(view)
        return fn

    return decorate


# --- lists (SPEC 4.3) -----------------------------------------------------------

def page_limit(query: dict) -> int:
    raw = query.get("limit", "20")
    if not re.fullmatch(r"\d{1,3}", raw or "") or not 1 <= int(raw) <= 100:
        raise ValidationFailed("limit must be an integer from 1 to 100",
                               fields=[{"field": "limit", "message": "must be 1-100"}])
    return int(raw)


def encode_cursor(key: Optional[dict]) -> Optional[str]:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(query: dict, keys: Optional[dict] = None) -> Optional[dict]:
    """The `?cursor=` of a list. With `keys` ({attribute: (type, required value or None)}),
    the cursor must be exactly a DynamoDB key of that shape, e.g. the ledger's
    `{"member_id": ("S", member_id), "seq": ("N", None)}`: a tampered cursor is a 400,
    never a query of another partition or a 500."""
    raw = query.get("cursor")
    if not raw:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if not isinstance(value, dict):
            raise ValueError
        if keys is not None and not _key_matches(value, keys):
            raise ValueError
        return value
    except (ValueError, UnicodeDecodeError, TypeError):
        raise ValidationFailed("cursor is not valid", fields=[{"field": "cursor", "message": "invalid"}])


def _key_matches(value: dict, keys: dict) -> bool:
    if set(value) != set(keys):
        return False
    for name, (type_, required) in keys.items():
        attr = value[name]
        if not isinstance(attr, dict) or set(attr) != {type_} or not isinstance(attr[type_], str):
            return False
        if type_ == "N" and not re.fullmatch(r"-?\d{1,38}", attr[type_]):
            return False
        if required is not None and attr[type_] != required:
            return False
    return True


def model_dump(model: BaseModel) -> dict:
    return model.model_dump(mode="json")
