"""Job routes' request and response models (`chalicelib/api/jobs.py`; the job names are there)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator

from chalicelib.api.http import bounded_instant
from chalicelib.api.jobs import JobName  # noqa: F401 - JobRequest.job's type
from chalicelib.errors import ValidationFailed
from chalicelib.schemas.common import Out, Strict


class JobRequest(Strict):
    job: JobName
    # ISO-8601 UTC (a bare date means 00:00Z), 2000-01-01 .. 2099-12-31.
    as_of: Optional[str] = Field(default=None, max_length=40)

    @field_validator("as_of")
    @classmethod
    def _as_of_in_range(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            try:
                bounded_instant(v, "as_of")
            except ValidationFailed as exc:
                raise ValueError(exc.details["fields"][0]["message"])
        return v


class Job(Out):
    job_id: str
    job: str
    status: Literal["queued", "running", "succeeded", "failed"]
    as_of: str
    counts: dict
    started_at: Optional[str]
    finished_at: Optional[str]
    error: Optional[str] = None  # why it failed, else null
