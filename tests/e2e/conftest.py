"""The real local server (`python -m chalicelib.local run`), started once per session on free ports."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _server():
    """`python -m chalicelib.local run` on free ports, with its own embedded emulator (empty)."""
    port, emulator_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "LOYALTY_JWT_SECRET")}
    env["LOYALTY_STAGE"] = "local"
    # The server's output goes to a temporary file, not a pipe nobody reads: a full pipe
    # (64 KiB of access log) would block every server thread mid-request.
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([sys.executable, "-m", "chalicelib.local", "run", "--port", str(port),
                             "--emulator-port", str(emulator_port)], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError("server exited: " + log.read())
        try:
            if requests.get(base + "/v1/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("server did not start in 90 s")
    try:
        yield {"base": base, "emulator": f"http://127.0.0.1:{emulator_port}", "proc": proc}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def live_server():
    """One server for the session's tests (they keep to their own ids)."""
    with _server() as server:
        yield server


@pytest.fixture
def fresh_server():
    """A server of its own, as `make run` starts it: for the README's examples, which a
    newcomer pastes into a fresh program (fixed ids, the default settings and tiers)."""
    with _server() as server:
        yield server


@pytest.fixture(scope="session")
def admin_token():
    os.environ.setdefault("LOYALTY_STAGE", "local")
    from chalicelib.auth import mint_token

    return mint_token("admin", "fuzzer")
