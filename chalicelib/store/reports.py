"""Stored finance reports (SPEC 2.17). Key formats live here.

- reports:  `kind` (`liability`) / `{as_of}#{started_at}#{job_id}`: one item per report
            run, so the newest `as_of` (and, for the same `as_of`, the run started last)
            is the first item of a descending query. A job writes its report once its
            last segment is done; a re-run of that step writes the same key again.
"""
from __future__ import annotations

from typing import Optional

from pynamodb.attributes import JSONAttribute, UnicodeAttribute

from chalicelib.store.base import Record


class ReportRecord(Record):
    class Meta(Record.Meta):
        resource = "reports"

    kind = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    job_id = UnicodeAttribute()
    body = JSONAttribute()


MODELS = [ReportRecord]


def ledger_newest_first(member_id: str, page_size: int = 50):
    """A member's ledger entries, newest first, read a page at a time as the caller goes
    (stop iterating and no further page is read). Eventually consistent: a report."""
    from chalicelib.store.models import LedgerRecord

    for rec in LedgerRecord.query(member_id, scan_index_forward=False, page_size=page_size):
        yield rec.entry


def report_key(as_of: str, started_at: str, job_id: str) -> str:
    return f"{as_of}#{started_at}#{job_id}"


def save(kind: str, as_of: str, started_at: str, job_id: str, body: dict) -> None:
    ReportRecord(kind, report_key(as_of, started_at, job_id), job_id=job_id, body=body).save()


def latest(kind: str) -> Optional[dict]:
    for rec in ReportRecord.query(kind, scan_index_forward=False, limit=1, consistent_read=True):
        return dict(rec.body)
    return None
