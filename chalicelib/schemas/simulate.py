"""The settings simulator's request and response (SPEC 4.5 `POST /v1/admin/settings/simulate`)."""
from __future__ import annotations

from typing import Annotated, Optional

from pydantic import Field, model_validator

from chalicelib.schemas.common import MemberId, Out, Strict
from chalicelib.schemas.members import AccrualRequest, BreakdownLine
from chalicelib.schemas.program import ProgramSettings

MAX_ORDERS = 1000  # orders per simulation, given or read
MAX_LAST_DAYS = 90


class SimulatedOrder(AccrualRequest):
    """An accrual body with the member it belongs to."""

    member_id: MemberId


class SimulateRequest(Strict):
    settings: ProgramSettings  # validated exactly as PUT /v1/admin/settings validates it
    orders: Optional[Annotated[list[SimulatedOrder], Field(min_length=1, max_length=MAX_ORDERS)]] = None
    last_days: Optional[Annotated[int, Field(ge=1, le=MAX_LAST_DAYS)]] = None

    @model_validator(mode="after")
    def _some_orders(self) -> "SimulateRequest":
        if self.orders is None and self.last_days is None:
            raise ValueError("give orders, last_days, or both")
        return self


class SimulatedPoints(Out):
    order_id: str
    member_id: str
    source: str  # "sample" (sent in the request) | "recorded" (read from the last days' orders)
    current: int
    candidate: int
    breakdown: dict[str, list[BreakdownLine]]  # {"current": [...], "candidate": [...]}


class Skipped(Out):
    order_id: str
    member_id: str
    reason: str


class SimulationTotals(Out):
    current: int
    candidate: int


class SimulationResult(Out):
    orders: list[SimulatedPoints]
    totals: SimulationTotals
    skipped: list[Skipped] = []
    truncated: bool = False  # the last_days read stopped at its bound (docs/RULES.md)
