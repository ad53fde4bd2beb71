"""Migration imports (SPEC 2.17): members with their balances, tiers and retention from
another platform, inline (≤ 1,000 rows) or from a JSON Lines / CSV object in the exports
bucket (any size, streamed).

- The request is idempotent per `import_id`: the import *is* the job
  `import-{import_id}`, created conditionally on being new (the same body again answers
  200 with the same job; another body is IDEMPOTENCY_MISMATCH). A replay of a failed
  import starts its job again, which resumes.
- The job reads the rows in batches. After each batch it checkpoints where the next one
  starts (row number and the S3 byte offset), the counts and the first 1,000 errors;
  a paused or crashed run resumes there. A batch's rows are enrolled concurrently.
- Each row is one unit of work: the member (conditional on being new; the anchor), one
  `import` ledger entry per balance lot, the referral-code lookup, and the events
  `member.enrolled` and `points.imported` (one per entry) in the outbox. The member
  remembers the import and row that created it, so a batch run again after a crash
  recognises its own members (counted `imported`, nothing written), while a member from
  anywhere else is `skipped` with ALREADY_EXISTS.
- Where rows come from, and how the position of a resume is kept: `import_sources.py`.
- A row that cannot be imported (not JSON, a CSV row of the wrong width, a field that
  fails validation, an unknown tier) is `failed` with its row number, a code and a message;
  the rest go on.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from pydantic import ValidationError

from chalicelib import clock
from chalicelib.clients import s3_client
from chalicelib.config import get_settings
from chalicelib.domain import codes, events
from chalicelib.domain.hashing import canonical_hash
from chalicelib.domain.member import Member
from chalicelib.domain.months import add_months, month_end, month_of
from chalicelib.domain.tiers import TierState
from chalicelib.errors import IdempotencyMismatch, NotFound, RetryLater
from chalicelib.jobs import data as data_jobs
from chalicelib.schemas import data
from chalicelib.services import audit, members, program
from chalicelib.services.import_sources import BadHeader, Position, RowError, source
from chalicelib.services.uow import UnitOfWork
from chalicelib.store import data as data_store
from chalicelib.store import members as store
from chalicelib.store import tx
from chalicelib.store.base import Conflict, is_transient

BATCH = 200  # rows per checkpoint
WORKERS = 8  # a batch's rows are enrolled by this many threads


def _schemas():
    return data


# --- the request ------------------------------------------------------------------------

def submit(body, actor: str) -> tuple[int, dict]:
    payload = body.model_dump(mode="json", exclude_none=True)
    request_hash = canonical_hash(payload)
    job_id = data_store.import_job_id(body.import_id)
    answer = {"import_id": body.import_id, "job_id": job_id}
    params = {"import_id": body.import_id, "request_hash": request_hash}
    if body.s3_key is not None:
        _require_object(body.s3_key)
        params["s3_key"] = body.s3_key
    else:
        params["rows_key"] = data_store.save_rows(job_id, request_hash, body.rows)
        params["row_count"] = len(body.rows)
    if not data_jobs.create("import", job_id, actor, params):
        existing = data_store.get_job(job_id) or {}
        if (existing.get("params") or {}).get("request_hash") != request_hash:
            raise IdempotencyMismatch(import_id=body.import_id)
        if existing.get("status") == "failed":
            data_jobs.launch(job_id)  # a failed import, asked again: its job resumes
        return 200, answer
    audit.record(actor, "import.start", target=body.import_id,
                 details={"source": "s3" if body.s3_key else "inline", "job_id": job_id})
    data_jobs.launch(job_id)
    return 202, answer


def _require_object(key: str) -> None:
    from botocore.exceptions import ClientError

    try:
        s3_client().head_object(Bucket=get_settings().exports_bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise NotFound(f"no object {key!r} in the exports bucket", s3_key=key)
        raise


def status(import_id: str) -> dict:
    job_id = data_store.import_job_id(import_id)
    job = data_store.get_job(job_id)
    if job is None:
        raise NotFound(f"no import {import_id!r}", import_id=import_id)
    progress = data_store.load_progress(job_id, data_store.IMPORT_PHASE)
    counts = {"rows": 0, "imported": 0, "skipped": 0, "failed": 0, **(progress.get("counts") or {})}
    return {"import_id": import_id, "job_id": job_id, "status": job["status"], "counts": counts,
            "errors": progress.get("errors") or [], "error": job.get("error")}


# --- one row ------------------------------------------------------------------------

def _first_error(exc: ValidationError) -> str:
    e = exc.errors(include_url=False, include_context=False)[0]
    where = ".".join(str(p) for p in e.get("loc", ()))
    return (f"{where}: {e.get('msg')}" if where else str(e.get("msg")))[:200]


def plan_member(import_id: str, row_no: int, row, now, actor: str) -> tuple[Member, list, list, dict]:
    """Pure enough: the member item, its ledger entries (seq, entry) and its events for one
    valid row. Raises LookupError for an unknown tier."""
    settings = program.settings()
    tiers = program.tiers()
    tier = program.tier_by_id(row.tier_id) if row.tier_id else tiers[0]
    if tier is None:
        raise LookupError(f"tier_id {row.tier_id!r} is not one of the program's tiers")
    retained = row.tier_retained_until
    if retained is None and tier.tier_id != tiers[0].tier_id:
        # held as if reached now: kept for the program's retention (SPEC 2.7)
        retained = month_end(add_months(month_of(now), settings.tier_retention_months))
    profile = {
        "name": row.name, "email": row.email, "birthday": row.birthday, "locale": row.locale or "ja-JP",
        "consents": {**members.DEFAULT_CONSENTS, **(row.consents.model_dump() if row.consents else {})},
        "enrolled_at": clock.iso(now), "referred_by": None, "referral_code": codes.random_code(8),
    }
    member = members.new_member(row.member_id, profile, now)
    member.tier = TierState(tier.tier_id, clock.iso(now), clock.iso(retained))
    member.imported = {"import_id": import_id, "row": row_no}
    wallet = member.wallet
    entries = []
    for seq, lot in enumerate(sorted(row.balances or [], key=lambda lot: lot.earned_at), start=1):
        wallet.earn(lot.points, month_of(lot.earned_at))  # the earning month decides the expiry (2.6)
        entries.append((seq, {
            "entry_id": f"le_{row.member_id}_{seq}", "member_id": row.member_id, "type": "import",
            "points": lot.points, "balance_after": wallet.balance, "occurred_at": clock.iso(lot.earned_at),
            "recorded_at": clock.iso(now), "reference": {"import_id": import_id}, "actor": actor, "note": None}))
    if row.lifetime_earned is not None:
        wallet.lifetime_earned = row.lifetime_earned
    member.seq = len(entries)
    resource = members.view(member, now)
    balance = {"available": wallet.available, "pending": wallet.pending, "held": wallet.held}
    found = [events.envelope("member.enrolled", f"{row.member_id}@0", row.member_id, clock.iso(now), resource)]
    found += [events.for_ledger_entry(e, balance) for _, e in entries]
    return member, entries, events.numbered(found, 0), resource


def import_row(import_id: str, row_no: int, raw, actor: str) -> tuple[str, Optional[str], Optional[str]]:
    """("imported" | "skipped" | "failed", code, message) for one row."""
    if isinstance(raw, RowError):
        return "failed", raw.code, raw.message
    try:
        row = _schemas().ImportRow.model_validate(raw, strict=True)
    except ValidationError as exc:
        return "failed", "VALIDATION_ERROR", _first_error(exc)
    now = clock.now()
    for _ in range(5):
        try:
            member, entries, found, _ = plan_member(import_id, row_no, row, now, actor)
        except LookupError as exc:
            return "failed", "UNKNOWN_TIER", str(exc)[:200]
        uow = UnitOfWork()
        uow.add(store.save_op(member), anchor=store.anchor())
        uow.extend([store.ledger_op(member.member_id, seq, e) for seq, e in entries])
        lookup_at = uow.add(store.referral_op(member.profile["referral_code"], member.member_id))
        uow.publish_events(found)
        try:
            uow.commit()
            return "imported", None, None
        except tx.TxCancelled as cancelled:
            if cancelled.failed(0):
                return _existing(import_id, row_no, row.member_id)
            if not cancelled.failed(lookup_at):
                raise Conflict()
            # a referral code drawn twice: draw another
    raise Conflict()


def _existing(import_id: str, row_no: int, member_id: str) -> tuple[str, Optional[str], Optional[str]]:
    existing = store.get(member_id)
    mark = (existing.imported or {}) if existing else {}
    if mark.get("import_id") == import_id and mark.get("row") == row_no:
        return "imported", None, None  # this row, enrolled by a run of this import that stopped after it
    if mark.get("import_id") == import_id:
        return "skipped", "ALREADY_EXISTS", f"row {mark.get('row')} of this import enrolled {member_id} already"
    return "skipped", "ALREADY_EXISTS", f"member {member_id} exists already"


# --- the job ------------------------------------------------------------------------

class Paused(Exception):
    pass


def run(job_id: str, params: dict, actor: str, deadline: Optional[float] = None, progress_cb=None) -> dict:
    """Import (or go on importing) the rows of `params`; returns the final progress.
    Raises Paused when `deadline` (time.monotonic()) passed after a batch."""
    progress = data_store.load_progress(job_id, data_store.IMPORT_PHASE)
    if progress.get("done"):
        return progress
    progress["counts"] = {"rows": 0, "imported": 0, "skipped": 0, "failed": 0, **(progress.get("counts") or {})}
    progress["errors"] = list(progress.get("errors") or [])
    at = Position(int(progress.get("row") or 1), int(progress.get("offset") or 0))
    import_id = params["import_id"]
    limit = _schemas().MAX_ERRORS
    data_store.warm_tables()
    program.settings(), program.tiers()  # read once here, not by eight threads at once
    try:
        rows = source(params, at, progress)
        batch: list = []
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for number, raw, after in _with_header(rows, progress):
                batch.append((number, raw, after))
                if len(batch) >= BATCH:
                    _run_batch(pool, import_id, actor, batch, progress, limit, progress_cb)
                    batch = []
                    data_store.store_progress(job_id, data_store.IMPORT_PHASE, progress)
                    if deadline is not None and time.monotonic() > deadline:
                        raise Paused(f"import paused at row {progress['row']}; it resumes there")
            if batch:
                _run_batch(pool, import_id, actor, batch, progress, limit, progress_cb)
    except BadHeader as exc:
        progress["header_error"] = str(exc)
        data_store.store_progress(job_id, data_store.IMPORT_PHASE, progress)
        raise
    progress["done"] = True
    data_store.store_progress(job_id, data_store.IMPORT_PHASE, progress)
    return progress


def _with_header(source, progress: dict):
    for number, raw, after in source:
        if number == 0:  # the CSV header: kept for a resume from a later offset
            progress["header"] = raw
            progress["row"], progress["offset"] = after.row, after.offset
            continue
        yield number, raw, after


def _run_batch(pool, import_id: str, actor: str, batch: list, progress: dict, limit: int, progress_cb) -> None:
    now = clock.now()

    def one(item):
        number, raw, _ = item
        with clock.pinned(now):  # the relay follows its mode (production: the outbox stream)
            try:
                return import_row(import_id, number, raw, actor)
            except Exception as exc:  # noqa: BLE001 - decided below
                if isinstance(exc, (Conflict, RetryLater)) or is_transient(exc):
                    raise  # the store is busy: the job stops here and resumes at this batch
                import logging

                logging.getLogger("loyalty.imports").exception("import %s row %s", import_id, number)
                return "failed", "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}"[:200]

    # A member named twice in one batch: the earlier row enrols it, so the repeats run after
    # the batch's first occurrences (which run concurrently).
    seen: set = set()
    first, repeats = [], []
    for i, item in enumerate(batch):
        member_id = item[1].get("member_id") if isinstance(item[1], dict) else None
        (repeats if isinstance(member_id, str) and member_id in seen else first).append(i)
        if isinstance(member_id, str):
            seen.add(member_id)
    outcomes: list = [None] * len(batch)
    for i, outcome in zip(first, pool.map(one, [batch[i] for i in first])):
        outcomes[i] = outcome
    for i in repeats:
        outcomes[i] = one(batch[i])
    counts, errors = progress["counts"], progress["errors"]
    for (number, _, _), (outcome, code, message) in zip(batch, outcomes):
        counts["rows"] += 1
        counts[outcome] += 1
        if code and len(errors) < limit:
            errors.append({"row": number, "code": code, "message": message})
    last = batch[-1][2]
    progress["row"], progress["offset"] = last.row, last.offset
    if progress_cb:
        progress_cb(len(batch))
