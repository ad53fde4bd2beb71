"""Entry point of the scheduled functions: the same job code as the API and the CLI."""
from __future__ import annotations

from typing import Optional

from chalicelib import clock
from chalicelib.jobs import framework


def run_scheduled(job: str, event_time: Optional[str]) -> dict:
    as_of = clock.parse_instant(event_time) if event_time else clock.now()
    return framework.start(job, as_of, actor=f"schedule:{job}")
