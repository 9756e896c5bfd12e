// The monitoring page: latest status per model version, alerts, and drift/quality/operations charts over windows.
"use strict";
(function () {
  const QUALITY = ["accuracy", "auc", "f1", "mae", "rmse"];
  const plotlyReady = new Promise(res => { if (window.Plotly) res(); else window.addEventListener("load", res); });
  const sel = document.getElementById("mon-model");

  async function load() {
    document.body.dataset.loaded = "";
    const model = L.q().get("model") || "";
    const res = await L.api("/portal/api/monitoring" + (model ? "?" + new URLSearchParams({model}) : ""));
    sel.replaceChildren(sel.options[0], ...res.models.map(m => L.el("option", {value: m, text: m})));
    sel.value = model;

    const tb = document.querySelector("#mon-status tbody"); tb.replaceChildren();
    for (const s of res.status) {
      const q = QUALITY.filter(k => s[k] !== undefined && s[k] !== null).map(k => k + " " + L.num(s[k])).join(", ");
      tb.append(L.el("tr", {"data-model": s.model_name, "data-version": s.model_version},
        L.el("td", {text: s.model_name}), L.el("td", {class: "num", text: s.model_version}), L.el("td", {text: s.window}),
        L.el("td", {text: L.time(s.window_start)}), L.el("td", {class: s.status, text: s.status}),
        L.el("td", {class: "num", text: L.num(s.requests)}), L.el("td", {class: "num", text: L.num(s.max_drift)}),
        L.el("td", {text: s.max_drift_feature || ""}), L.el("td", {text: q}),
        L.el("td", {class: "num", text: L.num(s.error_rate)}), L.el("td", {class: "num", text: L.num(s.latency_p99)}),
        L.el("td", {text: s.alerts || ""})));
    }
    if (!res.status.length) tb.append(L.el("tr", {}, L.el("td", {colspan: 12, text: "No monitoring results yet: run 'lakeml monitor run'."})));

    const ab = document.querySelector("#mon-alerts tbody"); ab.replaceChildren();
    for (const a of res.alerts) {
      ab.append(L.el("tr", {}, L.el("td", {text: L.time(a.fired_at)}), L.el("td", {text: a.rule}), L.el("td", {text: a.model_name}),
        L.el("td", {class: "num", text: a.model_version}), L.el("td", {text: a.check_name}), L.el("td", {text: a.feature || ""}),
        L.el("td", {class: "num", text: L.num(a.value)}), L.el("td", {text: a.message})));
    }
    if (!res.alerts.length) ab.append(L.el("tr", {}, L.el("td", {colspan: 8, text: "No alerts recorded."})));

    document.getElementById("mon-status-line").textContent =
      `${res.status.length} model version(s), ${res.alert_count} alert(s)`;
    const charts = document.getElementById("mon-charts"); charts.replaceChildren();
    await plotlyReady;
    const todo = [];  // lay every chart's box out first, so each is drawn at its final width
    for (const v of res.versions) {
      charts.append(L.el("h2", {text: `${v.model_name} v${v.model_version} (windows of ${v.window})`}));
      const grid = L.el("div", {class: "cols"}); charts.append(grid);
      for (const c of v.charts) {
        const div = L.el("div", {class: "chart small", id: `chart-${v.model_name}-${v.model_version}-${v.window}-${c.id}`,
                                 "data-chart": c.id, role: "img", "aria-label": `${c.title}, ${v.model_name} v${v.model_version}`});
        grid.append(div);
        todo.push([div, c]);
      }
    }
    for (const [div, c] of todo) {
      const traces = c.series.map(s => ({x: s.x, y: s.y, name: s.name, mode: "lines+markers", type: "scatter"}));
      await Plotly.newPlot(div, traces, {title: {text: c.title, font: {size: 13}}, margin: {l: 45, r: 15, t: 36, b: 80},
                                         legend: {orientation: "h", y: -0.3}}, {displaylogo: false, responsive: true});
    }
    document.body.dataset.loaded = "monitoring";
  }
  sel.addEventListener("change", () => { L.setQ({model: sel.value}); load().catch(e => L.toast(e.message)); });
  load().catch(e => L.toast(e.message));
})();
