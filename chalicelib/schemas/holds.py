"""Point holds and status match (SPEC 2.14, 2.15)."""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

from chalicelib.schemas.common import ClientId, NonNegInt, Out, Page, PosInt, Strict, UtcDatetime


class HoldRequest(Strict):
    hold_id: ClientId
    points: PosInt
    order_id: Optional[ClientId] = None
    order_total: Optional[NonNegInt] = None


class CaptureRequest(Strict):
    points: Optional[NonNegInt] = None  # default: all the held points


class Hold(Out):
    hold_id: str
    member_id: str
    order_id: Optional[str]
    points: int
    amount: int  # points × point_value, in minor units
    captured_points: int
    status: Literal["held", "captured", "released"]
    created_at: str
    expires_at: str


HoldPage = Page[Hold]


class StatusMatchRequest(Strict):
    tier_id: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,32}$")]
    until: UtcDatetime
    reason: Annotated[str, Field(min_length=1, max_length=500)]
