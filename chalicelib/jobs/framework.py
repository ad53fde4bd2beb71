"""The job framework.

A job is a function `run(ctx: JobContext)`. Most jobs walk a table with
`ctx.scan(source, handle)` (a source from `store/scans.py`, or any object with a model's
`scan`): a parallel scan split into `ctx.segments` segments,
each checkpointing its LastEvaluatedKey and counts in the jobs table after every
page. A crashed or timed-out run started again with the same `job_id` resumes
from the checkpoints; every per-item handler is itself idempotent (conditional
writes), so a re-run changes nothing twice.

Where it runs:
- CLI (`python -m chalicelib.cli job NAME --as-of D`) and tests: in-process, all
  segments in turn, with a progress bar.
- Admin API: in the local stage in a background thread (the response waits up
  to a few seconds, so small jobs answer `succeeded`); elsewhere it sends one
  message per segment to the jobs queue, and the worker function runs them.
- Schedules: the same `start()` with `as_of` = the scheduled time.
"""
from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Optional

from chalicelib import clock
from chalicelib.config import get_settings
from chalicelib.errors import NotFound, RetryLater, ValidationFailed
from chalicelib.jobs import registry
from chalicelib.messaging import sqs_client
from chalicelib.store import jobs as job_store
from chalicelib.store.base import Conflict, is_transient

log = logging.getLogger("loyalty.jobs")

DEFAULT_SEGMENTS = 4  # locally; deployed stages set LOYALTY_JOB_SEGMENTS (docs/JOBS.md)
PAGE_SIZE = 500  # records per scanned page: the unit of a checkpoint


@dataclass
class JobDef:
    name: str
    run: Callable[["JobContext"], None]
    description: str = ""
    default_segments: int = DEFAULT_SEGMENTS
    fanout: bool = True  # single-phase scans: one worker invocation per segment in AWS


_JOBS: dict[str, JobDef] = {}


def register(name: str, description: str = "", segments: int = DEFAULT_SEGMENTS, fanout: bool = True):
    def deco(fn: Callable[["JobContext"], None]):
        _JOBS[name] = JobDef(name, fn, description or (fn.__doc__ or "").strip().split("\n")[0], segments, fanout)
        return fn

    return deco


def jobs() -> dict[str, JobDef]:
    registry.load()
    return _JOBS


# --- job records ------------------------------------------------------------------
# A job record is written whole but only conditionally on the version read, so concurrent
# segment workers never overwrite each other's news (a late "running" over "succeeded").

MAX_ERRORS = 20  # per job record: the first errors of records a job could not handle


class Paused(Exception):
    """A segment stopped before the invocation's deadline; its checkpoint is stored and it
    continues in a new invocation (a new jobs-queue message)."""


def _update(job_id: str, change: Callable[[dict], Optional[dict]]) -> dict:
    return job_store.update(job_id, change)


def get_job(job_id: str) -> dict:
    data = job_store.get(job_id)
    if data is None:
        raise NotFound(job_id=job_id)
    return {k: data.get(k) for k in ("job_id", "job", "status", "as_of", "counts", "started_at",
                                      "finished_at", "error", "params", "errors")}


_load_checkpoint = job_store.load_checkpoint
_store_checkpoint = job_store.store_checkpoint


# --- the context a job runs with --------------------------------------------------

@dataclass
class JobContext:
    job_id: str
    name: str
    as_of: datetime
    segments: int = DEFAULT_SEGMENTS
    only_segment: Optional[int] = None  # a worker invocation runs one segment
    params: dict = field(default_factory=dict)
    progress: Optional[Callable[[int], None]] = None
    counts: Counter = field(default_factory=Counter)
    page_size: int = field(default_factory=lambda: PAGE_SIZE)
    deadline: Optional[float] = None  # time.monotonic() by which a segment must pause (Lambda)
    errors: list = field(default_factory=list)

    def record_failed(self, record, exc: BaseException) -> None:
        """One record the handler could not deal with: counted and reported, the job goes on."""
        key = getattr(record, getattr(type(record), "_hash_keyname", "") or "", None)
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"key": str(key), "error": type(exc).__name__, "message": str(exc)[:200]})
        log.warning("job %s: record %s failed: %r", self.job_id, key, exc)  # the key only: no personal data

    def scan(self, model, handle: Callable[[Any], Optional[dict]], phase: str = "main",
             filter_condition=None, on_page_end: Optional[Callable[[], Optional[dict]]] = None) -> None:
        """Parallel-scan `model` (a source, `store/scans.py`); `handle(record)` returns count
        increments (or None).

        Checkpoints after every page, so a restart resumes where this left off.
        `on_page_end()` runs before each checkpoint (e.g. to send what the page buffered).
        """
        seg_range = [self.only_segment] if self.only_segment is not None else range(self.segments)
        for segment in seg_range:
            cp = _load_checkpoint(self.job_id, phase, segment)
            if cp.get("done"):
                self.counts.update(cp.get("counts") or {})
                continue
            seg_counts: Counter = Counter(cp.get("counts") or {})
            last_key = cp.get("last_key")
            while True:
                result = model.scan(filter_condition, segment=segment, total_segments=self.segments,
                                    limit=self.page_size, last_evaluated_key=last_key, consistent_read=True)
                scanned = 0
                try:
                    for record in result:
                        try:
                            inc = handle(record)
                        except Exception as exc:  # noqa: BLE001 - one bad record never stops the job
                            if _transient(exc):
                                raise  # the store is busy: the page is scanned again on resume
                            self.record_failed(record, exc)
                            seg_counts["failed"] += 1
                            inc = None
                        if inc:
                            seg_counts.update(inc)
                        scanned += 1
                        if self.progress:
                            self.progress(1)
                    if on_page_end:
                        seg_counts.update(on_page_end() or {})
                except Exception:
                    # Keep the effects counted so far; the page is scanned again on resume and
                    # the idempotent handlers find nothing left to do for the items already done.
                    _store_checkpoint(self.job_id, phase, segment,
                                      {"done": False, "last_key": last_key, "counts": dict(seg_counts)})
                    raise
                seg_counts["scanned"] += scanned
                last_key = result.last_evaluated_key
                _store_checkpoint(self.job_id, phase, segment,
                                  {"done": last_key is None, "last_key": last_key, "counts": dict(seg_counts)})
                if last_key is None:
                    break
                if self.deadline is not None and time.monotonic() > self.deadline:
                    raise Paused(f"segment {segment} paused after a page; resumes from its checkpoint")
            self.counts.update(seg_counts)


def new_job_id(name: str) -> str:
    return f"{name}-{secrets.token_hex(6)}"


def parse_as_of(value: Optional[str]) -> datetime:
    now = clock.now()
    if not value:
        return now
    try:
        as_of = clock.parse_instant(value)
    except ValueError:
        raise ValidationFailed("as_of must be an ISO-8601 UTC timestamp or a date",
                               fields=[{"field": "as_of", "message": "invalid timestamp"}])
    if not get_settings().is_local and as_of > now:
        raise ValidationFailed("as_of may not be in the future", fields=[{"field": "as_of", "message": "future"}])
    return as_of


def create(name: str, as_of: datetime, actor: str, params: Optional[dict] = None,
           segments: Optional[int] = None, job_id: Optional[str] = None) -> dict:
    if name not in jobs():
        raise ValidationFailed(f"unknown job {name!r}", fields=[{"field": "job", "message": "unknown job"}])
    job_id = job_id or new_job_id(name)
    data = {"job_id": job_id, "job": name, "status": "queued", "as_of": clock.iso(as_of), "counts": {},
            "started_at": None, "finished_at": None, "error": None, "errors": [], "actor": actor,
            "params": params or {},
            "segments": segments or get_settings().job_segments or jobs()[name].default_segments}
    job_store.create(job_id, data)
    return data


def execute(job_id: str, only_segment: Optional[int] = None, progress=None,
            deadline: Optional[float] = None) -> dict:
    """Run (or resume) a job in this process. Returns the job record. Raises Paused when a
    segment reached `deadline` (its checkpoint is stored: run it again to continue)."""
    first = job_store.get(job_id)
    if first is None:
        raise NotFound(job_id=job_id)
    if first["status"] == "succeeded":
        return first
    job = jobs()[first["job"]]
    as_of = clock.parse_instant(first["as_of"])

    def running(data: dict) -> Optional[dict]:
        if data["status"] not in ("queued", "failed"):  # a failed job run again resumes
            return None  # running already (another segment), or finished meanwhile
        return {**data, "status": "running", "started_at": data.get("started_at") or clock.iso(clock.now())}

    data = _update(job_id, running)
    if data["status"] == "succeeded":
        return data
    ctx = JobContext(job_id, job.name, as_of, int(data.get("segments") or job.default_segments),
                     only_segment, dict(data.get("params") or {}), progress, deadline=deadline)
    try:
        with clock.pinned(as_of):
            job.run(ctx)
    except Paused:
        _merge_errors(job_id, ctx)
        raise
    except Exception as exc:
        log.exception("job %s failed", job_id)
        reason = f"{type(exc).__name__}: {exc}"[:500]
        _update(job_id, lambda d: {**d, "status": "failed", "error": reason, "counts": dict(ctx.counts),
                                   "errors": (d.get("errors") or []) + ctx.errors[:MAX_ERRORS],
                                   "finished_at": clock.iso(clock.now())})
        raise
    if only_segment is not None:
        _merge_errors(job_id, ctx)
        return _finish_if_complete(job_id)

    def succeeded(d: dict) -> dict:
        return {**d, "status": "succeeded", "counts": dict(ctx.counts), "finished_at": clock.iso(clock.now()),
                "error": None, "errors": ctx.errors[:MAX_ERRORS]}

    return _update(job_id, succeeded)


def _merge_errors(job_id: str, ctx: JobContext) -> None:
    if ctx.errors:
        _update(job_id, lambda d: {**d, "errors": ((d.get("errors") or []) + ctx.errors)[:MAX_ERRORS]})


def _finish_if_complete(job_id: str) -> dict:
    """After one fanned-out segment: the job succeeds when every segment's checkpoint is done."""

    def finish(data: dict) -> Optional[dict]:
        if data["status"] != "running":
            return None
        total: Counter = Counter()
        for segment in range(int(data["segments"])):
            cp = _load_checkpoint(job_id, "main", segment)
            if not cp.get("done"):
                return None
            total.update(cp.get("counts") or {})
        return {**data, "status": "succeeded", "counts": dict(total), "finished_at": clock.iso(clock.now()),
                "error": None}

    return _update(job_id, finish)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, (RetryLater, Conflict)) or is_transient(exc)


def start(name: str, as_of: datetime, actor: str, params: Optional[dict] = None, wait_seconds: float = 20.0) -> dict:
    """Create a job and run it: in a thread locally (waiting briefly), via the jobs queue in AWS."""
    data = create(name, as_of, actor, params)
    if get_settings().is_local:
        done = threading.Event()

        def target():
            try:
                execute(data["job_id"])
            except Exception:  # noqa: BLE001 - recorded as failed on the job
                pass
            finally:
                done.set()

        threading.Thread(target=target, daemon=True).start()
        done.wait(wait_seconds)
    else:
        enqueue(data["job_id"])
    return get_job(data["job_id"])


def enqueue(job_id: str) -> None:
    """AWS: one jobs-queue message per segment (or one for multi-phase jobs); the worker
    function runs each, so a 10M-member scan spreads over many 15-minute Lambdas."""
    data = job_store.get(job_id)
    job = jobs()[data["job"]]
    bodies = ([{"job_id": job_id, "segment": s} for s in range(int(data["segments"]))]
              if job.fanout else [{"job_id": job_id}])
    _send_job_messages(bodies)


WORKER_MARGIN_SECONDS = 60  # a segment pauses this long before the invocation's end


def handle_worker_message(body: str, remaining_ms: Optional[int] = None) -> None:
    """The jobs-queue worker: run or resume a job's segment (idempotent on redelivery).
    A segment that would outlive the invocation pauses at a page boundary and sends itself
    again as a new message, so no segment is redelivered while it runs nor dead-lettered
    for needing several invocations."""
    message = json.loads(body)
    deadline = None
    if remaining_ms is not None:
        deadline = time.monotonic() + max(0.0, remaining_ms / 1000 - WORKER_MARGIN_SECONDS)
    try:
        execute(message["job_id"], only_segment=message.get("segment"), deadline=deadline)
    except Paused:
        _send_job_messages([message])


def _send_job_messages(bodies: list) -> None:
    client = sqs_client()
    url = client.get_queue_url(QueueName=get_settings().resource_name("jobs"))["QueueUrl"]
    for i in range(0, len(bodies), 10):
        entries = [{"Id": str(n), "MessageBody": json.dumps(b)} for n, b in enumerate(bodies[i:i + 10])]
        resp = client.send_message_batch(QueueUrl=url, Entries=entries)
        if resp.get("Failed"):
            raise RuntimeError(f"could not enqueue {len(resp['Failed'])} job segments")
