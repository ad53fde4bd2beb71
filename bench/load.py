"""`load`: `make load`'s bounded mixed load on the real local server (`make run`'s
`python -m chalicelib.local run`), loopback only, on free ports of its own.

It runs `tests/load/run_load.py` in a child process (the load test sets its own
environment: its server and emulator, never port 8000): client threads mix enrolled
members' accruals (and replays), refunds, activities, redemptions, member and ledger
reads for a fixed time, in rounds that alternate with a floor: the same clients and
connections calling `GET /v1/health` on the same server (routing, the local server's
HTTP handling and the JSON response, no token check and no store). Afterwards the load
test checks every member in the emulator: Σ ledger = available + pending + held and the
lots add up to available. Reported: requests/s (median of the rounds), p50/p99 latency
over every request, the 5xx count (503 RETRY_LATER included) and the invariant check.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from statistics import median

from bench.common import ROOT, entry, rnd


def run(clients: int = 8, seconds: float = 24, rounds: int = 4, floor_seconds: float = 8, members: int = 50) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "PORT", "LOYALTY_EMULATOR_PORT")}
    env["PYTHONPATH"] = ROOT
    out = subprocess.run([sys.executable, "-m", "tests.load.run_load", "--clients", str(clients),
                          "--seconds", str(seconds), "--rounds", str(rounds), "--floor-seconds", str(floor_seconds),
                          "--members", str(members)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + floor_seconds + 240)
    text = out.stdout
    try:
        return json.loads(text[text.index("{"):])
    except ValueError:
        raise RuntimeError(f"the load test printed no report (exit {out.returncode}): {out.stderr[-2000:]}") from None


def measure(clients: int = 8, seconds: float = 24, rounds: int = 4, floor_seconds: float = 8) -> dict:
    report = run(clients, seconds, rounds, floor_seconds)
    fivexx = sum(n for code, n in report["status_counts"].items() if int(code) >= 500)
    rps = median(report["rounds_requests_per_second"])
    floor = report["floor"]
    floor_rps = median(floor["rounds_requests_per_second"])
    lat = report["latency_all_ms"]
    value = {"requests_per_second": rnd(rps, 1), "p50_ms": lat["p50"], "p99_ms": lat["p99"],
             "5xx": fivexx, "invariant_broken": len(report["invariant_broken"]),
             "members_checked": report["members_checked"]}
    fl = {"requests_per_second": rnd(floor_rps, 1), "p50_ms": floor["latency_all_ms"]["p50"],
          "p99_ms": floor["latency_all_ms"]["p99"], "route": floor["route"]}
    return entry(value, fl, rnd(rps / floor_rps), "0 5xx, invariant intact", "requests/s, ms",
                 clients=clients, seconds=report["seconds"], rounds=rounds, requests=report["requests"],
                 status_counts=report["status_counts"], errors=report["errors"],
                 latency_by_op_ms=report["latency_ms"], invariant_broken=report["invariant_broken"],
                 rounds_requests_per_second=report["rounds_requests_per_second"],
                 floor_rounds_requests_per_second=floor["rounds_requests_per_second"])


def met(e: dict) -> bool:
    return e["value"]["5xx"] == 0 and e["value"]["invariant_broken"] == 0
