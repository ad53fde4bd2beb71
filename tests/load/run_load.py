"""A bounded loopback load test of the real local server (`make load`).

Starts `python -m chalicelib.local run` on free ports, then N client threads mix
enrolments, accruals (with replays), refunds, activities, redemptions, member reads
and ledger reads for a fixed time. Afterwards it checks the ledger invariant of every
member directly in the emulator and prints a JSON report. Exit status 1 on any 5xx or
a broken invariant.

    .venv/bin/python -m tests.load.run_load --clients 16 --seconds 120

`--rounds R --floor-seconds F` (the bench's `load` figure, `bench/load.py`) splits the time
into R rounds alternating with F seconds in all of a floor: the same clients calling
`GET /v1/health`; the report then carries per-round requests/s of both and p50/p95/p99
latency over every request.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, emulator_port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    proc = subprocess.Popen([sys.executable, "-m", "chalicelib.local", "run", "--port", str(port),
                             "--emulator-port", str(emulator_port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def _percentiles(v: list) -> dict:
    """n, p50, p95, p99 of latencies (ms; nearest rank)."""
    s = sorted(v)
    rank = lambda q: s[max(0, math.ceil(len(s) * q) - 1)]  # noqa: E731
    return {"n": len(s), "p50": round(statistics.median(s), 1), "p95": round(rank(0.95), 1),
            "p99": round(rank(0.99), 1)} if s else {"n": 0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--members", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=1, help="split the time into rounds (alternating with the floor)")
    ap.add_argument("--floor-seconds", type=float, default=0,
                    help="time of a floor load in all: the same clients calling GET /v1/health, alternating")
    args = ap.parse_args(argv)
    port, emu = free_port(), free_port()
    os.environ["LOYALTY_STAGE"] = "local"
    proc = start_server(port, emu)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        from chalicelib.auth import mint_token

        svc = {"Authorization": "Bearer " + mint_token("service", "load"), "Content-Type": "application/json"}
        admin = {"Authorization": "Bearer " + mint_token("admin", "load-admin"), "Content-Type": "application/json"}
        requests.post(f"{base}/admin/rewards", headers=admin, json={
            "reward_id": "load-reward", "name": "Load reward", "cost_points": 5, "kind": "voucher", "stock": 200})
        members = [f"load-{i:04d}" for i in range(args.members)]
        for m in members:
            requests.post(f"{base}/members", headers=svc, json={"member_id": m})
        stop = {"at": 0.0}
        rngs = [random.Random(n) for n in range(args.clients)]
        sessions = [requests.Session() for _ in range(args.clients)]
        stats: dict = defaultdict(list)
        statuses: Counter = Counter()
        errors: Counter = Counter()
        lock = threading.Lock()
        orders: dict = defaultdict(list)

        def client(n: int) -> None:
            rng, session = rngs[n], sessions[n]
            while time.time() < stop["at"]:
                m = rng.choice(members)
                op = rng.choices(["accrue", "replay", "refund", "activity", "redeem", "read", "ledger"],
                                 [30, 5, 8, 7, 5, 35, 10])[0]
                t = time.perf_counter()
                if op in ("accrue", "replay"):
                    with lock:
                        known = list(orders[m])
                    if op == "replay" and known:
                        oid, amount = rng.choice(known)
                    else:
                        oid, amount = f"{m}-o{n}-{rng.getrandbits(40)}", rng.randint(100, 50000)
                    r = session.post(f"{base}/members/{m}/accruals", headers=svc, timeout=30,
                                     json={"order_id": oid, "total_amount": amount, "currency": "JPY"})
                    if r.status_code == 201:
                        with lock:
                            orders[m].append((oid, amount))
                elif op == "refund":
                    with lock:
                        known = list(orders[m])
                    if not known:
                        continue
                    oid, amount = rng.choice(known)
                    r = session.post(f"{base}/members/{m}/refunds", headers=svc, timeout=30,
                                     json={"refund_id": f"rf-{n}-{rng.getrandbits(40)}", "order_id": oid,
                                           "amount": max(1, amount // 4)})
                elif op == "activity":
                    r = session.post(f"{base}/members/{m}/activities", headers=svc, timeout=30,
                                     json={"activity_id": f"a-{n}-{rng.getrandbits(40)}", "type": "review"})
                elif op == "redeem":
                    r = session.post(f"{base}/members/{m}/redemptions", headers=svc, timeout=30,
                                     json={"reward_id": "load-reward"})
                elif op == "read":
                    r = session.get(f"{base}/members/{m}", headers=svc, timeout=30)
                else:
                    r = session.get(f"{base}/members/{m}/ledger?limit=20", headers=svc, timeout=30)
                with lock:
                    stats[op].append((time.perf_counter() - t) * 1000)
                    statuses[r.status_code] += 1
                    if r.status_code >= 400:
                        errors[f"{op}:{r.status_code}:{r.json().get('error', {}).get('code')}"] += 1

        floor_ms: list = []
        floor_statuses: Counter = Counter()

        def floor_client(n: int) -> None:
            # the floor: the same server, clients and connections, the cheapest route (no token, no store)
            while time.time() < stop["at"]:
                t = time.perf_counter()
                r = sessions[n].get(f"{base}/health", timeout=30)
                with lock:
                    floor_ms.append((time.perf_counter() - t) * 1000)
                    floor_statuses[r.status_code] += 1

        def phase(target, seconds: float) -> tuple[float, int]:
            before = sum(statuses.values()) if target is client else len(floor_ms)
            threads = [threading.Thread(target=target, args=(i,)) for i in range(args.clients)]
            t0 = time.time()
            stop["at"] = t0 + seconds
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            done = (sum(statuses.values()) if target is client else len(floor_ms)) - before
            return time.time() - t0, done

        rounds = max(1, args.rounds)
        elapsed, round_rps, floor_rps, floor_elapsed = 0.0, [], [], 0.0
        for r in range(rounds):
            plan = [(client, args.seconds / rounds)]
            if args.floor_seconds:
                plan.append((floor_client, args.floor_seconds / rounds))
            for target, seconds in (plan if r % 2 == 0 else plan[::-1]):
                took, done = phase(target, seconds)
                if target is client:
                    elapsed += took
                    round_rps.append(round(done / took, 1))
                else:
                    floor_elapsed += took
                    floor_rps.append(round(done / took, 1))

        # The invariant, checked in the emulator itself.
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{emu}"
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        from chalicelib.config import reset_settings
        from chalicelib.store import members as store

        reset_settings()
        broken = []
        for m in members:
            row = store.get(m)
            w = row.wallet
            if store.ledger_sum(m) != w.balance or sum(w.lots.values()) != max(w.available, 0):  # + held
                broken.append(m)
        total = sum(statuses.values())
        report = {
            "clients": args.clients, "seconds": round(elapsed, 1), "requests": total,
            "requests_per_second": round(total / elapsed, 1),
            "status_counts": dict(sorted(statuses.items())),
            "errors": dict(errors.most_common()),
            "server_errors": sum(v for k, v in statuses.items() if k >= 500 and k != 503),
            "retry_later_503": statuses.get(503, 0),
            "latency_ms": {op: _percentiles(v) for op, v in stats.items() if v},
            "latency_all_ms": _percentiles([x for v in stats.values() for x in v]),
            "members_checked": len(members), "invariant_broken": broken,
            "rounds_requests_per_second": round_rps,
        }
        if args.floor_seconds:
            report["floor"] = {"route": "GET /v1/health", "seconds": round(floor_elapsed, 1),
                               "requests": len(floor_ms), "rounds_requests_per_second": floor_rps,
                               "status_counts": dict(sorted(floor_statuses.items())),
                               "latency_all_ms": _percentiles(floor_ms)}
        print(json.dumps(report, indent=2))
        return 1 if report["server_errors"] or broken else 0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
