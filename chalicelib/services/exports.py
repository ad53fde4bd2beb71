"""Exports (SPEC 2.17): the ledger for a period, the members, a coupon campaign's codes,
as gzip JSON Lines in ONE object of the exports bucket, with a pre-signed URL once done.

- Idempotent per `export_id`: the export *is* the job `export-{export_id}`, created
  conditionally on being new (the same body again answers 200; another body is
  IDEMPOTENCY_MISMATCH).
- Streamed, memory flat whatever the size: rows are compressed as they are read, and each
  time the compressed buffer reaches `part_bytes()` (at a scan page's end) it is uploaded as
  the next part of one S3 multipart upload. Each part is a complete gzip member; their
  concatenation is one valid gzip file (RFC 1952), so no compressor state has to survive a
  part.
- Resumable: after every part the checkpoint stores the upload id, the parts so far, the
  scan position where the next part starts and the rows written. A paused or crashed run
  continues from there (the scan pages after the last part are read again).
- Closed members carry no personal data: their ledger entries lose the free-text `note`
  and say `member_status: "closed"`; a closed member's row has its profile erased already
  (SPEC 2.2) and is written with every personal field null.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import time
from datetime import datetime
from typing import Callable, Iterator, Optional

from chalicelib import clock
from chalicelib.clients import s3_client
from chalicelib.config import get_settings
from chalicelib.domain.hashing import canonical_hash
from chalicelib.errors import CouponNotFound, IdempotencyMismatch, NotFound
from chalicelib.jobs import data as data_jobs
from chalicelib.services import audit, coupons, members
from chalicelib.store import data as data_store

PAGE = 500  # records per scan page
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last
URL_SECONDS = 3600  # a pre-signed URL's lifetime
PERSONAL_FIELDS = ("name", "email", "birthday", "referral_code", "referred_by")


def part_bytes() -> int:
    """Compressed bytes per uploaded part (LOYALTY_EXPORT_PART_BYTES; S3 needs ≥ 5 MiB)."""
    raw = os.environ.get("LOYALTY_EXPORT_PART_BYTES", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else 8 * 1024 * 1024


class Paused(Exception):
    pass


# --- the request ------------------------------------------------------------------------

def submit(body, actor: str) -> tuple[int, dict]:
    payload = body.model_dump(mode="json", by_alias=True, exclude_none=True)
    request_hash = canonical_hash(payload)
    job_id = data_store.export_job_id(body.export_id)
    answer = {"export_id": body.export_id, "job_id": job_id}
    existing = data_store.get_job(job_id)
    if existing is None:
        if body.kind == "coupon_codes":
            try:
                coupons.require(body.campaign_id)
            except (CouponNotFound, NotFound):
                raise CouponNotFound(f"no coupon campaign {body.campaign_id!r}", campaign_id=body.campaign_id)
        params = {**payload, "request_hash": request_hash, "key": data_store.export_key(body.kind, body.export_id)}
        if data_jobs.create("export", job_id, actor, params):
            audit.record(actor, "export.start", target=body.export_id, details={"kind": body.kind, "job_id": job_id})
            data_jobs.launch(job_id)
            return 202, answer
        existing = data_store.get_job(job_id) or {}
    if (existing.get("params") or {}).get("request_hash") != request_hash:
        raise IdempotencyMismatch(export_id=body.export_id)
    if existing.get("status") == "failed":
        data_jobs.launch(job_id)  # asked again after a failure: the job resumes
    return 200, answer


def status(export_id: str) -> dict:
    job_id = data_store.export_job_id(export_id)
    job = data_store.get_job(job_id)
    if job is None:
        raise NotFound(f"no export {export_id!r}", export_id=export_id)
    params = job.get("params") or {}
    progress = data_store.load_progress(job_id, data_store.EXPORT_PHASE)
    url = None
    if job["status"] == "succeeded":
        url = download_url(params["key"])
    return {"export_id": export_id, "kind": params.get("kind"), "status": job["status"],
            "rows": int((job.get("counts") or {}).get("rows", progress.get("rows") or 0)), "url": url,
            "job_id": job_id, "error": job.get("error")}


def download_url(key: str) -> str:
    return s3_client().generate_presigned_url(
        "get_object", Params={"Bucket": get_settings().exports_bucket, "Key": key}, ExpiresIn=URL_SECONDS)


# --- rows ---------------------------------------------------------------------------

def _in_range(at: Optional[str], start: Optional[datetime], end: Optional[datetime]) -> bool:
    if start is None and end is None:
        return True
    if not at:
        return False
    t = clock.parse_instant(at)
    return (start is None or t >= start) and (end is None or t < end)


class _Statuses:
    """Member statuses for the ledger entries of a page (one BatchGetItem per page), kept
    for a bounded number of members (scans return a member's entries together)."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self.known: dict[str, str] = {}

    def closed(self, entries: list) -> set:
        missing = {e["member_id"] for e in entries} - set(self.known)
        if missing:
            if len(self.known) > self.LIMIT:
                self.known.clear()
            found = data_store.member_statuses(missing)
            self.known.update({m: found.get(m, "closed") for m in missing})  # gone: nothing personal either
        return {e["member_id"] for e in entries if self.known.get(e["member_id"]) == "closed"}


def ledger_row(entry: dict, closed: bool) -> dict:
    if not closed:
        return entry
    return {**entry, "note": None, "member_status": "closed"}


def member_row(row, now) -> dict:
    view = members.view(row, now)
    view.pop("segment", None)
    if row.status == "closed":
        view.update({k: None for k in PERSONAL_FIELDS})
        view["consents"] = dict(members.DEFAULT_CONSENTS)
        view["locale"] = None
    return view


def _pages(params: dict, last_key: Optional[dict], page: int) -> Iterator[tuple[list, Optional[dict]]]:
    """(rows, scan position after them) per scan page, from `last_key` on."""
    kind = params["kind"]
    start = clock.parse_instant(params["from"]) if params.get("from") else None
    end = clock.parse_instant(params["to"]) if params.get("to") else None
    statuses = _Statuses()
    now = clock.now()
    while True:
        if kind == "ledger":
            entries, last_key = data_store.ledger_page(last_key, page)
            entries = [e for e in entries if _in_range(e.get("occurred_at"), start, end)]
            closed = statuses.closed(entries) if entries else set()
            rows = [ledger_row(e, e["member_id"] in closed) for e in entries]
        elif kind == "members":
            found, last_key = data_store.members_page(last_key, page)
            rows = [member_row(r, now) for r in found if _in_range(r.profile.get("enrolled_at"), start, end)]
        else:
            rows, last_key = data_store.codes_page(params["campaign_id"], last_key, page)
        yield rows, last_key
        if last_key is None:
            return


# --- the multipart writer ------------------------------------------------------------

class PartWriter:
    """Compresses rows into the current part; uploads it when asked. `peak` is the largest
    part buffer held (what memory the export needs beyond one scan page)."""

    def __init__(self, bucket: str, key: str, upload_id: str, parts: list) -> None:
        self.s3 = s3_client()
        self.bucket, self.key, self.upload_id = bucket, key, upload_id
        self.parts = list(parts)
        self.peak = 0
        self._new()

    def _new(self) -> None:
        self.buffer = io.BytesIO()
        self.gz = gzip.GzipFile(fileobj=self.buffer, mode="wb", compresslevel=6, mtime=0)
        self.pending_rows = 0

    def write(self, row: dict) -> None:
        self.gz.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False, default=str).encode() + b"\n")
        self.pending_rows += 1

    @property
    def size(self) -> int:
        return self.buffer.tell()

    def upload(self) -> None:
        """Close the current gzip member and upload it as the next part."""
        self.gz.close()
        body = self.buffer.getvalue()
        self.peak = max(self.peak, len(body))
        number = len(self.parts) + 1
        etag = self.s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number,
                                   Body=body)["ETag"]
        self.parts.append({"PartNumber": number, "ETag": etag})
        self._new()

    def complete(self) -> None:
        if self.pending_rows or not self.parts:
            self.upload()  # the last part (any size), or one empty gzip member for no rows
        self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                          MultipartUpload={"Parts": self.parts})


def run(job_id: str, params: dict, deadline: Optional[float] = None,
        progress_cb: Optional[Callable[[int], None]] = None, page: Optional[int] = None) -> dict:
    """Write (or go on writing) the export; returns its final progress. Raises Paused when
    `deadline` (time.monotonic()) passed after a part."""
    progress = data_store.load_progress(job_id, data_store.EXPORT_PHASE)
    if progress.get("done"):
        return progress
    bucket = get_settings().exports_bucket
    key = params["key"]
    if not progress.get("upload_id"):
        upload = s3_client().create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/gzip",
                                                     ServerSideEncryption="AES256")
        progress = {"done": False, "upload_id": upload["UploadId"], "parts": [], "last_key": None, "rows": 0,
                    "started": True}
        data_store.store_progress(job_id, data_store.EXPORT_PHASE, progress)
    writer = PartWriter(bucket, key, progress["upload_id"], progress["parts"])
    limit = part_bytes()
    rows_total = int(progress["rows"])
    pending = 0
    for rows, after in _pages(params, progress.get("last_key"), page or PAGE):
        for row in rows:
            writer.write(row)
        pending += len(rows)
        if progress_cb and rows:
            progress_cb(len(rows))
        if after is not None and writer.size >= limit:
            writer.upload()
            rows_total += pending
            pending = 0
            progress.update(parts=writer.parts, last_key=after, rows=rows_total)
            progress["peak_part_bytes"] = max(int(progress.get("peak_part_bytes") or 0), writer.peak)
            data_store.store_progress(job_id, data_store.EXPORT_PHASE, progress)
            if deadline is not None and time.monotonic() > deadline:
                raise Paused(f"export paused after part {len(writer.parts)}; it resumes there")
    writer.complete()
    progress.update(done=True, parts=writer.parts, last_key=None, rows=rows_total + pending)
    progress["peak_part_bytes"] = max(int(progress.get("peak_part_bytes") or 0), writer.peak)
    data_store.store_progress(job_id, data_store.EXPORT_PHASE, progress)
    return progress
