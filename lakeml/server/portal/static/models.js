"use strict";
(async function () {
  const res = await L.api("/portal/api/models");
  const tb = document.querySelector("#models tbody"); tb.replaceChildren();
  for (const m of res.models) {
    const al = Object.entries(m.aliases || {}).map(([a, v]) => `${a} → v${v}`).join(", ");
    const deps = m.deployments.map(d => `${d.environment}/${d.service}${d.service_version ? "@" + d.service_version : ""}: v${d.version}`).join("; ");
    tb.append(L.el("tr", {}, L.el("td", {}, L.el("a", {href: "/model?" + new URLSearchParams({name: m.name})}, m.name)),
      L.el("td", {class: "num", text: m.latest_version ?? ""}), L.el("td", {text: al}), L.el("td", {text: deps}), L.el("td", {text: L.time(m.updated_at || m.created_at)})));
  }
  if (!res.models.length) tb.append(L.el("tr", {}, L.el("td", {colspan: 5, text: "No registered models."})));
})().catch(e => L.toast(e.message));
