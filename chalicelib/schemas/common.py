from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MEMBER_ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,64}$"
ID_PATTERN = r"^[A-Za-z0-9._:@#/-]{1,128}$"

MemberId = Annotated[str, Field(pattern=MEMBER_ID_PATTERN, min_length=1, max_length=64)]
ClientId = Annotated[str, Field(pattern=ID_PATTERN, min_length=1, max_length=128)]
NonNegInt = Annotated[int, Field(ge=0, le=10**15)]
PosInt = Annotated[int, Field(gt=0, le=10**15)]


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("timestamps need a time zone (use Z for UTC)")
    return dt


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


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


class Page(BaseModel):
    model_config = ConfigDict(defer_build=True)

    items: list[dict[str, Any]]
    next_cursor: Optional[str] = None
