"""Exports and migration imports (SPEC 2.17, 4.5)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from chalicelib import clock
from chalicelib.schemas.common import FUTURE_SKEW, MemberId, NonNegInt, Out, PosInt, Strict, UtcDatetime
from chalicelib.schemas.members import Consents, Email, Locale, Name, _birthday

# export_id / import_id become a path segment of their GET route: the plain set, no `/` or `#`.
OperationId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:@~-]{1,100}$")]
S3Key = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[^\x00-\x1f\x7f]+$")]

INLINE_ROWS = 1000
MAX_LOTS = 40  # lots per member: a member's enrolment is one transaction (at most 100 items)
MAX_ERRORS = 1000  # errors an import reports (the first ones)


class ExportRequest(Strict):
    export_id: OperationId
    kind: Literal["ledger", "members", "coupon_codes"]
    # from/to bound a ledger entry's occurred_at or a member's enrolled_at: from ≤ t < to
    from_: Optional[UtcDatetime] = Field(default=None, alias="from")
    to: Optional[UtcDatetime] = None
    campaign_id: Optional[Annotated[str, Field(pattern=r"^[A-Za-z0-9._:@#~-]{1,128}$")]] = None

    model_config = {**Strict.model_config, "populate_by_name": True}

    @model_validator(mode="after")
    def _consistent(self) -> "ExportRequest":
        if self.kind == "coupon_codes":
            if not self.campaign_id:
                raise ValueError("a coupon_codes export needs campaign_id")
            if self.from_ is not None or self.to is not None:
                raise ValueError("from/to bound ledger and members exports only")
        elif self.campaign_id is not None:
            raise ValueError("campaign_id is for coupon_codes exports only")
        if self.from_ is not None and self.to is not None and self.from_ >= self.to:
            raise ValueError("from must be before to")
        return self


class ExportAccepted(Out):
    export_id: str
    job_id: str


class Export(Out):
    export_id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed"]
    rows: int
    url: Optional[str]  # pre-signed download URL (gzip JSON Lines) once succeeded
    job_id: str
    error: Optional[str] = None


class ImportRequest(Strict):
    import_id: OperationId
    # Rows are checked one by one by the job (a bad row is reported, the rest go on), so here
    # they are only JSON objects.
    rows: Optional[Annotated[list[dict[str, Any]], Field(min_length=1, max_length=INLINE_ROWS)]] = None
    s3_key: Optional[S3Key] = None

    @model_validator(mode="after")
    def _one_source(self) -> "ImportRequest":
        if (self.rows is None) == (self.s3_key is None):
            raise ValueError("give either rows (at most 1,000) or s3_key")
        return self


class ImportAccepted(Out):
    import_id: str
    job_id: str


class ImportCounts(Out):
    rows: int
    imported: int
    skipped: int
    failed: int


class ImportError_(Out):
    row: int
    code: str
    message: str


class Import(Out):
    import_id: str
    status: Literal["queued", "running", "succeeded", "failed"]
    counts: ImportCounts
    errors: list[ImportError_]
    job_id: str
    error: Optional[str] = None


# --- one row of an import (validated by the job, row by row) -------------------------------

def _past_instant(value: str) -> datetime:
    at = _instant(value)
    if at > clock.now() + FUTURE_SKEW:
        raise ValueError("earned_at is in the future")
    return at


def _instant(value: str) -> datetime:
    try:
        at = clock.parse_instant(value)
    except (ValueError, OverflowError):
        raise ValueError("must be an ISO-8601 date or UTC timestamp")
    if not 2000 <= at.year <= 2999:
        raise ValueError("dates lie between 2000-01-01 and 2999-12-31")
    return at


Instant = Annotated[str, Field(max_length=40), AfterValidator(_instant)]
PastInstant = Annotated[str, Field(max_length=40), AfterValidator(_past_instant)]


# Import rows are validated by the million in one process; their models strip whitespace
# themselves (pydantic-core's string cache behind `str_strip_whitespace` is bounded, about
# 0.9 MB whatever the count: docs/DATA.md).
_ROW_CONFIG = ConfigDict(extra="forbid", defer_build=True)


def _stripped(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v.strip() if isinstance(v, str) else v for k, v in value.items()}
    return value


class Lot(BaseModel):
    model_config = _ROW_CONFIG

    points: PosInt
    earned_at: PastInstant  # its month decides when the points expire (SPEC 2.6)


class ImportRow(BaseModel):
    model_config = _ROW_CONFIG

    member_id: MemberId
    name: Optional[Name] = None
    email: Optional[Email] = None
    birthday: Optional[str] = None
    locale: Optional[Locale] = None
    consents: Optional[Consents] = None
    tier_id: Optional[Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,32}$")]] = None
    tier_retained_until: Optional[Instant] = None
    balances: Optional[Annotated[list[Lot], Field(max_length=MAX_LOTS)]] = None
    lifetime_earned: Optional[NonNegInt] = None

    @model_validator(mode="before")
    @classmethod
    def _strip(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("balances"), list):
            data = {**data, "balances": [_stripped(lot) for lot in data["balances"]]}
        return _stripped(data)

    @model_validator(mode="after")
    def _checks(self) -> "ImportRow":
        _birthday(self.birthday)
        total = sum(lot.points for lot in self.balances or [])
        if self.lifetime_earned is not None and self.lifetime_earned < total:
            raise ValueError(f"lifetime_earned ({self.lifetime_earned}) is less than the balances ({total})")
        return self
