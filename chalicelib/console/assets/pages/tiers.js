// The tier ladder as an editable table (PUT /v1/admin/tiers replaces it whole).
import { get, put } from "../api.js";
import { h, card, toast } from "../dom.js";
import { showErrors, clearErrors, confirmAction, list } from "../forms.js";

function cell(name, value, attrs = {}) {
  return h("td", {}, h("input", { name, value: value ?? "", "aria-label": name, ...attrs }), h("div", { class: "field-error", "data-error-for": name }));
}

export async function render(root) {
  const tiers = (await get("/v1/admin/tiers")).items || [];
  const body = h("tbody", {});
  const addRow = (t = {}) => {
    const i = body.children.length;
    body.append(h("tr", { "data-row": i },
      cell(`items.${i}.tier_id`, t.tier_id), cell(`items.${i}.name`, t.name),
      cell(`items.${i}.threshold`, t.threshold, { type: "number", min: 0 }), cell(`items.${i}.multiplier`, t.multiplier),
      cell(`items.${i}.benefits`, (t.benefits || []).join("; ")),
      h("td", {}, h("button", { type: "button", class: "secondary", onclick: (e) => e.target.closest("tr").remove() }, "Remove"))));
  };
  tiers.forEach(addRow);
  const form = h("form", { id: "tiers-form", novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    clearErrors(form);
    const items = [...body.children].map((row) => {
      const [id, name, threshold, multiplier, benefits] = [...row.querySelectorAll("input")].map((x) => x.value);
      return { tier_id: id, name, threshold: threshold === "" ? null : Number(threshold), multiplier,
        benefits: benefits.split(";").map((b) => b.trim()).filter(Boolean) };
    });
    // Rows were renamed by removals: name the inputs by their position again so errors land right.
    [...body.children].forEach((row, i) => row.querySelectorAll("[name],[data-error-for]").forEach((el) => {
      for (const attr of ["name", "data-error-for", "aria-label"]) {
        if (el.hasAttribute(attr)) el.setAttribute(attr, el.getAttribute(attr).replace(/^items\.\d+/, `items.${i}`));
      }
    }));
    if (!await confirmAction("Save tiers", [`Replace the tier ladder with these ${items.length} tiers?`], { confirmLabel: "Save" })) return;
    try { await put("/v1/admin/tiers", { items }); toast("Tiers saved."); }
    catch (err) { showErrors(form, err); }
  } },
  h("div", { class: "table-wrap" }, h("table", { class: "edit" },
    h("thead", {}, h("tr", {}, ["Id", "Name", "Qualifying spend", "Multiplier", "Benefits (; separated)", ""].map((c) => h("th", {}, c)))), body)),
  h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", onclick: () => addRow() }, "Add tier"),
    h("button", { type: "submit", id: "save-tiers" }, "Save tiers")));
  root.append(h("h1", {}, "Tiers"), card(null, form));
}
