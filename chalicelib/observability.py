"""Structured JSON logs and CloudWatch metrics (Powertools), created on first use.

Logs carry a correlation id (API Gateway's request id, or the caller's
`X-Request-Id`) and the route *template* (never the concrete path, which holds
member ids); no names, emails or tokens are logged. Metrics use CloudWatch
embedded metric format; the local stage does not emit them.
"""
from __future__ import annotations

import functools
from typing import Optional

from chalicelib.config import get_settings

NAMESPACE = "Loyalty"


@functools.lru_cache(maxsize=1)
def logger():
    from aws_lambda_powertools import Logger

    return Logger(service="loyalty", level="INFO" if not get_settings().is_local else "WARNING")


def request_log(method: str, route: str, status: int, millis: float, correlation_id: Optional[str],
                roles: tuple) -> None:
    log = logger()
    if correlation_id:
        log.set_correlation_id(correlation_id)
    log.info("request", extra={"method": method, "route": route, "status": status,
                               "duration_ms": round(millis, 2), "roles": list(roles)})


def count(metric: str, value: int = 1, **dimensions: str) -> None:
    """One metric data point (accruals, redemptions, coupon uses, messages queued...)."""
    if get_settings().is_local or value == 0:
        return
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(name=metric, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as m:
        m.add_dimension(name="stage", value=get_settings().stage)
        for key, val in dimensions.items():
            m.add_dimension(name=key, value=val)
