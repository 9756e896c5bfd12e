"use strict";
(async function () {
  const q = L.q(), form = document.getElementById("best-form");
  const metric = document.getElementById("best-metric"), mode = document.getElementById("best-mode");
  metric.value = q.get("metric") || ""; mode.value = q.get("mode") || "max";
  async function load() {
    L.setQ({metric: metric.value, mode: metric.value ? mode.value : ""});
    const res = await L.api("/portal/api/experiments?" + new URLSearchParams({metric: metric.value, mode: mode.value}));
    document.getElementById("best-head").textContent = metric.value ? `Best ${metric.value} (${mode.value})` : "Best";
    const tb = document.querySelector("#experiments tbody"); tb.replaceChildren();
    for (const e of res.experiments) {
      tb.append(L.el("tr", {},
        L.el("td", {}, L.el("a", {href: "/runs?experiment=" + encodeURIComponent(e.name)}, e.name)),
        L.el("td", {class: "num", text: e.runs}), L.el("td", {class: "num", text: e.running}),
        L.el("td", {class: "num", text: e.failed}), L.el("td", {text: L.time(e.last_activity)}),
        L.el("td", {class: "num", text: L.num(e.best)})));
    }
    if (!res.experiments.length) tb.append(L.el("tr", {}, L.el("td", {colspan: 6, text: "No experiments yet."})));
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load().catch(e => L.toast(e.message)); });
  load().catch(e => L.toast(e.message));
})();
