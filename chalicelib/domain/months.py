"""Calendar-month arithmetic in UTC. A month is the string `YYYY-MM`.

Never raises on a month the API can accept: results are clamped to what `datetime`
holds (0001-01 .. 9999-12), so "twelve months after 9999-06" is 9999-12, not a crash.
"""
from __future__ import annotations

import calendar
from datetime import datetime, timezone

_FIRST = 1 * 12  # index of 0001-01
_LAST = 9999 * 12 + 11  # index of 9999-12


def _index(month: str) -> int:
    y, m = int(month[:4]), int(month[5:7])
    return min(max(y * 12 + (min(max(m, 1), 12) - 1), _FIRST), _LAST)


def _month(idx: int) -> str:
    idx = min(max(idx, _FIRST), _LAST)
    return f"{idx // 12:04d}-{idx % 12 + 1:02d}"


def month_of(dt: datetime) -> str:
    return f"{dt.year:04d}-{dt.month:02d}"


def add_months(month: str, n: int) -> str:
    return _month(_index(month) + n)


def month_start(month: str) -> datetime:
    idx = _index(month)
    return datetime(idx // 12, idx % 12 + 1, 1, tzinfo=timezone.utc)


def month_end(month: str) -> datetime:
    """The last second of the month: what users see as "valid until"."""
    idx = _index(month)
    y, m = idx // 12, idx % 12 + 1
    return datetime(y, m, calendar.monthrange(y, m)[1], 23, 59, 59, tzinfo=timezone.utc)
