"""The portal's project board, project page and monitoring page in a real browser (Debian's chromium
driven by Playwright) against a real ``lakeml server`` subprocess. The warehouse is seeded with three
model projects in different statuses (one cancelled), a production model version linked to a project,
and monitoring results and an alert written in the shape of catalog/tables/monitoring.yaml and
alerts.yaml. Expected values come from the seed and from a separate Lake reading the same warehouse.
Screenshots land in tests/_artifacts/portal/ (git-ignored)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.test_portal import ARGS, CHROMIUM, TIMEOUT_MS, labelled_controls, shot

sync_api = pytest.importorskip("playwright.sync_api")

HOUR = 3_600_000_000
T0 = int(datetime(2026, 3, 2, tzinfo=timezone.utc).timestamp()) * 1_000_000
ROLES = {"customer": "carol", "data_engineer": "dan", "data_scientist": "sam", "validator": "vera",
         "mlops_engineer": "max"}
# psi of x1 rises over three windows (the alert fires in the last), x2 stays flat; color is categorical (jsd)
DRIFT = {("psi", "x1"): [0.02, 0.15, 0.41], ("psi", "x2"): [0.01, 0.02, 0.01], ("jsd", "color"): [0.03, 0.04, 0.05],
         ("ks", "x1"): [0.05, 0.21, 0.38], ("ks", "x2"): [0.04, 0.03, 0.05]}
MODEL_LEVEL = {"accuracy": [0.91, 0.88, 0.74], "requests": [120.0, 130.0, 125.0], "error_rate": [0.0, 0.01, 0.02],
               "latency_p99": [7.0, 8.0, 9.5]}


def _always_zero(rows):
    return [0 for _ in rows]


def _seed(warehouse) -> dict:
    import lakeml
    from lakeml.identity import acting_as

    from lakeml.clock import now_us

    # "fraud" was proposed 12 days ago and its problem statement (SLA 5 days) is still open: it is stuck
    past = lakeml.connect(warehouse=str(warehouse), commit_interval=0.2, clock=lambda: now_us() - 12 * 86_400_000_000)
    with acting_as("carol"):
        past.projects.create("fraud", problem="Card fraud", customer="bank", roles=ROLES)
    past.close()
    lake = lakeml.connect(warehouse=str(warehouse), commit_interval=0.2)
    try:
        run = lake.create_run("churn-exp", run_name="churn-v1")
        lake.log_model(run.id, _always_zero, "model")  # the python flavor: no sklearn import needed
        lake.set_terminated(run.id, "FINISHED")
        lake.register_model("churn", run_id=run.id)
        lake.set_alias("churn", "production", 1)
        with acting_as("carol"):
            lake.projects.create("churn", problem="Customers leave", customer="retail", roles=ROLES,
                                 experiments=["churn-exp"], models=["churn"])
            lake.projects.complete("churn", "problem_statement",
                                   deliverables={"doc:problem_statement": "Churn costs 5% of revenue"})
            lake.projects.create("upsell", problem="Sell more", customer="retail", roles=ROLES)
            lake.projects.cancel("upsell", reason="value below cost")
        mon = lake.committer.buffer("monitoring")
        for w in range(3):
            start, end = T0 + w * HOUR, T0 + (w + 1) * HOUR
            for (check, feat), vals in DRIFT.items():
                mon.add(("churn", 1, "1h", start, end, check, feat, vals[w], 600, "shop.train@1", f"c{w:031d}",
                         end + 60_000_000))
            for check, vals in MODEL_LEVEL.items():
                mon.add(("churn", 1, "1h", start, end, check, None, vals[w], 600, None, f"c{w:031d}",
                         end + 60_000_000))
        lake.committer.buffer("alerts").add(
            ("a" * 32, T0 + 3 * HOUR + 90_000_000, "x1_drift", "churn", 1, "psi", "x1", ">", 0.2, 0.41, 1,
             T0 + 2 * HOUR, T0 + 3 * HOUR, "psi of x1 is 0.41 > 0.2 (churn v1)", "[]"))
        lake.flush()
        return {"events": {n: len(lake.projects.events(n)) for n in ("churn", "fraud", "upsell")}}
    finally:
        lake.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from pathlib import Path

    from tests.servers import LakemlServer

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    base = tmp_path_factory.mktemp("board")
    info = _seed(base / "wh")
    server = LakemlServer(base / "wh", base_dir=base)
    info["server"] = server
    yield info
    server.stop()


@pytest.fixture(scope="module")
def browser(site):
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, site):
    ctx = browser.new_context(viewport={"width": 1500, "height": 950}, base_url=site["server"].url)
    ctx.set_default_timeout(TIMEOUT_MS)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _columns(page) -> dict[str, list[str]]:
    """Project names per kanban column (status)."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#board section')].map(s =>
        [s.dataset.status, [...s.querySelectorAll('article')].map(a => a.dataset.project)]))""")


def _reload_wait(page, action) -> None:
    page.evaluate("document.body.dataset.loaded = ''")
    action()
    page.wait_for_selector("body[data-loaded=board]")


def test_board_is_a_kanban_by_status_with_customer_and_role_filters(page, site):
    page.goto("/board")
    page.wait_for_selector("body[data-loaded=board]")
    assert page.title() == "Project board · lakeml"
    assert page.get_by_role("link", name="Board").get_attribute("aria-current") == "page"
    cols = _columns(page)
    assert list(cols) == ["proposed", "in_development", "validation", "approved", "in_production", "retired",
                          "cancelled"]
    assert cols["proposed"] == ["fraud"] and cols["in_development"] == ["churn"] and cols["cancelled"] == ["upsell"]
    churn = page.locator("article[data-project=churn]")
    text = churn.inner_text()
    assert "Data mart" in text and "dan" in text  # current step and its assignee
    assert "models:/churn/1" in text and "alerting" in text  # production version, its monitoring status
    assert "value below cost" in page.locator("article[data-project=upsell]").inner_text()
    # only the step idle past its SLA is marked stuck, with its days in step against the SLA
    assert page.locator("article.stuck").evaluate_all("els => els.map(e => e.dataset.project)") == ["fraud"]
    fraud = page.locator("article[data-project=fraud]").inner_text()
    assert "stuck" in fraud and "(SLA 5 d)" in fraud
    assert float(fraud.split("In step")[1].split(" d")[0]) == pytest.approx(12, abs=0.1)
    assert page.inner_text("#board-status") == "3 of 3 projects"
    assert labelled_controls(page) == []
    shot(page, "board")
    with page.context.expect_page() as popup:  # the weekly management summary, as `lakeml projects board --html`
        page.click("#weekly")
    weekly = popup.value
    weekly.wait_for_load_state()
    assert "fraud" in weekly.content() and "Problem statement" in weekly.content()
    weekly.close()

    _reload_wait(page, lambda: page.select_option("#customer", "retail"))
    assert _columns(page)["in_development"] == ["churn"] and _columns(page)["cancelled"] == ["upsell"]
    assert _columns(page)["proposed"] == []
    assert "customer=retail" in page.url
    _reload_wait(page, lambda: page.select_option("#role", "data_engineer"))  # waiting on a data engineer
    assert sum(_columns(page).values(), []) == ["churn"]
    assert page.inner_text("#board-status") == "1 of 3 projects (customer retail, waiting on data_engineer)"
    shot(page, "board_filtered")

    # the deep link restores both filters
    page.goto("/board?customer=bank&role=customer")
    page.wait_for_selector("body[data-loaded=board]")
    assert sum(_columns(page).values(), []) == ["fraud"]
    assert page.input_value("#customer") == "bank" and page.input_value("#role") == "customer"
    _reload_wait(page, lambda: page.click("#clear"))
    assert len(sum(_columns(page).values(), [])) == 3


def test_project_page_shows_steps_tasks_deliverables_and_history(page, site):
    page.goto("/board")
    page.wait_for_selector("body[data-loaded=board]")
    page.locator("article[data-project=churn]").get_by_role("link", name="churn", exact=True).click()
    page.wait_for_selector("body[data-loaded=project]")
    assert "name=churn" in page.url and page.title() == "churn · Project · lakeml"
    steps = page.evaluate("() => Object.fromEntries([...document.querySelectorAll('#steps li')].map(l => "
                          "[l.dataset.step, l.className]))")
    assert steps["problem_statement"] == "completed" and steps["data_mart"] == "ready"
    assert steps["approval"] == "pending" and len(steps) == 8  # the default process's eight user tasks
    tasks = page.locator("#tasks tbody tr").all_inner_texts()
    assert len(tasks) == 2 and "completed" in tasks[0] and "carol" in tasks[0] and "ready" in tasks[1]
    deliv = page.locator("#deliverables tbody tr").all_inner_texts()
    assert len(deliv) == 1 and "doc" in deliv[0] and "problem_statement" in deliv[0]
    assert page.locator("#events tbody tr").count() == site["events"]["churn"]
    assert "proposed → in_development" in page.inner_text("#events")
    assert "retail" in page.inner_text("#project-fields")
    shot(page, "project")
    # an unknown project: the API's 404 message (naming the known projects) is shown
    page.goto("/project?name=nope")
    page.wait_for_selector("#toast:has-text(\"no model project 'nope'\")", state="attached")
    assert "churn, fraud, upsell" in page.inner_text("#toast")


def test_monitoring_page_shows_status_alerts_and_drift_charts(page, site):
    page.goto("/board")
    page.wait_for_selector("body[data-loaded=board]")
    page.locator("article[data-project=churn] a.badge").click()  # the card's monitoring status
    page.wait_for_selector("body[data-loaded=monitoring]")
    assert page.title() == "Monitoring · lakeml"
    assert "model=churn" in page.url and page.input_value("#mon-model") == "churn"
    row = page.locator("#mon-status tbody tr[data-model=churn]")
    cells = row.locator("td").all_inner_texts()
    assert cells[:3] == ["churn", "1", "1h"] and cells[4] == "ALERT"
    assert cells[3] == "2026-03-02 02:00:00"  # the latest of the three windows
    assert float(cells[6]) == pytest.approx(0.41) and cells[7] == "x1 (psi)"
    assert "accuracy 0.74" in cells[8] and cells[11] == "x1_drift"
    alerts = page.locator("#mon-alerts tbody tr").all_inner_texts()
    assert len(alerts) == 1 and "psi of x1 is 0.41" in alerts[0]
    # drift per feature over the windows: one trace per feature and check, with the seeded values
    traces = page.evaluate("""() => document.querySelector('[data-chart=drift]').data.map(t => [t.name, t.y])""")
    assert dict(traces) == {f"{f} ({c})": v for (c, f), v in DRIFT.items() if c in ("psi", "jsd")}
    ks = page.evaluate("""() => document.querySelector('[data-chart=ks]').data.map(t => t.name)""")
    assert sorted(ks) == ["x1 (ks)", "x2 (ks)"]
    charts = page.evaluate("() => [...document.querySelectorAll('[data-chart]')].map(d => d.dataset.chart)")
    assert charts == ["drift", "ks", "quality", "operations", "latency"]
    assert page.locator("[data-chart=drift] .main-svg").count() > 0  # plotly drew it
    assert labelled_controls(page) == []
    shot(page, "monitoring")
