"""`import_rows_per_s`: 100,000 migration rows through the import job ÷ a bare BatchWriteItem
of the same items.

Ours: a JSON Lines object of `count` rows (a name, an email, one balance lot) in the
exports bucket, imported by the `import` job in this process (`framework.execute`): the
object streamed by byte range, each row validated, planned and enrolled as its own
TransactWriteItems (member, one `import` ledger entry, the referral-code lookup, the
`member.enrolled` and `points.imported` outbox rows), `WORKERS` rows at a time, a
checkpoint every `BATCH` rows. The relay is the stream's (`LOYALTY_RELAY=stream`), as in
production: the job makes its own calls only.

Floor: the same five items per row (built once from the import's own plan of one row, the
member id and referral code substituted per row), written with bare BatchWriteItem calls of
25 by a bare boto3 client on the same number of threads: no reading, no validation, no
transactions, no checkpoints.

The members, ledger, lookups and outbox tables are emptied before every run; rounds
alternate; medians. The ratio is ours ÷ the floor in rows per second (higher is better).
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import boto3

from bench.common import entry, med, rnd

TABLES = ("members", "ledger", "lookups", "outbox")
KEY = "bench/import.jsonl"
EARNED = "2025-12-01"


def _row(n: int) -> dict:
    return {"member_id": f"bi-{n:07d}", "name": f"Member {n}", "email": f"member{n}@example.com",
            "balances": [{"points": 100 + n % 900, "earned_at": EARNED}], "lifetime_earned": 2000 + n % 900}


def _empty_tables() -> None:
    from chalicelib.store.registry import all_models

    for model in all_models():
        if model.Meta.resource in TABLES:
            model.delete_table()
            model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")


def _upload(count: int) -> int:
    from chalicelib.clients import s3_client
    from chalicelib.config import get_settings

    body = "".join(json.dumps(_row(n), separators=(",", ":")) + "\n" for n in range(count)).encode()
    s3_client().put_object(Bucket=get_settings().exports_bucket, Key=KEY, Body=body)
    return len(body)


def _template() -> tuple[str, str, str, list]:
    """The five raw items one row writes (as JSON, with its member id, referral code and
    event ids to substitute), from the import's own plan."""
    from chalicelib import clock
    from chalicelib.schemas.data import ImportRow
    from chalicelib.services import imports
    from chalicelib.store import members as store
    from chalicelib.store import outbox

    row = ImportRow.model_validate(_row(0), strict=True)
    member, entries, found, _ = imports.plan_member("bench", 1, row, clock.now(), "admin:bench")
    code = member.profile["referral_code"]
    # the row's writes as services/imports.py makes them (member, ledger, referral code, outbox rows)
    ops = [store.save_op(member)] + [store.ledger_op(member.member_id, s, e) for s, e in entries]
    ops.append(store.referral_op(code, member.member_id))
    ops += [outbox.put_op(outbox.event_row(e)) for e in found]
    items = [(op["Put"]["TableName"], op["Put"]["Item"]) for op in ops]
    return json.dumps(items), member.member_id, code, [e["event_id"] for e in found]


def measure(url: str, count: int = 100_000, rounds: int = 3, log: Optional[Callable[[str], None]] = None) -> dict:
    from chalicelib.jobs import data as data_jobs
    from chalicelib.jobs import framework
    from chalicelib.services import imports

    log = log or (lambda _msg: None)
    size = _upload(count)
    template, tpl_member, tpl_code, tpl_events = _template()
    ddb = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1")
    ours_rate, floor_rate, ours_s, floor_s = [], [], [], []

    def ours(r: int) -> None:
        job_id = f"import-bench-{r}-{time.time_ns()}"
        params = {"import_id": job_id[len("import-"):], "request_hash": "bench", "s3_key": KEY}
        assert data_jobs.create("import", job_id, "admin:bench", params)
        t = time.perf_counter()
        record = framework.execute(job_id)
        took = time.perf_counter() - t
        counts = record["counts"]
        if record["status"] != "succeeded" or counts.get("imported") != count:
            raise AssertionError(f"import {record['status']}: {counts} {record.get('error')}")
        ours_s.append(took)
        ours_rate.append(count / took)

    def floor(_r: int) -> None:
        def put(rows: range) -> None:
            pending: list = []

            def flush() -> None:
                by_table: dict = {}
                for table, item in pending:
                    by_table.setdefault(table, []).append({"PutRequest": {"Item": item}})
                req = by_table
                while req:
                    req = ddb.batch_write_item(RequestItems=req).get("UnprocessedItems") or None
                pending.clear()

            for n in rows:
                member_id = f"bi-{n:07d}"
                text = template.replace(tpl_member, member_id).replace(tpl_code, f"{n:08d}")
                for event_id in tpl_events:
                    text = text.replace(event_id, event_id[:-8] + f"{n:08x}")
                for table, item in json.loads(text):
                    pending.append((table, item))
                    if len(pending) == 25:
                        flush()
            if pending:
                flush()

        workers = imports.WORKERS
        per = -(-count // workers)
        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(put, [range(i, min(i + per, count)) for i in range(0, count, per)]))
        took = time.perf_counter() - t
        floor_s.append(took)
        floor_rate.append(count / took)

    for r in range(rounds):
        for name, fn in ((("ours", ours), ("floor", floor)) if r % 2 == 0 else (("floor", floor), ("ours", ours))):
            _empty_tables()
            fn(r)
            log(f"  round {r + 1} {name}: {(ours_s if name == 'ours' else floor_s)[-1]:.1f} s")
    _empty_tables()
    value, fl = med(ours_rate), med(floor_rate)
    return entry(rnd(value, 1), rnd(fl, 1), rnd(value / fl), "reported", "rows per second",
                 rows=count, object_bytes=size, rounds=rounds, workers=imports.WORKERS, batch=imports.BATCH,
                 items_per_row=len(json.loads(template)), ours_seconds=[rnd(x, 1) for x in ours_s],
                 floor_seconds=[rnd(x, 1) for x in floor_s])


def main(argv=None) -> int:
    """`python -m bench.imports [--rows N] [--rounds R]`: this figure alone, merged into
    bench/results.json and bench/details.json."""
    import argparse
    import os

    from bench.common import ROOT, configure, emulator, fresh_stack

    parser = argparse.ArgumentParser(prog="python -m bench.imports")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(ROOT, "bench"))
    args = parser.parse_args(argv)
    with emulator() as url:
        configure(url)
        fresh_stack(url)
        from chalicelib.bootstrap import create_buckets

        create_buckets()
        result = measure(url, count=args.rows, rounds=args.rounds, log=print)
    print(json.dumps({k: v for k, v in result.items() if k != "_details"}), json.dumps(result["_details"]))
    from bench.__main__ import _write_extra

    _write_extra({"import_rows_per_s": result}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
