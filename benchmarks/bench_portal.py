"""Portal speed (issue 11): the runs table of an experiment with 10k runs and a 1M-step metric chart.

    .venv/bin/python benchmarks/bench_portal.py                   # 10k runs, 1M steps, ~2 min
    .venv/bin/python benchmarks/bench_portal.py --runs 2000 --steps 200000 --reps 3   # quick check

Seeds a warehouse (tests/portal_seed.py), starts a real ``lakeml server`` subprocess and measures:

* at the server (HTTP round trip from this process, median of ``--reps`` after one warm-up): the first
  page of runs, sorting by a metric (both directions, and a param), a filter, the downsampled 1M-step
  series;
* in a real browser (Debian's chromium via Playwright): from navigation to the first page of runs on
  screen, to the 1M-step chart drawn (the SVG first paint of quickchart.js) and to the interactive
  chart ready (plotly.js loaded after that paint and swapped in), cold (new browser context) and warm.

Each figure is printed next to its target. On a busy machine wall time includes waiting for a core.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.portal_seed import EXPERIMENT, seed  # noqa: E402
from tests.servers import LakemlServer  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update"]


def timed_get(url: str) -> float:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as r:
        r.read()
        assert r.status == 200, url
    return time.perf_counter() - t0


def median_ms(url: str, reps: int) -> float:
    timed_get(url)  # warm-up (engine caches, first file reads)
    return statistics.median(timed_get(url) for _ in range(reps)) * 1000


def row(label: str, ms: float, target_ms: float | None) -> None:
    if target_ms is None:
        print(f"  {label:<52} {ms:8.0f} ms")
    else:
        verdict = "ok" if ms <= target_ms else "OVER"
        print(f"  {label:<52} {ms:8.0f} ms   target < {target_ms:.0f} ms  ({ms / target_ms:.2f}x of target, {verdict})")


def browser_times(url: str, run_id: str) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = b.new_context(viewport={"width": 1400, "height": 900})
        for label in ("cold", "warm"):  # first visit of a new context, then again with plotly.js cached
            page = ctx.new_page()
            t0 = time.perf_counter()
            page.goto(f"{url}/runs?experiment={EXPERIMENT}")
            page.wait_for_selector("body[data-loaded=runs]", timeout=60_000)
            out[f"runs table, first page on screen ({label})"] = (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            page.goto(f"{url}/run/{run_id}")
            # the page stamps, by its own clock from navigation start, the frame after the SVG chart
            # (quickchart.js) was drawn and the one after plotly.js swapped in the interactive chart; polling
            # from here would be late by however long plotly.js keeps the main thread busy parsing
            page.wait_for_selector("body[data-interactive-ms]", timeout=60_000)
            wall = (time.perf_counter() - t0) * 1000
            painted, ready = page.evaluate("() => [+document.body.dataset.chartPaintMs, +document.body.dataset.interactiveMs]")
            out[f"run page, 1M-step chart drawn ({label})"] = painted
            out[f"run page, interactive chart ready ({label})"] = ready
            out[f"run page, interactive, wall time from goto ({label})"] = wall
            page.close()
        b.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=1_000_000, help="points of the long metric series")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-browser", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-portal-") as tmp:
        t0 = time.perf_counter()
        info = seed(Path(tmp) / "wh", runs=a.runs, long_steps=a.steps)
        print(f"seeded {a.runs} runs and a {a.steps}-step series in {time.perf_counter() - t0:.1f} s")
        server = LakemlServer(Path(tmp) / "wh", base_dir=tmp)
        try:
            api = server.url + "/portal/api"
            q = urllib.parse.urlencode
            print(f"at the server (median of {a.reps}, after a warm-up):")
            first = median_ms(f"{api}/runs?{q({'experiment': EXPERIMENT})}", a.reps)
            row("runs: first page (50, newest first)", first, 1000)
            row("runs: first page with the column keys (first load)",
                median_ms(f"{api}/runs?{q({'experiment': EXPERIMENT, 'keys': 'true'})}", a.reps), 1000)
            for order in ("metrics.val_auc DESC", "metrics.loss ASC", "params.lr ASC"):
                ms = median_ms(f"{api}/runs?{q({'experiment': EXPERIMENT, 'order': order})}", a.reps)
                row(f"runs: sort by {order}", ms, 300)
            flt = "metrics.val_auc > 0.9 AND params.model = 'gbm'"
            row("runs: filter + sort by a metric", median_ms(
                f"{api}/runs?{q({'experiment': EXPERIMENT, 'filter': flt, 'order': 'metrics.loss ASC'})}", a.reps), 300)
            row("runs: page 100 sorted by a metric", median_ms(
                f"{api}/runs?{q({'experiment': EXPERIMENT, 'order': 'metrics.val_auc DESC', 'offset': 4950})}",
                a.reps), 300)
            row("experiments list with best val_auc", median_ms(f"{api}/experiments?metric=val_auc", a.reps), None)
            cold = timed_get(f"{api}/run/{info['long_run']}/metric?{q({'key': 'loss', 'points': 2000})}") * 1000
            row(f"{a.steps}-step series downsampled to 2000 (first read)", cold, None)
            row(f"{a.steps}-step series downsampled to 2000", median_ms(
                f"{api}/run/{info['long_run']}/metric?{q({'key': 'loss', 'points': 2000})}", a.reps), 1000)
            if not a.no_browser and Path(CHROMIUM).exists():
                print("in the browser (chromium, navigation to content on screen):")
                for label, ms in browser_times(server.url, info["long_run"]).items():
                    row(label, ms, 1000)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
