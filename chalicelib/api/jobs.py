"""Admin job routes: start a job, read its status."""
from __future__ import annotations

from typing import Literal, Optional

from chalice import Blueprint
from pydantic import Field, field_validator

from chalicelib.api.http import bounded_instant, endpoint
from chalicelib.errors import ValidationFailed
from chalicelib.schemas.common import Out, Strict

bp = Blueprint(__name__)

JobName = Literal["recalculate-tiers", "expire-points", "mature-points", "expire-vouchers", "score-rfm",
                  "run-automations", "run-triggers", "release-holds",
                  "report-liability",
                  "measure-campaigns"]


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


@endpoint(bp, "POST", "/v1/admin/jobs", roles=("admin",), body=JobRequest, response=Job, status=202, tag="jobs",
          idempotent=True)
def start_job(req):
    """Run a job now (`as_of` pins its clock; local stage: any time, elsewhere: not in the future)."""
    from chalicelib.jobs import framework
    from chalicelib.services import audit

    job = framework.start(req.body.job, framework.parse_as_of(req.body.as_of), req.actor)
    audit.record(req.actor, "job.start", target=job["job_id"], details={"job": req.body.job, "as_of": job["as_of"]})
    return 202, job


@endpoint(bp, "GET", "/v1/admin/jobs/{job_id}", roles=("admin",), response=Job, tag="jobs")
def get_job(req, job_id):
    """A job's status, counts and timestamps."""
    from chalicelib.jobs import framework

    return framework.get_job(job_id)
