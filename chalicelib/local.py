"""`make run`: the embedded AWS emulator (a locked moto server) and `chalice local`.

moto is not safe under concurrent calls, so the emulator serves one AWS call at
a time behind a lock: each call is atomic, as in AWS, and concurrency tests judge
the app rather than the emulator. `chalice local` itself stays threaded.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class LockedApp:
    """WSGI wrapper: one request inside moto at a time, response fully read under the lock."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            result = self.app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()


def make_emulator(host: str = "127.0.0.1", port: int = 4566):
    """A werkzeug server around moto's dispatcher; call `.serve_forever()` (or in a thread)."""
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = LockedApp(DomainDispatcherApplication(create_backend_app))
    return make_server(host, port, app, threaded=True)


def start_emulator_thread(host: str = "127.0.0.1", port: int = 0):
    """Start the locked emulator in this process (tests, benchmarks); returns (server, url)."""
    server = make_emulator(host, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://{host}:{server.server_port}"


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def local_env(endpoint: Optional[str] = None) -> dict:
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env["LOYALTY_STAGE"] = "local"
    if endpoint:  # an emulator accepts any credentials; a real account uses the caller's own
        env["AWS_ENDPOINT_URL"] = endpoint
        if not env.get("AWS_PROFILE"):
            env.setdefault("AWS_ACCESS_KEY_ID", "local")
            env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    return env


def run(port: int, emulator_port: int) -> int:
    host = "127.0.0.1"
    children: list[subprocess.Popen] = []
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    try:
        if not endpoint and os.environ.get("LOYALTY_EMULATOR", "1") != "0":
            if port_in_use(host, emulator_port):
                print(f"port {emulator_port} is taken: stop the other emulator or set LOYALTY_EMULATOR_PORT",
                      file=sys.stderr)
                return 1
            children.append(subprocess.Popen([sys.executable, "-m", "chalicelib.local", "emulator",
                                              "--port", str(emulator_port)], cwd=ROOT, env=local_env()))
            wait_for_port(host, emulator_port)
            endpoint = f"http://{host}:{emulator_port}"
        env = local_env(endpoint)
        os.environ.update(env)
        from chalicelib.auth import mint_token
        from chalicelib.bootstrap import bootstrap
        from chalicelib.config import reset_settings

        reset_settings()
        created = bootstrap()
        print(f"AWS endpoint : {endpoint} (tables/queues created: {len(created['tables'])}/{len(created['queues'])})")
        print(f"API          : http://{host}:{port}/v1  (OpenAPI: http://{host}:{port}/v1/openapi.json)")
        for role, sub in (("admin", "admin"), ("service", "pos-1"), ("member", "demo-member")):
            print(f"{role:<8} token: {mint_token(role, sub)}")
        sys.stdout.flush()
        chalice_bin = os.path.join(os.path.dirname(sys.executable), "chalice")
        api = subprocess.Popen([chalice_bin, "local", "--stage", "local",
                                "--host", host, "--port", str(port), "--no-autoreload"], cwd=ROOT, env=env)
        children.append(api)
        return api.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        # Ctrl-C: ask every child to stop, give them 4 s together (not each: a keep-alive
        # connection can hold a server thread), then kill what is left.
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 4
        for child in reversed(children):
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.local")
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="emulator + API (make run)")
    r.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    r.add_argument("--emulator-port", type=int, default=int(os.environ.get("LOYALTY_EMULATOR_PORT", "4566")))
    e = sub.add_parser("emulator", help="the locked moto server alone")
    e.add_argument("--port", type=int, default=int(os.environ.get("LOYALTY_EMULATOR_PORT", "4566")))
    args = parser.parse_args(argv)
    if args.cmd == "emulator":
        server = make_emulator("127.0.0.1", args.port)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        return 0
    return run(args.port, args.emulator_port)


if __name__ == "__main__":
    sys.exit(main())
