"""Job records and segment checkpoints (the jobs table). A job record changes only
conditionally on the version read, so concurrent segment workers never overwrite each
other; a checkpoint has one writer (its segment's worker)."""
from __future__ import annotations

from datetime import timedelta
from typing import Callable, Optional

from pynamodb.exceptions import PutError

from chalicelib.store.base import error_code
from chalicelib.store.models import JobRecord

JOB_TTL = timedelta(days=90)


def create(job_id: str, data: dict) -> None:
    JobRecord(job_id, version=0, data=data, expires_at=JOB_TTL).save(JobRecord.job_id.does_not_exist())


def get(job_id: str) -> Optional[dict]:
    rec = JobRecord.find(job_id)
    return dict(rec.data) if rec else None


def update(job_id: str, change: Callable[[dict], Optional[dict]], attempts: int = 10) -> dict:
    """Read the record, let `change` return its new data (None: leave it), write it if the
    version is still the one read; again on a race. Returns the data as stored."""
    for _ in range(attempts):
        rec = JobRecord.get(job_id, consistent_read=True)
        data = change(dict(rec.data))
        if data is None:
            return dict(rec.data)
        version = int(rec.version or 0)
        try:
            JobRecord(job_id, version=version + 1, data=data, expires_at=JOB_TTL).save(JobRecord.version == version)
            return data
        except PutError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
    raise RuntimeError(f"job {job_id}: too much contention on its record")


def checkpoint_key(job_id: str, phase: str, segment: int) -> str:
    return f"{job_id}#{phase}#seg#{segment}"


def load_checkpoint(job_id: str, phase: str, segment: int) -> dict:
    return get(checkpoint_key(job_id, phase, segment)) or {"done": False, "last_key": None, "counts": {}}


def store_checkpoint(job_id: str, phase: str, segment: int, cp: dict) -> None:
    JobRecord(checkpoint_key(job_id, phase, segment), data=cp, expires_at=JOB_TTL).save()
