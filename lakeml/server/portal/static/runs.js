"use strict";
// The runs table: paging, sorting and filtering happen on the server; the URL holds the state.
(function () {
  const q = L.q();
  const exp = q.get("experiment") || "Default";
  const state = {
    filter: q.get("filter") || "", sort: q.get("sort") || "attributes.start_time DESC",
    offset: +(q.get("offset") || 0), size: +(q.get("size") || 50),
    selected: new Set((q.get("runs") || "").split(",").filter(Boolean)),
    cols: q.get("cols") ? q.get("cols").split(",").filter(Boolean) : JSON.parse(localStorage.getItem("lakeml.cols." + exp) || "null"),
    status: q.get("status") || "", name: q.get("name") || "",
  };
  let keys = null;
  const colsChosen = !!state.cols;  // named by the URL or remembered; else defaults come with the first page
  document.getElementById("exp-title").textContent = "Runs of " + exp;
  document.title = "Runs of " + exp + " · lakeml";
  const $ = (id) => document.getElementById(id);
  $("filter").value = state.filter; $("status-filter").value = state.status; $("name-filter").value = state.name;
  $("page-size").value = String(state.size);

  function fullFilter() {
    const parts = [];
    if (state.filter.trim()) parts.push(state.filter.trim());
    if (state.status) parts.push(`attributes.status = '${state.status}'`);
    if (state.name.trim()) parts.push(`attributes.run_name ILIKE '%${state.name.trim().replace(/'/g, "''")}%'`);
    return parts.join(" AND ");
  }
  function saveUrl() {
    L.setQ({experiment: exp, filter: state.filter, status: state.status, name: state.name,
            sort: state.sort === "attributes.start_time DESC" ? "" : state.sort, offset: state.offset || "",
            size: state.size === 50 ? "" : state.size, runs: [...state.selected].join(","),
            cols: (state.cols || []).join(",")});
  }
  function colLabel(c) { const [ent, ...k] = c.split("."); return k.join("."); }
  function sortHeader(label, key, cls) {
    const [skey, dir] = state.sort.split(/\s+(?=(?:ASC|DESC)$)/i);
    const th = L.el("th", {scope: "col", class: "sortable " + (cls || ""), "aria-sort": skey === key ? (/DESC/i.test(dir || "") ? "descending" : "ascending") : "none"});
    const b = L.el("button", {type: "button", class: "linklike", title: "Sort by " + label, "data-key": key}, label);
    b.addEventListener("click", () => {
      state.sort = key + (skey === key && !/DESC/i.test(dir || "") ? " DESC" : (skey === key ? " ASC" : (key.startsWith("metrics.") || key.startsWith("attributes.start") ? " DESC" : " ASC")));
      state.offset = 0; load();
    });
    th.append(b); return th;
  }
  function renderHead() {
    const groups = {params: [], metrics: [], tags: []};
    for (const c of state.cols || []) { const g = c.split(".")[0]; if (groups[g]) groups[g].push(c); }
    state.cols = [].concat(...Object.values(groups));  // rows follow the header's group order
    const g = L.el("tr", {class: "groups"}, L.el("th", {colspan: 6, scope: "colgroup", text: "Run"}));
    for (const [name, list] of Object.entries(groups)) if (list.length) g.append(L.el("th", {colspan: list.length, scope: "colgroup", text: name[0].toUpperCase() + name.slice(1)}));
    const all = L.el("input", {type: "checkbox", id: "select-page", "aria-label": "Select all runs on this page"});
    all.addEventListener("change", () => { document.querySelectorAll("#runs tbody input[type=checkbox]").forEach(cb => { cb.checked = all.checked; cb.dispatchEvent(new Event("change")); }); });
    const h = L.el("tr", {}, L.el("th", {scope: "col"}, all), sortHeader("Name", "attributes.run_name"), sortHeader("Status", "attributes.status"),
      sortHeader("Started", "attributes.start_time"), L.el("th", {scope: "col", text: "Duration"}), sortHeader("User", "attributes.user"));
    for (const list of Object.values(groups)) for (const c of list) h.append(sortHeader(colLabel(c), quoteKey(c), c.startsWith("metrics.") ? "num" : ""));
    $("runs").tHead.replaceChildren(g, h);
  }
  function quoteKey(c) { const i = c.indexOf("."), ent = c.slice(0, i), k = c.slice(i + 1); return /^[\w]+$/.test(k) ? c : `${ent}."${k}"`; }
  function renderRows(res) {
    const tb = $("runs").tBodies[0]; tb.replaceChildren();
    for (const r of res.rows) {
      const cb = L.el("input", {type: "checkbox", "aria-label": "Select run " + (r.run_name || r.run_id), value: r.run_id, checked: state.selected.has(r.run_id)});
      const tr = L.el("tr", {class: state.selected.has(r.run_id) ? "selected" : "", "data-run": r.run_id});
      cb.addEventListener("change", () => { if (cb.checked) state.selected.add(r.run_id); else state.selected.delete(r.run_id); tr.classList.toggle("selected", cb.checked); updateCompare(); saveUrl(); });
      tr.append(L.el("td", {}, cb), L.el("td", {}, L.runLink(r.run_id, r.run_name)), L.el("td", {}, L.status(r.status)),
        L.el("td", {text: L.time(r.start_time)}), L.el("td", {class: "num", text: L.dur(r.duration_s)}), L.el("td", {text: r.user || ""}));
      for (const c of state.cols) {
        const [ent] = c.split("."), k = colLabel(c), v = (r[ent] || {})[k];
        tr.append(L.el("td", {class: ent === "metrics" ? "num" : "", title: v === undefined ? "" : String(v), text: ent === "metrics" ? L.num(v) : (v ?? "")}));
      }
      tb.append(tr);
    }
    if (!res.rows.length) tb.append(L.el("tr", {}, L.el("td", {colspan: 6 + state.cols.length, text: "No runs match."})));
  }
  function updateCompare() {
    const b = $("compare-btn"); b.textContent = `Compare selected (${state.selected.size})`; b.disabled = state.selected.size < 2;
  }
  function renderColumns() {
    const box = $("column-groups"); box.replaceChildren();
    for (const ent of ["params", "metrics", "tags"]) {
      const g = L.el("div", {class: "group", role: "group", "aria-label": ent}, L.el("strong", {text: ent}));
      for (const k of keys[ent]) {
        const c = ent + "." + k, id = "col-" + c.replace(/[^\w]/g, "_");
        const cb = L.el("input", {type: "checkbox", id, checked: state.cols.includes(c)});
        cb.addEventListener("change", () => {
          state.cols = cb.checked ? [...state.cols, c] : state.cols.filter(x => x !== c);
          localStorage.setItem("lakeml.cols." + exp, JSON.stringify(state.cols)); renderHead(); load();
        });
        g.append(L.el("div", {}, cb, " ", L.el("label", {for: id, text: k})));
      }
      box.append(g);
    }
  }
  let seq = 0;
  async function load() {
    const my = ++seq; saveUrl(); renderHead();
    const t0 = performance.now();
    $("runs-status").textContent = "Loading…";
    try {
      const first = !keys;
      const res = await L.api("/portal/api/runs?" + new URLSearchParams({experiment: exp, filter: fullFilter(), order: state.sort, offset: state.offset, limit: state.size, keys: first}));
      if (my !== seq) return;
      if (res.keys) {  // the first load also brings the keys: default columns, the column picker
        keys = res.keys;
        if (!colsChosen) { state.cols = [...keys.metrics.slice(0, 5).map(x => "metrics." + x), ...keys.params.slice(0, 5).map(x => "params." + x)]; }
        renderColumns(); renderHead(); saveUrl();
      }
      renderRows(res);
      const last = Math.min(res.total, state.offset + res.rows.length);
      $("runs-status").textContent = `${res.total} runs match · showing ${res.total ? state.offset + 1 : 0}–${last} · ${Math.round(performance.now() - t0)} ms`;
      $("page-info").textContent = `Page ${Math.floor(state.offset / state.size) + 1} of ${Math.max(1, Math.ceil(res.total / state.size))}`;
      $("prev").disabled = state.offset === 0; $("next").disabled = last >= res.total;
      document.body.dataset.loaded = "runs";
    } catch (e) {
      if (my !== seq) return;
      $("runs-status").textContent = ""; $("runs").tBodies[0].replaceChildren(L.el("tr", {}, L.el("td", {class: "error", role: "alert", colspan: 6, text: e.message})));
      document.body.dataset.loaded = "error";
    }
  }
  $("run-filter").addEventListener("submit", (ev) => {
    ev.preventDefault(); state.filter = $("filter").value; state.status = $("status-filter").value; state.name = $("name-filter").value; state.offset = 0; load();
  });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.size); load(); });
  $("next").addEventListener("click", () => { state.offset += state.size; load(); });
  $("page-size").addEventListener("change", () => { state.size = +$("page-size").value; state.offset = 0; load(); });
  $("pick-columns").addEventListener("click", () => { const f = $("columns"); f.hidden = !f.hidden; $("pick-columns").setAttribute("aria-expanded", String(!f.hidden)); });
  $("compare-btn").addEventListener("click", () => { location.href = "/compare?" + new URLSearchParams({experiment: exp, runs: [...state.selected].join(",")}); });
  updateCompare();
  load();
})();
