"""Regenerate the portal screenshots of the docs (docs/img/portal-*.png) from real data.

    .venv/bin/python scripts/portal_screenshots.py            # ~1 min; needs /usr/bin/chromium

Seeds a warehouse in a temporary folder (tests/portal_seed.py: 2,000 runs, a 100k-step series, a model
with two versions, gates and a deployment), starts ``lakeml server`` on it, and photographs the pages
in headless chromium with Playwright. Nothing is drawn by hand.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.portal_seed import EXPERIMENT, MODEL, seed  # noqa: E402
from tests.servers import LakemlServer  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="portal-shots-") as tmp:
        info = seed(Path(tmp) / "wh", runs=a.runs)
        server = LakemlServer(Path(tmp) / "wh", base_dir=tmp)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=a.chromium, args=ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 760}, base_url=server.url)
                page.set_default_timeout(60_000)

                def snap(name: str, url: str, ready: str, full: bool = False) -> None:
                    page.goto(url)
                    page.wait_for_selector(ready)
                    page.wait_for_timeout(400)  # let plotly finish its transition
                    page.screenshot(path=str(out / f"portal-{name}.png"), full_page=full)
                    print(f"wrote {out / f'portal-{name}.png'}")

                ids = ",".join([info["long_run"], info["weak_run"], info["run_ids"][-1]])
                snap("runs", f"/runs?experiment={EXPERIMENT}&sort=metrics.val_auc+DESC&runs={ids}",
                     "body[data-loaded=runs]")
                snap("run", f"/run/{info['long_run']}", "body[data-chart=drawn]")
                snap("compare", f"/compare?experiment={EXPERIMENT}&runs={ids}", "body[data-loaded=compare]", True)
                page.goto(f"/model?name={MODEL}")
                page.wait_for_selector("body[data-loaded=model]")
                page.select_option("#promo-version", "1")
                page.click("#promote button[type=submit]")
                page.wait_for_selector("#gate-result li.fail")
                page.get_by_role("link", name="lineage").first.click()
                page.wait_for_selector("#lineage .node >> text=long-run")
                page.screenshot(path=str(out / "portal-model.png"), full_page=True)
                print(f"wrote {out / 'portal-model.png'}")
                snap("sql", "/sql?q=SELECT+experiment,+count(*)+AS+runs,+avg(metrics['val_auc'])+AS+mean_auc+"
                     "FROM+lakeml.run_summary+GROUP+BY+ALL+ORDER+BY+runs+DESC", "body[data-loaded^=sql]")
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
