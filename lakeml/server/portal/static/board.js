// The project board: a kanban of model projects by status, filtered by customer and waiting role (deep-linked).
"use strict";
(function () {
  const LABELS = {proposed: "Proposed", in_development: "In development", validation: "Validation", approved: "Approved",
                  in_production: "In production", retired: "Retired", cancelled: "Cancelled"};
  const cust = document.getElementById("customer"), role = document.getElementById("role");

  function fillSelect(sel, values, current) {
    const first = sel.options[0];
    sel.replaceChildren(first, ...values.map(v => L.el("option", {value: v, text: v})));
    sel.value = current || "";
  }

  function card(c) {
    const kv = [];
    const add = (k, v) => { if (v !== null && v !== undefined && v !== "") kv.push(L.el("dt", {text: k}), L.el("dd", {}, v)); };
    add("Customer", c.customer);
    add("Step", c.current_step);
    add("Assignee", c.assignee);
    if (c.days_in_step !== null && c.days_in_step !== undefined)
      add("In step", L.num(c.days_in_step) + " d" + (c.sla_days !== null && c.sla_days !== undefined ? " (SLA " + L.num(c.sla_days) + " d)" : ""));
    add("Blocked by", c.blocked_by);
    add("Production", c.production_model_version);
    if (c.monitoring_status) {
      const m = /^models:\/([^/]+)\//.exec(c.production_model_version || "");
      add("Monitoring", L.el("a", {href: "/monitoring" + (m ? "?" + new URLSearchParams({model: m[1]}) : ""),
                                   class: "badge " + c.monitoring_status.split(":")[0], text: c.monitoring_status}));
    }
    add("Last activity", L.time(c.last_activity));
    if (c.cancel_reason) add("Cancelled", c.cancel_reason);
    const title = L.el("h3", {}, L.el("a", {href: "/project?" + new URLSearchParams({name: c.project})}, c.project),
                       c.stuck ? L.el("span", {class: "badge stuck", text: "stuck"}) : null);
    return L.el("article", {class: "card-p" + (c.stuck ? " stuck" : ""), "data-project": c.project,
                            "aria-label": c.project}, title, L.el("dl", {}, ...kv));
  }

  async function load() {
    document.body.dataset.loaded = "";
    const q = L.q();
    const params = new URLSearchParams();
    for (const k of ["customer", "role"]) if (q.get(k)) params.set(k, q.get(k));
    const res = await L.api("/portal/api/board" + (params.toString() ? "?" + params : ""));
    fillSelect(cust, res.customers, q.get("customer"));
    fillSelect(role, res.roles, q.get("role"));
    const board = document.getElementById("board");
    board.replaceChildren();
    for (const s of res.statuses) {
      const cards = res.cards.filter(c => c.status === s);
      const h = L.el("h2", {id: "col-" + s}, LABELS[s] || s, L.el("span", {class: "count", text: String(cards.length)}));
      const col = L.el("section", {"data-status": s, "aria-labelledby": "col-" + s}, h, ...cards.map(card));
      board.append(col);
    }
    const f = [q.get("customer") && "customer " + q.get("customer"), q.get("role") && "waiting on " + q.get("role")].filter(Boolean);
    document.getElementById("board-status").textContent =
      `${res.cards.length} of ${res.projects} projects` + (f.length ? " (" + f.join(", ") + ")" : "");
    document.body.dataset.loaded = "board";
  }

  function onFilter() { L.setQ({customer: cust.value, role: role.value}); load().catch(e => L.toast(e.message)); }
  cust.addEventListener("change", onFilter);
  role.addEventListener("change", onFilter);
  document.getElementById("clear").addEventListener("click", () => { cust.value = ""; role.value = ""; onFilter(); });
  load().catch(e => L.toast(e.message));
})();
