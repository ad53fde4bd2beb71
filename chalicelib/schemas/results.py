"""The uplift report of a message campaign or an automation (SPEC 2.18, 4.5; docs/UPLIFT.md)."""
from __future__ import annotations

from typing import Literal, Optional

from chalicelib.schemas.common import Out


class GroupStats(Out):
    members: int
    converters: int
    conversion_rate: Optional[float]  # converters / members, 4 decimals; null when empty
    revenue: int  # net of refunds, of the attributed orders
    revenue_per_member: Optional[float]  # 4 decimals; null when empty


class Uplift(Out):
    conversion_rate_diff: Optional[float]  # treatment − control
    ci95: Optional[list[float]]  # [low, high]
    p_value: Optional[float]  # two-sided pooled two-proportion z-test
    incremental_revenue: Optional[int]  # floor((rpm_t − rpm_c) × n_t)


class Guidance(Out):
    conclusive: bool  # both groups ≥ min_group_size members and p_value < 0.05
    minimum_detectable_effect: Optional[float]  # smallest detectable rate difference (80% power, 5%)
    min_group_size: int
    verdict: Literal["no_control", "no_treatment", "too_small", "positive", "negative", "inconclusive"]


class UpliftReport(Out):
    attribution_days: int
    as_of: str
    treatment: GroupStats
    control: GroupStats
    uplift: Uplift
    guidance: Guidance
