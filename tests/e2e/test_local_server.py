"""`make run` for real: `python -m chalicelib.local run` on free ports (the locked emulator and
`chalice local` as child processes), driven over HTTP with CLI-minted tokens, then stopped with
SIGINT like Ctrl-C; every process must be gone afterwards."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:  # no /proc children file: scan parents instead
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                            out.append(int(entry))
                except OSError:
                    continue
        return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def cli_token(role: str, sub: str) -> str:
    env = {**os.environ, "LOYALTY_STAGE": "local"}
    env.pop("LOYALTY_JWT_SECRET", None)
    out = subprocess.run([sys.executable, "-m", "chalicelib.cli", "token", "--role", role, "--sub", sub],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_make_run_serves_the_api_and_stops_on_sigint(tmp_path, monkeypatch):
    port, emulator_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "LOYALTY_JWT_SECRET", "PORT")}
    env["LOYALTY_STAGE"] = "local"
    log = open(tmp_path / "server.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "chalicelib.local", "run", "--port", str(port),
                             "--emulator-port", str(emulator_port)], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, "the server exited: " + (tmp_path / "server.log").read_text()
            try:
                if requests.get(base + "/health", timeout=1).json() == {"status": "ok"}:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "no /v1/health after 20 s"
            time.sleep(0.1)
        kids = children(proc.pid)
        assert len(kids) == 2 and all(alive(k) for k in kids)  # the emulator and chalice local
        # the banner is printed once the API answers: give a loaded machine a moment to flush it
        banner_deadline = time.monotonic() + 15
        while True:
            printed = (tmp_path / "server.log").read_text()
            if f"http://127.0.0.1:{emulator_port}" in printed and "service  token: " in printed:
                break
            assert time.monotonic() < banner_deadline, printed
            time.sleep(0.2)

        svc = {"Authorization": "Bearer " + cli_token("service", "pos-e2e")}
        monkeypatch.setenv("LOYALTY_STAGE", "local")
        monkeypatch.delenv("LOYALTY_JWT_SECRET", raising=False)
        from chalicelib.auth import mint_token
        from chalicelib.config import reset_settings

        reset_settings()
        member = {"Authorization": "Bearer " + mint_token("member", "e2e-ls-1")}
        now = {"X-Loyalty-Now": "2026-05-10T10:00:00Z"}

        r = requests.post(base + "/members", headers={**member, **now},
                          json={"member_id": "e2e-ls-1", "name": "Live", "consents": {"email": True}})
        assert r.status_code == 201, r.text
        assert (r.json()["enrolled_at"], r.json()["points"]["available"]) == ("2026-05-10T10:00:00Z", 0)
        order = {"order_id": "e2e-ls-o1", "total_amount": 12345, "currency": "JPY"}
        r = requests.post(base + "/members/e2e-ls-1/accruals", headers={**svc, **now}, json=order)
        assert r.status_code == 201, r.text
        assert r.json() == {"order_id": "e2e-ls-o1", "points_earned": 123, "pending": 0,
                            "breakdown": [{"rule": "base", "points": 123}],
                            "balance": {"available": 123, "pending": 0, "held": 0}, "tier_change": None,
                          "points_paid": 0}
        replay = requests.post(base + "/members/e2e-ls-1/accruals", headers=svc, json=order)
        assert replay.status_code == 200 and replay.json() == r.json()
        assert requests.post(base + "/members/e2e-ls-1/accruals", headers=member, json=order).status_code == 403

        m = requests.get(base + "/members/e2e-ls-1", headers={**member, **now}).json()
        assert (m["points"]["available"], m["tier"]["qualifying_spend"], m["tier"]["spend_to_next_tier"]) == \
            (123, 12345, 50000 - 12345)
        ledger = requests.get(base + "/members/e2e-ls-1/ledger", headers=member).json()
        assert [(e["type"], e["points"], e["balance_after"], e["occurred_at"]) for e in ledger["items"]] == \
            [("earn", 123, 123, "2026-05-10T10:00:00Z")]
        assert ledger["next_cursor"] is None
        assert requests.get(base + "/members/e2e-ls-1").status_code == 401
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Ctrl-C on `make run`
        try:
            code = proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # only the group this test started
            log.close()
    assert code == 0
    deadline = time.monotonic() + 5
    while any(alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(k) for k in kids), "a child process outlived `make run`"
    assert not port_open(port) and not port_open(emulator_port)
