"""Which lifecycle automations are due for a member on a day (SPEC 2.12). Pure.

Each due automation has a `period`: the message_id is derived from (automation,
member, period), so a re-run on the same day — or on later days while the same
condition holds — never queues it twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Optional

from chalicelib.clock import parse_instant


@dataclass(frozen=True)
class Due:
    automation: str
    period: str
    variables: dict = field(default_factory=dict)
    cs_alert: bool = False  # goes to the cs_alert channel, not a marketing message


def _days(since: Optional[str], today: date) -> Optional[int]:
    return (today - parse_instant(since).date()).days if since else None


def _birthday_today(birthday: Optional[str], today: date) -> bool:
    if not birthday:
        return False
    mm_dd = today.strftime("%m-%d")
    if birthday == "02-29" and mm_dd == "02-28":
        leap = today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0)
        return not leap  # born on 29 February: celebrated on the 28th in common years
    return birthday == mm_dd


def due_automations(view: dict, state: dict, as_of: datetime, config: dict) -> list[Due]:
    """`view` is the member's API view at `as_of`; `state` the stored state; `config`
    maps automation name → its settings dict (with `enabled`)."""
    today = as_of.date()
    out: list[Due] = []

    def on(name: str) -> Optional[dict]:
        c = config.get(name) or {"enabled": True}  # an automation missing from config is on (defaults)
        return c if c.get("enabled", True) else None

    enrolled = _days(view.get("enrolled_at"), today)
    orders = state.get("orders") or {}
    count = int(orders.get("count", 0))
    tier = view["tier"]
    base = {"points": view["points"]["available"], "tier": tier["tier_id"], "next_tier": tier["next_tier"],
            "spend_to_next_tier": tier["spend_to_next_tier"]}

    if (c := on("welcome")) and enrolled == int(c.get("days_after_enrolment", 0)):
        out.append(Due("welcome", "once", base))
    if (c := on("onboarding_step")) and enrolled in [int(d) for d in c.get("days", [7, 30])]:
        out.append(Due("onboarding_step", f"day{enrolled}", {**base, "step_day": enrolled}))
    first = _days(orders.get("first_at"), today)
    if (c := on("f2_nudge")) and count == 1 and first is not None and first >= int(c.get("days_after_first_order", 14)):
        out.append(Due("f2_nudge", orders["first_at"][:10], base))
    last = _days(orders.get("last_at"), today)
    if (c := on("dormant")) and count >= 1 and last is not None and last >= int(c.get("days_without_order", 90)):
        out.append(Due("dormant", orders["last_at"][:10], base))
    if on("birthday") and _birthday_today(view.get("birthday"), today):
        out.append(Due("birthday", str(today.year), base))
    if (c := on("points_expiring")):
        horizon = int(c.get("within_days", 30))
        soon = [e for e in view["points"]["expiring_soon"]
                if (parse_instant(e["expires_at"]).date() - today).days <= horizon]
        if soon:
            first_exp = soon[0]
            out.append(Due("points_expiring", first_exp["expires_at"][:7],
                           {**base, "expiring_points": sum(e["points"] for e in soon),
                            "expiring_at": first_exp["expires_at"]}))
    if (c := on("near_next_tier")) and tier["next_tier"] and tier["spend_to_next_tier"] is not None:
        threshold = tier["qualifying_spend"] + tier["spend_to_next_tier"]
        if 0 < tier["spend_to_next_tier"] * 100 <= threshold * int(c.get("within_percent", 10)):
            out.append(Due("near_next_tier", f"{tier['next_tier']}@{today.strftime('%Y-%m')}", base))
    segment = view.get("segment") or {}
    if (c := on("churn_risk")) and segment.get("label") in c.get("segments", ["at_risk", "cant_lose"]) \
            and segment.get("previous_label") not in c.get("segments", ["at_risk", "cant_lose"]):
        out.append(Due("churn_risk", f"{segment['label']}@{segment.get('scored_at', '')[:10]}",
                       {**base, "segment": segment["label"], "ltv_12m": segment.get("ltv_12m", 0)},
                       cs_alert=segment.get("touch") == "high_touch"))
    return out
