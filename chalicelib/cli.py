"""`python -m chalicelib.cli`: token, bootstrap, seed, job."""
from __future__ import annotations

import argparse
import json
import os
import random
import sys


def _local_defaults() -> None:
    """In the local stage, talk to the embedded emulator unless told otherwise."""
    if os.environ.get("LOYALTY_STAGE", "local") == "local" and os.environ.get("LOYALTY_EMULATOR", "1") != "0":
        os.environ.setdefault("AWS_ENDPOINT_URL",
                              f"http://127.0.0.1:{os.environ.get('LOYALTY_EMULATOR_PORT', '4566')}")
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def cmd_token(args) -> int:
    from chalicelib.auth import mint_token

    print(mint_token(args.role, args.sub, ttl_seconds=args.ttl))
    return 0


def cmd_bootstrap(args) -> int:
    from chalicelib.bootstrap import bootstrap

    print(json.dumps(bootstrap()))
    return 0


def cmd_seed(args) -> int:
    """Demo members with a few months of purchases, through the same services as the API."""
    from datetime import timedelta

    from tqdm import tqdm

    from chalicelib import clock
    from chalicelib.errors import AlreadyExists
    from chalicelib.schemas.members import AccrualRequest, EnrolRequest
    from chalicelib.services import members, points

    rng = random.Random(args.seed)
    now = clock.now()
    for i in tqdm(range(args.members), desc="seeding members", unit="member"):
        member_id = f"{args.prefix}{i:06d}"
        try:
            members.enrol(EnrolRequest(member_id=member_id, name=f"Demo {i}", email=f"demo{i}@example.com",
                                       birthday=f"{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                                       consents={"email": rng.random() < 0.7, "push": rng.random() < 0.4,
                                                 "sms": False}), actor="cli:seed")
        except AlreadyExists:
            continue
        for n in range(rng.choice([0, 1, 1, 2, 3, 5, 8])):
            at = now - timedelta(days=rng.randint(0, 330), minutes=rng.randint(0, 1440))
            points.accrue(member_id, AccrualRequest(order_id=f"{member_id}-o{n}", total_amount=rng.randint(500, 40000),
                                                    currency="JPY", occurred_at=at), actor="cli:seed")
    return 0


def cmd_job(args) -> int:
    from chalicelib.jobs.runner import run_job_cli

    return run_job_cli(args.name, args.as_of, segments=args.segments)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.cli", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("token", help="mint a local-stage bearer token")
    t.add_argument("--role", required=True, choices=["admin", "service", "member"])
    t.add_argument("--sub", required=True)
    t.add_argument("--ttl", type=int, default=30 * 24 * 3600, help="seconds (default 30 days)")
    t.set_defaults(fn=cmd_token)
    b = sub.add_parser("bootstrap", help="create tables and queues at the current endpoint")
    b.set_defaults(fn=cmd_bootstrap)
    s = sub.add_parser("seed", help="demo data")
    s.add_argument("--members", type=int, required=True)
    s.add_argument("--prefix", default="demo-")
    s.add_argument("--seed", type=int, default=42)
    s.set_defaults(fn=cmd_seed)
    j = sub.add_parser("job", help="run a job in-process")
    j.add_argument("name")
    j.add_argument("--as-of", dest="as_of", default=None)
    j.add_argument("--segments", type=int, default=4)
    j.set_defaults(fn=cmd_job)
    args = parser.parse_args(argv)
    if args.cmd != "token":
        _local_defaults()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
