// Program settings as a form built from the API's own GET body (a valid PUT body), so a
// new setting shows up without a console change. Maps and lists are edited as JSON.
import { get, put } from "../api.js";
import { h, card, field, toast } from "../dom.js";
import { showErrors, clearErrors, confirmAction } from "../forms.js";

// Settings whose keys are the user's own (maps) or whose items vary (lists).
const AS_JSON = new Set(["category_multipliers", "promotions", "activity_rules", "earning_caps", "transfers", "points_expiry_policy"]);

function label(key) {
  return key.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

// Inputs keep the original type in data-kind, so the PUT sends back what the GET had.
function inputFor(path, value) {
  if (typeof value === "boolean") return h("input", { name: path, type: "checkbox", checked: value, "data-kind": "boolean" });
  if (typeof value === "number") return h("input", { name: path, type: "number", step: "any", value: String(value), "data-kind": "number" });
  if (value === null) return h("input", { name: path, type: "text", value: "", placeholder: "none", "data-kind": "nullable" });
  if (typeof value === "string") return h("input", { name: path, type: "text", value, "data-kind": "string" });
  return h("textarea", { name: path, rows: Math.min(12, JSON.stringify(value, null, 2).split("\n").length + 1),
    "data-kind": "json", spellcheck: "false", value: JSON.stringify(value, null, 2) });
}

function build(obj, prefix = "") {
  return Object.entries(obj).map(([key, value]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === "object" && !Array.isArray(value) && !AS_JSON.has(key) && Object.keys(value).length) {
      return h("fieldset", {}, h("legend", {}, label(key)), h("div", { class: "field-error", "data-error-for": path }),
        h("div", { class: "cols" }, build(value, path)));
    }
    const input = inputFor(path, value);
    if (input.type === "checkbox") {
      return h("div", { class: "field" }, h("label", { class: "check" }, input, " ", label(key)),
        h("div", { class: "field-error", "data-error-for": path }));
    }
    const wrapper = field(label(key), input);
    if (input.tagName === "TEXTAREA") wrapper.classList.add("wide");
    return wrapper;
  });
}

function read(input) {
  const kind = input.getAttribute("data-kind"), v = input.value;
  if (kind === "boolean") return input.checked;
  if (kind === "number") return v.trim() === "" ? null : (Number.isFinite(Number(v)) ? Number(v) : v);
  if (kind === "nullable") {
    if (v.trim() === "") return null;
    return Number.isFinite(Number(v)) ? Number(v) : v;
  }
  if (kind === "json") {
    try { return JSON.parse(v); } catch { throw Object.assign(new Error(`${input.name} is not valid JSON`), { field: input.name }); }
  }
  return v;
}

function collect(form) {
  const out = {};
  for (const input of form.querySelectorAll("[data-kind]")) {
    const parts = input.name.split(".");
    let node = out;
    parts.slice(0, -1).forEach((p) => { node = node[p] = node[p] || {}; });
    node[parts[parts.length - 1]] = read(input);
  }
  return out;
}

export async function render(root) {
  const settings = await get("/v1/admin/settings");
  const form = h("form", { id: "settings-form", novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    clearErrors(form);
    let body;
    try { body = collect(form); } catch (err) {
      const slot = form.querySelector(`[data-error-for="${CSS.escape(err.field)}"]`);
      if (slot) slot.textContent = err.message;
      return;
    }
    if (!await confirmAction("Save settings", ["Replace the program settings with this form?", "Earning and messaging use them at once."], { confirmLabel: "Save" })) return;
    try {
      await put("/v1/admin/settings", body);
      toast("Settings saved.");
    } catch (err) { showErrors(form, err); }
  } }, h("div", { class: "cols" }, build(settings)), h("div", { class: "actions sticky" }, h("button", { type: "submit", id: "save-settings" }, "Save settings")));
  root.append(h("h1", {}, "Program settings"), card(null, form));
}
