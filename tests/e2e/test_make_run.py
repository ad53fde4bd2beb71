"""End to end through the real `make run` stack: chalice local + the locked emulator."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import requests

from tests.e2e.conftest import ROOT


def cli(*args: str, emulator: str) -> str:
    env = {**os.environ, "LOYALTY_STAGE": "local", "AWS_ENDPOINT_URL": emulator,
           "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
    out = subprocess.run([sys.executable, "-m", "chalicelib.cli", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_a_members_day_over_http(live_server):
    base, emulator = live_server["base"] + "/v1", live_server["emulator"]
    svc = {"Authorization": "Bearer " + cli("token", "--role", "service", "--sub", "pos", emulator=emulator)}
    member = {"Authorization": "Bearer " + cli("token", "--role", "member", "--sub", "e2e-1", emulator=emulator)}
    other = {"Authorization": "Bearer " + cli("token", "--role", "member", "--sub", "e2e-2", emulator=emulator)}
    admin = {"Authorization": "Bearer " + cli("token", "--role", "admin", "--sub", "ops", emulator=emulator)}
    # the session's server may have been fuzzed before: back to the documented defaults
    from chalicelib.schemas.program import DEFAULT_TIERS

    assert requests.put(f"{base}/admin/settings", headers=admin, json={}).status_code == 200
    assert requests.put(f"{base}/admin/tiers", headers=admin, json=DEFAULT_TIERS).status_code == 200

    r = requests.post(f"{base}/members", headers=member, json={"member_id": "e2e-1", "name": "E2E",
                                                                "consents": {"email": True}})
    assert r.status_code == 201, r.text
    assert requests.post(f"{base}/members", headers=member, json={"member_id": "e2e-1"}).json()["error"]["code"] \
        == "ALREADY_EXISTS"
    order = {"order_id": "e2e-o1", "total_amount": 61000, "currency": "JPY"}
    r = requests.post(f"{base}/members/e2e-1/accruals", headers=svc, json=order)
    assert r.status_code == 201, r.text
    assert r.json()["points_earned"] == 610 and r.json()["tier_change"] == {"from": "bronze", "to": "silver"}
    replay = requests.post(f"{base}/members/e2e-1/accruals", headers=svc, json=order)
    assert replay.status_code == 200 and replay.json() == r.json()

    view = requests.get(f"{base}/members/e2e-1", headers=member).json()
    assert view["points"]["available"] == 610 and view["tier"]["tier_id"] == "silver"
    assert requests.get(f"{base}/members/e2e-1", headers=other).status_code == 403
    ledger = requests.get(f"{base}/members/e2e-1/ledger", headers=member).json()
    assert [(e["type"], e["points"], e["balance_after"]) for e in ledger["items"]] == [("earn", 610, 610)]

    # the tier_changed message sits on the emulator's queue, for the delivery service
    import boto3

    sqs = boto3.client("sqs", endpoint_url=emulator, region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local")
    url = sqs.get_queue_url(QueueName="loyalty-local-campaign-messages")["QueueUrl"]
    bodies, deadline = [], time.monotonic() + 10  # the background relay sends it just after the commit
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        bodies += [json.loads(m["Body"]) for m in batch]
        if not batch and (any(b["member_id"] == "e2e-1" for b in bodies) or time.monotonic() > deadline):
            break
    mine = [(b["template"], b["channel"], b["variables"]["tier"]) for b in bodies if b["member_id"] == "e2e-1"]
    assert mine == [("tier_changed", "email", "silver")]

    # a job run from the CLI against the same emulator, then read through the API
    out = json.loads(cli("job", "expire-points", "--as-of", "2099-01-01", emulator=emulator).splitlines()[-1])
    # the session's server is shared with the fuzz tests: other members' points may expire too
    assert out["status"] == "succeeded" and out["counts"].get("points_expired", 0) >= 610, out
    assert requests.get(f"{base}/members/e2e-1", headers=member).json()["points"]["available"] == 0


# --- `make run` itself: start-up checks, the local server's edges, persistence, the CLI ---

import signal
import socket
import threading
import time

import pytest

from tests.e2e.conftest import free_port


class MakeRun:
    """`python -m chalicelib.local run` (what `make run` runs) on free ports, its own `.local/`."""

    def __init__(self, tmp_path, port=None, emulator_port=None, **env):
        self.port, self.emulator_port = port or free_port(), emulator_port or free_port()
        self.local = tmp_path / "local"
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("AWS_ENDPOINT_URL", "LOYALTY_JWT_SECRET", "PORT", "LOYALTY_EMULATOR_PORT",
                                 "LOYALTY_PERSIST", "LOYALTY_BACKGROUND")}
        self.env.update(LOYALTY_STAGE="local", LOYALTY_LOCAL_DIR=str(self.local), **env)
        self.log = tmp_path / f"run-{self.port}.log"
        self.proc = None

    def start(self, wait: bool = True) -> "MakeRun":
        self.out = open(self.log, "w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "chalicelib.local", "run", "--port", str(self.port),
                                      "--emulator-port", str(self.emulator_port)], cwd=ROOT, env=self.env,
                                     stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            deadline = time.monotonic() + 40
            while "member   token" not in self.text():
                assert self.proc.poll() is None, "make run exited: " + self.text()
                assert time.monotonic() < deadline, "make run printed no tokens in 40 s: " + self.text()
                time.sleep(0.1)
        return self

    def text(self) -> str:
        return self.log.read_text()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)  # only the group this test started
            self.out.close()

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in self.env.items() if k != "AWS_ENDPOINT_URL"}
        return subprocess.run([sys.executable, "-m", "chalicelib.cli", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)


@pytest.fixture
def make_run(tmp_path):
    runs = []

    def start(**kw):
        run = MakeRun(tmp_path, **kw)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.proc is not None and run.proc.poll() is None:
            run.stop()


def _hold_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]


@pytest.mark.parametrize("which", ["api", "emulator"])
def test_a_taken_port_stops_make_run_with_one_line_before_any_token(make_run, which):
    holder, taken = _hold_port()
    try:
        run = make_run(**({"port": taken} if which == "api" else {"emulator_port": taken})).start(wait=False)
        code = run.proc.wait(timeout=30)
        lines = [line for line in run.text().splitlines() if line.strip()]
    finally:
        holder.close()
    assert code != 0
    assert len(lines) == 1 and f"port {taken} is taken" in lines[0], lines
    assert "token" not in run.text()


def test_a_bad_setting_stops_make_run_with_one_line(make_run):
    run = make_run(LOYALTY_BACKGROUND="sometimes").start(wait=False)
    assert run.proc.wait(timeout=30) != 0
    lines = [line for line in run.text().splitlines() if line.strip()]
    assert len(lines) == 1 and "LOYALTY_BACKGROUND" in lines[0], lines


def test_the_local_server_takes_bursts_and_answers_every_method_in_the_error_shape(make_run):
    run = make_run(LOYALTY_BACKGROUND="off").start()
    assert "Override settings for pynamo" not in run.text() and "background   : off" in run.text()
    results, barrier = [], threading.Barrier(64)

    def hit() -> None:
        try:
            with socket.create_connection(("127.0.0.1", run.port), timeout=20) as s:
                barrier.wait(timeout=20)
                s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                results.append(data.split(b"\r\n", 1)[0])
        except Exception as e:  # noqa: BLE001 - a reset is what this test looks for
            results.append(repr(e).encode())

    threads = [threading.Thread(target=hit) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == [b"HTTP/1.1 200 OK"] * 64, set(results)

    for method, path, status, code in (("TRACE", "/v1/health", 405, "METHOD_NOT_ALLOWED"),
                                       ("CONNECT", "/v1/health", 405, "METHOD_NOT_ALLOWED"),
                                       ("FOO", "/v1/nowhere", 404, "NOT_FOUND"),
                                       ("GET", "/" + "/".join(["a"] * 30), 404, "NOT_FOUND")):
        r = requests.request(method, run.url(path), headers={"Authorization": "Bearer not-echoed"}, timeout=10)
        assert r.status_code == status, (method, path, r.status_code, r.text)
        assert r.json() == {"error": {"code": code, "message": r.json()["error"]["message"], "details": {}}}
        assert "not-echoed" not in r.text
    assert run.stop() == 0


def test_persistence_across_a_restart_and_the_cli_finds_the_emulator(make_run):
    first = make_run(LOYALTY_PERSIST="1", LOYALTY_BACKGROUND="off").start()
    assert "starts empty" in first.text()
    endpoint = (first.local / "endpoint").read_text().strip()
    assert endpoint == f"http://127.0.0.1:{first.emulator_port}"
    # the CLI, with no endpoint in its environment, seeds the emulator make run started
    seeded = first.cli("seed", "--members", "3", "--prefix", "keep-")
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded 3 members" in seeded.stdout and "keep-000000, keep-000001, keep-000002" in seeded.stdout
    token = first.cli("token", "--role", "admin", "--sub", "ops").stdout.strip()
    auth = {"Authorization": "Bearer " + token}
    assert requests.get(first.url("/v1/members/keep-000001"), headers=auth, timeout=10).status_code == 200
    assert first.stop() == 0
    assert (first.local / "emulator.pickle").exists() and not (first.local / "endpoint").exists()

    second = make_run(LOYALTY_PERSIST="1", LOYALTY_BACKGROUND="off").start()  # new ports, same .local/
    assert "data loaded from" in second.text()
    r = requests.get(second.url("/v1/members/keep-000001"), headers=auth, timeout=10)
    assert r.status_code == 200 and r.json()["member_id"] == "keep-000001"
    assert second.stop() == 0


def test_cli_errors_are_one_line(tmp_path):
    run = MakeRun(tmp_path)  # not started: the CLI alone
    for args in (("job", "nonsense"), ("job", "expire-points", "--as-of", "garbage"), ("seed", "--members", "-5")):
        out = run.cli(*args)
        assert out.returncode != 0, args
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr, (args, out.stderr)
