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
import sys

from chalicelib.emulator import fidelity_fixes

__all__ = ["fidelity_fixes", "main"]  # the harness tests import fidelity_fixes from here


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.emulator")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    from chalicelib.emulator import serve

    return serve(args.port)


if __name__ == "__main__":
    sys.exit(main())
