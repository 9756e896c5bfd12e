// Shared helpers of the lakeml portal: fetch JSON, build elements, format values, URL state.
"use strict";
const L = {
  async api(path, opts) {
    const r = await fetch(path, Object.assign({headers: {"Accept": "application/json"}}, opts || {}));
    let body = null;
    try { body = await r.json(); } catch (e) { /* not JSON */ }
    if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); }
    if (!r.ok) {
      const err = new Error((body && body.error && body.error.message) || (body && body.message) || ("HTTP " + r.status));
      err.status = r.status; err.body = body; throw err;
    }
    return body;
  },
  post(path, data) {
    return L.api(path, {method: "POST", headers: {"Content-Type": "application/json", "Accept": "application/json"},
                        body: JSON.stringify(data)});
  },
  el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  },
  num(v) {
    if (v === null || v === undefined || v === "") return "";
    if (typeof v === "string") return v;
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return (a !== 0 && (a < 1e-3 || a >= 1e6)) ? v.toExponential(4) : String(+v.toPrecision(6));
  },
  time(iso) { if (!iso) return ""; const d = new Date(iso); return d.toISOString().replace("T", " ").slice(0, 19); },
  dur(s) {
    if (s === null || s === undefined) return "";
    if (s < 60) return s.toFixed(1) + " s"; if (s < 3600) return (s / 60).toFixed(1) + " min"; return (s / 3600).toFixed(1) + " h";
  },
  q() { return new URLSearchParams(location.search); },
  setQ(params) {  // replace the URL's query (deep links) without reloading
    const u = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(params)) { if (v === null || v === undefined || v === "") u.delete(k); else u.set(k, v); }
    history.replaceState(null, "", location.pathname + (u.toString() ? "?" + u : ""));
  },
  status(s) { return L.el("span", {class: "status " + s, text: s}); },
  toast(msg) { const t = document.getElementById("toast"); t.textContent = msg; t.style.display = "block"; setTimeout(() => { t.style.display = "none"; }, 2500); },
  runLink(id, name) { return L.el("a", {href: "/run/" + encodeURIComponent(id)}, name || id.slice(0, 8)); },
  ema(ys, a) {  // exponential smoothing, skipping non-numbers
    if (!a) return ys; let last = null; const out = [];
    for (const y of ys) { if (typeof y !== "number") { out.push(y); continue; } last = last === null ? y : a * last + (1 - a) * y; out.push(last); }
    return out;
  },
  y(v) { return typeof v === "number" ? v : (v === "nan" ? NaN : v === "inf" ? Infinity : v === "-inf" ? -Infinity : Number(v)); },
};
