"""results.json (exactly SPEC 6's keys and fields), details.json, RESULTS.md and a plot per figure."""
from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone

KEYS = ("cold_import_ratio", "calls_per_op", "accrual_ratio", "tier_recalc", "fanout_ratio", "codegen",
        "item_growth", "cost_per_million", "load")
PLOT = "tier_recalc.png"
COLD_GOAL = 1.1  # issue 23's goal (SPEC 6 says 1.2)


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


def other_verdict(key: str, e: dict):
    """The goal of a figure outside KEYS, met or not (None: reported, or nothing to judge)."""
    met = e.get("met", (e.get("_details") or {}).get("met"))  # score_rfm, ltv_quality judge themselves
    if met is not None:
        return bool(met)
    if key == "emulator_scale" and isinstance(e.get("ratio"), dict):
        return all(r <= 1.5 for r in e["ratio"].values())
    return None


def verdicts(public: dict) -> dict:
    """Each goal of SPEC 6, met or not (None when the figure is missing)."""
    v: dict = {}
    if "cold_import_ratio" in public:
        v["cold_import_ratio"] = public["cold_import_ratio"]["ratio"] <= COLD_GOAL
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
    if "item_growth" in public:
        g = public["item_growth"]
        v["item_growth"] = g["value"]["member_item_bytes"] <= 4096 and g["ratio"]["accrual_wru"] <= 1.25
    if "cost_per_million" in public:
        v["cost_per_million"] = None  # reported, no goal (the README compares it)
    if "load" in public:
        v["load"] = public["load"]["value"]["5xx"] == 0 and public["load"]["value"]["invariant_broken"] == 0
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


SPEC_OPS = ("enrol", "accrual", "refund", "redemption", "coupon_redeem", "member_read", "hold", "capture", "transfer")
PLOT_TITLES = {
    "cold_import_ratio": "cold import: app vs its dependencies alone, every round",
    "calls_per_op": "DynamoDB calls per warm operation against the goal",
    "accrual_ratio": "accruals/s per round: handler vs bare boto3",
    "tier_recalc": "tier recalculation: time per member at each table size",
    "fanout_ratio": "campaign messages/s per round: ours vs bare SendMessageBatch",
    "codegen": "100,000 coupon codes per round: ours vs bare BatchWriteItem",
    "item_growth": "write units of one accrual by item, new member vs two years of daily orders",
    "cost_per_million": "dollars per million requests by part",
    "load": "load: requests/s per round and latency percentiles",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_dir: str, name: str) -> str:
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name))
    _pyplot().close(fig)
    return name


def _rounds_plot(ours: list, floor: list, ylabel: str, title: str, labels=("ours", "floor")):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
    ax.plot(range(1, len(ours) + 1), ours, "o-", color="#c0392b", label=labels[0])
    ax.plot(range(1, len(floor) + 1), floor, "s--", color="#7f8c8d", label=labels[1])
    ax.set_xlabel("round (alternating)")
    if len(ours) <= 12:
        ax.set_xticks(range(1, len(ours) + 1))
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0, top=max(ours + floor) * 1.2)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plots(public: dict, details: dict, out_dir: str, others: dict | None = None) -> dict:
    """One plot per figure: {key: file name in out_dir}. Keys without round data get none."""
    out: dict = {}
    plt = _pyplot()
    d = details
    if d.get("cold_import_ratio", {}).get("app_runs_ms"):
        c = d["cold_import_ratio"]
        fig = _rounds_plot(c["app_runs_ms"], c["floor_runs_ms"], "ms (fresh interpreter)", "Cold import",
                           ("import app", "its third-party modules alone"))
        out["cold_import_ratio"] = _save(fig, out_dir, "plot_cold_import.png")
    if "calls_per_op" in public:
        c = public["calls_per_op"]
        ops = list(c["value"])
        fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
        ax.bar(ops, [c["value"][o] for o in ops], color="#c0392b", label="DynamoDB calls (largest of 5)")
        ax.scatter(ops, [int(c["goal"][o].split()[-1]) for o in ops], marker="_", s=600, color="black", label="goal")
        ax.set_ylim(0, 3)
        ax.set_ylabel("calls per operation")
        ax.set_title("Calls per warm operation")
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.legend(fontsize=8)
        out["calls_per_op"] = _save(fig, out_dir, "plot_calls_per_op.png")
    for key, name, ylabel in (("accrual_ratio", "plot_accrual.png", "accruals/s"),
                              ("fanout_ratio", "plot_fanout.png", "messages/s"),
                              ("codegen", "plot_codegen.png", "seconds per 100,000 codes")):
        if d.get(key, {}).get("ours_runs"):
            fig = _rounds_plot(d[key]["ours_runs"], d[key]["floor_runs"], ylabel, PLOT_TITLES[key])
            out[key] = _save(fig, out_dir, name)
    if public.get("tier_recalc"):
        out["tier_recalc"] = os.path.basename(plot(public, details, out_dir))
    if d.get("item_growth", {}).get("heavy_transaction"):
        g = d["item_growth"]
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(8, 3.6), dpi=100, gridspec_kw={"width_ratios": [1.2, 1]})
        cols = ["new member", "two years\nof daily orders"]
        bottoms = [0, 0]
        colours = ["#c0392b", "#2980b9", "#27ae60", "#8e44ad", "#f39c12", "#7f8c8d"]
        for i, (a, b) in enumerate(zip(g["new_transaction"], g["heavy_transaction"])):
            vals = [a["wru"], b["wru"]]
            ax.bar(cols, vals, bottom=bottoms, color=colours[i % len(colours)], label=a["table"].split("-")[-1])
            bottoms = [x + y for x, y in zip(bottoms, vals)]
        ax.axhline(bottoms[0] * 1.25, color="black", ls=":", lw=1, label="goal: 1.25 × new")
        ax.set_ylabel("write request units")
        ax.set_title("WRU of one accrual")
        ax.legend(fontsize=7)
        sizes = [public["item_growth"]["floor"]["member_item_bytes"], public["item_growth"]["value"]["member_item_bytes"]]
        bx.bar(cols, sizes, color="#c0392b")
        for kb in (1024, 2048, 4096):
            bx.axhline(kb, color="#7f8c8d", ls="--", lw=0.8)
            bx.annotate(f"{kb // 1024} KB", (1.45, kb), fontsize=7, va="bottom", ha="right")
        bx.set_ylim(0, 4400)
        bx.set_ylabel("member item bytes")
        bx.set_title("Member item size")
        out["item_growth"] = _save(fig, out_dir, "plot_item_growth.png")
    if d.get("cost_per_million", {}).get("breakdown"):
        b = d["cost_per_million"]["breakdown"]
        ops = list(b)
        parts = ["api_gateway", "lambda_requests", "lambda_duration", "dynamodb_reads", "dynamodb_writes"]
        fig, ax = plt.subplots(figsize=(7, 3.4), dpi=100)
        left = [0.0] * len(ops)
        colours = ["#7f8c8d", "#f39c12", "#e67e22", "#2980b9", "#c0392b"]
        for part, colour in zip(parts, colours):
            vals = [b[o][part] for o in ops]
            ax.barh([o.replace("_", " ") for o in ops], vals, left=left, color=colour, label=part.replace("_", " "))
            left = [x + y for x, y in zip(left, vals)]
        for i, total in enumerate(left):
            ax.annotate(f"${total:.2f}", (total, i), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
        ax.set_xlim(0, max(left) * 1.6)
        ax.set_xlabel("USD per million requests (us-east-1 on-demand list prices)")
        ax.legend(fontsize=7, loc="center right")
        ax.set_title("Cost per million")
        out["cost_per_million"] = _save(fig, out_dir, "plot_cost.png")
    if d.get("load", {}).get("rounds_requests_per_second"):
        l = d["load"]
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(8, 3.4), dpi=100)
        ours, floor = l["rounds_requests_per_second"], l["floor_rounds_requests_per_second"]
        ax.plot(range(1, len(ours) + 1), ours, "o-", color="#c0392b", label="mixed load")
        ax.plot(range(1, len(floor) + 1), floor, "s--", color="#7f8c8d", label="GET /v1/health")
        ax.set_ylim(0, max(ours + floor) * 1.2)
        ax.set_xticks(range(1, len(ours) + 1))
        ax.set_xlabel("round")
        ax.set_ylabel("requests/s")
        ax.legend(fontsize=7)
        ax.set_title("Throughput")
        lat = public["load"]["value"], public["load"]["floor"]
        xs = ["p50", "p99"]
        bx.bar([x + "\nmixed" for x in xs], [lat[0]["p50_ms"], lat[0]["p99_ms"]], color="#c0392b")
        bx.bar([x + "\nhealth" for x in xs], [lat[1]["p50_ms"], lat[1]["p99_ms"]], color="#7f8c8d")
        bx.set_ylabel("ms")
        bx.set_title("Latency")
        out["load"] = _save(fig, out_dir, "plot_load.png")
    for key, e in (others or {}).items():
        own = {"score_rfm": _score_rfm_plot, "emulator_scale": _emulator_scale_plot,
               "ltv_quality": _ltv_quality_plot}.get(key)
        name = own(e, out_dir) if own else _generic_plot(key, e, out_dir)
        if name:
            out[key] = name
    return out


def _sizes(values: dict) -> list:
    return sorted(values, key=int)


def _score_rfm_plot(e: dict, out_dir: str) -> str | None:
    """members/s at each table size (the goal is on the time per member, so a flat or rising
    line is a met goal) with the peak memory of one segment worker."""
    v = e.get("value")
    if not isinstance(v, dict) or not v:
        return None
    plt = _pyplot()
    sizes = _sizes(v)
    fig, ax = plt.subplots(figsize=(7, 3.4), dpi=100)
    ax.bar([f"{int(n):,} members" for n in sizes], [v[n] for n in sizes], color="#c0392b")
    first = v[sizes[0]]
    ax.axhline(first / 1.5, color="black", ls=":", lw=1, label="goal: time per member at most 1.5 × the smallest")
    for i, n in enumerate(sizes):
        ax.annotate(f"{v[n]:,.0f}/s", (i, v[n]), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8)
    ax.set_ylabel("members/s (4 segments)")
    peak = e.get("peak_memory_mb")
    ax.set_title("score-rfm" + (f" (peak memory of one worker {peak:,.1f} MB, goal ≤ 512)" if peak else ""))
    ax.set_ylim(0, max(v.values()) * 1.25)
    ax.legend(fontsize=7, loc="lower right")
    PLOT_TITLES.setdefault("score_rfm", "score-rfm: members/s at each table size")
    return _save(fig, out_dir, "plot_score_rfm.png")


def _emulator_scale_plot(e: dict, out_dir: str) -> str | None:
    """The emulator's memory per member and the median accrual latency at each size, against
    the 1.5 × goal on both."""
    v = e.get("value") or {}
    kb, ms = v.get("per_member_kb"), v.get("accrual_median_ms")
    if not isinstance(kb, dict) or not isinstance(ms, dict):
        return None
    plt = _pyplot()
    sizes = _sizes(kb)
    labels = [f"{int(n):,}" for n in sizes]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(8, 3.4), dpi=100)
    for axis, data, ylabel, title in ((ax, kb, "KB of emulator memory per member", "Memory per member"),
                                      (bx, ms, "ms (median)", "Accrual latency")):
        axis.bar(labels, [data[n] for n in sizes], color="#c0392b")
        axis.axhline(data[sizes[0]] * 1.5, color="black", ls=":", lw=1, label="goal: ≤ 1.5 × the smallest")
        axis.set_xlabel("members in the emulator")
        axis.set_ylabel(ylabel)
        axis.set_title(title)
        axis.set_ylim(0, data[sizes[0]] * 1.8)
        axis.legend(fontsize=7, loc="lower right")
    PLOT_TITLES.setdefault("emulator_scale", "make run's emulator at 10k and 100k members")
    return _save(fig, out_dir, "plot_emulator_scale.png")


def _ltv_quality_plot(e: dict, out_dir: str) -> str | None:
    """SPEC 2.19's four figures on each judged data set: ours beside the reference BG/NBD +
    Gamma-Gamma, a missed goal marked, a set that was not run (None) named without bars."""
    sets = e.get("goals")
    if not isinstance(sets, dict) or not sets:
        return None
    plt = _pyplot()
    titles = {"spearman": "Spearman with holdout spend", "top20_capture": "top-20% capture",
              "total_ratio": "predicted ÷ actual total", "auc_bought_again": "AUC, bought again"}
    fig, axes = plt.subplots(1, 4, figsize=(11, 3.4), dpi=100)
    names = list(sets)
    xs = range(len(names))
    ran = [(x, n) for x, n in zip(xs, names) if sets[n] is not None]
    for ax, (figure, title) in zip(axes, titles.items()):
        ax.bar([x - 0.2 for x, _ in ran], [sets[n][figure]["ours"] for _, n in ran], width=0.4, color="#c0392b",
               label="ours")
        ax.bar([x + 0.2 for x, _ in ran], [sets[n][figure]["reference"] for _, n in ran], width=0.4,
               color="#7f8c8d", label="BG/NBD + GG")
        for x, n in ran:
            if not sets[n][figure]["met"]:
                ax.annotate("missed", (x - 0.2, sets[n][figure]["ours"]), xytext=(0, 3), textcoords="offset points",
                            ha="center", fontsize=7)
        if figure == "total_ratio":
            ax.axhspan(0.9, 1.1, color="#27ae60", alpha=0.15, label="goal: within 10%")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([n.replace("_", " ") + ("" if sets[n] is not None else "\n(not run)") for n in names],
                           fontsize=7)
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7, loc="lower right")
    axes[2].legend(fontsize=7, loc="lower right")
    PLOT_TITLES.setdefault("ltv_quality", "ltv_quality: SPEC 2.19's four figures on each judged data set")
    return _save(fig, out_dir, "plot_ltv_quality.png")


def _numeric_pairs(e: dict) -> list:
    v, f = e.get("value"), e.get("floor")
    if isinstance(v, (int, float)) and isinstance(f, (int, float)):
        return [("", v, f)]
    if isinstance(v, dict) and isinstance(f, dict):
        return [(k, v[k], f[k]) for k in v if isinstance(v[k], (int, float)) and isinstance(f.get(k), (int, float))]
    return []


def _generic_plot(key: str, e: dict, out_dir: str) -> str | None:
    """Value beside floor for a figure this module has no own plot for (other helpers' keys)."""
    pairs = _numeric_pairs(e)
    if not pairs:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.4), dpi=100)
    xs = range(len(pairs))
    ax.bar([x - 0.2 for x in xs], [p[1] for p in pairs], width=0.4, color="#c0392b", label="value")
    ax.bar([x + 0.2 for x in xs], [p[2] for p in pairs], width=0.4, color="#7f8c8d", label="floor")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([p[0] or key for p in pairs], fontsize=8)
    ax.set_ylabel(str(e.get("unit", ""))[:60])
    ax.set_title(key)
    ax.legend(fontsize=8)
    PLOT_TITLES.setdefault(key, f"{key}: value beside its floor")
    return _save(fig, out_dir, f"plot_{key}.png")


def _fmt(x) -> str:
    if isinstance(x, float):
        return f"{x:,.3f}".rstrip("0").rstrip(".") if abs(x) < 10 else f"{x:,.1f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def _pairs(a: list, b: list, fn) -> list:
    return [fn(x, y) for x, y in zip(a, b) if x and y]


def _range(xs: list, digits: int = 3) -> str:
    xs = [x for x in xs if x is not None]
    if not xs:
        return ""
    lo, hi = min(xs), max(xs)
    return f"{lo:.{digits}f}–{hi:.{digits}f}" if lo != hi else f"{lo:.{digits}f}"


def spread(key: str, public: dict, details: dict) -> str:
    """How much a figure moved between its rounds (the per-round ratios' range, or the range of
    the rounds themselves), for the tables of RESULTS.md and the README."""
    d = details.get(key) or {}
    if key == "cold_import_ratio" and d.get("app_runs_ms"):
        return "rounds " + _range(_pairs(d["app_runs_ms"], d["floor_runs_ms"], lambda a, f: a / f))
    if key in ("accrual_ratio", "fanout_ratio") and d.get("ours_runs"):
        return "rounds " + _range(_pairs(d["ours_runs"], d["floor_runs"], lambda o, f: o / f))
    if key == "codegen" and d.get("ours_runs"):
        return "rounds " + _range(_pairs(d["ours_runs"], d["floor_runs"], lambda o, f: f / o))
    if key == "tier_recalc" and d.get("runs"):
        return "; ".join(f"{int(n) // 1000}k: " + _range(_pairs(r["ours_runs"], r["floor_runs"], lambda o, f: o / f), 2)
                         for n, r in sorted(d["runs"].items(), key=lambda kv: int(kv[0])))
    if key == "item_growth" and d.get("heavy_handler_ms"):
        return "exact (the same items every round)"
    if key == "cost_per_million" and d.get("handler_runs_ms"):
        r = d["handler_runs_ms"]
        return f"handler ms per round: accrual {_range(r['accrual'], 2)}, read {_range(r['read'], 2)}"
    if key == "load" and d.get("rounds_requests_per_second"):
        return (f"req/s rounds {_range(d['rounds_requests_per_second'], 1)} "
                f"(floor {_range(d['floor_rounds_requests_per_second'], 1)})")
    return ""


def _goal(e: dict) -> str:
    return e["goal"] if isinstance(e["goal"], str) else ", ".join(f"{k} {g}" for k, g in e["goal"].items())


def _unfinished(meta: dict) -> str:
    """What a run stopped part-way (its checkpoint, rendered by --report) did not measure."""
    return f" **This run stopped before its last figures:** {meta['unfinished']}." if meta.get("unfinished") else ""


def _merged(meta: dict) -> str:
    """Figures re-measured after the run by `--only … --out elsewhere` and merged into its files
    by hand (meta["merged"]: {key: how}), named so no one reads them as this run's."""
    merged = meta.get("merged") or {}
    return "".join(f" `{k}` is not this run's: {how}." for k, how in merged.items())


def _kept(public: dict, meta: dict) -> str:
    """Which figures a partial run (`--only`) kept from the run before."""
    measured = meta.get("measured")
    kept = [k for k in public if measured is not None and k not in measured]
    return f" Kept from the previous run (not re-measured this time): {', '.join(f'`{k}`' for k in kept)}." if kept else ""


def summary_rows(public: dict, details: dict) -> list[str]:
    """The main table: one row per figure (tier_recalc per size), with its spread."""
    ok = verdicts(public)
    mark = {True: "met", False: "**missed**", None: "reported"}
    rows = ["| key | value | floor | ratio | spread | goal | unit | |", "|---|---|---|---|---|---|---|---|"]
    for key in ("cold_import_ratio", "accrual_ratio", "fanout_ratio", "codegen"):
        if key not in public:
            continue
        e = public[key]
        extra = ""
        if key == "fanout_ratio":
            extra = f" ({_fmt(e['sqs_calls_per_1000'])} SQS calls per 1,000 messages)"
        if key == "codegen":
            extra = f" ({_fmt(e['dynamodb_calls'])} DynamoDB calls; floor {_fmt(details[key]['floor_dynamodb_calls'])})"
        rows.append(f"| `{key}` | {_fmt(e['value'])} | {_fmt(e['floor'])} | {_fmt(e['ratio'])}{extra} | "
                    f"{spread(key, public, details)} | {_goal(e)} | {e['unit']} | {mark[ok.get(key)]} |")
    if "tier_recalc" in public:
        t = public["tier_recalc"]
        scale_key = next(k for k in t if k.startswith("per_member_"))
        runs = (details.get("tier_recalc") or {}).get("runs") or {}
        for n in sorted(t["value"], key=int):
            r = runs.get(n) or {}
            sp = "rounds " + _range(_pairs(r.get("ours_runs", []), r.get("floor_runs", []), lambda o, f: o / f)) if r else ""
            rows.append(f"| `tier_recalc` {int(n):,} members | {_fmt(t['value'][n])} | {_fmt(t['floor'][n])} | "
                        f"{_fmt(t['ratio'][n])} | {sp} | {t['goal']['ratio']} | {t['unit']} | "
                        f"{mark[t['ratio'][n] >= 0.7]} |")
        rows.append(f"| `tier_recalc` per-member time, largest ÷ smallest | {_fmt(t[scale_key])} | "
                    f"{_fmt(details['tier_recalc']['floor_scaling'])} (floor's own) | | | "
                    f"{t['goal'][scale_key]} | × | {mark[t[scale_key] <= 1.5]} |")
    if "item_growth" in public:
        g = public["item_growth"]
        rows.append(f"| `item_growth` member item | {_fmt(g['value']['member_item_bytes'])} (two years of daily orders) | "
                    f"{_fmt(g['floor']['member_item_bytes'])} (new member) | {_fmt(g['ratio']['member_item_bytes'])} | "
                    f"{spread('item_growth', public, details)} | {g['goal']['member_item_bytes']} | bytes | "
                    f"{mark[g['value']['member_item_bytes'] <= 4096]} |")
        rows.append(f"| `item_growth` write units of one accrual | {_fmt(g['value']['accrual_wru'])} | "
                    f"{_fmt(g['floor']['accrual_wru'])} | {_fmt(g['ratio']['accrual_wru'])} | | "
                    f"{g['goal']['accrual_wru']} | WRU | {mark[g['ratio']['accrual_wru'] <= 1.25]} |")
    if "cost_per_million" in public:
        c = public["cost_per_million"]
        for op, v in c["value"].items():
            rows.append(f"| `cost_per_million` {op.replace('_', ' ')} | ${v:,.2f} | ${c['floor'][op]:,.2f} (bare calls) | "
                        f"{_fmt(c['ratio'][op])} | {spread('cost_per_million', public, details) if op == list(c['value'])[0] else ''} | "
                        f"{c['goal']} | USD per million | {mark[None]} |")
    if "load" in public:
        lv, lf = public["load"]["value"], public["load"]["floor"]
        rows.append(f"| `load` | {_fmt(lv['requests_per_second'])} req/s, p50 {_fmt(lv['p50_ms'])} ms, "
                    f"p99 {_fmt(lv['p99_ms'])} ms, {lv['5xx']} 5xx, invariant broken for {lv['invariant_broken']} of "
                    f"{lv['members_checked']} members | {_fmt(lf['requests_per_second'])} req/s, p50 {_fmt(lf['p50_ms'])} ms "
                    f"({lf['route']}) | {_fmt(public['load']['ratio'])} | {spread('load', public, details)} | "
                    f"{public['load']['goal']} | {public['load']['unit']} | {mark[ok.get('load')]} |")
    return rows


def markdown(public: dict, details: dict, meta: dict, plot_name=None, others: dict | None = None) -> str:
    """RESULTS.md. `plot_name`: {key: file name} of the plots (or the tier plot's name alone)."""
    plots = plot_name if isinstance(plot_name, dict) else ({"tier_recalc": plot_name} if plot_name else {})
    lines = ["# Benchmark results", "",
             f"`make bench`, {meta['finished_at']}, {meta['machine']}; {meta['seconds']:.0f} s in all. "
             "Speeds are ratios to a floor measured side by side in the same run (alternating rounds, "
             "medians); absolute figures are for orientation only: this machine is shared and noisy. "
             "*Spread* is the range of the per-round ratios (or of the rounds). "
             "How each figure is made, and what it means for cost in AWS: `docs/PERFORMANCE.md`." + _kept(public, meta)
             + _unfinished(meta) + _merged(meta), ""]
    lines += summary_rows(public, details)
    if others:
        lines += ["", "Other figures (their own modules in `bench/`):", "",
                  "| key | value | floor | ratio | goal | unit | |", "|---|---|---|---|---|---|---|"]
        for key, e in others.items():
            cell = lambda x: json.dumps(x, separators=(", ", ": "))[:300] if isinstance(x, (dict, list)) else _fmt(x)  # noqa: E731
            ok = e["_verdict"] if "_verdict" in e else other_verdict(key, e)
            lines.append(f"| `{key}` | {cell(e.get('value'))} | {cell(e.get('floor'))} | {cell(e.get('ratio'))} | "
                         f"{cell(e.get('goal'))} | {e.get('unit', '')} | "
                         f"{'reported' if ok is None else 'met' if ok else '**missed**'} |")
    seconds = meta.get("module_seconds")
    if seconds:
        lines += ["", "Wall time per module (its setup included): " + ", ".join(
            f"`{k}` {v:,.0f} s" for k, v in seconds.items()) + "."]
    if "calls_per_op" in public:
        c = public["calls_per_op"]
        lines += ["", "Calls per warm operation (`calls_per_op`), through the full handler:", "",
                  "| operation | DynamoDB calls | which | SQS sends | goal | |", "|---|---|---|---|---|---|"]
        for op, n in c["value"].items():
            which = ", ".join(f"{k} ×{v}" for k, v in details["calls_per_op"]["calls"][op].items()
                              if not k.startswith("sqs."))
            lines.append(f"| {op} | {n} | {which} | {c['sqs_sends'][op]} | {c['goal'][op]} | "
                         f"{'met' if n <= int(c['goal'][op].split()[-1]) else '**missed**'} |")
        missing = [op for op in SPEC_OPS if op not in c["value"]]
        if missing:
            lines.append(f"\nNot measured yet (no such operation in this build): {', '.join(missing)}.")
    if "item_growth" in details:
        d = details["item_growth"]
        lines += ["", "The accrual's transaction, item by item (`item_growth`; 2 WRU per started KB of each item):", "",
                  "| item | new member: bytes | WRU | two years of daily orders: bytes | WRU |", "|---|---|---|---|---|"]
        for a, b in zip(d["new_transaction"], d["heavy_transaction"]):
            lines.append(f"| {a['kind']} {a['table'].split('-')[-1]} | {a['bytes']:,} | {a['wru']} | {b['bytes']:,} | "
                         f"{b['wru']} |")
        parts = ", ".join(f"`{k}` {v:,} B" for k, v in list(d["heavy_state_bytes"].items())[:6])
        lines.append(f"\nThe heavy member's largest state parts (JSON bytes): {parts}.")
    if "cost_per_million" in details:
        d = details["cost_per_million"]
        p = d["prices"]
        lines += ["", f"Dollars per million (`cost_per_million`), by part; Lambda at {d['lambda_memory_mb']} MB "
                      f"(`.chalice/config.json`, stage {d['lambda_memory_stage']}), handler time as measured here:", "",
                  "| operation | handler ms | API Gateway | Lambda requests | Lambda duration | DynamoDB reads | "
                  "DynamoDB writes | total |", "|---|---|---|---|---|---|---|---|"]
        for op, b in d["breakdown"].items():
            ms = d["handler_ms"]["read" if op == "member_read" else "accrual"]
            lines.append(f"| {op.replace('_', ' ')} | {ms:.2f} | ${b['api_gateway']:.2f} | ${b['lambda_requests']:.2f} | "
                         f"${b['lambda_duration']:.3f} | ${b['dynamodb_reads']:.3f} | ${b['dynamodb_writes']:.3f} | "
                         f"**${b['total']:.2f}** |")
        after = d["after_commit_per_accrual"]
        lines.append(f"\nAfter the commit each accrual also costs the relay's outbox delete (${after['outbox_delete']:.3f}) "
                     f"and its event on the bus (${after['eventbridge_event']:.2f}) per million. Prices: {p['basis']}; "
                     f"table as of {p['taken']}, region {p['region']} (`bench/prices.py`).")
    if "load" in details:
        d = details["load"]
        lines += ["", f"Load (`load`): {d['clients']} clients for {d['seconds']} s in {d['rounds']} rounds, "
                      f"{d['requests']:,} requests; status counts {d['status_counts']}; 4xx by cause {d['errors'] or 'none'}.",
                  "", "| operation | n | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|"]
        for op, q in sorted(d["latency_by_op_ms"].items()):
            lines.append(f"| {op} | {q['n']:,} | {q['p50']} | {q['p95']} | {q.get('p99', '')} |")
    for key, name in plots.items():
        lines += ["", f"![{PLOT_TITLES.get(key, key)}]({name})"]
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
    if "item_growth" in details:
        d = details["item_growth"]
        lines.append(f"- Item growth: {d['heavy_members']} member(s) built with {d['days']:,} daily orders each through "
                     f"the handler in {d['build_seconds']} s; accrual handler time heavy "
                     f"{_range(d['heavy_handler_ms'], 2)} ms, new {_range(d['new_handler_ms'], 2)} ms.")
    if "cost_per_million" in details:
        d = details["cost_per_million"]["handler_ms"]
        lines.append(f"- Cost: handler time per accrual {d['accrual']:.2f} ms (of which {d['accrual_calls']:.2f} ms "
                     f"inside DynamoDB calls) vs {d['accrual_floor']:.2f} ms bare; per member read {d['read']:.2f} ms "
                     f"({d['read_calls']:.2f} ms in the call) vs {d['read_floor']:.2f} ms bare.")
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
    # Figures other modules add (score_rfm, emulator_scale, ltv_quality): their JSON is merged by
    # `bench/__main__.py`; here they get a row and a plot beside their floor.
    others = {k: {**{kk: vv for kk, vv in v.items() if kk != "_details"}, "_verdict": other_verdict(k, v)}
              for k, v in results.items() if k not in KEYS}
    names = plots(public, details, out_dir, others)
    with open(os.path.join(out_dir, "RESULTS.md"), "w") as f:
        f.write(markdown(public, details, meta, names, others))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.abspath(out_dir) == os.path.join(root, "bench"):  # the repository's own results, not --out elsewhere
        block = latest_block(public, details, meta)
        for doc in ("README.md", os.path.join("docs", "PERFORMANCE.md")):
            splice(os.path.join(root, doc), block)
    return verdicts(public)


MARK_START, MARK_END = "<!-- bench:latest -->", "<!-- /bench:latest -->"


def latest_block(public: dict, details: dict, meta: dict) -> str:
    """The latest figures with their spread, as README.md and docs/PERFORMANCE.md carry them."""
    rows = summary_rows(public, details)
    calls = public.get("calls_per_op")
    lines = [f"Latest `make bench`: {meta['finished_at']}, {meta['machine']}, {meta['seconds']:.0f} s "
             "(every speed a ratio to a floor measured in the same run; *spread*: the range over its rounds)."
             + _kept(public, meta) + _unfinished(meta), ""]
    lines += rows
    if calls:
        lines += ["", "DynamoDB calls per warm operation: " + ", ".join(f"{op} {n}" for op, n in calls["value"].items())
                  + f" (goals {', '.join(g.split()[-1] for g in calls['goal'].values())})."]
    return "\n".join(lines)


def splice(path: str, block: str) -> bool:
    """Replace what stands between the bench markers in `path` with `block`; False when the
    file has no markers (nothing written)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return False
    if MARK_START not in text or MARK_END not in text:
        return False
    head, rest = text.split(MARK_START, 1)
    _, tail = rest.split(MARK_END, 1)
    with open(path, "w") as f:
        f.write(f"{head}{MARK_START}\n{block}\n{MARK_END}{tail}")
    return True


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
