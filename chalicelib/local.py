"""`make run`: the embedded AWS emulator (`chalicelib/emulator.py`) and the local API server.

Two child processes: the emulator (a locked moto server: one AWS call at a time, so each
call is atomic as in AWS) and the API (Chalice's local gateway, threaded, with a deep
listen backlog and an answer in SPEC 4.2's error shape for whatever never reaches the app:
unsupported methods such as TRACE, paths no route matches, malformed requests).

Everything that can be checked is checked before a token is printed: settings, free
ports, the emulator and the API listening. A problem stops `make run` with one line on
stderr and a non-zero exit.

- `LOYALTY_PERSIST=1`: the emulator's state is kept in `.local/emulator.pickle` (saved
  every 30 s after changes and on exit, loaded on start); the start says which.
- `.local/endpoint` holds the AWS endpoint in use, so the CLI finds it whatever its port.
- `LOYALTY_BACKGROUND=off`: no background workers (outbox relay, job runners) start in the
  API process; then only requests touch the emulator.

`LOYALTY_LOCAL_DIR` moves `.local/` (tests use a temporary one).
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from typing import Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"
STATE_FILE = "emulator.pickle"
ENDPOINT_FILE = "endpoint"
LISTEN_BACKLOG = 1024


class SetupError(Exception):
    """A reason `make run` cannot start: printed as one line."""


# --- small helpers -------------------------------------------------------------------

def local_dir() -> str:
    return os.environ.get("LOYALTY_LOCAL_DIR") or os.path.join(ROOT, ".local")


def wait_for_port(host: str, port: int, timeout: float = 30.0, proc: Optional[subprocess.Popen] = None,
                  what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SetupError(f"{what or 'a child process'} exited (status {proc.returncode}) before listening "
                             f"on {host}:{port}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise SetupError(f"nothing listens on {host}:{port} after {timeout:.0f} s" + (f" ({what})" if what else ""))


def port_in_use(host: str, port: int) -> bool:
    """True when this port cannot be bound (a server, or any other socket, holds it)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            return e.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


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


def _port_setting(name: str, value) -> int:
    try:
        port = int(str(value).strip())
    except ValueError:
        raise SetupError(f"bad setting {name}={value!r}: a port number (1-65535) is expected") from None
    if not 0 < port < 65536:
        raise SetupError(f"bad setting {name}={value!r}: a port number (1-65535) is expected")
    return port


def _flag(name: str, default: bool, on=("1", "on", "true", "yes"), off=("0", "off", "false", "no", "")) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in on:
        return True
    if value in off:
        return False
    raise SetupError(f"bad setting {name}={raw!r}: expected one of {', '.join(on[:2] + off[:2])}")


def background_enabled() -> bool:
    return _flag("LOYALTY_BACKGROUND", True)


def persist_enabled() -> bool:
    return _flag("LOYALTY_PERSIST", False)


def check_settings(env: dict) -> None:
    """The app's own settings, validated as the API process will read them."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        from chalicelib.config import get_settings, reset_settings

        reset_settings()
        try:
            get_settings()
        except Exception as e:  # noqa: BLE001 - pydantic or a bad number: one line
            first = str(e).strip().splitlines()
            detail = " ".join(line.strip() for line in first[:3]) if first else type(e).__name__
            raise SetupError(f"bad setting: {detail}") from None
        finally:
            reset_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- the API process -----------------------------------------------------------------

_ERROR_CODES = {400: "VALIDATION_ERROR", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 408: "VALIDATION_ERROR",
                411: "VALIDATION_ERROR", 413: "PAYLOAD_TOO_LARGE", 414: "VALIDATION_ERROR",
                431: "VALIDATION_ERROR", 505: "VALIDATION_ERROR"}
_ALL_PARAMS = re.compile(r"^(/\{[^/{}]+\})*/?$")


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "details": {}}}).encode()


def make_api_server(host: str, port: int):
    """Chalice's local server for this project's `local` stage, hardened (see the module doc)."""
    os.environ.setdefault("AWS_CHALICE_CLI_MODE", "true")
    from chalice import local as chalice_local
    from chalice.cli.factory import CLIFactory

    config = CLIFactory(ROOT, environ=os.environ).create_config_obj(chalice_stage_name="local")
    app = config.chalice_app
    if getattr(app, "log", None) is not None and app.log.handlers:
        app.log.propagate = False  # Chalice's own handler prints it; the root logger must not again
    routes = chalice_local.RouteMatcher(list(app.routes))

    class Handler(chalice_local.ChaliceRequestHandler):
        def __getattr__(self, name: str):
            if name.startswith("do_"):  # any method the app does not take: TRACE, CONNECT, FOO...
                return self._unsupported_method
            raise AttributeError(name)

        def _route(self) -> Optional[str]:
            try:
                return routes.match_route(self.path).route
            except ValueError:
                return None

        def _discard_body(self) -> None:
            try:
                length = int(self.headers.get("content-length") or 0)
            except ValueError:
                length = 0
            if length > 0:
                self.rfile.read(length)

        def _send_json_error(self, status: int, code: str, message: str, headers: Optional[dict] = None) -> None:
            body = _error_body(code, message)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _unsupported_method(self) -> None:
            self._discard_body()
            route = self._route()
            if route is None or _ALL_PARAMS.match(route):
                self._send_json_error(404, "NOT_FOUND", "no such route")
                return
            views = app.routes.get(route, {})
            allowed = sorted(m for m, v in views.items() if not str(getattr(v, "view_name", "")).startswith(
                "method_not_allowed")) or sorted(views)
            self._send_json_error(405, "METHOD_NOT_ALLOWED", "this route does not take that method",
                                  {"Allow": ", ".join(allowed)})

        def _generic_handle(self) -> None:
            if self._route() is None:  # deeper than any route: never the gateway's 403 (it echoes tokens)
                self._discard_body()
                self._send_json_error(404, "NOT_FOUND", "no such route")
                return
            try:
                super()._generic_handle()
            except (BrokenPipeError, ConnectionResetError):
                raise
            except Exception:  # noqa: BLE001 - the app answers its own errors; this is the gateway's
                self.log_error("unhandled error in the local gateway for %s %s", self.command,
                               self.path.split("?")[0])
                self._send_json_error(500, "INTERNAL_ERROR", "internal error")

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

        def send_error(self, code, message=None, explain=None):  # http.server's own errors, as JSON
            if code == 501:
                code, error, text = 405, "METHOD_NOT_ALLOWED", "this server does not take that method"
            else:
                error = _ERROR_CODES.get(code, "INTERNAL_ERROR" if code >= 500 else "VALIDATION_ERROR")
                text = {400: "malformed request", 414: "request line too long", 431: "request headers too large",
                        505: "HTTP version not supported"}.get(code, "request refused")
            self.log_error("code %d, message %s", code, message)
            body = _error_body(error, text)
            self.send_response(code, message)
            self.send_header("Connection", "close")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.close_connection = True
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)

    class Server(chalice_local.ThreadedHTTPServer):
        request_queue_size = LISTEN_BACKLOG  # bursts of connections wait, never a reset
        allow_reuse_address = True

    chalice_local.CustomLocalChalice.__bases__ = (chalice_local.LocalChalice, app.__class__)
    app.__class__ = chalice_local.CustomLocalChalice
    return chalice_local.LocalDevServer(app, config, host, port, handler_cls=Handler, server_cls=Server)


def start_background_workers() -> list:
    """The one hook that starts `make run`'s background workers in the API process, as
    production runs them beside the API: the outbox relay (`chalicelib.relay`), webhook
    delivery (`chalicelib.services.webhooks`) and any job runner exposing `start_background()`. Nothing starts when LOYALTY_BACKGROUND=off
    (measurements: then only requests touch the emulator)."""
    if not background_enabled():
        return []
    import importlib

    started = []
    for module_name in ("chalicelib.relay", "chalicelib.services.webhooks", "chalicelib.jobs.runner"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        start = getattr(module, "start_background", None)
        if callable(start):
            started.append(start())
    return started


def serve_api(port: int, host: str = HOST) -> int:
    import logging

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
    if background_enabled():
        os.environ.setdefault("LOYALTY_RELAY", "background")  # the relay thread sends what commits hand it
    server = make_api_server(host, port)
    start_background_workers()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        server.server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


# --- make run ------------------------------------------------------------------------

def _write_endpoint(endpoint: str) -> str:
    path = os.path.join(local_dir(), ENDPOINT_FILE)
    os.makedirs(local_dir(), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(endpoint + "\n")
    os.replace(path + ".tmp", path)
    return path


def _remove_endpoint(endpoint: str) -> None:
    path = os.path.join(local_dir(), ENDPOINT_FILE)
    try:
        with open(path) as f:
            if f.read().strip() == endpoint:  # not another `make run`'s
                os.remove(path)
    except OSError:
        pass


def _stop(children: list, grace: float) -> None:
    # Ask every child to stop, give them `grace` seconds together (not each: a keep-alive
    # connection can hold a server thread; a persistent emulator writes its state), then
    # kill what is left.
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace
    for child in reversed(children):
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def run(port, emulator_port) -> int:
    children: list[subprocess.Popen] = []
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    ours: Optional[str] = None
    grace = 4.0
    try:
        port = _port_setting("PORT", port)
        emulator_port = _port_setting("LOYALTY_EMULATOR_PORT", emulator_port)
        persist = persist_enabled()
        background_enabled()  # validated now, used by the API process
        embedded = not endpoint and os.environ.get("LOYALTY_EMULATOR", "1") != "0"
        if embedded and port == emulator_port:
            raise SetupError(f"PORT and LOYALTY_EMULATOR_PORT are both {port}: give them different values")
        check_settings(local_env(endpoint or f"http://{HOST}:{emulator_port}"))
        if port_in_use(HOST, port):
            raise SetupError(f"port {port} is taken: stop what uses it or choose another with PORT=...")
        state_line = None
        if embedded:
            if port_in_use(HOST, emulator_port):
                raise SetupError(f"port {emulator_port} is taken: stop the other emulator or choose another "
                                 f"with LOYALTY_EMULATOR_PORT=...")
            cmd = [sys.executable, "-m", "chalicelib.emulator", "--port", str(emulator_port)]
            state = os.path.join(local_dir(), STATE_FILE)
            if persist:
                os.makedirs(local_dir(), exist_ok=True)
                cmd += ["--state", state]
                grace = 120.0  # the emulator writes its state on the way out
                if os.path.exists(state):
                    saved = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(state)))
                    state_line = (f"data loaded from {os.path.relpath(state, ROOT)} (saved {saved}); "
                                  f"it is kept there across restarts")
                else:
                    state_line = f"starts empty; data will be kept in {os.path.relpath(state, ROOT)} across restarts"
            else:
                state_line = "starts empty (LOYALTY_PERSIST=1 keeps the data across restarts)"
            children.append(subprocess.Popen(cmd, cwd=ROOT, env=local_env()))
            wait_for_port(HOST, emulator_port, timeout=300 if persist else 30, proc=children[-1], what="the emulator")
            endpoint = f"http://{HOST}:{emulator_port}"
        env = local_env(endpoint)
        os.environ.update(env)
        from chalicelib.auth import mint_token
        from chalicelib.bootstrap import bootstrap
        from chalicelib.config import reset_settings

        reset_settings()
        try:
            created = bootstrap()
        except Exception as e:  # noqa: BLE001 - unreachable endpoint, bad credentials: one line
            raise SetupError(f"cannot create the tables and queues at {endpoint}: {str(e).splitlines()[0]}") from None
        ours = endpoint
        _write_endpoint(endpoint)
        api = subprocess.Popen([sys.executable, "-m", "chalicelib.local", "api", "--port", str(port)],
                               cwd=ROOT, env=env)
        children.append(api)
        wait_for_port(HOST, port, timeout=60, proc=api, what="the API server")
        print(f"AWS endpoint : {endpoint} (tables/queues created: {len(created['tables'])}/{len(created['queues'])})")
        if state_line:
            print(f"emulator     : {state_line}")
        print(f"background   : {'on (outbox relay, webhook delivery)' if background_enabled() else 'off (LOYALTY_BACKGROUND=off)'}")
        print(f"API          : http://{HOST}:{port}/v1  (OpenAPI: http://{HOST}:{port}/v1/openapi.json)")
        for role, sub in (("admin", "admin"), ("service", "pos-1"), ("member", "demo-member")):
            print(f"{role:<8} token: {mint_token(role, sub)}")
        sys.stdout.flush()
        return api.wait()
    except SetupError as e:
        print(f"make run: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(children, grace)
        if ours:
            _remove_endpoint(ours)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.local")
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="emulator + API (make run)")
    r.add_argument("--port", default=os.environ.get("PORT", "8000"))
    r.add_argument("--emulator-port", default=os.environ.get("LOYALTY_EMULATOR_PORT", "4566"))
    e = sub.add_parser("emulator", help="the locked moto server alone")
    e.add_argument("--port", type=int, default=int(os.environ.get("LOYALTY_EMULATOR_PORT", "4566")))
    a = sub.add_parser("api", help="the local API server alone (make run starts it)")
    a.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args(argv)
    # Ctrl-C (SIGINT) stops every part, even when a script started us in the background,
    # where the shell hands its background jobs SIGINT ignored (Python then never raises
    # KeyboardInterrupt, and `make run` could not be stopped but by SIGKILL).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.cmd == "emulator":
        from chalicelib.emulator import serve

        return serve(args.port)
    if args.cmd == "api":
        return serve_api(args.port)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    return run(args.port, args.emulator_port)


if __name__ == "__main__":
    sys.exit(main())
