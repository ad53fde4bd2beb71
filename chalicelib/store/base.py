"""The shared DynamoDB connection, the model base class and error translation.

Every model talks through one `pynamodb.connection.Connection` (one botocore
client), created lazily on first use, so importing the app costs nothing and
tests can hook faults onto a single client (`dynamodb_client()`).
"""
from __future__ import annotations

import functools
import json
import random
import threading
import time
from typing import Any, Callable, Optional, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.attributes import JSONAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException
from pynamodb.models import Model

from chalicelib.config import Settings, get_settings
from chalicelib.errors import RetryLater

_lock = threading.Lock()
_state: dict[str, Any] = {"settings": None, "connection": None}

T = TypeVar("T")


def connection() -> Connection:
    settings = get_settings()
    conn = _state["connection"]
    if conn is None or _state["settings"] is not settings:
        with _lock:
            if _state["connection"] is None or _state["settings"] is not settings:
                _state["connection"] = Connection(
                    region=settings.region,
                    host=settings.aws_endpoint_url,
                    max_retry_attempts=2,
                    max_pool_connections=32,
                )
                _state["settings"] = settings
            conn = _state["connection"]
    return conn


def dynamodb_client():
    """The one botocore DynamoDB client (for fault-injection hooks and call counting)."""
    return connection().client


def reset_connection() -> None:
    with _lock:
        _state["connection"] = None
        _state["settings"] = None


class Record(Model):
    """Base for every table: name, region and endpoint come from the settings."""

    class Meta:
        resource = ""
        table_name = None
        billing_mode = "PAY_PER_REQUEST"

    @classmethod
    def _get_connection(cls):
        conn = connection()
        table_conn = cls._connection
        if table_conn is None or table_conn.connection is not conn:
            settings: Settings = get_settings()
            cls.Meta.table_name = settings.resource_name(cls.Meta.resource)
            cls.Meta.region = settings.region
            cls.Meta.host = settings.aws_endpoint_url
            cls._connection = None
            table_conn = super()._get_connection()
            meta = table_conn.get_meta_table()
            table_conn.connection = conn
            conn.add_meta_table(meta)
            cls._connection = table_conn
        return table_conn

    @classmethod
    def table_name(cls) -> str:
        return cls._get_connection().table_name

    @classmethod
    def find(cls, hash_key, range_key=None, consistent: bool = True):
        """The item, or None when there is none (a consistent read unless asked otherwise)."""
        try:
            return cls.get(hash_key, range_key, consistent_read=consistent)
        except cls.DoesNotExist:
            return None

    # Hot paths (a points mutation, a campaign's claims) build and read raw items with these
    # instead of model instances: the same items PynamoDB would write and read (a test
    # compares them), at a fraction of the per-attribute cost. Unicode, whole-number and
    # JSON attributes only; a model with any other kind is refused.
    @classmethod
    def to_item(cls, **values: Any) -> dict:
        """The DynamoDB item of these attribute values (defaults applied, None left out)."""
        item = {}
        for name, key, kind, default in _fields(cls):
            value = values[name] if name in values else default() if callable(default) else default
            if value is not None:
                item[key] = {"S": value} if kind is str else {"N": str(value)} if kind is int else {"S": json.dumps(value)}
        return item

    @classmethod
    def from_item(cls, item: dict) -> dict:
        """Attribute values of a raw item (absent ones get their defaults)."""
        out = {}
        for name, key, kind, default in _fields(cls):
            raw = item.get(key)
            if raw is None:
                out[name] = default() if callable(default) else default
            elif kind is str:
                out[name] = raw["S"]
            elif kind is int:
                out[name] = int(raw["N"])
            else:
                out[name] = json.loads(raw["S"])
        return out


_KINDS = {UnicodeAttribute: str, NumberAttribute: int, JSONAttribute: dict, TTLAttribute: int}  # TTL: epoch seconds


@functools.cache
def _fields(cls) -> tuple:
    """(attribute name, item key, kind, default) of each attribute of a model, once per model."""
    fields = []
    for name, attr in cls.get_attributes().items():
        kind = _KINDS.get(type(attr))
        if kind is None:
            raise TypeError(f"{cls.__name__}.{name}: {type(attr).__name__} has no raw codec")
        fields.append((name, attr.attr_name, kind, attr.default))
    return tuple(fields)


def error_code(exc: BaseException) -> Optional[str]:
    """The AWS error code behind a PynamoDB or botocore exception, if any.

    (PynamoDB's own `cause_response_code` breaks when the cause is a connection error.)
    """
    cause = exc.cause if isinstance(exc, PynamoDBException) else exc
    if isinstance(cause, ClientError):
        return (cause.response or {}).get("Error", {}).get("Code")
    return None


def connection_failed(exc: BaseException) -> bool:
    """The call failed below the AWS API (connection refused, closed, timed out), directly
    or as the cause of a PynamoDB exception."""
    cause = exc.cause if isinstance(exc, PynamoDBException) and exc.cause is not None else exc
    return isinstance(cause, BotoCoreError)


def is_transient(exc: BaseException) -> bool:
    """Throttling, conflicts, 5xx and lost connections: the client should retry."""
    if connection_failed(exc):
        return True
    code = error_code(exc)
    return code not in (None, "ConditionalCheckFailedException", "ValidationException",
                        "ResourceNotFoundException", "TransactionCanceledException")


def retrying(attempts: int = 8, base_delay: float = 0.01, max_delay: float = 1.0) -> Callable[[Callable[[], T]], T]:
    """Run `fn` until it stops raising `Conflict`, with bounded, jittered backoff ("full
    jitter": a uniform wait below base × 2^attempt, capped at `max_delay`)."""

    def run(fn: Callable[[], T]) -> T:
        for attempt in range(attempts):
            try:
                return fn()
            except Conflict:
                if attempt == attempts - 1:
                    raise RetryLater("too much contention on this record; retry shortly")
                time.sleep(random.uniform(0, min(base_delay * (2 ** attempt), max_delay)))
        raise AssertionError("unreachable")

    return run


class Conflict(Exception):
    """An optimistic-concurrency check failed: re-read and try again. `codes`: the
    per-item reasons when a transaction was cancelled for a conflict."""

    def __init__(self, codes: Optional[list] = None):
        super().__init__("conflict")
        self.codes = codes or []
        self.retried = False  # set when the SDK had re-sent the cancelled call
