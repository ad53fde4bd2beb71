"""results.json (exactly SPEC 6's keys and fields), details.json, RESULTS.md and the plot."""
from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone

KEYS = ("cold_import_ratio", "calls_per_op", "accrual_ratio", "tier_recalc", "fanout_ratio", "codegen")
PLOT = "tier_recalc.png"


def split(results: dict) -> tuple[dict, dict]:
    """(results.json body, details.json body): `_details` leave the SPEC entries."""
    public, details = {}, {}
    for key in KEYS:
        if key not in results:
            continue
        entry = dict(results[key])
        details[key] = entry.pop("_details", {})
        public[key] = entry
    return public, details


def verdicts(public: dict) -> dict:
    """Each goal of SPEC 6, met or not (None when the figure is missing)."""
    v: dict = {}
    if "cold_import_ratio" in public:
        v["cold_import_ratio"] = public["cold_import_ratio"]["ratio"] <= 1.2
    if "calls_per_op" in public:
        goals = public["calls_per_op"]["goal"]
        v["calls_per_op"] = all(public["calls_per_op"]["value"][op] <= int(g.split()[-1]) for op, g in goals.items())
    if "accrual_ratio" in public:
        v["accrual_ratio"] = public["accrual_ratio"]["ratio"] >= 0.85
    if "tier_recalc" in public:
        t = public["tier_recalc"]
        scaling = [val for k, val in t.items() if k.startswith("per_member_")]
        v["tier_recalc"] = min(t["ratio"].values()) >= 0.7 and all(s <= 1.5 for s in scaling)
    if "fanout_ratio" in public:
        f = public["fanout_ratio"]
        v["fanout_ratio"] = f["ratio"] >= 0.5 and f["sqs_calls_per_1000"] <= 100
    if "codegen" in public:
        v["codegen"] = public["codegen"]["ratio"] >= 0.7
    return v


def plot(public: dict, details: dict, out_dir: str) -> str | None:
    t = public.get("tier_recalc")
    if not t:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(k) for k in t["value"])
    ours = [1e6 / t["value"][str(n)] for n in sizes]
    floor = [1e6 / t["floor"][str(n)] for n in sizes]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot(sizes, ours, "o-", label="recalculate-tiers job (ours)", color="#c0392b")
    ax.plot(sizes, floor, "s--", label="bare parallel scan + conditional update (floor)", color="#7f8c8d")
    for n, y in zip(sizes, ours):
        ax.annotate(f"{y:.0f} µs", (n, y), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels([f"{n:,}" for n in sizes])
    ax.set_ylim(bottom=0, top=max(ours + floor) * 1.3)
    ax.set_xlabel("members in the table")
    ax.set_ylabel("time per member (µs, lower is better)")
    ax.set_title("Tier recalculation scaling on the embedded emulator")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = os.path.join(out_dir, PLOT)
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt(x) -> str:
    if isinstance(x, float):
        return f"{x:,.3f}".rstrip("0").rstrip(".") if abs(x) < 10 else f"{x:,.1f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def markdown(public: dict, details: dict, meta: dict, plot_name: str | None) -> str:
    ok = verdicts(public)
    mark = {True: "met", False: "**missed**", None: "n/a"}
    lines = ["# Benchmark results", "",
             f"`make bench`, {meta['finished_at']}, {meta['machine']}; {meta['seconds']:.0f} s in all. "
             "Speeds are ratios to a floor measured side by side in the same run (alternating rounds, "
             "medians); absolute figures are for orientation only: this machine is shared and noisy. "
             "How each figure is made, and what it means for cost in AWS: `docs/PERFORMANCE.md`.", "",
             "| key | value | floor | ratio | goal | unit | |", "|---|---|---|---|---|---|---|"]
    for key in ("cold_import_ratio", "accrual_ratio", "fanout_ratio", "codegen"):
        if key not in public:
            continue
        e = public[key]
        goal = e["goal"] if isinstance(e["goal"], str) else ", ".join(f"{k} {g}" for k, g in e["goal"].items())
        extra = ""
        if key == "fanout_ratio":
            extra = f" ({_fmt(e['sqs_calls_per_1000'])} SQS calls per 1,000 messages)"
        if key == "codegen":
            extra = f" ({_fmt(e['dynamodb_calls'])} DynamoDB calls; floor {_fmt(details[key]['floor_dynamodb_calls'])})"
        lines.append(f"| `{key}` | {_fmt(e['value'])} | {_fmt(e['floor'])} | {_fmt(e['ratio'])}{extra} | {goal} | "
                     f"{e['unit']} | {mark[ok.get(key)]} |")
    if "tier_recalc" in public:
        t = public["tier_recalc"]
        scale_key = next(k for k in t if k.startswith("per_member_"))
        for n in sorted(t["value"], key=int):
            lines.append(f"| `tier_recalc` {int(n):,} members | {_fmt(t['value'][n])} | {_fmt(t['floor'][n])} | "
                         f"{_fmt(t['ratio'][n])} | {t['goal']['ratio']} | {t['unit']} | {mark[t['ratio'][n] >= 0.7]} |")
        lines.append(f"| `tier_recalc` per-member time, largest ÷ smallest | {_fmt(t[scale_key])} | "
                     f"{_fmt(details['tier_recalc']['floor_scaling'])} (floor's own) | | "
                     f"{t['goal'][scale_key]} | × | {mark[t[scale_key] <= 1.5]} |")
    if "calls_per_op" in public:
        c = public["calls_per_op"]
        lines += ["", "Calls per warm operation (`calls_per_op`), through the full handler:", "",
                  "| operation | DynamoDB calls | which | SQS sends | goal | |", "|---|---|---|---|---|---|"]
        for op, n in c["value"].items():
            which = ", ".join(f"{k} ×{v}" for k, v in details["calls_per_op"]["calls"][op].items()
                              if not k.startswith("sqs."))
            lines.append(f"| {op} | {n} | {which} | {c['sqs_sends'][op]} | {c['goal'][op]} | "
                         f"{'met' if n <= int(c['goal'][op].split()[-1]) else '**missed**'} |")
    if plot_name:
        lines += ["", f"![tier recalculation: time per member at each table size]({plot_name})"]
    lines += ["", "## Absolute figures (orientation only)", ""]
    if "accrual_ratio" in details:
        d = details["accrual_ratio"]
        lines.append(f"- Accrual: {d['ours_ms_per_accrual']} ms through the handler vs {d['floor_ms_per_accrual']} ms "
                     f"for the bare GetItem + TransactWriteItems ({d['rounds']} rounds of {d['per_round']}).")
    if "cold_import_ratio" in details:
        d = details["cold_import_ratio"]
        lines.append(f"- Cold import: `import app` {_fmt(public['cold_import_ratio']['value'])} ms vs its "
                     f"{d['dependency_modules']} third-party modules alone "
                     f"{_fmt(public['cold_import_ratio']['floor'])} ms "
                     f"({', '.join(d['dependency_packages'])}).")
    if "tier_recalc" in details:
        d = details["tier_recalc"]
        for n, run in d["runs"].items():
            lines.append(f"- Tier recalculation, {int(n):,} members: {_fmt(d['per_member_us'][n])} µs per member "
                         f"(floor {_fmt(d['floor_per_member_us'][n])} µs); {run['changed']:,} tier changes per run; "
                         f"seeded in {run['seed_seconds']} s.")
    if "fanout_ratio" in details:
        d = details["fanout_ratio"]
        lines.append(f"- Fan-out: {_fmt(public['fanout_ratio']['value'])} messages/s with dedupe and cap vs "
                     f"{_fmt(public['fanout_ratio']['floor'])} bare; {d['dynamodb_calls_per_1000']} DynamoDB calls "
                     f"per 1,000 messages" + _emulator_cpu(d, public["fanout_ratio"]) + ".")
    if "codegen" in details:
        d = details["codegen"]
        lines.append(f"- Codes: {_fmt(public['codegen']['value'])} s for 100,000 vs "
                     f"{_fmt(public['codegen']['floor'])} s "
                     f"bare ({d['workers']} write streams).")
    if meta.get("notes"):
        lines += ["", "## What limits the figures", ""] + [f"- {n}" for n in meta["notes"]]
    return "\n".join(lines) + "\n"


def write(results: dict, out_dir: str, meta: dict) -> dict:
    public, details = split(results)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(public, f, indent=2, sort_keys=False)
        f.write("\n")
    with open(os.path.join(out_dir, "details.json"), "w") as f:
        json.dump({"meta": meta, **details}, f, indent=2)
        f.write("\n")
    path = plot(public, details, out_dir)
    with open(os.path.join(out_dir, "RESULTS.md"), "w") as f:
        f.write(markdown(public, details, meta, os.path.basename(path) if path else None))
    return verdicts(public)


def load(out_dir: str) -> tuple[dict, dict]:
    """The last run's results (with their details) and its meta, to re-render the report."""
    with open(os.path.join(out_dir, "results.json")) as f:
        public = json.load(f)
    with open(os.path.join(out_dir, "details.json")) as f:
        details = json.load(f)
    meta = details.pop("meta", {})
    return {k: {**v, "_details": details.get(k, {})} for k, v in public.items()}, meta


def meta_now(started: float, seconds: float, notes: list) -> dict:
    return {"finished_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {sys.platform}",
            "seconds": seconds, "notes": notes}


def _emulator_cpu(d: dict, figure: dict) -> str:
    """The emulator's CPU per 1,000 messages on each side, how busy ours kept it, and the
    ratio ours would reach with the emulator busy all the time."""
    cpu = d.get("emulator_cpu_s_per_1000") or {}
    if not cpu.get("ours") or not cpu.get("floor"):
        return ""
    busy = cpu["ours"] * figure["value"] / 1000  # emulator CPU seconds per second of ours
    ceiling = 1000 / cpu["ours"] / figure["floor"]
    return (f"; the emulator's CPU per 1,000 messages: {cpu['ours']} s for ours (busy {busy:.0%} of the time), "
            f"{cpu['floor']} s for the floor, so the ratio cannot pass {ceiling:.2f} on this emulator")
