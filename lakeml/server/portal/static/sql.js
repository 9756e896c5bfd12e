"use strict";
// The SQL console: queries go through the server's read-only SQL endpoint (POST /api/v1/sql).
(function () {
  const $ = (id) => document.getElementById(id), q = L.q();
  let last = null;
  if (q.get("q")) $("sql").value = q.get("q");
  function chart() {
    if (!last || !window.Plotly || !last.rows.length) return;
    const xi = +$("cx").value, yi = +$("cy").value, kind = $("ckind").value;
    Plotly.react("sql-chart", [{x: last.rows.map(r => r[xi]), y: last.rows.map(r => r[yi]), type: kind === "bar" ? "bar" : "scatter", mode: kind === "line" ? "lines" : "markers"}],
      {margin: {t: 20, r: 20, b: 60, l: 60}, xaxis: {title: {text: last.columns[xi].name}}, yaxis: {title: {text: last.columns[yi].name}}}, {responsive: true, displaylogo: false});
  }
  function params() {  // values of the $name parameters of a saved query, or undefined
    const inputs = [...document.querySelectorAll("#sql-params input")];
    if (!inputs.length) return undefined;
    return Object.fromEntries(inputs.map(i => [i.name, /^-?\d+(\.\d+)?$/.test(i.value) ? Number(i.value) : i.value]));
  }
  function showParams(names) {
    const box = $("sql-params"); box.replaceChildren();
    for (const n of names || []) {
      const id = "param-" + n;
      box.append(L.el("label", {for: id, text: "$" + n}), L.el("input", {id, name: n, required: true, size: 14}));
    }
  }
  async function run() {
    const sql = $("sql").value; L.setQ({q: sql});
    const missing = [...document.querySelectorAll("#sql-params input")].find(i => !i.value);
    if (missing) { missing.focus(); $("sql-status").textContent = "Fill in " + missing.name + " first."; return; }
    $("sql-error").hidden = true; $("sql-status").textContent = "Running…";
    try {
      const res = await L.post("/api/v1/sql", {sql, params: params(), format: "json"});
      last = res;
      $("sql-result").tHead.replaceChildren(L.el("tr", {}, ...res.columns.map(c => L.el("th", {scope: "col", title: c.type, text: c.name}))));
      const tb = $("sql-result").tBodies[0]; tb.replaceChildren();
      for (const r of res.rows.slice(0, 2000)) tb.append(L.el("tr", {}, ...r.map(v => L.el("td", {class: typeof v === "number" ? "num" : "", text: v === null ? "NULL" : (typeof v === "object" ? JSON.stringify(v) : typeof v === "number" ? L.num(v) : v)}))));
      $("sql-status").textContent = `${res.row_count} rows${res.truncated ? " (truncated at the server's row limit)" : ""} · ${Math.round(res.elapsed_ms)} ms` + (res.rows.length > 2000 ? " · first 2000 shown" : "");
      const opts = res.columns.map((c, i) => L.el("option", {value: i, text: c.name}));
      $("cx").replaceChildren(...opts.map(o => o.cloneNode(true))); $("cy").replaceChildren(...opts);
      const numeric = res.columns.findIndex((c, i) => i > 0 && /INT|DOUBLE|FLOAT|DECIMAL|REAL/i.test(c.type));
      $("cy").value = String(numeric > 0 ? numeric : Math.min(1, res.columns.length - 1));
      $("dl-csv").disabled = $("dl-parquet").disabled = false;
      chart(); document.body.dataset.loaded = "sql";
    } catch (e) {
      $("sql-status").textContent = ""; $("sql-error").textContent = e.message; $("sql-error").hidden = false;
      $("dl-csv").disabled = $("dl-parquet").disabled = true; document.body.dataset.loaded = "sql-error";
    }
  }
  async function download(format) {
    const r = await fetch("/portal/api/sql/export", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({sql: $("sql").value, params: params(), format})});
    if (!r.ok) { let m = "HTTP " + r.status; try { m = (await r.json()).error.message; } catch (e) { /* keep */ } $("sql-error").textContent = m; $("sql-error").hidden = false; return; }
    const url = URL.createObjectURL(await r.blob());
    const a = L.el("a", {href: url, download: "query." + format}); document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 5000);
  }
  $("sql-form").addEventListener("submit", (ev) => { ev.preventDefault(); run(); });
  $("sql").addEventListener("input", () => { if (!/\$[A-Za-z_]/.test($("sql").value)) showParams([]); });
  $("sql").addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); run(); } });
  $("dl-csv").addEventListener("click", () => download("csv")); $("dl-parquet").addEventListener("click", () => download("parquet"));
  ["cx", "cy", "ckind"].forEach(id => $(id).addEventListener("change", chart));
  L.api("/api/v1/sql/examples").then((res) => {
    const list = res.examples || res;
    for (const ex of list) {
      const b = L.el("button", {type: "button", class: "secondary", title: ex.description || ex.name, text: ex.name});
      b.addEventListener("click", () => {
        $("sql").value = ex.sql; showParams(ex.params);
        if ((ex.params || []).length) { document.querySelector("#sql-params input").focus(); $("sql-status").textContent = "Set the parameters, then Run."; }
        else run();
      });
      $("examples").append(L.el("li", {}, b, ex.description ? L.el("div", {class: "meta", text: ex.description}) : ""));
    }
  }).catch(e => $("examples").append(L.el("li", {class: "meta", text: "Saved queries unavailable: " + e.message})));
  if (q.get("q")) window.addEventListener("load", run);
})();
