"""Smoke tests of the benchmark harness (`make bench`), on in-process moto: the call
counter, the emulator's fidelity fixes (same results as moto, per-item cost) and the
shape of results.json. Benchmarks themselves never run in `make test`."""
from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from bench import report
from bench.common import CallCounter, entry
from bench.emulator import fidelity_fixes


@pytest.fixture
def ddb(aws_env):
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="t", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                             BillingMode="PAY_PER_REQUEST")
        yield client


def _pages(client, segment: int, total: int, limit: int) -> list:
    out, kwargs = [], {"TableName": "t", "Segment": segment, "TotalSegments": total, "Limit": limit}
    while True:
        page = client.scan(**kwargs)
        out.append(([i["k"]["S"] for i in page["Items"]], page.get("LastEvaluatedKey")))
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_call_counter_counts_every_call_by_operation_until_detached(ddb):
    counter = CallCounter().attach(ddb, "dynamodb")
    ddb.put_item(TableName="t", Item={"k": {"S": "a"}})
    ddb.put_item(TableName="t", Item={"k": {"S": "b"}})
    ddb.get_item(TableName="t", Key={"k": {"S": "a"}})
    assert counter.by_operation("dynamodb") == {"GetItem": 1, "PutItem": 2}
    assert counter.total("dynamodb") == 3 and counter.total("sqs") == 0
    counter.detach()
    ddb.get_item(TableName="t", Key={"k": {"S": "b"}})
    assert counter.total("dynamodb") == 3


def test_the_fixed_scan_returns_moto_s_own_pages(ddb):
    for start in range(0, 300, 25):
        ddb.batch_write_item(RequestItems={"t": [{"PutRequest": {"Item": {"k": {"S": f"k{j:04d}"}}}}
                                                 for j in range(start, start + 25)]})
    expected = [_pages(ddb, s, 4, 17) for s in range(4)]
    with fidelity_fixes():
        got = [_pages(ddb, s, 4, 17) for s in range(4)]
        ddb.delete_item(TableName="t", Key={"k": {"S": "k0005"}})
        ddb.put_item(TableName="t", Item={"k": {"S": "k0005x"}})
        changed = [_pages(ddb, s, 3, 50) for s in range(3)]
    assert got == expected
    assert sum(len(items) for seg in got for items, _ in seg) == 300
    assert changed == [_pages(ddb, s, 3, 50) for s in range(3)]  # moto again, after the fixes are undone


def test_a_cancelled_transaction_leaves_every_item_as_it_was(ddb):
    ddb.put_item(TableName="t", Item={"k": {"S": "a"}, "v": {"N": "1"}})
    with fidelity_fixes():
        with pytest.raises(ddb.exceptions.TransactionCanceledException):
            ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": "t", "Item": {"k": {"S": "new"}}}},
                {"Update": {"TableName": "t", "Key": {"k": {"S": "a"}}, "UpdateExpression": "SET v = :n",
                            "ExpressionAttributeValues": {":n": {"N": "2"}}}},
                {"ConditionCheck": {"TableName": "t", "Key": {"k": {"S": "missing"}},
                                    "ConditionExpression": "attribute_exists(k)"}}])
        assert "Item" not in ddb.get_item(TableName="t", Key={"k": {"S": "new"}})
        assert ddb.get_item(TableName="t", Key={"k": {"S": "a"}})["Item"]["v"] == {"N": "1"}
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": "t", "Key": {"k": {"S": "a"}}, "UpdateExpression": "SET v = :n",
                        "ExpressionAttributeValues": {":n": {"N": "3"}}}}])
    assert ddb.get_item(TableName="t", Key={"k": {"S": "a"}})["Item"]["v"] == {"N": "3"}


def test_results_json_keeps_exactly_the_spec_fields():
    results = {
        "cold_import_ratio": entry(108.0, 100.0, 1.08, "<= 1.1", "ms", runs=[1, 2]),
        "accrual_ratio": entry(80.0, 100.0, 0.8, ">= 0.85", "accruals/s"),
    }
    public, details = report.split(results)
    assert list(public) == ["cold_import_ratio", "accrual_ratio"]
    assert set(public["cold_import_ratio"]) == {"value", "floor", "ratio", "goal", "unit"}
    assert details["cold_import_ratio"] == {"runs": [1, 2]}
    assert report.verdicts(public) == {"cold_import_ratio": True, "accrual_ratio": False}


def test_fan_out_line_says_how_busy_the_emulator_was_and_the_ratio_it_allows():
    fan = entry(1500.0, 2500.0, 0.6, ">= 0.5", "messages/s", dynamodb_calls_per_1000=23.0,
                emulator_cpu_s_per_1000={"ours": 0.5, "floor": 0.25})
    fan["sqs_calls_per_1000"] = 100.0
    public, details = report.split({"fanout_ratio": fan})
    meta = {"finished_at": "now", "machine": "here", "seconds": 1.0}
    text = report.markdown(public, details, meta, None)
    # 1,500 msg/s × 0.5 ms of emulator CPU each = 75% busy; flat out it would do 2,000/s = 0.8 of 2,500
    assert "0.5 s for ours (busy 75% of the time), 0.25 s for the floor, so the ratio cannot pass 0.80" in text
    details["fanout_ratio"]["emulator_cpu_s_per_1000"] = {"ours": None, "floor": None}  # no /proc
    assert "23.0 DynamoDB calls per 1,000 messages.\n" in report.markdown(public, details, meta, None)


def test_recalculate_tiers_sends_its_messages_ten_per_batch(api):
    """The job's tier_changed messages go out ten per SendMessageBatch (a bench-driven fix), all of
    them: one segment, one page of 12 changes = a batch of 10 when full and one of 2 at the page end."""
    from chalicelib import clock
    from chalicelib.jobs import framework
    from chalicelib.messaging import queue_url, sqs_client

    for n in range(12):
        api.enrol(f"t{n}")
        assert api.accrue(f"t{n}", 60000, now="2025-01-15T10:00:00Z").body["tier_change"] == {
            "from": "bronze", "to": "silver"}
    sqs_client().purge_queue(QueueUrl=queue_url())
    job = framework.create("recalculate-tiers", clock.parse_instant("2026-03-01"), "test", segments=1)
    counter = CallCounter().attach(sqs_client(), "sqs")
    try:
        done = framework.execute(job["job_id"])
    finally:
        counter.detach()
    assert done["counts"]["changed"] == 12
    assert counter.by_operation("sqs") == {"SendMessageBatch": 2}
    msgs = []
    while batch := sqs_client().receive_message(QueueUrl=queue_url(), MaxNumberOfMessages=10).get("Messages"):
        msgs += [json.loads(m["Body"]) for m in batch]
    assert sorted(m["member_id"] for m in msgs) == sorted(f"t{n}" for n in range(12))
    assert {m["variables"]["tier"] for m in msgs} == {"bronze"}


# --- issue 23: item growth, cost per million, load, the report --------------------------

def test_item_size_follows_dynamodb_s_rules_and_write_units_step_per_started_kb():
    from bench.item_growth import item_size, write_units

    # names count; a string is its UTF-8 bytes; a number ~1 byte per 2 significant digits + 1
    assert item_size({"id": {"S": "abc"}}) == 2 + 3
    assert item_size({"k": {"S": "さ"}}) == 1 + 3
    assert item_size({"n": {"N": "12345"}}) == 1 + 4
    assert item_size({"n": {"N": "1000"}}) == 1 + 2  # trailing zeros are not significant
    assert item_size({"m": {"M": {"a": {"N": "1"}}}}) == 1 + 3 + (1 + 2 + 1)
    assert (write_units(1), write_units(1024), write_units(1025), write_units(2048), write_units(2049)) == (2, 2, 4, 4, 6)


def test_a_put_replacing_a_larger_item_bills_the_larger_one():
    from bench import item_growth

    item_growth._KEYS["t"] = ["k"]
    big = {"k": {"S": "a"}, "blob": {"S": "x" * 1500}}
    ops = [{"Put": {"TableName": "t", "Item": {"k": {"S": "a"}, "v": {"N": "1"}}}},
           {"Put": {"TableName": "t", "Item": {"k": {"S": "new"}}}},
           {"ConditionCheck": {"TableName": "t", "Key": {"k": {"S": "a"}}, "ConditionExpression": "attribute_exists(k)"}}]
    units = item_growth.transaction_units(ops, lambda table, key: big if key == {"k": {"S": "a"}} else None)
    assert [u["wru"] for u in units] == [4, 2, 4]
    assert units[0]["bytes"] == item_growth.item_size(big) == 1 + 1 + 4 + 1500


def test_dollars_per_million_add_up_from_the_price_table():
    from bench import cost, prices

    p = prices.PRICES
    got = cost.per_million(9.2, 1024, rru=1, wru=10)
    lam = 0.010 * 1.0 * p["lambda_per_gb_second"] * 1e6  # billed per started ms: 10 ms at 1 GB
    assert got["lambda_duration"] == round(lam, 4)
    assert got["total"] == round(p["apigw_rest_per_million_requests"] + p["lambda_per_million_requests"] + lam
                                 + 1 * p["dynamodb_per_million_rru"] + 10 * p["dynamodb_per_million_wru"], 3)
    assert got["dynamodb_writes"] == 6.25 and got["api_gateway"] == 3.5
    half = cost.per_million(9.2, 512, rru=1, wru=10)
    assert half["lambda_duration"] == round(lam / 2, 4)
    assert prices.table()["taken"] and prices.table()["region"] == "us-east-1"
    assert cost.lambda_memory_mb("prod") == json.load(open(".chalice/config.json"))["stages"]["prod"]["lambda_memory_size"]


def test_the_load_figure_counts_every_5xx_and_a_broken_invariant(monkeypatch):
    from bench import load

    fake = {"status_counts": {"200": 90, "201": 40, "503": 2}, "rounds_requests_per_second": [100.0, 120.0, 110.0],
              "floor": {"route": "GET /v1/health", "rounds_requests_per_second": [200.0, 220.0],
                        "latency_all_ms": {"p50": 40.0, "p99": 50.0}},
              "latency_all_ms": {"n": 132, "p50": 60.0, "p95": 80.0, "p99": 95.0}, "invariant_broken": ["m1"],
              "members_checked": 50, "seconds": 20.0, "requests": 132, "errors": {}, "latency_ms": {}}
    monkeypatch.setattr(load, "run", lambda *a, **k: fake)
    e = load.measure()
    assert e["value"]["5xx"] == 2 and e["value"]["invariant_broken"] == 1
    assert e["value"]["requests_per_second"] == 110.0 and e["floor"]["requests_per_second"] == 210.0
    assert e["ratio"] == round(110 / 210, 3) and not load.met(e)
    public, _ = report.split({"load": e})
    assert report.verdicts(public) == {"load": False}


def test_the_report_renders_and_plots_every_new_figure(tmp_path):
    from bench.common import entry as e_

    growth = e_({"member_item_bytes": 1903, "accrual_wru": 10}, {"member_item_bytes": 851, "accrual_wru": 8},
                {"member_item_bytes": 2.236, "accrual_wru": 1.25},
                {"member_item_bytes": "heavy <= 4096", "accrual_wru": "heavy / new <= 1.25"}, "bytes",
                days=730, heavy_members=2, rounds=5, build_seconds=9.0, heavy_handler_ms=[6.0, 6.5],
                new_handler_ms=[6.1, 6.2], heavy_state_bytes={"orders.recent": 480},
                new_transaction=[{"table": "loyalty-local-members", "kind": "Put", "bytes": 851, "wru": 2}],
                heavy_transaction=[{"table": "loyalty-local-members", "kind": "Put", "bytes": 1903, "wru": 4}])
    parts = {"total": 9.0, "api_gateway": 3.5, "lambda_requests": 0.2, "lambda_duration": 0.1, "dynamodb_reads": 0.125,
             "dynamodb_writes": 5.0}
    from bench import prices

    cost = e_({"accrual_new_member": 9.0}, {"accrual_new_member": 8.9}, {"accrual_new_member": 1.011}, "reported",
              "USD", prices=prices.table(), lambda_memory_mb=1024, lambda_memory_stage="prod",
              handler_ms={"accrual": 7.0, "read": 3.0, "accrual_calls": 6.0, "read_calls": 2.5, "accrual_floor": 6.5,
                          "read_floor": 2.8},
              handler_runs_ms={"accrual": [7.0, 7.2], "read": [3.0, 3.1]}, breakdown={"accrual_new_member": parts},
              after_commit_per_accrual={"outbox_delete": 0.625, "eventbridge_event": 1.0})
    results = {"item_growth": growth, "cost_per_million": cost,
               "score_rfm": {"value": {"10000": 900.0}, "floor": {"10000": 1000.0}, "ratio": 0.9, "goal": "x", "unit": "m/s"}}
    meta = {"finished_at": "now", "machine": "here", "seconds": 1.0}
    verdicts = report.write(results, str(tmp_path), meta)
    assert verdicts == {"item_growth": True, "cost_per_million": None}
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| `item_growth` write units of one accrual | 10 | 8 | 1.25 |" in text
    assert "| `cost_per_million` accrual new member | $9.00 | $8.90 (bare calls) |" in text
    assert "| `score_rfm` |" in text  # another module's figure gets its row and plot
    for name in ("plot_item_growth.png", "plot_cost.png", "plot_score_rfm.png"):
        assert (tmp_path / name).stat().st_size > 1000 and f"]({name})" in text
    assert set(json.loads((tmp_path / "results.json").read_text())) == {"item_growth", "cost_per_million"}


def test_the_latest_figures_block_is_spliced_between_the_markers_only(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text(f"# t\n\nbefore\n{report.MARK_START}\nold figures\n{report.MARK_END}\nafter\n")
    public, details = report.split({"cold_import_ratio": entry(108.0, 100.0, 1.08, "<= 1.1", "ms",
                                                                app_runs_ms=[108.0, 110.0], floor_runs_ms=[100.0, 100.0])})
    block = report.latest_block(public, details, {"finished_at": "2026-12-02 03:00 UTC", "machine": "2 CPUs",
                                                   "seconds": 60.0})
    assert "| `cold_import_ratio` | 108.0 | 100.0 | 1.08 | rounds 1.080–1.100 | <= 1.1 | ms | met |" in block
    assert report.splice(str(doc), block)
    text = doc.read_text()
    assert text.startswith("# t\n\nbefore\n") and text.endswith(f"{report.MARK_END}\nafter\n")
    assert "old figures" not in text and "2026-12-02 03:00 UTC" in text
    plain = tmp_path / "other.md"
    plain.write_text("no markers\n")
    assert not report.splice(str(plain), block) and plain.read_text() == "no markers\n"


def test_a_full_run_checkpoints_each_figure_and_its_module_time(tmp_path):
    """A run stopped part-way (a timeout) keeps the figures it finished: results.json and
    details.json are written after each figure, with each module's wall seconds."""
    from bench.__main__ import Results

    results = Results(str(tmp_path), started=0.0, checkpoint=True)
    results["cold_import_ratio"] = entry(100.0, 95.0, 1.053, "<= 1.1", "ms (CPU)", rounds=7)
    results["score_rfm"] = {"value": {"10000": 50.0}, "floor": None, "ratio": 1.1, "goal": "x", "unit": "m/s",
                            "met": True, "_details": {"runs": {}}}
    public = json.loads((tmp_path / "results.json").read_text())
    details = json.loads((tmp_path / "details.json").read_text())
    assert set(public) == {"cold_import_ratio", "score_rfm"}
    assert details["meta"]["measured"] == ["cold_import_ratio", "score_rfm"]
    assert set(details["meta"]["module_seconds"]) == {"cold_import_ratio", "score_rfm"}
    assert details["cold_import_ratio"] == {"rounds": 7}


def test_the_other_figures_are_judged_by_their_own_goals():
    assert report.other_verdict("score_rfm", {"met": False}) is False
    assert report.other_verdict("ltv_quality", {"value": 0.44, "_details": {"met": True}}) is True
    assert report.other_verdict("emulator_scale", {"ratio": {"per_member_memory": 1.0, "accrual_latency": 1.6}}) is False
    assert report.other_verdict("emulator_scale", {"ratio": {"per_member_memory": 1.0, "accrual_latency": 0.8}}) is True
    assert report.other_verdict("import_rows_per_s", {"value": 270.0, "goal": "reported"}) is None


def test_the_bench_emulator_s_bulk_put_stores_the_items_batch_write_would(ddb):
    """Seeding (`bench/tiers.py`) puts its items straight into the emulator's table, as
    BatchWriteItem's own `put_item` would: the same items, read back alike."""
    import io
    import threading

    from bench.emulator import PUT_PATH, BenchApp

    class Locked:
        lock, calls = threading.Lock(), 0

        def __call__(self, environ, start_response):
            raise AssertionError("not the bulk path")

    items = [{"k": {"S": f"m{i}"}, "state": {"S": '{"tier": "gold"}'}, "version": {"N": "3"}} for i in range(30)]
    body = json.dumps({"table": "t", "items": items}).encode()
    answered = []
    out = BenchApp(Locked())({"PATH_INFO": PUT_PATH, "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)},
                             lambda status, headers: answered.append(status))
    assert answered == ["200 OK"] and json.loads(b"".join(out)) == {"put": 30}
    got = sorted(ddb.scan(TableName="t")["Items"], key=lambda i: int(i["k"]["S"][1:]))
    assert got == items


def test_the_fresh_customers_are_the_full_cohort_without_a_single_sample_customer():
    from bench import ltv_quality

    sample = ltv_quality.load()
    fresh = ltv_quality.load_fresh(sample)
    assert (len(sample), len(fresh)) == (2357, 21213)
    assert not set(sample) & set(fresh)
    # purchases of one day are one order, in cents: master's first rows are 00001 (11.77 on 1997-01-01) ...
    from datetime import date

    assert fresh["00001"][date(1997, 1, 1)] == 1177
    assert sum(len(v) for v in fresh.values()) > 50_000


def test_online_retail_is_its_purchases_in_exact_cents_one_order_a_customer_day(tmp_path):
    import gzip
    from datetime import date

    from bench import ltv_quality

    lines = [  # the published columns; a customer id as a Spark export writes it ("17850.0")
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country",
        "536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",   # 1530
        "536365,71053,LANTERN,3,2010-12-01 08:26:00,0.335,17850.0,United Kingdom",  # 100.5 → 100 (half to even)
        "536366,22633,WARMER,6,2010-12-01 08:28:00,1.85,17850.0,United Kingdom",    # same day: one order
        "C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,17850.0,United Kingdom",    # a cancellation
        "536380,22961,JAM,4,2010-12-02 09:41:00,1.45,,United Kingdom",              # no customer
        "536381,22139,TEA SET,-2,2010-12-03 10:00:00,4.95,13047.0,United Kingdom",  # no positive amount
        '536382,"22086","CHAIN, KIT",1,2010-12-03 10:05:00,2.55,12583.0,France',
    ]
    (tmp_path / "lines.csv").write_text("\n".join(lines) + "\n")
    tx = ltv_quality.load_retail(str(tmp_path / "lines.csv"))
    assert {c: dict(days) for c, days in tx.items()} == {"17850": {date(2010, 12, 1): 1530 + 100 + 1110},
                                                          "12583": {date(2010, 12, 3): 255}}
    # Online Retail II's column names, a spreadsheet's month-first dates and gzip read the same
    ii = ["Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country",
          "489434,85048,LIGHTS,12,12/1/2009 7:45,6.95,13085,United Kingdom",
          "489435,22350,CAT BOWL,12,12/1/2009 7:46,2.55,13085,United Kingdom"]
    with gzip.open(tmp_path / "ii.csv.gz", "wt") as f:
        f.write("\n".join(ii) + "\n")
    assert {c: dict(d) for c, d in ltv_quality.load_retail(str(tmp_path / "ii.csv.gz")).items()} == {
        "13085": {date(2009, 12, 1): 8340 + 3060}}


def test_ltv_quality_is_met_only_when_both_pre_registered_data_sets_ran_and_met_every_goal():
    from bench import ltv_quality

    met = {"spearman": {"met": True}, "top20_capture": {"met": True}, "total_ratio": {"met": True},
           "auc_bought_again": {"met": True}}
    missed = {**met, "total_ratio": {"met": False}}
    assert ltv_quality.judged({"online_retail": met, "cdnow_fresh": met})
    assert not ltv_quality.judged({"online_retail": missed, "cdnow_fresh": met})
    assert not ltv_quality.judged({"online_retail": met, "cdnow_fresh": missed})
    assert not ltv_quality.judged({"online_retail": None, "cdnow_fresh": met})  # not given: half the test not run
    assert not ltv_quality.judged({"cdnow_fresh": met})


def test_ltv_quality_judges_the_four_goals_and_plots_them_per_data_set(tmp_path):
    from bench import ltv_quality

    r = {"spearman": {"ours": 0.59, "reference": 0.55, "difference_90ci": [0.03, 0.06]},
         "top20_capture": {"ours": 0.676, "reference": 0.665}, "total_ratio": {"ours": 0.797, "reference": 0.671},
         "auc_bought_again": {"ours_p_alive": 0.742, "reference_p_any_purchase": 0.733}}
    g = ltv_quality.goals(r)
    assert [v["met"] for v in g.values()] == [True, True, False, True] and not ltv_quality.verdict(r)
    assert ltv_quality.verdict({**r, "total_ratio": {"ours": 0.91, "reference": 0.67}})
    assert not ltv_quality.verdict({**r, "total_ratio": {"ours": 0.95, "reference": 0.67},
                                    "spearman": {"ours": 0.59, "reference": 0.55, "difference_90ci": [-0.001, 0.06]}})
    e = {"value": 0.59, "floor": 0.55, "ratio": 1.07, "goal": "x", "unit": "spearman",
         "goals": {"online_retail": g, "cdnow_fresh": g}, "_details": {"met": False}}
    report.write({"ltv_quality": e}, str(tmp_path), {"finished_at": "now", "machine": "here", "seconds": 1.0,
                                                     "merged": {"ltv_quality": "re-measured later"}})
    text = (tmp_path / "RESULTS.md").read_text()
    assert "`ltv_quality` is not this run's: re-measured later." in text  # a figure merged in by hand is named
    assert (tmp_path / "plot_ltv_quality.png").stat().st_size > 1000 and "](plot_ltv_quality.png)" in text
    assert "| `ltv_quality` |" in text and "**missed**" in text
    # a data set that was not run is named on the plot, without bars
    (tmp_path / "one").mkdir()
    report.write({"ltv_quality": {**e, "goals": {"online_retail": None, "cdnow_fresh": g}}}, str(tmp_path / "one"),
                 {"finished_at": "now", "machine": "here", "seconds": 1.0})
    assert (tmp_path / "one" / "plot_ltv_quality.png").stat().st_size > 1000
