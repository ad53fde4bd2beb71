"""Calendar-month arithmetic in UTC. A month is the string `YYYY-MM`."""
from __future__ import annotations

import calendar
from datetime import datetime, timezone


def month_of(dt: datetime) -> str:
    return f"{dt.year:04d}-{dt.month:02d}"


def add_months(month: str, n: int) -> str:
    y, m = int(month[:4]), int(month[5:7])
    idx = y * 12 + (m - 1) + n
    return f"{idx // 12:04d}-{idx % 12 + 1:02d}"


def month_start(month: str) -> datetime:
    return datetime(int(month[:4]), int(month[5:7]), 1, tzinfo=timezone.utc)


def month_end(month: str) -> datetime:
    """The last second of the month: what users see as "valid until"."""
    y, m = int(month[:4]), int(month[5:7])
    return datetime(y, m, calendar.monthrange(y, m)[1], 23, 59, 59, tzinfo=timezone.utc)

