"use strict";
(function () {
  const q = L.q(), name = q.get("name") || "", $ = (id) => document.getElementById(id);
  document.title = name + " · Models · lakeml";
  $("model-title").textContent = "Model " + name;
  function gateBox(res, promoted) {
    const box = $("gate-result"); box.replaceChildren();
    if (promoted) box.append(L.el("p", {class: "pass", role: "status", text: promoted}));
    const failing = res.failing || [];
    box.append(L.el("h3", {text: failing.length ? "Gates failing" : "Gates passing"}));
    const ul = L.el("ul", {id: "gate-rules"});
    for (const f of failing) ul.append(L.el("li", {class: "fail", text: "✗ " + f}));
    if (res.rules) for (const r of res.rules) if (!failing.length) ul.append(L.el("li", {class: "pass", text: "✓ " + r}));
    if (!failing.length && !(res.rules || []).length) ul.append(L.el("li", {class: "meta", text: "This model has no promotion gates."}));
    box.append(ul);
  }
  async function lineage(version) {
    L.setQ({version});
    const lin = await L.api("/portal/api/lineage?" + new URLSearchParams({name, version}));
    const node = (title, ...kids) => L.el("div", {class: "node"}, L.el("strong", {text: title}), L.el("br"), ...kids);
    const box = $("lineage"); box.replaceChildren(
      node(`${lin.model_name} v${lin.version}`, lin.flavor || "", lin.aliases.length ? L.el("div", {text: "aliases: " + lin.aliases.join(", ")}) : ""),
      L.el("span", {class: "arrow", "aria-hidden": "true", text: "→"}),
      node("run", lin.run_id ? L.runLink(lin.run_id, lin.run_name) : "none", L.el("div", {class: "meta", text: (lin.experiment_name || "") + (lin.git_commit ? " · " + lin.git_commit.slice(0, 10) : "")})),
      L.el("span", {class: "arrow", "aria-hidden": "true", text: "→"}),
      node("inputs", ...(lin.inputs.length ? lin.inputs.map(i => L.el("div", {text: `${i.role}: ${i.table || i.uri || i.name}` + (i.snapshot_id ? ` @ snapshot ${i.snapshot_id}` : "")})) : [L.el("div", {class: "meta", text: "none logged"})])));
  }
  async function load() {
    const res = await L.api("/portal/api/model?" + new URLSearchParams({name}));
    $("model-desc").textContent = (res.model.description || "") + (res.model.gates ? " · promotion gates set" : "");
    const tb = $("versions").tBodies[0]; tb.replaceChildren();
    const sel = $("promo-version"), keep = sel.value; sel.replaceChildren();
    for (const v of [...res.versions].reverse()) {
      tb.append(L.el("tr", {}, L.el("td", {text: "v" + v.version}), L.el("td", {text: v.aliases.join(", ")}),
        L.el("td", {}, v.run_id ? L.runLink(v.run_id) : ""), L.el("td", {text: v.flavor || ""}), L.el("td", {text: L.time(v.created_at)}),
        L.el("td", {}, L.el("a", {href: "#lineage", onclick: (e) => { e.preventDefault(); lineage(v.version); }}, "lineage"))));
      sel.append(L.el("option", {value: v.version, text: "v" + v.version}));
    }
    if (keep) sel.value = keep; else if (q.get("version")) sel.value = q.get("version");
    const db = $("deployments").tBodies[0]; db.replaceChildren();
    for (const d of res.deployments) db.append(L.el("tr", {}, L.el("td", {text: d.environment}), L.el("td", {text: d.service}), L.el("td", {text: d.service_version || ""}),
      L.el("td", {text: "v" + d.version}), L.el("td", {text: L.time(d.deployed_at)}), L.el("td", {text: d.retired_at ? "retired " + L.time(d.retired_at) : "running"})));
    if (!res.deployments.length) db.append(L.el("tr", {}, L.el("td", {colspan: 6, text: "Not deployed."})));
    const eb = $("events").tBodies[0]; eb.replaceChildren();
    for (const e of res.events) eb.append(L.el("tr", {class: e.outcome !== "ok" && e.outcome !== "applied" ? "refused" : ""}, L.el("td", {text: e.event_seq}), L.el("td", {text: L.time(e.event_time)}),
      L.el("td", {text: e.event_type}), L.el("td", {class: /refus|denied|fail/i.test(e.outcome) ? "fail" : "", text: e.outcome}), L.el("td", {text: e.version ?? ""}),
      L.el("td", {text: e.alias || e.environment || ""}), L.el("td", {text: e.actor || ""}), L.el("td", {text: e.message || ""})));
    document.body.dataset.loaded = "model";
  }
  $("check-gates").addEventListener("click", async () => {
    try { gateBox(await L.api("/portal/api/gates?" + new URLSearchParams({name, version: $("promo-version").value, alias: $("promo-alias").value}))); }
    catch (e) { $("gate-result").replaceChildren(L.el("p", {class: "error", role: "alert", text: e.message})); }
  });
  $("promote").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {name, version: +$("promo-version").value, alias: $("promo-alias").value};
    try {
      const gates = await L.api("/portal/api/gates?" + new URLSearchParams(body));
      await L.post("/portal/api/promote", body);
      gateBox(gates, `Promoted v${body.version} to ${body.alias}.`);
    } catch (e) {
      if (e.status === 409 && e.body && e.body.error && e.body.error.failing) {
        gateBox({failing: e.body.error.failing});
        $("gate-result").prepend(L.el("p", {class: "fail", role: "alert", text: `Promotion of v${body.version} to ${body.alias} refused by the gates.`}));
      } else $("gate-result").replaceChildren(L.el("p", {class: "error", role: "alert", text: e.message}));
    }
    await load();
  });
  load().then(() => { if (q.get("version")) lineage(q.get("version")); }).catch(e => { $("model-desc").replaceChildren(L.el("span", {class: "error", role: "alert", text: e.message})); });
})();
