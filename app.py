"""Chalice app: registers blueprints, schedules and the jobs worker. No logic, no boto3."""
import gc
import os

# Cold start: the routes and request models built below live as long as the container.
# Building them with the cyclic GC paused and then freezing them spares the import a
# full collection (~25 ms, most of this module's own import time) and every later
# collection a walk over them (docs/PERFORMANCE.md).
gc.disable()

from chalice import Chalice, Cron, Rate  # noqa: E402

# urllib3 (botocore's HTTP layer, loaded by the first store module below anyway) is imported here, at the
# top of the stack: its URL regexes are compiled by deeply recursive Python, and at the depth the store
# import reaches, that recursion keeps crossing a boundary of CPython 3.11's frame-stack chunks, which
# are mapped and unmapped at every crossing: ~15 ms more CPU for the same module (docs/PERFORMANCE.md).
import urllib3  # noqa: E402,F401

from chalicelib.api import (  # noqa: E402
    admin, console, coupons, data, finance, holds, http, jobs, marketing, members, results, rewards, simulate,
    system, transfers, webhooks)

app = Chalice(app_name="loyalty")

# One blueprint per resource (SPEC 4.4 and 4.5); each imports its services on first use.
for blueprint in (system, members, rewards, coupons, marketing, admin, jobs, console, holds, transfers, webhooks,
                  data, finance, results, simulate):
    app.register_blueprint(blueprint.bp)
http.install_fallbacks(app)  # 405 for a known path's other methods, 404 for unknown paths
app.register_middleware(http.spec_shaped_errors, "http")

gc.freeze()
gc.enable()

STAGE = os.environ.get("LOYALTY_STAGE", "dev")


def _scheduled(job: str, event) -> None:
    from chalicelib.jobs.schedules import run_scheduled

    run_scheduled(job, event.time)


# Daily jobs (UTC); times are staggered so tiers see yesterday's expiry and scores.
@app.schedule(Cron(10, 0, "*", "*", "?", "*"), name="expire-points")
def expire_points(event):
    _scheduled("expire-points", event)


@app.schedule(Cron(20, 0, "*", "*", "?", "*"), name="expire-vouchers")
def expire_vouchers(event):
    _scheduled("expire-vouchers", event)


@app.schedule(Cron(30, 0, "*", "*", "?", "*"), name="recalculate-tiers")
def recalculate_tiers(event):
    _scheduled("recalculate-tiers", event)


@app.schedule(Cron(0, 1, "*", "*", "?", "*"), name="score-rfm")
def score_rfm(event):
    _scheduled("score-rfm", event)


@app.schedule(Cron(0, 2, "*", "*", "?", "*"), name="report-liability")
def report_liability(event):
    _scheduled("report-liability", event)  # after the night's expiry (SPEC 2.17, docs/FINANCE.md)


@app.schedule(Cron(30, 2, "*", "*", "?", "*"), name="measure-campaigns")
def measure_campaigns(event):
    _scheduled("measure-campaigns", event)


@app.schedule(Cron(0, 9, "*", "*", "?", "*"), name="run-automations")
def run_automations(event):
    _scheduled("run-automations", event)


# Hourly jobs.
@app.schedule(Rate(1, unit=Rate.HOURS), name="mature-points")
def mature_points(event):
    _scheduled("mature-points", event)


@app.schedule(Rate(1, unit=Rate.HOURS), name="release-holds")
def release_holds(event):
    _scheduled("release-holds", event)


@app.schedule(Rate(1, unit=Rate.HOURS), name="run-triggers")
def run_triggers(event):
    _scheduled("run-triggers", event)


@app.lambda_function(name="outbox-relay")
def outbox_relay(event, context):
    """The outbox table's DynamoDB stream (wired in infra/) → the campaign queue."""
    from chalicelib import relay

    return relay.handle_stream_event(event)


@app.on_sqs_message(queue=f"loyalty-{STAGE}-webhook-deliveries", batch_size=10, name="webhook-delivery")
def webhook_delivery(event):
    """Webhook deliveries (production; docs/WEBHOOKS.md): partial batch failures name the
    messages to bring back when their next attempt is due."""
    from chalicelib.services import webhooks

    return webhooks.handle_queue_event([record.to_dict() for record in event])


@app.on_sqs_message(queue=f"loyalty-{STAGE}-jobs", batch_size=1, name="jobs-worker")
def jobs_worker(event):
    from chalicelib.jobs.framework import handle_worker_message

    remaining = event.context.get_remaining_time_in_millis() if event.context else None
    for record in event:
        handle_worker_message(record.body, remaining)
