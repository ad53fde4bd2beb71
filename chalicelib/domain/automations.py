"""Lifecycle automations due for a member on a day, and the outreach rules (SPEC 2.12). Pure.

Each due automation has a `period`: the message_id is derived from (automation, member,
period), so a re-run on the same day — or on a later day while the same condition
holds — never queues it twice. Automations that wait for a condition (F2 nudge,
dormant) fire inside a catch-up window, so a message the weekly cap held back goes out
on a later day instead of being lost, and a condition that has held for years does not
fire again once its dedupe entry has aged out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Optional

from chalicelib.clock import iso, parse_instant

# The order automations are offered to the weekly cap when several are due the same day.
PRIORITY = ("churn_risk", "points_expiring", "birthday", "welcome", "onboarding_step", "f2_nudge",
            "near_next_tier", "dormant")
CHURN_SEGMENTS = ("at_risk", "cant_lose")
CHURN_P_ALIVE = "0.3"

CAP_DAYS = 7
DEDUPE_DAYS = 400


@dataclass(frozen=True)
class Due:
    automation: str
    period: str
    variables: dict = field(default_factory=dict)
    cs_alert: bool = False  # to the cs_alert channel for customer success, not a marketing message


def _days(since: Optional[str], today: date) -> Optional[int]:
    return (today - parse_instant(since).date()).days if since else None


def birthday_today(birthday: Optional[str], today: date) -> bool:
    if not birthday:
        return False
    mm_dd = today.strftime("%m-%d")
    if birthday == "02-29" and mm_dd == "02-28":
        leap = today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0)
        return not leap  # born on 29 February: celebrated on the 28th in common years
    return birthday == mm_dd


def _within(days: Optional[int], start: int, catch_up: int) -> bool:
    return days is not None and start <= days < start + max(1, catch_up)


def due_automations(view: dict, state: dict, as_of: datetime, config: dict,
                    expiring: Optional[list] = None) -> list[Due]:
    """`view` is the member's API view at `as_of`, `state` the stored state, `config` maps an
    automation to its settings (with `enabled`; a missing one runs with its defaults) and
    `expiring` the wallet's lots expiring within `points_expiring.within_days` (defaults to
    the view's `expiring_soon`). The result is in PRIORITY order."""
    today = as_of.date()
    out: dict[str, Due] = {}

    def on(name: str) -> Optional[dict]:
        c = config.get(name) or {"enabled": True}
        return c if c.get("enabled", True) else None

    enrolled = _days(view.get("enrolled_at"), today)
    orders = state.get("orders") or {}
    count = int(orders.get("count") or 0)
    tier = view["tier"]
    base = {"points": view["points"]["available"], "tier": tier["tier_id"], "next_tier": tier["next_tier"],
            "spend_to_next_tier": tier["spend_to_next_tier"]}

    if (c := on("welcome")) and enrolled == int(c.get("days_after_enrolment", 0)):
        out["welcome"] = Due("welcome", "once", base)
    if (c := on("onboarding_step")) and enrolled in [int(d) for d in c.get("days", [7, 30])]:
        out["onboarding_step"] = Due("onboarding_step", f"day{enrolled}", {**base, "step_day": enrolled})
    first = _days(orders.get("first_at"), today)
    if (c := on("f2_nudge")) and count == 1 and _within(first, int(c.get("days_after_first_order", 14)),
                                                         int(c.get("catch_up_days", 30))):
        out["f2_nudge"] = Due("f2_nudge", orders["first_at"][:10], base)
    last = _days(orders.get("last_at"), today)
    if (c := on("dormant")) and count >= 1 and _within(last, int(c.get("days_without_order", 90)),
                                                        int(c.get("catch_up_days", 30))):
        out["dormant"] = Due("dormant", orders["last_at"][:10], {**base, "last_order_at": orders["last_at"]})
    if on("birthday") and birthday_today(view.get("birthday"), today):
        out["birthday"] = Due("birthday", str(today.year), base)
    if (c := on("points_expiring")):
        horizon = as_of + timedelta(days=int(c.get("within_days", 30)))
        lots = expiring if expiring is not None else view["points"].get("expiring_soon") or []
        soon = sorted((e for e in lots if e["points"] > 0 and parse_instant(e["expires_at"]) < horizon),
                      key=lambda e: e["expires_at"])
        if soon:
            out["points_expiring"] = Due("points_expiring", soon[0]["expires_at"][:7],
                                         {**base, "expiring_points": sum(e["points"] for e in soon),
                                          "expiring_at": soon[0]["expires_at"]})
    if (c := on("near_next_tier")) and tier["next_tier"] and tier["spend_to_next_tier"] is not None:
        threshold = tier["qualifying_spend"] + tier["spend_to_next_tier"]
        if 0 < tier["spend_to_next_tier"] * 100 <= threshold * int(c.get("within_percent", 10)):
            out["near_next_tier"] = Due("near_next_tier", f"{tier['next_tier']}@{today.strftime('%Y-%m')}", base)
    segment = view.get("segment") or {}
    if (c := on("churn_risk")):
        watched = tuple(c.get("segments", CHURN_SEGMENTS))
        changed = _days(segment.get("changed_at"), today)
        if segment.get("label") in watched and segment.get("previous_label") not in (None, *watched) \
                and changed is not None and 0 <= changed <= int(c.get("within_days", 7)):
            out["churn_risk"] = Due(
                "churn_risk", f"{segment['label']}@{segment['changed_at'][:10]}",
                {**base, "segment": segment["label"], "previous_segment": segment["previous_label"],
                 "ltv_12m": segment.get("ltv_12m", 0), "touch": segment.get("touch")},
                cs_alert=segment.get("touch") == "high_touch")
        elif count >= 2 and _p_alive_fell(segment, c) and _within(_days(segment.get("scored_at"), today), 0,
                                                                    int(c.get("within_days", 7)) + 1):
            # SPEC 2.19: p_alive fell below churn_p_alive between the last two scorings
            out["churn_risk"] = Due(
                "churn_risk", f"p_alive@{segment['scored_at'][:10]}",
                {**base, "segment": segment.get("label"), "p_alive": segment["p_alive"],
                 "previous_p_alive": segment["previous_p_alive"], "ltv_12m": segment.get("ltv_12m", 0),
                 "touch": segment.get("touch")},
                cs_alert=segment.get("touch") == "high_touch")
    return [out[name] for name in PRIORITY if name in out]


def _p_alive_fell(segment: dict, config: dict) -> bool:
    """p_alive below `churn_p_alive` (default "0.3") now, at or above it at the scoring before."""
    now, before = segment.get("p_alive"), segment.get("previous_p_alive")
    if now is None or before is None:
        return False
    threshold = Decimal(str(config.get("churn_p_alive", CHURN_P_ALIVE)))
    return Decimal(str(now)) < threshold <= Decimal(str(before))


# --- outreach rules: dedupe and the weekly cap ----------------------------------------------

@dataclass
class OutreachLog:
    """A member's message log: ids already queued (dedupe) and the times of marketing
    sends (the rolling weekly cap). `decide` then `record` per message, in order."""

    sent: dict = field(default_factory=dict)  # message_id -> ISO time queued
    marketing: list = field(default_factory=list)  # ISO times of marketing messages

    def recent_marketing(self, now: datetime) -> list:
        horizon = iso(now - timedelta(days=CAP_DAYS))
        return [t for t in self.marketing if t >= horizon]

    def decide(self, message_id: str, kind: str, now: datetime, cap_per_week: int) -> str:
        """'duplicate', 'capped' or 'eligible'. The cap counts marketing messages of the
        closed window [now − 7 days, now]; transactional and cs_alert messages are exempt."""
        if message_id in self.sent:
            return "duplicate"
        if kind == "marketing" and len(self.recent_marketing(now)) >= cap_per_week:
            return "capped"
        return "eligible"

    def record(self, message_id: str, kind: str, now: datetime) -> None:
        self.sent[message_id] = iso(now)
        if kind == "marketing":
            self.marketing.append(iso(now))

    def pruned(self, now: datetime) -> "OutreachLog":
        keep = iso(now - timedelta(days=DEDUPE_DAYS))
        return OutreachLog({k: v for k, v in self.sent.items() if v >= keep}, sorted(self.recent_marketing(now)))
