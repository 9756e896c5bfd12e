"use strict";
(async function () {
  const q = L.q(), $ = (id) => document.getElementById(id);
  const ids = (q.get("runs") || "").split(",").filter(Boolean);
  let exp = q.get("experiment") || "";
  if (ids.length < 1) { $("cmp-runs").textContent = "Pick runs in a runs table, then Compare."; return; }
  const cmp = await L.api("/portal/api/compare?" + new URLSearchParams({runs: ids.join(",")}));
  exp = exp || cmp.runs[0].experiment_name;
  document.title = `Compare ${cmp.runs.length} runs · lakeml`;
  $("cmp-runs").replaceChildren(`${cmp.runs.length} runs of `, L.el("a", {href: "/runs?" + new URLSearchParams({experiment: exp, runs: ids.join(",")})}, exp), ": ",
    ...cmp.runs.flatMap((r, i) => [i ? ", " : "", L.runLink(r.run_id, r.run_name)]));
  const fill = (sel, items, def) => { sel.replaceChildren(...items.map(k => L.el("option", {value: k, text: k}))); if (def && items.includes(def)) sel.value = def; };
  const axes = [...cmp.metrics.map(k => "metrics." + k), ...cmp.params.map(k => "params." + k)];
  fill($("cmp-metric"), cmp.metrics, q.get("metric")); fill($("sx"), axes, axes.find(a => a.startsWith("params.")));
  fill($("sy"), cmp.metrics.map(k => "metrics." + k)); fill($("pc-metric"), cmp.metrics);
  const name = (r) => r.run_name || r.run_id.slice(0, 8);
  const conf = {responsive: true, displaylogo: false}, margin = {t: 20, r: 20, b: 50, l: 60};

  // params diff
  function diffTable() {
    const only = $("only-diff").checked;
    $("diff").tHead.replaceChildren(L.el("tr", {}, L.el("th", {scope: "col", text: "param"}), ...cmp.runs.map(r => L.el("th", {scope: "col", text: name(r)}))));
    const tb = $("diff").tBodies[0]; tb.replaceChildren();
    for (const k of cmp.params) {
      const d = cmp.differs.includes(k); if (only && !d) continue;
      tb.append(L.el("tr", {class: d ? "differs" : ""}, L.el("th", {scope: "row", text: k}), ...cmp.runs.map(r => L.el("td", {class: d ? "diff" : "", text: r.params[k] ?? "—"}))));
    }
  }
  $("only-diff").addEventListener("change", diffTable); diffTable();

  await new Promise(res => { if (window.Plotly) res(); else window.addEventListener("load", res); });
  let curveCache = {};
  async function curves() {
    const key = $("cmp-metric").value; if (!key) return;
    L.setQ({metric: key});
    if (!curveCache[key]) curveCache[key] = await L.api("/portal/api/curves?" + new URLSearchParams({runs: ids.join(","), key, points: 1000}));
    const a = +$("smooth").value, byId = Object.fromEntries(cmp.runs.map(r => [r.run_id, r]));
    const traces = curveCache[key].series.map(s => ({x: s.steps, y: L.ema(s.values.map(L.y), a), type: "scatter", mode: s.steps.length <= 50 ? "lines+markers" : "lines", name: name(byId[s.run_id])}));
    await Plotly.react("curves", traces, {margin, xaxis: {title: {text: "step"}}, yaxis: {title: {text: key}, type: $("cmp-logy").checked ? "log" : "linear"}, legend: {orientation: "h"}}, conf);
    document.body.dataset.curves = "drawn";
  }
  const val = (r, axis) => { const [ent, ...k] = axis.split("."), v = r[ent][k.join(".")]; const n = L.y(v); return Number.isNaN(n) ? v : n; };
  function scatter() {
    const x = $("sx").value, y = $("sy").value; if (!x || !y) return;
    Plotly.react("scatter", [{x: cmp.runs.map(r => val(r, x)), y: cmp.runs.map(r => val(r, y)), text: cmp.runs.map(name), mode: "markers+text", textposition: "top center", type: "scatter"}],
      {margin, xaxis: {title: {text: x}}, yaxis: {title: {text: y}}}, conf);
  }
  function parcoords() {
    const m = $("pc-metric").value;
    const dims = cmp.params.map(k => {
      const vs = cmp.runs.map(r => r.params[k]), nums = vs.map(Number);
      if (nums.every(n => !Number.isNaN(n))) return {label: k, values: nums};
      const cats = [...new Set(vs.map(v => v ?? "—"))];
      return {label: k, values: vs.map(v => cats.indexOf(v ?? "—")), tickvals: cats.map((_, i) => i), ticktext: cats};
    });
    if (m) dims.push({label: m, values: cmp.runs.map(r => L.y(r.metrics[m]))});
    Plotly.react("parcoords", [{type: "parcoords", line: m ? {color: cmp.runs.map(r => L.y(r.metrics[m])), colorscale: "Viridis", showscale: true} : {}, dimensions: dims}],
      {margin: {t: 40, r: 40, b: 20, l: 40}}, conf);
  }
  ["cmp-metric", "smooth", "cmp-logy"].forEach(id => $(id).addEventListener(id === "smooth" ? "input" : "change", () => curves().catch(e => L.toast(e.message))));
  ["sx", "sy"].forEach(id => $(id).addEventListener("change", scatter)); $("pc-metric").addEventListener("change", parcoords);

  // layouts, shared through the chart_layouts table
  let saved = [];
  function spec() { return {metric: $("cmp-metric").value, smoothing: +$("smooth").value, log_y: $("cmp-logy").checked, scatter_x: $("sx").value, scatter_y: $("sy").value, parcoords_metric: $("pc-metric").value}; }
  function apply(s) {
    if (s.metric) $("cmp-metric").value = s.metric; $("smooth").value = s.smoothing || 0; $("cmp-logy").checked = !!s.log_y;
    if (s.scatter_x) $("sx").value = s.scatter_x; if (s.scatter_y) $("sy").value = s.scatter_y; if (s.parcoords_metric) $("pc-metric").value = s.parcoords_metric;
  }
  async function loadLayouts() {
    saved = (await L.api("/portal/api/layouts?" + new URLSearchParams({experiment: exp}))).layouts;
    $("layout-list").replaceChildren(...saved.map(l => L.el("option", {value: l.name})));
    return saved;
  }
  $("save-layout").addEventListener("click", async () => {
    try { await L.post("/portal/api/layouts", {experiment: exp, name: $("layout-name").value || "default", spec: spec()}); await loadLayouts(); L.toast("Layout saved for " + exp); document.body.dataset.layout = "saved"; }
    catch (e) { L.toast(e.message); }
  });
  $("load-layout").addEventListener("click", () => { const l = saved.find(x => x.name === $("layout-name").value); if (l) { apply(l.spec); curves(); scatter(); parcoords(); L.toast("Layout " + l.name + " loaded"); } else L.toast("No layout named " + $("layout-name").value); });
  try {
    await loadLayouts();
    const start = saved.find(x => x.name === (q.get("layout") || "default"));
    if (start && !q.get("metric")) { apply(start.spec); $("layout-name").value = start.name; }
  } catch (e) { L.toast(e.message); }
  await curves(); scatter(); parcoords();
  document.body.dataset.loaded = "compare";
})().catch(e => { document.getElementById("cmp-runs").replaceChildren(L.el("span", {class: "error", role: "alert", text: e.message})); });
