"""The one wrapper every route goes through.

`endpoint(...)` registers a Chalice route and records it (roles, body and
response models) for the OpenAPI document and the auth-matrix test. Around the
view it: pins the clock (X-Loyalty-Now, local stage only), verifies the bearer
token, checks the path parameters, applies the role/ownership rule, parses and
validates the JSON body (strict types), checks `Idempotency-Key` and handles its
replays, and maps every error to SPEC 4.2's shape.

`install_fallbacks(app)` gives every path an answer for every method (405) and every
unknown path an answer (404), and `spec_shaped_errors` turns the few responses Chalice
builds itself into the same shape: no request ever leaves in another shape.
"""
from __future__ import annotations

import base64
import contextvars
import functools
import hashlib
import hmac
import importlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from chalice import Blueprint, Response
from pydantic import BaseModel, ValidationError

from chalicelib import clock
from chalicelib.auth import Principal, authorize, verify_token
from chalicelib.config import get_settings
from chalicelib.errors import LoyaltyError, MethodNotAllowed, NotFound, RetryLater, ValidationFailed
from chalicelib.schemas.patterns import MEMBER_ID_PATTERN  # not schemas.common: its models load with a route

log = logging.getLogger("loyalty.api")

# Any Content-Type reaches the view, which reads the body as JSON whatever it is labelled
# (Chalice would otherwise answer 415 in its own shape).
JSON_TYPES = ["*/*"]
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

# Path parameters become keys: bounded and plain. Member ids follow SPEC 2.2; every other
# id (reward, redemption, campaign, job, voucher code, segment) is at most 128 characters
# of the same plain set plus `#` and `~`.
_PARAM_PATTERNS = {"member_id": re.compile(MEMBER_ID_PATTERN)}
_ANY_PARAM = re.compile(r"^[A-Za-z0-9._:@#~-]{1,128}$")
# Idempotency-Key: 1-128 visible ASCII characters (SPEC 3).
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
# X-Loyalty-Now and job as_of: the clock may be moved within this century only.
NOW_EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
NOW_LATEST = datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)


class _LazyModule:
    """A module imported on its first attribute access: a blueprint names the services its
    routes call at module level, and each is imported by the first request that uses it, not
    at `import app` (cold start, docs/PERFORMANCE.md). The one lazy-import idiom of `api/`."""

    def __init__(self, name: str) -> None:
        self.__dict__["_name"], self.__dict__["_module"] = name, None

    def __getattr__(self, attr: str):
        module = self.__dict__["_module"]
        if module is None:
            module = self.__dict__["_module"] = importlib.import_module(self.__dict__["_name"])
        return getattr(module, attr)


def lazy(name: str) -> Any:
    """`lazy("chalicelib.services.points")`: that module, imported when first used."""
    return _LazyModule(name)


idempotency = lazy("chalicelib.services.idempotency")  # the Idempotency-Key path, on its first use


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
    doc: str = ""  # the view's docstring: the operation's description

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


def _field_error(name: str, message: str, text: Optional[str] = None) -> ValidationFailed:
    return ValidationFailed(text or f"{name} is not valid", fields=[{"field": name, "message": message}])


def _parse_body(raw: Optional[bytes], ref: ModelRef) -> Any:
    """Strict JSON (pydantic's own parser): `"12800"` or `true` is not an integer, `"yes"`
    not a bool; decimal fields (multipliers) take a string or a JSON number. The parser
    refuses nesting deeper than a few hundred levels and the body is size-bounded, so no
    payload can exhaust the stack or the memory."""
    if ref is None:
        return None
    raw = raw or b""
    if len(raw) > get_settings().max_body_bytes:
        raise _field_error("body", "too large", "the request body is too large")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _field_error("body", "invalid JSON", "the body is not valid JSON")
    cls = model(ref)
    if not text.strip():
        text = "{}"
    elif getattr(cls, "bare_list_field", None) and text.lstrip().startswith("["):
        text = '{"%s":%s}' % (cls.bare_list_field, text)
    try:
        return cls.model_validate_json(text, strict=True)
    except ValidationError as exc:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            raise _field_error("body", "invalid JSON (or nested too deeply)", "the body is not valid JSON")
        raise validation_error(exc)


def bounded_instant(value: Any, name: str) -> datetime:
    """An ISO-8601 UTC instant (a bare date means 00:00Z) within 2000-01-01 .. 2099-12-31."""
    if not isinstance(value, str) or len(value) > 40:
        raise _field_error(name, "must be an ISO-8601 timestamp", f"{name} must be an ISO-8601 timestamp")
    try:
        at = clock.parse_instant(value)
    except (ValueError, OverflowError):
        raise _field_error(name, "invalid timestamp", f"{name} must be an ISO-8601 timestamp")
    if not NOW_EARLIEST <= at <= NOW_LATEST:
        raise _field_error(name, "must lie between 2000-01-01 and 2099-12-31",
                           f"{name} must lie between 2000-01-01 and 2099-12-31")
    return at


def check_path_params(params: dict) -> None:
    fields = []
    for name, value in params.items():
        pattern = _PARAM_PATTERNS.get(name, _ANY_PARAM)
        if not isinstance(value, str) or not pattern.match(value):
            fields.append({"field": f"path.{name}", "message": "empty, too long or not a plain identifier"})
    if fields:
        raise ValidationFailed("a path parameter is not valid", fields=fields)


def check_query(query_params: Optional[dict], allowed: tuple) -> None:
    """Query parameters a route does not take are errors, like unknown body fields."""
    unknown = sorted(set(query_params or {}) - set(allowed))
    if unknown:
        raise ValidationFailed("unknown query parameter", fields=[
            {"field": "query." + name[:64], "message": "not a parameter of this route"} for name in unknown[:10]])


def check_idempotency_key(headers: dict) -> Optional[str]:
    key = headers.get("idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise _field_error("Idempotency-Key", "1-128 visible ASCII characters",
                           "Idempotency-Key must be 1-128 visible ASCII characters")
    return key


def _pin_now(headers: dict):
    value = headers.get("x-loyalty-now")
    if value is None:
        return None
    if not get_settings().is_local:
        raise _field_error("X-Loyalty-Now", "not allowed in this stage", "X-Loyalty-Now is accepted only in the local stage")
    return bounded_instant(value, "X-Loyalty-Now")


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
                                      summary or (fn.__doc__ or "").strip().split("\n")[0], tag, query, tuple(also),
                                      fn.__doc__ or ""))

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
            scope = _list_scope.set(f"{method} {path} {json.dumps(params, sort_keys=True)}")
            try:
                at = _pin_now(headers)
                with clock.pinned(at):
                    principal = None
                    if roles:
                        principal = verify_token(headers.get("authorization"))
                    check_path_params(params)
                    check_query(request.query_params, query)
                    if roles:
                        authorize(principal, roles, owner=params.get(owner) if owner else None)
                    idempotency_key = check_idempotency_key(headers)
                    parsed = _parse_body(request.raw_body, body)
                    req = Request(principal=principal, body=parsed, query=dict(request.query_params or {}),
                                  headers=headers, params=params, idempotency_key=idempotency_key)
                    if idempotent and req.idempotency_key:
                        def call() -> tuple:
                            result = fn(req, **params)
                            if isinstance(result, Response):
                                return result.status_code, json.loads(result.body) if result.body else None
                            return result if isinstance(result, tuple) else (status, result)

                        return to_response(idempotency.run(req, method, path, call), status)
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
            finally:
                _list_scope.reset(scope)

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


# Which list is being read ("GET /v1/members/{member_id}/ledger {"member_id": "m-1"}"):
# a cursor is signed together with it, so a cursor of another list, or another member's
# list, is refused like a forged one.
_list_scope: contextvars.ContextVar[str] = contextvars.ContextVar("loyalty_list_scope", default="")


def _cursor_mac(payload: str) -> str:
    settings = get_settings()
    # The server's secret (the HS256 secret where there is one); the key is derived from it
    # so a cursor's signature says nothing about a token's.
    secret = (settings.jwt_secret or settings.jwks_url or settings.stage).encode()
    key = hashlib.sha256(b"loyalty-cursor\0" + secret).digest()
    mac = hmac.new(key, f"{_list_scope.get()}\n{payload}".encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def encode_cursor(key: Optional[dict]) -> Optional[str]:
    if not key:
        return None
    payload = base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{payload}.{_cursor_mac(payload)}"


def decode_cursor(query: dict, keys: Optional[dict] = None) -> Optional[dict]:
    """The `?cursor=` of a list: one this list issued (HMAC-signed with the list's identity),
    else a 400. With `keys` ({attribute: (type, required value or None)}) the key must also
    be exactly a DynamoDB key of that shape, e.g. the ledger's
    `{"member_id": ("S", member_id), "seq": ("N", None)}`."""
    raw = query.get("cursor")
    if raw is None:
        return None
    try:
        if not raw or len(raw) > 2048:
            raise ValueError
        payload, _, mac = raw.rpartition(".")
        if not payload or not hmac.compare_digest(mac.encode(), _cursor_mac(payload).encode()):
            raise ValueError
        value = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if not isinstance(value, dict):
            raise ValueError
        if keys is not None and not _key_matches(value, keys):
            raise ValueError
        return value
    except (ValueError, UnicodeError, TypeError):
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


# --- every other request (SPEC 4.1: routing before authentication) ---------------

def _not_found(**_params: str) -> Response:
    return error_response(NotFound("no such route"))


def _method_not_allowed(allowed: list) -> Callable[..., Response]:
    def view(**_params: str) -> Response:
        response = error_response(MethodNotAllowed("this route does not take that method", allowed=allowed))
        response.headers["Allow"] = ", ".join(allowed)
        return response

    return view


# Deeper unknown paths than this meet the local server's own 403 (API Gateway: the 404
# Gateway Response of infra/).
CATCH_ALL_DEPTH = 16


def install_fallbacks(app) -> None:
    """After the blueprints: a 405 for every method a known path does not take, and a 404
    for every unknown path up to CATCH_ALL_DEPTH segments, neither asking for a token.
    Chalice matches concrete routes before these (`/v1/...` sorts before `/{...}`)."""
    for path, views in list(app.routes.items()):
        missing = [m for m in ALL_METHODS if m not in views]
        if missing:
            allowed = sorted(views)
            app.route(path, methods=missing, content_types=JSON_TYPES,
                      name=f"method_not_allowed{re.sub(r'[^a-z0-9]+', '_', path.lower())}")(_method_not_allowed(allowed))
    for depth in range(CATCH_ALL_DEPTH + 1):
        path = "/" + "/".join("{p%d}" % i for i in range(1, depth + 1))
        if path not in app.routes:
            app.route(path, methods=list(ALL_METHODS), content_types=JSON_TYPES, name=f"not_found_{depth}")(_not_found)


_CHALICE_CODES = {400: "VALIDATION_ERROR", 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND",
                  405: "METHOD_NOT_ALLOWED", 415: "VALIDATION_ERROR", 429: "RETRY_LATER", 503: "RETRY_LATER"}


def spec_shaped_errors(event, get_response):
    """HTTP middleware: an error Chalice answered itself ({"Code", "Message"}: an unknown
    method, a view that raised) leaves in SPEC 4.2's shape, its message not echoed."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Code" in body and "error" not in body:
        status = response.status_code
        code = _CHALICE_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR")
        response.body = json.dumps({"error": {"code": code, "message": str(body.get("Code")), "details": {}}})
        response.headers = {**{k: v for k, v in (response.headers or {}).items() if k.lower() != "content-type"},
                            "Content-Type": "application/json"}
    return response
