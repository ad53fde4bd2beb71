"""`python -m chalicelib.cli`: token, bootstrap, seed, job, upload.

In the local stage the CLI talks to the emulator `make run` started (its URL is in
`.local/endpoint`), unless AWS_ENDPOINT_URL is set. Errors are one line on stderr and a
non-zero exit.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

MAX_SEED_MEMBERS = 1_000_000


class CliError(Exception):
    """A reason the command cannot go on: printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + error
        print(f"{self.prog}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _endpoint_file() -> str:
    from chalicelib.local import ENDPOINT_FILE, local_dir

    return os.path.join(local_dir(), ENDPOINT_FILE)


def _local_defaults() -> None:
    """In the local stage, talk to the emulator `make run` started unless told otherwise."""
    if os.environ.get("LOYALTY_STAGE", "local") == "local" and os.environ.get("LOYALTY_EMULATOR", "1") != "0":
        if not os.environ.get("AWS_ENDPOINT_URL"):
            endpoint = None
            try:
                with open(_endpoint_file()) as f:
                    endpoint = f.read().strip() or None
            except OSError:
                pass
            os.environ["AWS_ENDPOINT_URL"] = endpoint or \
                f"http://127.0.0.1:{os.environ.get('LOYALTY_EMULATOR_PORT', '4566')}"
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def cmd_token(args) -> int:
    from chalicelib.auth import mint_token

    if args.ttl <= 0:
        raise CliError("--ttl must be a positive number of seconds")
    print(mint_token(args.role, args.sub, ttl_seconds=args.ttl))
    return 0


def cmd_bootstrap(args) -> int:
    from chalicelib.bootstrap import bootstrap

    print(json.dumps(bootstrap()))
    return 0


def _seed_one(i: int, args, now) -> tuple[str, bool, int, int]:
    """Enrol member i and accrue its orders: (member_id, created, orders, points)."""
    from datetime import timedelta

    from chalicelib.errors import AlreadyExists
    from chalicelib.schemas.members import AccrualRequest, EnrolRequest
    from chalicelib.services import members, points

    rng = random.Random(f"{args.seed}-{i}")
    member_id = f"{args.prefix}{i:06d}"
    try:
        members.enrol(EnrolRequest(member_id=member_id, name=f"Demo {i}", email=f"demo{i}@example.com",
                                   birthday=f"{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                                   consents={"email": rng.random() < 0.7, "push": rng.random() < 0.4,
                                             "sms": False}), actor="cli:seed")
    except AlreadyExists:
        return member_id, False, 0, 0
    orders = earned = 0
    for n in range(rng.choice([0, 1, 1, 2, 3, 5, 8])):
        at = now - timedelta(days=rng.randint(0, 330), minutes=rng.randint(0, 1440))
        _, body = points.accrue(member_id, AccrualRequest(order_id=f"{member_id}-o{n}",
                                                          total_amount=rng.randint(500, 40000),
                                                          currency="JPY", occurred_at=at), actor="cli:seed")
        orders += 1
        earned += int(body.get("points_earned") or 0) if isinstance(body, dict) else 0
    return member_id, True, orders, earned


def cmd_seed(args) -> int:
    """Demo members with a few months of purchases, through the same services as the API."""
    from tqdm import tqdm

    from chalicelib import clock

    if not 0 < args.members <= MAX_SEED_MEMBERS:
        raise CliError(f"--members must be between 1 and {MAX_SEED_MEMBERS:,} (got {args.members})")
    if args.workers < 1 or args.workers > 32:
        raise CliError("--workers must be between 1 and 32")
    from chalicelib.store.registry import all_models

    for model in all_models():  # PynamoDB's table metadata, loaded once before the threads race for it
        model._get_connection().get_meta_table()
    now = clock.now()
    made, skipped, orders, earned = [], 0, 0, 0
    lock = threading.Lock()
    with tqdm(total=args.members, desc="seeding members", unit="member") as bar, \
            ThreadPoolExecutor(args.workers) as pool:
        for member_id, created, n, pts in pool.map(lambda i: _seed_one(i, args, now), range(args.members)):
            with lock:
                if created:
                    made.append(member_id)
                else:
                    skipped += 1
                orders += n
                earned += pts
            bar.update(1)
    print(f"seeded {len(made):,} members with {orders:,} orders ({earned:,} points earned); "
          f"{skipped:,} already existed")
    if made:
        ids = ", ".join(made) if len(made) <= 20 else f"{made[0]} .. {made[-1]} (prefix {args.prefix!r})"
        print(f"member ids: {ids}")
    return 0


def _scan_totals(bar) -> None:
    """The CLI's progress bar learns each scan's size (the table's item count) as it starts."""
    from chalicelib.jobs import framework
    from chalicelib.store.base import dynamodb_client

    scan = framework.JobContext.scan

    def counted(self, model, *a, **kw):
        try:
            count = dynamodb_client().describe_table(TableName=model.Meta.table_name)["Table"]["ItemCount"]
            bar.total = (bar.total or 0) + int(count)
            bar.refresh()
        except Exception:  # noqa: BLE001 - a bar without a total is no reason to stop
            pass
        return scan(self, model, *a, **kw)

    framework.JobContext.scan = counted


def cmd_job(args) -> int:
    from tqdm import tqdm

    from chalicelib.jobs import framework

    if args.segments < 1 or args.segments > 1000:
        raise CliError("--segments must be between 1 and 1000")
    names = sorted(framework.jobs())
    if args.name not in names:
        raise CliError(f"unknown job {args.name!r}; jobs: {', '.join(names)}")
    when = framework.parse_as_of(args.as_of)
    data = framework.create(args.name, when, actor="cli", segments=args.segments)
    with tqdm(total=0, desc=f"{args.name} {data['as_of']}", unit="item") as bar:
        _scan_totals(bar)
        result = framework.execute(data["job_id"], progress=bar.update)
    print(json.dumps(framework.get_job(result["job_id"])))
    return 0 if result["status"] == "succeeded" else 1


def _one_line(exc: BaseException) -> str:
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    from chalicelib.errors import LoyaltyError

    if isinstance(exc, CliError):
        return str(exc)
    cause = exc
    while cause is not None:  # PynamoDB wraps botocore's connection errors
        if isinstance(cause, EndpointConnectionError):
            exc = cause
            break
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, EndpointConnectionError):
        return (f"cannot reach the AWS endpoint {os.environ.get('AWS_ENDPOINT_URL') or '(default)'}: "
                "is `make run` running? (or set AWS_ENDPOINT_URL)")
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
    if isinstance(exc, LoyaltyError):
        fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
        extra = "; ".join(f"{f.get('field')}: {f.get('message')}" for f in fields or [] if isinstance(f, dict))
        return f"{exc.code}: {exc.message}" + (f" ({extra})" if extra else "")
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"AWS {err.get('Code', 'error')}: {err.get('Message', '')}".strip()
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def cmd_upload(args) -> int:
    """Put a file in the exports bucket (an import's source; multipart for large files)."""
    from chalicelib.clients import s3_client
    from chalicelib.config import get_settings

    if not os.path.isfile(args.file):
        raise CliError(f"no file {args.file!r}")
    key = args.key or "imports/" + os.path.basename(args.file)
    bucket = get_settings().exports_bucket
    s3_client().upload_file(args.file, bucket, key)
    print(json.dumps({"bucket": bucket, "s3_key": key, "bytes": os.path.getsize(args.file)}))
    return 0


def main(argv=None) -> int:
    parser = _Parser(prog="python -m chalicelib.cli", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    t = sub.add_parser("token", help="mint a local-stage bearer token")
    t.add_argument("--role", required=True, choices=["admin", "service", "member"])
    t.add_argument("--sub", required=True)
    t.add_argument("--ttl", type=int, default=30 * 24 * 3600, help="seconds (default 30 days)")
    t.set_defaults(fn=cmd_token)
    b = sub.add_parser("bootstrap", help="create tables and queues at the current endpoint")
    b.set_defaults(fn=cmd_bootstrap)
    s = sub.add_parser("seed", help="demo data: members with their orders")
    s.add_argument("--members", type=int, required=True)
    s.add_argument("--prefix", default="demo-")
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--workers", type=int, default=4, help="parallel writers (default 4)")
    s.set_defaults(fn=cmd_seed)
    j = sub.add_parser("job", help="run a job in-process")
    j.add_argument("name")
    j.add_argument("--as-of", dest="as_of", default=None)
    j.add_argument("--segments", type=int, default=4)
    j.set_defaults(fn=cmd_job)
    u = sub.add_parser("upload", help="put a file in the exports bucket (for POST /v1/admin/imports)")
    u.add_argument("file")
    u.add_argument("--key", default=None, help="object key (default imports/FILENAME)")
    u.set_defaults(fn=cmd_upload)
    args = parser.parse_args(argv)
    if args.cmd != "token":
        _local_defaults()
    import logging

    logging.basicConfig(level=logging.CRITICAL, format="%(message)s")  # the one-line error says it
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, no traceback
        print(f"{parser.prog} {args.cmd}: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
