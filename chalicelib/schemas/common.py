from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Generic, Optional, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from chalicelib import clock

from chalicelib.schemas.patterns import ID_PATTERN, MEMBER_ID_PATTERN  # noqa: F401 - re-exported

MemberId = Annotated[str, Field(pattern=MEMBER_ID_PATTERN, min_length=1, max_length=64)]
ClientId = Annotated[str, Field(pattern=ID_PATTERN, min_length=1, max_length=128)]
NonNegInt = Annotated[int, Field(ge=0, le=10**15)]
PosInt = Annotated[int, Field(gt=0, le=10**15)]


# Every date a client sends lies in these years: month arithmetic (expiry lots, tier
# windows) then always stays inside what `datetime` can hold.
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
# How far ahead of the request's clock a client may date something that already happened
# (an order, an activity, an event): clocks drift, purchases are not made in the future.
FUTURE_SKEW = timedelta(minutes=5)


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("timestamps need a time zone (use Z for UTC)")
    try:
        utc = dt.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise ValueError("the date is out of range")
    if not EARLIEST <= utc <= LATEST:
        raise ValueError("dates lie between 2000-01-01 and 2999-12-31")
    return dt


def _happened(dt: datetime) -> datetime:
    if dt > clock.now() + FUTURE_SKEW:
        raise ValueError("the time is more than 5 minutes after now")
    return dt


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
# Something that already happened: 2000-01-01 at the earliest, now + 5 minutes at the latest
# ("now" is the request's clock, so X-Loyalty-Now moves it in the local stage).
PastDatetime = Annotated[UtcDatetime, AfterValidator(_happened)]


# defer_build: each model's validator is built on its first use, not at `import app` (cold
# start: a Lambda container builds only the models of the requests it serves).
class Strict(BaseModel):
    """Request bodies: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class Out(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)


class ErrorBody(BaseModel):
    model_config = ConfigDict(defer_build=True)

    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorResponse(BaseModel):
    model_config = ConfigDict(defer_build=True)

    error: ErrorBody


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A list (SPEC 4.3): one page of items, newest first where time-ordered, and the
    opaque cursor of the next page (null on the last one)."""

    model_config = ConfigDict(defer_build=True)

    items: list[T]
    next_cursor: Optional[str] = None
