"""The README's tour runs by copy and paste (issue 15): every `sh` block of its example
sections, in order, in one bash session against the real local server, as a newcomer would
paste them. No answer is a 5xx, every block exits 0 (pipefail: a `jq` that cannot parse
fails it), and the values the text promises are the ones that come back."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]

# README sections whose blocks are run, in this order (each up to the next "## " heading).
SECTIONS = ("## A tour of the API", "## Trying a rule change before saving it", "## Migrating members from a CSV")


def blocks_of(readme: str, heading: str) -> list[str]:
    start = readme.index(heading)
    nxt = readme.find("\n## ", start + len(heading))
    part = readme[start:nxt if nxt != -1 else None]
    return re.findall(r"```sh\n(.*?)```", part, re.S)


def run_blocks(live_server, blocks: list[str]) -> tuple[str, str, list[int]]:
    """Run README blocks in one bash session against the live server, as pasted: the
    README's ports become the server's, `.venv/bin/python` this interpreter. Returns stdout,
    stderr and the HTTP status of every curl (each reports it on stderr, whatever its
    block does with stdout). Fails when a block fails (pipefail)."""
    port = live_server["base"].rsplit(":", 1)[1]
    emulator_port = live_server["emulator"].rsplit(":", 1)[1]
    script = ["set -euo pipefail", "curl() { command curl -w '%{stderr}HTTP %{http_code}\\n' \"$@\"; }"]
    for n, block in enumerate(blocks):
        script += [f"echo '--- block {n}'", block.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
                   .replace("127.0.0.1:4566", f"127.0.0.1:{emulator_port}").replace(".venv/bin/python", sys.executable)]
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "LOYALTY_JWT_SECRET")}
    env.update(LOYALTY_STAGE="local", LOYALTY_EMULATOR_PORT=emulator_port)
    run = subprocess.run(["bash", "-c", "\n".join(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    out, err = run.stdout, run.stderr
    assert run.returncode == 0, f"exit {run.returncode}\n--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}"
    return out, err, [int(s) for s in re.findall(r"^HTTP (\d{3})$", err, re.M)]


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="the tour needs curl and jq")
def test_the_readme_tour_runs_by_copy_and_paste(fresh_server, admin_token):
    readme = (ROOT / "README.md").read_text()
    out, err, statuses = run_blocks(fresh_server, [b for heading in SECTIONS for b in blocks_of(readme, heading)])
    assert len(statuses) >= 25 and not [s for s in statuses if s >= 500], statuses
    # what the tour's text promises
    assert '"points_earned": 128' in out  # ¥12,800 at 1 point per ¥100
    assert "replay: 200" in out
    assert re.search(r"^voucher: [A-Z0-9-]{8,}$", out, re.M), out
    assert '"status": "used"' in out
    assert '"status":"succeeded"' in out  # the job ran
    assert '"code":"VALIDATION_ERROR"' in out and '"code":"NOT_FOUND"' in out and '"code":"METHOD_NOT_ALLOWED"' in out
    assert "email spring_news -> m-1001 Hanako" in out  # the consumer read the campaign's message
    assert "null" not in re.findall(r"^voucher: (.*)$", out, re.M)
    # the simulator's totals (the tour's orders, under today's settings and the candidate)
    totals = re.search(r'"totals": \{\s*"current": (\d+),\s*"candidate": (\d+)', out)
    assert totals and int(totals.group(1)) > 0, out[-2000:]
    # the migration: the import was accepted and reports its counts and the bad row
    assert '"import_id": "migration-1"' in out and '"job_id"' in out
    assert re.search(r'"status": "(queued|running|succeeded)"', out)
    deadline, body = time.monotonic() + 60, {}
    while time.monotonic() < deadline and body.get("status") not in ("succeeded", "failed"):
        time.sleep(0.2)
        body = requests.get(fresh_server["base"] + "/v1/admin/imports/migration-1",
                            headers={"Authorization": f"Bearer {admin_token}"}, timeout=10).json()
    assert body["status"] == "succeeded", body
    assert body["counts"] == {"rows": 4, "imported": 3, "skipped": 0, "failed": 1}, body  # 11-31 is no birthday
    assert [e["row"] for e in body["errors"]] == [3], body
