"""Admin job routes: start a job, read its status."""
from __future__ import annotations

from typing import Literal

from chalice import Blueprint

from chalicelib.api.http import endpoint, lazy

bp = Blueprint(__name__)
audit = lazy("chalicelib.services.audit")
framework = lazy("chalicelib.jobs.framework")

# The request and response models are in chalicelib/schemas/jobs.py, imported by the first
# call of a job route (not at `import app`); the job names stay here.

JobName = Literal["recalculate-tiers", "expire-points", "mature-points", "expire-vouchers", "score-rfm",
                  "run-automations", "run-triggers", "release-holds",
                  "report-liability",
                  "measure-campaigns"]


@endpoint(bp, "POST", "/v1/admin/jobs", roles=("admin",), body="jobs.JobRequest", response="jobs.Job", status=202, tag="jobs",
          idempotent=True)
def start_job(req):
    """Run a job now (`as_of` pins its clock; local stage: any time, elsewhere: not in the future)."""

    job = framework.start(req.body.job, framework.parse_as_of(req.body.as_of), req.actor)
    audit.record(req.actor, "job.start", target=job["job_id"], details={"job": req.body.job, "as_of": job["as_of"]})
    return 202, job


@endpoint(bp, "GET", "/v1/admin/jobs/{job_id}", roles=("admin",), response="jobs.Job", tag="jobs")
def get_job(req, job_id):
    """A job's status, counts and timestamps."""

    return framework.get_job(job_id)
