"""Exports and imports (SPEC 2.17): their records, the pages an export reads, the S3 bucket.

An export or an import *is* a job (`export` / `import`) whose id is derived from the
client's `export_id` / `import_id`: the job record, created conditionally on being new,
is the operation's own record, so the id makes the request idempotent without a table of
its own. An import's progress (rows read, the byte offset reached, counts, the first
errors) is its segment checkpoint in the jobs table; inline rows are stored beside it.
"""
from __future__ import annotations

from typing import Iterable, Optional

from pynamodb.exceptions import PutError

from chalicelib.domain.member import Member
from chalicelib.store import jobs as job_store
from chalicelib.store import members as member_store
from chalicelib.store.base import error_code
from chalicelib.store.coupons import CodeRecord
from chalicelib.store.models import JobRecord, LedgerRecord, MemberRecord

# The exports bucket: `bootstrap` creates it locally and `infra/` deploys it from this.
EXPORTS_BUCKET = {
    "resource": "exports",
    "expire_days": 30,  # exports hold personal data: they do not outlive a month
    "abort_multipart_days": 1,  # parts of an upload a crashed job never completed
}
EXPORT_PREFIX = "exports/"
IMPORT_PHASE = "import"
EXPORT_PHASE = "export"


def lifecycle_rules() -> list[dict]:
    """The bucket's lifecycle rules, in the S3 API's shape (CloudFormation's is derived in infra/)."""
    return [{"ID": "expire-exports", "Status": "Enabled", "Filter": {"Prefix": ""},
             "Expiration": {"Days": EXPORTS_BUCKET["expire_days"]},
             "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": EXPORTS_BUCKET["abort_multipart_days"]}}]


# --- key formats ---------------------------------------------------------------------

def export_job_id(export_id: str) -> str:
    return f"export-{export_id}"


def import_job_id(import_id: str) -> str:
    return f"import-{import_id}"


def export_key(kind: str, export_id: str) -> str:
    return f"{EXPORT_PREFIX}{kind}/{export_id}.jsonl.gz"


def _rows_key(job_id: str, request_hash: str) -> str:
    return f"{job_id}#rows#{request_hash[:24]}"


# --- the operation's record (its job) ----------------------------------------------------

def create_job(job_id: str, data: dict) -> bool:
    """Create the job record if no job has this id; False when one exists already."""
    try:
        job_store.create(job_id, data)
        return True
    except PutError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise


def get_job(job_id: str) -> Optional[dict]:
    return job_store.get(job_id)


def save_rows(job_id: str, request_hash: str, rows: list) -> str:
    """Store an import's inline rows (keyed by the request's hash, so a twin request with
    other rows can never overwrite them); returns their key."""
    key = _rows_key(job_id, request_hash)
    JobRecord(key, data={"rows": rows}, expires_at=job_store.JOB_TTL).save()
    return key


def load_rows(key: str) -> list:
    data = job_store.get(key)
    return list((data or {}).get("rows") or [])


def load_progress(job_id: str, phase: str) -> dict:
    return job_store.load_checkpoint(job_id, phase, 0)


def store_progress(job_id: str, phase: str, progress: dict) -> None:
    job_store.store_checkpoint(job_id, phase, 0, progress)


def warm_tables() -> None:
    """Resolve the tables an enrolment writes before threads share them: PynamoDB describes a
    table on its first use and registers it in the shared connection, which is not safe to do
    from several threads at once."""
    from chalicelib.store.models import LookupRecord, OutboxRecord

    for model in (MemberRecord, LedgerRecord, LookupRecord, OutboxRecord):
        model.table_name()


# --- what an export reads: one scan page at a time -----------------------------------------

def ledger_page(last_key: Optional[dict], limit: int) -> tuple[list[dict], Optional[dict]]:
    result = LedgerRecord.scan(limit=limit, last_evaluated_key=last_key, consistent_read=True)
    entries = [r.entry for r in result]
    return entries, result.last_evaluated_key


def members_page(last_key: Optional[dict], limit: int) -> tuple[list[Member], Optional[dict]]:
    result = MemberRecord.scan(limit=limit, last_evaluated_key=last_key, consistent_read=True)
    rows = [member_store.from_record(r) for r in result]
    return rows, result.last_evaluated_key


def codes_page(campaign_id: str, last_key: Optional[dict], limit: int) -> tuple[list[dict], Optional[dict]]:
    result = CodeRecord.scan(CodeRecord.campaign_id == campaign_id, limit=limit, last_evaluated_key=last_key,
                             consistent_read=True)
    codes = [{"code": r.code, "campaign_id": r.campaign_id, "kind": r.kind, "status": r.status or "unissued",
              "issued_at": r.issued_at} for r in result]
    return codes, result.last_evaluated_key


def member_statuses(member_ids: Iterable[str]) -> dict[str, str]:
    """member_id → status (BatchGetItem, the status attribute only); unknown ids are absent."""
    ids = sorted(set(member_ids))
    out: dict[str, str] = {}
    for i in range(0, len(ids), 100):
        for rec in MemberRecord.batch_get(ids[i:i + 100], attributes_to_get=["member_id", "status"]):
            out[rec.member_id] = rec.status
    return out
