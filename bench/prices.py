"""AWS on-demand list prices used by `cost_per_million` (us-east-1).

These are list prices for US East (N. Virginia): no free tier, no volume tiers beyond the
first, no savings plans, no negotiated discounts. They were written from memory of
AWS's published pricing pages (the SOURCES below) as they stood in mid-2025 (valid from
2024-11-01, when DynamoDB on-demand throughput prices were halved). They have NOT been
re-fetched: this machine reaches package registries only, not aws.amazon.com.

What was cross-checked on 2026-12-02 (CHECKED), against stored, undated copies of public
pages, not the live pricing pages:
- API Gateway REST $3.50 per million (first 333 million a month) and HTTP $1.00 (first
  300 million): the cost table of AWS's whitepaper "Best Practices for Designing Amazon
  API Gateway Private APIs and Private Integration" (docs.aws.amazon.com).
- Lambda $0.20 per million requests and $0.0000166667 per GB-second (x86, first 6 billion
  GB-seconds): AWS's whitepaper "How AWS Pricing Works" (it rounds to $0.00001667) and a
  third-party guide (cloudchipr.com, 2024).
- DynamoDB on-demand $0.625 per million WRU and $0.125 per million RRU: a third-party page
  only (airbyte.com); AWS's own on-demand page was not among the stored copies.
- SQS ($0.40) and EventBridge ($1.00): not cross-checked.
Check the pages below before quoting a figure to a customer; a change of price is an edit
of this table only.
"""
from __future__ import annotations

REGION = "us-east-1"
TAKEN = "2025-06-01"  # the date the table reflects (prices valid since 2024-11-01)
CHECKED = "2026-12-02"  # cross-checked against stored copies of public pages (not re-fetched; see above)
BASIS = ("list prices as published by AWS for us-east-1 (on-demand, first volume tier, no free tier); "
         "written from memory of the published pricing pages, not re-fetched (no internet here); API Gateway "
         "and Lambda cross-checked on 2026-12-02 against stored copies of AWS whitepapers, DynamoDB against a "
         "third-party page only, SQS and EventBridge not checked")

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
    return {"region": REGION, "taken": TAKEN, "checked": CHECKED, "basis": BASIS, "usd": dict(PRICES),
            "sources": dict(SOURCES)}
