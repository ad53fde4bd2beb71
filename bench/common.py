"""What every benchmark shares: the emulator process, the environment, call counters,
alternating timed rounds and the shape of a results.json entry."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from statistics import median
from typing import Callable, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOW = "2026-01-15T10:00:00Z"


def entry(value, floor, ratio, goal, unit, **extra) -> dict:
    """A results.json entry (SPEC 6): value, floor, ratio, goal, unit (+ `extra` kept for details.json)."""
    out = {"value": value, "floor": floor, "ratio": ratio, "goal": goal, "unit": unit}
    out["_details"] = extra
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_child: dict = {"pid": None}


@contextlib.contextmanager
def emulator():
    """The locked moto server in a child process on a free port; yields its URL."""
    from chalicelib.local import wait_for_port

    port = free_port()
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "bench.emulator", "--port", str(port)], cwd=ROOT, env=env)
    _child["pid"] = proc.pid
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        _child["pid"] = None
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def emulator_cpu() -> Optional[float]:
    """CPU seconds the emulator process has used so far (Linux `/proc`, 10 ms ticks; None
    elsewhere): how busy the calls of a round kept it."""
    try:
        with open(f"/proc/{_child['pid']}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def configure(url: str) -> None:
    """Point the app (and bare boto3 floors) at the emulator, in the local stage."""
    os.environ.update({
        "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1", "LOYALTY_STAGE": "local",
        "LOYALTY_SETTINGS_CACHE_SECONDS": "3600",
        # production's request path: the outbox stream's relay function sends committed rows,
        # so a request makes its own calls only (background workers are off in the bench)
        "LOYALTY_RELAY": "stream",
    })
    os.environ.pop("AWS_SESSION_TOKEN", None)
    reset_app_caches()


def reset_app_caches() -> None:
    from chalicelib import clients, messaging
    from chalicelib.config import reset_settings
    from chalicelib.services import program
    from chalicelib.store.base import reset_connection

    reset_settings()
    reset_connection()
    program.invalidate()
    messaging._state.update(client=None, url=None)
    clients._clients.clear()


def fresh_stack(url: str) -> None:
    """Drop every table and queue on the emulator and create them again (a clean stage)."""
    import boto3

    ddb = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
    for name in ddb.list_tables()["TableNames"]:
        ddb.delete_table(TableName=name)
    sqs = boto3.client("sqs", endpoint_url=url, region_name="us-east-1")
    for q in sqs.list_queues().get("QueueUrls", []):
        sqs.delete_queue(QueueUrl=q)
    reset_app_caches()
    from chalicelib.bootstrap import bootstrap

    bootstrap()


class CallCounter:
    """Counts API calls made through botocore clients (`before-call.{service}.*` events)."""

    def __init__(self):
        self.calls: Counter = Counter()
        self._hooks: list = []

    def attach(self, client, service: str) -> "CallCounter":
        def hook(model, **_):
            self.calls[f"{service}.{model.name}"] += 1

        client.meta.events.register(f"before-call.{service}.*", hook)
        self._hooks.append((client, service, hook))
        return self

    def detach(self) -> None:
        for client, service, hook in self._hooks:
            client.meta.events.unregister(f"before-call.{service}.*", hook)
        self._hooks.clear()

    def reset(self) -> None:
        self.calls.clear()

    def total(self, service: str) -> int:
        return sum(n for k, n in self.calls.items() if k.startswith(service + "."))

    def by_operation(self, service: str) -> dict:
        return {k.split(".", 1)[1]: n for k, n in sorted(self.calls.items()) if k.startswith(service + ".")}


@contextlib.contextmanager
def counting():
    """Count DynamoDB and SQS calls of the app's clients (the ones fault hooks use too)."""
    from chalicelib.messaging import sqs_client
    from chalicelib.store.base import dynamodb_client

    counter = CallCounter().attach(dynamodb_client(), "dynamodb").attach(sqs_client(), "sqs")
    try:
        yield counter
    finally:
        counter.detach()


def alternate(rounds: int, ours: Callable[[int], float], floor: Callable[[int], float],
              between: Optional[Callable[[int], None]] = None) -> tuple[list, list]:
    """Run ours and the floor alternately (which goes first alternates too); each returns a
    rate or a duration for its round. Returns the two lists of measurements."""
    a, b = [], []
    for r in range(rounds):
        pair = ((a, ours), (b, floor)) if r % 2 == 0 else ((b, floor), (a, ours))
        for out, fn in pair:
            if between:
                between(r)
            out.append(fn(r))
    return a, b


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def med(xs: list) -> float:
    return float(median(xs))


def rnd(x: float, digits: int = 3) -> float:
    return float(round(x, digits))
