"""Run a job from the CLI in-process, with a progress bar."""
from __future__ import annotations

import json
from typing import Optional

from chalicelib.jobs import framework


def run_job_cli(name: str, as_of: Optional[str], segments: int = 4, job_id: Optional[str] = None) -> int:
    from tqdm import tqdm

    when = framework.parse_as_of(as_of)
    if job_id:
        data = framework.get_job(job_id)
    else:
        data = framework.create(name, when, actor="cli", segments=segments)
    with tqdm(desc=f"{name} {data['as_of']}", unit="item") as bar:
        result = framework.execute(data["job_id"], progress=bar.update)
    print(json.dumps(framework.get_job(result["job_id"])))
    return 0 if result["status"] == "succeeded" else 1
