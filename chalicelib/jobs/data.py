"""The `export` and `import` jobs (SPEC 2.17). Each is one stream (one S3 object written or
read in order), so it runs in one worker invocation at a time (`fanout=False`); a run
that reaches the invocation's deadline pauses at a checkpoint and continues in the next."""
from __future__ import annotations

import threading
from typing import Optional

from chalicelib import clock
from chalicelib.config import get_settings
from chalicelib.jobs import framework
from chalicelib.jobs.framework import JobContext, Paused, register
from chalicelib.services import exports, imports
from chalicelib.store import data as data_store


def create(name: str, job_id: str, actor: str, params: dict) -> bool:
    """The job record of an export or import, created only if new (False: it exists)."""
    data = {"job_id": job_id, "job": name, "status": "queued", "as_of": clock.iso(clock.now()), "counts": {},
            "started_at": None, "finished_at": None, "error": None, "errors": [], "actor": actor,
            "params": params, "segments": 1}
    return data_store.create_job(job_id, data)


def launch(job_id: str, wait_seconds: float = 20.0) -> None:
    """Run the job: locally in a thread (waiting up to `wait_seconds`, so a small one has
    finished when the request answers), in AWS through the jobs queue."""
    if not get_settings().is_local:
        framework.enqueue(job_id)
        return
    done = threading.Event()

    def target() -> None:
        try:
            framework.execute(job_id)
        except Exception:  # noqa: BLE001 - recorded on the job
            pass
        finally:
            done.set()

    threading.Thread(target=target, daemon=True, name=f"job-{job_id}").start()
    done.wait(wait_seconds)


@register("export", fanout=False, segments=1)
def export(ctx: JobContext) -> None:
    """Write an export's rows to its S3 object (gzip JSON Lines, multipart, resumable)."""
    try:
        progress = exports.run(ctx.job_id, ctx.params, deadline=ctx.deadline, progress_cb=ctx.progress)
    except exports.Paused as exc:
        raise Paused(str(exc))
    ctx.counts.update({"rows": progress["rows"], "parts": len(progress.get("parts") or [])})


@register("import", fanout=False, segments=1)
def import_(ctx: JobContext) -> None:
    """Enrol an import's rows (inline or a JSON Lines / CSV object), resumable per batch."""
    actor: Optional[str] = (data_store.get_job(ctx.job_id) or {}).get("actor")
    try:
        progress = imports.run(ctx.job_id, ctx.params, actor or "system", deadline=ctx.deadline,
                               progress_cb=ctx.progress)
    except imports.Paused as exc:
        raise Paused(str(exc))
    ctx.counts.update(progress["counts"])
