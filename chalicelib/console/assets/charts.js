// Small SVG charts drawn with presentation attributes only (no inline styles: CSP).
import { h, s, num } from "./dom.js";

const COLORS = ["#3b5bdb", "#f08c00", "#2b8a3e", "#c2255c", "#1098ad", "#7048e8", "#e8590c", "#5c940d", "#862e9c", "#495057"];

// Horizontal bars, one per item: for labelled counts (segments, touch models, NPS groups).
export function bars(items, { format = num, title = "" } = {}) {
  if (!items.length) return h("p", { class: "muted" }, "No data yet.");
  const max = Math.max(1, ...items.map((d) => Number(d.value) || 0));
  const row = 28, labelW = 150, barW = 300, width = labelW + barW + 90;
  const svg = s("svg", { viewBox: `0 0 ${width} ${items.length * row + 8}`, class: "chart", role: "img",
    "aria-label": title || "bar chart" });
  items.forEach((d, i) => {
    const y = i * row + 4, w = Math.max(1, (Number(d.value) || 0) / max * barW);
    svg.append(
      s("text", { x: labelW - 8, y: y + 17, "text-anchor": "end", class: "chart-label" }, d.label),
      s("rect", { x: labelW, y: y + 4, width: w, height: row - 10, rx: 3, fill: d.color || COLORS[i % COLORS.length] },
        s("title", {}, `${d.label}: ${format(d.value)}`)),
      s("text", { x: labelW + w + 6, y: y + 17, class: "chart-value" }, format(d.value)));
  });
  return svg;
}

// Vertical columns over time (e.g. expiring points by month).
export function columns(items, { format = num, title = "" } = {}) {
  if (!items.length) return h("p", { class: "muted" }, "No data yet.");
  const max = Math.max(1, ...items.map((d) => Number(d.value) || 0));
  const colW = 44, chartH = 150, width = Math.max(300, items.length * colW + 20);
  const svg = s("svg", { viewBox: `0 0 ${width} ${chartH + 40}`, class: "chart", role: "img", "aria-label": title || "column chart" });
  items.forEach((d, i) => {
    const hgt = Math.max(1, (Number(d.value) || 0) / max * chartH), x = 10 + i * colW;
    svg.append(
      s("rect", { x: x + 4, y: chartH - hgt + 16, width: colW - 8, height: hgt, rx: 2, fill: COLORS[0] },
        s("title", {}, `${d.label}: ${format(d.value)}`)),
      s("text", { x: x + colW / 2, y: chartH - hgt + 12, "text-anchor": "middle", class: "chart-value small" }, format(d.value)),
      s("text", { x: x + colW / 2, y: chartH + 32, "text-anchor": "middle", class: "chart-label small" }, d.label));
  });
  return svg;
}

// A ring with a legend: shares of a whole (touch models).
export function donut(items, { title = "" } = {}) {
  const total = items.reduce((a, d) => a + (Number(d.value) || 0), 0);
  if (!total) return h("p", { class: "muted" }, "No data yet.");
  const r = 60, c = 2 * Math.PI * r;
  const svg = s("svg", { viewBox: "0 0 320 160", class: "chart donut", role: "img", "aria-label": title || "shares" });
  let offset = 0;
  items.forEach((d, i) => {
    const len = (Number(d.value) || 0) / total * c;
    svg.append(s("circle", { cx: 80, cy: 80, r, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 28,
      "stroke-dasharray": `${len} ${c - len}`, "stroke-dashoffset": -offset, transform: "rotate(-90 80 80)" },
    s("title", {}, `${d.label}: ${num(d.value)}`)));
    offset += len;
    svg.append(s("rect", { x: 170, y: 20 + i * 24, width: 12, height: 12, fill: COLORS[i % COLORS.length] }),
      s("text", { x: 188, y: 31 + i * 24, class: "chart-label" }, `${d.label} ${Math.round((Number(d.value) || 0) / total * 100)}%`));
  });
  return svg;
}

// The uplift's point estimate and its 95% interval on an axis through zero.
export function interval(diff, ci, { title = "uplift" } = {}) {
  if (diff === null || diff === undefined || !Array.isArray(ci) || ci[0] === null) {
    return h("p", { class: "muted" }, "Not enough members in both groups for an interval yet.");
  }
  const [lo, hi] = ci.map(Number);
  const span = Math.max(Math.abs(lo), Math.abs(hi), Math.abs(Number(diff)), 0.001) * 1.2;
  const W = 400, x = (v) => 20 + (v + span) / (2 * span) * (W - 40);
  const color = lo > 0 ? "#2b8a3e" : hi < 0 ? "#c92a2a" : "#f08c00";
  return s("svg", { viewBox: `0 0 ${W} 80`, class: "chart", role: "img", "aria-label": title },
    s("line", { x1: 20, y1: 40, x2: W - 20, y2: 40, stroke: "#adb5bd" }),
    s("line", { x1: x(0), y1: 20, x2: x(0), y2: 60, stroke: "#495057", "stroke-dasharray": "3 3" }),
    s("text", { x: x(0), y: 74, "text-anchor": "middle", class: "chart-label small" }, "0"),
    s("line", { x1: x(lo), y1: 40, x2: x(hi), y2: 40, stroke: color, "stroke-width": 6, "stroke-linecap": "round" }),
    s("circle", { cx: x(Number(diff)), cy: 40, r: 7, fill: "#fff", stroke: color, "stroke-width": 3 }),
    s("text", { x: x(lo), y: 20, "text-anchor": "middle", class: "chart-label small" }, (lo * 100).toFixed(2) + " pp"),
    s("text", { x: x(hi), y: 20, "text-anchor": "middle", class: "chart-label small" }, (hi * 100).toFixed(2) + " pp"));
}

// A value against a goal, as a <meter>-like bar (tier progress, code generation).
export function progress(value, max, label) {
  return h("div", { class: "progress" }, h("progress", { value: Math.max(0, Number(value) || 0), max: Math.max(1, Number(max) || 1) }),
    h("span", { class: "muted" }, label));
}
