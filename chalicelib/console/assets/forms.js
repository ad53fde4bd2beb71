// Forms: the API's validation errors (details.fields, SPEC 4.2) shown at their field.
import { h, clear } from "./dom.js";
import { ApiError } from "./api.js";

export function clearErrors(form) {
  for (const el of form.querySelectorAll("[data-error-for]")) el.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const top = form.querySelector(".form-error");
  if (top) clear(top);
}

// The error slot whose name is the longest prefix of the API's dotted field path.
function slotFor(form, path) {
  let best = null;
  for (const el of form.querySelectorAll("[data-error-for]")) {
    const name = el.getAttribute("data-error-for");
    if (!name) continue;
    if ((path === name || path.startsWith(name + ".")) && (!best || name.length > best.getAttribute("data-error-for").length)) best = el;
  }
  return best;
}

export function showErrors(form, err) {
  clearErrors(form);
  let top = form.querySelector(".form-error");
  if (!top) { top = h("div", { class: "form-error error", role: "alert" }); form.prepend(top); }
  if (!(err instanceof ApiError)) { top.textContent = String(err.message || err); return; }
  const fields = err.fields;
  const unplaced = [];
  for (const f of fields) {
    const path = String(f.field || "").replace(/^body\./, "");
    const slot = slotFor(form, path);
    if (slot) {
      slot.textContent = slot.textContent ? `${slot.textContent}; ${f.message}` : f.message;
      const input = form.querySelector(`[name="${CSS.escape(slot.getAttribute("data-error-for"))}"]`);
      if (input) input.setAttribute("aria-invalid", "true");
    } else {
      unplaced.push(`${path || "body"}: ${f.message}`);
    }
  }
  top.append(`${err.code}: ${err.message}`);
  if (unplaced.length) top.append(h("ul", {}, unplaced.map((u) => h("li", {}, u))));
  const first = form.querySelector("[aria-invalid]");
  if (first) first.focus();
}

// A confirmation step for every action that changes data.
export function confirmAction(title, lines, { confirmLabel = "Confirm", danger = false, typeToConfirm = null } = {}) {
  return new Promise((resolve) => {
    const typed = typeToConfirm ? h("input", { type: "text", name: "confirm-text", autocomplete: "off" }) : null;
    const ok = h("button", { type: "button", class: danger ? "danger" : "", "data-confirm": "yes" }, confirmLabel);
    const cancel = h("button", { type: "button", class: "secondary", "data-confirm": "no" }, "Cancel");
    const dialog = h("dialog", { class: "confirm", "aria-label": title },
      h("h2", {}, title), ...lines.map((l) => h("p", {}, l)),
      typed ? h("label", {}, `Type ${typeToConfirm} to confirm`, typed) : null,
      h("div", { class: "actions" }, cancel, ok));
    const done = (value) => { dialog.close(); dialog.remove(); resolve(value); };
    ok.addEventListener("click", () => {
      if (typed && typed.value.trim() !== typeToConfirm) { typed.setAttribute("aria-invalid", "true"); return; }
      done(true);
    });
    cancel.addEventListener("click", () => done(false));
    dialog.addEventListener("cancel", (e) => { e.preventDefault(); done(false); });
    document.body.append(dialog);
    dialog.showModal();
  });
}

export function list(value) {
  return String(value || "").split(/[\s,]+/).map((v) => v.trim()).filter(Boolean);
}
