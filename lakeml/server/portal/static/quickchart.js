// A tiny SVG line chart for the first paint of the run page: drawn the moment the (server-downsampled)
// series arrives, without waiting for plotly.js (4.8 MB to parse). plotly is swapped in later.
"use strict";
const QuickChart = (function () {
  const NS = "http://www.w3.org/2000/svg";
  const M = {t: 20, r: 20, b: 40, l: 64};  // the margins plotly uses on the run page, roughly
  function el(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function ticks(lo, hi, n) {  // about n "nice" ticks between lo and hi (1, 2, 5 x 10^k steps)
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }
  function fmt(v) {
    const a = Math.abs(v);
    if (a >= 1e9 || (a !== 0 && a < 1e-3)) return v.toExponential(1).replace("e+", "e");
    if (a >= 1e6) return +(v / 1e6).toPrecision(4) + "M";
    if (a >= 1e4) return +(v / 1e3).toPrecision(4) + "k";
    return String(+v.toPrecision(4));
  }
  // draw(container, {x, y, title, log}) -> the <svg>. x: steps, y: numbers (NaN/inf break the line)
  function draw(box, s) {
    const W = Math.max(box.clientWidth || 0, 300), H = Math.max(box.clientHeight || 0, 200);
    const log = !!s.log, n = s.x.length;
    const ok = (i) => Number.isFinite(s.y[i]) && Number.isFinite(s.x[i]) && (!log || s.y[i] > 0);
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < n; i++) {
      if (!ok(i)) continue;
      const yv = log ? Math.log10(s.y[i]) : s.y[i];
      if (s.x[i] < x0) x0 = s.x[i]; if (s.x[i] > x1) x1 = s.x[i];
      if (yv < y0) y0 = yv; if (yv > y1) y1 = yv;
    }
    const svg = el("svg", {width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", class: "quickchart",
                           "aria-label": s.title || "Metric chart"});
    svg.append(el("title", {}, s.title || "Metric chart"));
    box.replaceChildren(svg);
    if (x0 === Infinity) { svg.append(el("text", {x: W / 2, y: H / 2, "text-anchor": "middle"}, "No finite values to draw.")); return svg; }
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    if (y1 === y0) { const d = Math.abs(y0) * 0.1 || 1; y0 -= d; y1 += d; }
    const pad = (y1 - y0) * 0.04; y0 -= pad; y1 += pad;
    const pw = W - M.l - M.r, ph = H - M.t - M.b;
    const px = (v) => M.l + (v - x0) / (x1 - x0) * pw;
    const py = (v) => M.t + (1 - ((log ? Math.log10(v) : v) - y0) / (y1 - y0)) * ph;
    const axis = el("g", {class: "axes", "font-size": 11, fill: "#555", stroke: "none"});
    for (const t of ticks(x0, x1, 6)) {
      const X = px(t).toFixed(1);
      axis.append(el("line", {x1: X, x2: X, y1: M.t, y2: M.t + ph, stroke: "#eee"}));
      axis.append(el("text", {x: X, y: M.t + ph + 15, "text-anchor": "middle"}, fmt(t)));
    }
    for (const t of ticks(y0, y1, 5)) {
      const Y = (M.t + (1 - (t - y0) / (y1 - y0)) * ph).toFixed(1);
      axis.append(el("line", {x1: M.l, x2: M.l + pw, y1: Y, y2: Y, stroke: "#eee"}));
      axis.append(el("text", {x: M.l - 6, y: +Y + 4, "text-anchor": "end"}, log ? fmt(Math.pow(10, t)) : fmt(t)));
    }
    axis.append(el("rect", {x: M.l, y: M.t, width: pw, height: ph, fill: "none", stroke: "#bbb"}));
    axis.append(el("text", {x: M.l + pw / 2, y: H - 6, "text-anchor": "middle"}, "step"));
    axis.append(el("text", {x: 14, y: M.t + ph / 2, "text-anchor": "middle", transform: `rotate(-90 14 ${M.t + ph / 2})`}, s.yTitle || ""));
    svg.append(axis);
    let d = "", pen = false, drawn = 0, last = -1;
    for (let i = 0; i < n; i++) {
      if (!ok(i)) { pen = false; continue; }
      d += (pen ? "L" : "M") + px(s.x[i]).toFixed(1) + " " + py(s.y[i]).toFixed(1);
      pen = true; drawn++; last = i;
    }
    svg.append(el("path", {class: "line", d, fill: "none", stroke: "#1f77b4", "stroke-width": 1.5,
                           "stroke-linejoin": "round", "data-points": drawn}));
    if (last >= 0) {
      const c = el("circle", {class: "last", cx: px(s.x[last]).toFixed(1), cy: py(s.y[last]).toFixed(1), r: 4,
                              fill: "#1f77b4", "data-step": s.x[last], "data-value": s.y[last]});
      c.append(el("title", {}, `last: step ${s.x[last]} = ${s.y[last]}`));
      svg.append(c);
    }
    svg.dataset.x = `${x0} ${x1}`;
    return svg;
  }
  return {draw};
})();
