"""The benchmark's emulator: the shared embedded emulator (`chalicelib/emulator.py`) in its
own process, the same one `make run` starts.

Run as `python -m bench.emulator --port P`. A separate process keeps the emulator's CPU
off the interpreter under test (no GIL contention; on this 2-core machine one core each).
The fidelity fixes (a transaction snapshots only the items it touches, a send reads only
the queue attribute it needs, a plain Scan page starts at its key, `ClientRequestToken`
honoured) live in `chalicelib/emulator.py` and apply the same to our code and to every floor.
"""
from __future__ import annotations

import argparse
import json
import sys

from chalicelib.emulator import fidelity_fixes

__all__ = ["fidelity_fixes", "main", "PUT_PATH"]  # the harness tests import fidelity_fixes from here

# The bench's seeding (`bench/tiers.py`): items in DynamoDB JSON put straight into a moto table,
# as BatchWriteItem puts each of them (`backend.put_item`), without 25-item HTTP calls: seeding
# is setup, not what a figure measures. Only this process (the bench's emulator) serves it.
PUT_PATH = "/_bench/put-items"


class BenchApp:
    """The locked emulator app plus the bench's bulk put (under the same lock)."""

    def __init__(self, app):
        self.app = app

    def __getattr__(self, name):  # lock, calls: the locked app's
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != PUT_PATH:
            return self.app(environ, start_response)
        spec = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        with self.app.lock:
            from moto.backends import get_backend

            backend = get_backend("dynamodb")[spec.get("account", "123456789012")][spec.get("region", "us-east-1")]
            for item in spec["items"]:
                backend.put_item(spec["table"], item)
            self.app.calls += 1
        body = json.dumps({"put": len(spec["items"])}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.emulator")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    from chalicelib import emulator

    make_app = emulator.make_app
    emulator.make_app = lambda: BenchApp(make_app())  # serve() builds its app with make_app()
    return emulator.serve(args.port)


if __name__ == "__main__":
    sys.exit(main())
