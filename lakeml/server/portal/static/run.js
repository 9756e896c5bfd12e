"use strict";
(async function (staticPrefix) {
  const runId = decodeURIComponent(location.pathname.split("/").pop());
  const $ = (id) => document.getElementById(id);
  let run;
  try { run = await L.api("/portal/api/run/" + encodeURIComponent(runId)); }
  catch (e) { $("run-title").textContent = "Run not found"; $("run-meta").replaceChildren(L.el("span", {class: "error", role: "alert", text: e.message})); return; }
  $("run-title").textContent = run.run_name || run.run_id;
  document.title = (run.run_name || run.run_id) + " · Run · lakeml";
  $("run-meta").replaceChildren(L.status(run.status), ` ${run.run_id} · experiment `,
    L.el("a", {href: "/runs?experiment=" + encodeURIComponent(run.experiment_name || "")}, run.experiment_name || run.experiment_id),
    ` · started ${L.time(run.start_time)} · ${L.dur(run.duration_s)} · ${run.user || ""}` + (run.git_commit ? ` · commit ${run.git_commit.slice(0, 10)}` : ""));
  function kv(id, obj, fmt) {
    const tb = document.querySelector("#" + id + " tbody"); tb.replaceChildren();
    const ks = Object.keys(obj).sort();
    for (const k of ks) tb.append(L.el("tr", {}, L.el("th", {scope: "row", text: k}), L.el("td", {text: fmt ? fmt(obj[k]) : obj[k]})));
    if (!ks.length) tb.append(L.el("tr", {}, L.el("td", {text: "none"})));
  }
  kv("params", run.params); kv("metrics", run.metrics, L.num); kv("tags", run.tags);
  const inp = document.querySelector("#inputs tbody");
  for (const i of run.inputs) {
    const reload = i.table ? `lake.load_input("${run.run_id}", "${i.table}")` : "";
    inp.append(L.el("tr", {}, L.el("td", {text: i.role}), L.el("td", {text: i.table || i.uri || i.name}),
      L.el("td", {text: i.snapshot_id ? "snapshot " + i.snapshot_id : (i.digest || "")}),
      L.el("td", {}, i.table ? L.el("a", {href: "/sql?" + new URLSearchParams({q: `SELECT * FROM lakeml.inputs WHERE run_id = '${run.run_id}'`})}, "query") : ""),
      L.el("td", {}, reload ? L.el("code", {text: reload}) : "")));
  }
  if (!run.inputs.length) inp.append(L.el("tr", {}, L.el("td", {text: "No inputs logged."})));
  const vl = $("versions");
  for (const v of run.versions) vl.append(L.el("li", {}, L.el("a", {href: "/model?" + new URLSearchParams({name: v.model_name, version: v.version})}, `${v.model_name} v${v.version}`), v.aliases.length ? " (" + v.aliases.join(", ") + ")" : ""));
  if (!run.versions.length) vl.append(L.el("li", {class: "meta", text: "Not registered."}));

  // metric chart, downsampled on the server
  const keys = Object.keys(run.metric_points).sort();
  const sel = $("metric-key");
  for (const k of keys) sel.append(L.el("option", {value: k, text: `${k} (${run.metric_points[k]} points)`}));
  const want = L.q().get("metric"); if (want && keys.includes(want)) sel.value = want;
  // First paint: a small SVG chart (quickchart.js) as soon as the series arrives; plotly.js (4.8 MB to
  // parse) is injected after that paint and the interactive chart replaces the SVG when it is ready.
  let plotlyReady = null;
  function loadPlotly() {
    if (!plotlyReady) plotlyReady = new Promise((res, rej) => {
      if (window.Plotly) { res(); return; }
      const sc = document.createElement("script");
      sc.src = staticPrefix + "plotly.min.js"; sc.onload = res;
      sc.onerror = () => rej(new Error("plotly.js did not load; the chart stays static"));
      document.head.append(sc);
    });
    return plotlyReady;
  }
  const afterPaint = () => new Promise(res => requestAnimationFrame(() => setTimeout(res, 0)));
  let drawing = 0;
  async function chart() {
    if (!sel.value) { $("chart-info").textContent = "No metrics logged."; return; }
    L.setQ({metric: sel.value});
    const t0 = performance.now(), mine = ++drawing;
    const s = await L.api(`/portal/api/run/${encodeURIComponent(runId)}/metric?` + new URLSearchParams({key: sel.value, points: 2000}));
    if (mine !== drawing) return;  // another metric was picked meanwhile
    const ys = s.values.map(L.y), logy = $("logy").checked;
    const info = `${s.total} points` + (s.downsampled ? `, ${s.steps.length} drawn (min/max per bucket, first and last kept)` : "");
    if (!window.Plotly) {
      const quick = $("chart-quick");
      quick.hidden = false; $("chart").hidden = true;
      QuickChart.draw(quick, {x: s.steps, y: ys, log: logy, yTitle: s.key,
        title: `${s.key} by step: ${info}, last step ${s.steps[s.steps.length - 1]} = ${L.num(ys[ys.length - 1])}`});
      $("chart-info").textContent = info + ` · ${Math.round(performance.now() - t0)} ms`;
      document.body.dataset.chart = "drawn";
      await afterPaint();
      document.body.dataset.chartPaintMs ||= Math.round(performance.now());  // since navigation (benchmarks)
    }
    await loadPlotly();
    if (mine !== drawing) return;
    $("chart").hidden = false;  // shown and drawn in the same task: no blank frame between the two charts
    const layout = {margin: {t: 20, r: 20, b: 40, l: 60}, xaxis: {title: {text: "step"}}, yaxis: {title: {text: s.key}, type: logy ? "log" : "linear"}};
    const drawn = Plotly.react("chart", [{x: s.steps, y: ys, type: "scatter", mode: "lines", name: s.key}], layout, {responsive: true, displaylogo: false});
    $("chart-quick").hidden = true;
    await drawn;
    $("chart-info").textContent = info + ` · ${Math.round(performance.now() - t0)} ms`;
    document.body.dataset.chart = "drawn";
    document.body.dataset.interactive = "ready";
    afterPaint().then(() => { document.body.dataset.interactiveMs ||= Math.round(performance.now()); });
  }
  sel.addEventListener("change", chart); $("logy").addEventListener("change", chart);
  chart().catch(e => { $("chart-info").textContent = e.message; });

  // artifacts
  async function browse(path) {
    const res = await L.api(`/portal/api/run/${encodeURIComponent(runId)}/artifacts?` + new URLSearchParams({path}));
    $("art-path").textContent = "/" + path;
    const ul = $("artifacts"); ul.replaceChildren();
    if (path) { const up = path.split("/").slice(0, -1).join("/"); ul.append(L.el("li", {}, L.el("a", {href: "#", onclick: (e) => { e.preventDefault(); browse(up); }}, ".. (up)"))); }
    for (const f of res.files) {
      const name = f.path.split("/").pop();
      const dl = `/portal/api/run/${encodeURIComponent(runId)}/artifact?` + new URLSearchParams({path: f.path, download: 1});
      ul.append(L.el("li", {}, f.is_dir ? L.el("a", {href: "#", onclick: (e) => { e.preventDefault(); browse(f.path); }}, name + "/")
        : L.el("span", {}, L.el("a", {href: "#", onclick: (e) => { e.preventDefault(); preview(f.path); }}, name), ` ${f.size ?? ""} B · `, L.el("a", {href: dl, download: name}, "download"))));
    }
    if (!res.files.length) ul.append(L.el("li", {class: "meta", text: "No artifacts."}));
  }
  async function preview(path) {
    const url = `/portal/api/run/${encodeURIComponent(runId)}/artifact?` + new URLSearchParams({path});
    const box = $("preview"); box.replaceChildren(L.el("h3", {text: path}));
    if (/\.(png|jpe?g|gif|webp)$/i.test(path)) { box.append(L.el("img", {src: url, alt: "Artifact " + path})); return; }
    const r = await fetch(url); let text = await r.text();
    if (/\.json$/i.test(path)) { try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* show as is */ } }
    if (/\.csv$/i.test(path)) {
      const rows = text.split(/\r?\n/).filter(Boolean).slice(0, 200).map(l => l.split(","));
      const t = L.el("table", {class: "grid"});
      rows.forEach((row, i) => t.append(L.el("tr", {}, ...row.map(c => L.el(i ? "td" : "th", {text: c})))));
      box.append(t);
    } else box.append(L.el("pre", {text}));
    if (r.headers.get("X-Lakeml-Truncated") === "1") box.append(L.el("p", {class: "meta", text: "Preview cut at 512 KiB; download for the whole file."}));
  }
  browse("").catch(e => { $("artifacts").replaceChildren(L.el("li", {class: "error", text: e.message})); });
})(document.currentScript.src.replace(/run\.js(\?.*)?$/, ""));
