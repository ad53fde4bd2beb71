"""The one clock every rule reads. A request or a job may pin "now"."""
from __future__ import annotations

import contextlib
import contextvars
import functools
from datetime import date, datetime, timezone
from typing import Iterator, Optional

_pinned: contextvars.ContextVar[Optional[datetime]] = contextvars.ContextVar("loyalty_now", default=None)


def now() -> datetime:
    pinned = _pinned.get()
    return pinned if pinned is not None else datetime.now(timezone.utc)


@contextlib.contextmanager
def pinned(at: Optional[datetime]) -> Iterator[None]:
    token = _pinned.set(at)
    try:
        yield
    finally:
        _pinned.reset(token)


def parse_instant(value: str) -> datetime:
    """ISO-8601 → aware UTC datetime. A bare date means 00:00Z. Raises ValueError."""
    text = value.strip()
    if len(text) == 10:
        d = date.fromisoformat(text)
        return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def iso(dt: Optional[datetime]) -> Optional[str]:
    if dt is None:
        return None
    return _iso(dt)


@functools.lru_cache(maxsize=1024)
def _iso(dt: datetime) -> str:
    # Cached: a request or a job's chunk formats the same few instants over and over.
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sortable(dt: datetime) -> str:
    """Fixed-width UTC timestamp for sort keys (lexicographic order = time order)."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
