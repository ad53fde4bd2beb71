"""AWS on-demand list prices used by `cost_per_million` (us-east-1).

These are the prices AWS publishes on its pricing pages for US East (N. Virginia), as
list prices: no free tier, no volume tiers beyond the first, no savings plans, no
negotiated discounts. The bench machine has no internet access, so they were not
fetched: they are the published figures as they stood when this table was written,
valid from 2024-11-01 (when DynamoDB on-demand throughput prices were halved) and
unchanged through 2025 as far as known. Check the pages below before quoting a figure
to a customer; a change of price is an edit of this table only.
"""
from __future__ import annotations

REGION = "us-east-1"
TAKEN = "2025-06-01"  # the date the table reflects (prices valid since 2024-11-01)
BASIS = ("list prices as published by AWS for us-east-1 (on-demand, first volume tier, no free tier); "
         "written from the published pricing pages, not fetched by the bench (no internet here)")

PRICES = {
    # API Gateway REST API: $3.50 per million requests for the first 333 million a month.
    "apigw_rest_per_million_requests": 3.50,
    # API Gateway HTTP API (for comparison only; this service is deployed as a REST API).
    "apigw_http_per_million_requests": 1.00,
    # Lambda (x86_64): $0.20 per million requests, $0.0000166667 per GB-second, billed per 1 ms.
    "lambda_per_million_requests": 0.20,
    "lambda_per_gb_second": 0.0000166667,
    # DynamoDB on-demand (Standard table class): per million request units.
    "dynamodb_per_million_wru": 0.625,
    "dynamodb_per_million_rru": 0.125,
    # After the commit (not the request's own bill): SQS standard and EventBridge custom events.
    "sqs_per_million_requests": 0.40,
    "eventbridge_per_million_events": 1.00,
}

SOURCES = {
    "apigw": "https://aws.amazon.com/api-gateway/pricing/",
    "lambda": "https://aws.amazon.com/lambda/pricing/",
    "dynamodb": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "sqs": "https://aws.amazon.com/sqs/pricing/",
    "eventbridge": "https://aws.amazon.com/eventbridge/pricing/",
}


def table() -> dict:
    """The price table as results carry it: prices, region, date and basis."""
    return {"region": REGION, "taken": TAKEN, "basis": BASIS, "usd": dict(PRICES), "sources": dict(SOURCES)}
