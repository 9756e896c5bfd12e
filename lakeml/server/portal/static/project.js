// One model project: its record, the process's steps, its task instances, deliverables and history.
"use strict";
(async function () {
  const name = L.q().get("name");
  if (!name) { L.toast("no project named in the URL (?name=...)"); return; }
  const res = await L.api("/portal/api/project?" + new URLSearchParams({name}));
  const p = res.project;
  document.title = p.name + " · Project · lakeml";
  document.getElementById("project-name").replaceChildren(p.name + " ", L.el("span", {class: "status", text: p.status}));
  const roles = Object.entries(p.roles || {}).map(([r, us]) => r + ": " + us.join(", ")).join("; ");
  const kv = [["Problem", p.problem], ["Customer", p.customer], ["Status since", L.time(p.status_since)],
              ["Target date", p.target_date], ["Expected value", p.expected_value === null ? "" : L.num(p.expected_value)],
              ["Roles", roles], ["Experiments", (p.experiments || []).join(", ")], ["Models", (p.models || []).join(", ")],
              ["Created", L.time(p.created_at) + (p.created_by ? " by " + p.created_by : "")],
              ["Cancel reason", p.cancel_reason]];
  const tbl = L.el("table", {class: "grid kv", id: "project-fields"}, L.el("caption", {class: "sr", text: "Project fields"}));
  for (const [k, v] of kv) if (v) tbl.append(L.el("tr", {}, L.el("th", {scope: "row", text: k}), L.el("td", {text: v})));
  document.getElementById("project-summary").replaceChildren(tbl);

  const steps = document.getElementById("steps");
  for (const s of res.steps) {
    steps.append(L.el("li", {class: s.state, "data-step": s.task_id},
      s.name, L.el("small", {text: s.role + " · " + s.state + (s.runs > 1 ? " · run " + s.runs + "×" : "")}),
      s.required.length ? L.el("small", {text: "needs " + s.required.join(", ")}) : null));
  }
  const fill = (id, rows, cols) => {
    const tb = document.querySelector("#" + id + " tbody");
    for (const r of rows) tb.append(L.el("tr", {}, ...cols.map(c => L.el("td", {class: c[1] || null, text: c[0](r) ?? ""}))));
    if (!rows.length) tb.append(L.el("tr", {}, L.el("td", {colspan: cols.length, text: "None yet."})));
  };
  fill("tasks", res.tasks, [[t => t.task_name], [t => t.role], [t => t.state], [t => t.assignee], [t => L.time(t.ready_at)],
                            [t => L.time(t.completed_at)], [t => t.completed_by], [t => t.blocked_by]]);
  fill("deliverables", res.deliverables, [[d => d.task_name], [d => d.kind], [d => d.name], [d => d.value], [d => d.uri],
                                          [d => d.snapshot_id], [d => d.by], [d => L.time(d.at)]]);
  fill("events", res.events, [[e => e.event_seq, "num"], [e => L.time(e.event_time)], [e => e.event_type], [e => e.outcome],
                              [e => e.actor], [e => e.role], [e => e.task_id], [e => (e.status_before && e.status_before !== e.status_after ? e.status_before + " → " : "") + (e.status_after || "")],
                              [e => e.comment]]);
  document.body.dataset.loaded = "project";
})().catch(e => L.toast(e.message));
