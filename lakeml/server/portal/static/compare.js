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

  const plotlyReady = new Promise(res => { if (window.Plotly) res(); else window.addEventListener("load", res); });
  let curveCache = {};
  async function curves() {
    const key = $("cmp-metric").value; if (!key) return;
    L.setQ({metric: key});
    if (!curveCache[key]) curveCache[key] = await L.api("/portal/api/curves?" + new URLSearchParams({runs: ids.join(","), key, points: 1000}));
    await plotlyReady;  // the curves were fetched while plotly.js was still loading
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
  // parallel coordinates as SVG lines (plotly's parcoords needs WebGL, seconds to draw without a GPU):
  // one axis per param and the chosen metric, each scaled to its own min..max, one line per run
  function parcoords() {
    const m = $("pc-metric").value;
    const dims = cmp.params.map(k => {
      const vs = cmp.runs.map(r => r.params[k]), nums = vs.map(Number);
      if (vs.every(v => v !== undefined && v !== "") && nums.every(n => Number.isFinite(n))) return {label: k, values: nums};
      const cats = [...new Set(vs.map(v => v ?? "—"))].sort();
      return {label: k, values: vs.map(v => cats.indexOf(v ?? "—")), cats};
    });
    if (m) dims.push({label: m, values: cmp.runs.map(r => L.y(r.metrics[m])), metric: true});
    const scale = dims.map(d => {
      const ok = d.values.filter(Number.isFinite), lo = Math.min(...ok), hi = Math.max(...ok);
      return v => (Number.isFinite(v) ? (hi > lo ? (v - lo) / (hi - lo) : 0.5) : null);
    });
    const mv = m ? dims[dims.length - 1].values : [], ok = mv.filter(Number.isFinite);
    const lo = Math.min(...ok), hi = Math.max(...ok);
    const color = (v) => { const t = Number.isFinite(v) && hi > lo ? (v - lo) / (hi - lo) : 0.5; return `hsl(${Math.round(260 - 200 * t)}, 70%, 45%)`; };
    const traces = cmp.runs.map((r, i) => ({type: "scatter", mode: "lines+markers", name: name(r), x: dims.map((_, j) => j),
      y: dims.map((d, j) => scale[j](d.values[i])), line: {color: m ? color(mv[i]) : undefined, width: 2},
      text: dims.map(d => d.cats ? d.cats[d.values[i]] : L.num(d.values[i])), hovertemplate: "%{text}<extra>" + name(r) + "</extra>"}));
    const notes = dims.flatMap((d, j) => {
      const ok = d.values.filter(Number.isFinite); if (!ok.length) return [];
      const top = d.cats ? d.cats[Math.max(...ok)] : L.num(Math.max(...ok)), bottom = d.cats ? d.cats[Math.min(...ok)] : L.num(Math.min(...ok));
      return [{x: j, y: 1.04, text: top, showarrow: false, font: {size: 10}}, {x: j, y: -0.06, text: bottom, showarrow: false, font: {size: 10}}];
    });
    Plotly.react("parcoords", traces, {margin: {t: 20, r: 20, b: 60, l: 30}, showlegend: false, annotations: notes,
      xaxis: {tickvals: dims.map((_, j) => j), ticktext: dims.map(d => d.label), showgrid: true, gridcolor: "#999", zeroline: false},
      yaxis: {visible: false, range: [-0.12, 1.1]}}, conf);
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
