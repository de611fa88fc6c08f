"""The Superset dashboard (bi/superset/), provisioned as `make bi` does, opened in headless
Chromium over a published warehouse, and queried while three pipeline runs publish.

Superset runs from its own environment (.venv-bi, installed from bi/requirements.lock by
`make bi-venv`, which this module runs when it is missing). The browser is Debian's
`chromium`, driven over the Chrome DevTools Protocol with the `websockets` package already
in the project's lock: no WebDriver, nothing downloaded, so it works offline. The page is
used as a person would: the login form, then the dashboard; the test records the chart-data
requests the dashboard itself sends and replays them through Superset's chart-data API
(`POST /api/v1/chart/data`, JWT from /api/v1/security/login plus CSRF token) to check
their figures against the marts read with duckdb, and to query the dashboard repeatedly
while runs publish.

The screenshot on docs/publishing.md (docs/images/superset_dashboard.png) is this test's: run it with
UPDATE_SCREENSHOTS=1 to write it there (otherwise it goes to tmp_path only, so a test run
leaves the work tree as it was).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pytest
import requests
import yaml
from websockets.sync.client import connect

from bi import superset_setup
from customer_marts.config import PROJECT_ROOT
from customer_marts.runs import pipeline
from tests.conftest import dbt_tests_left_out, make_settings
from tests.e2e.test_report import (  # noqa: F401 (chromium: a fixture)
    CHROMIUM_FLAGS,
    chromium,
    png_rgb,
    rgb_codes,
)

BUNDLE = superset_setup.BUNDLE_DIR
MARTS_DIR = PROJECT_ROOT / "dbt_project" / "models" / "marts"
SCREENSHOT = PROJECT_ROOT / "docs" / "images" / "superset_dashboard.png"
USER, PASSWORD = "admin", "test-password"
FIRST_AS_OF = date(2025, 9, 30)
NEXT_AS_OF = (date(2025, 10, 31), date(2025, 11, 30), date(2025, 12, 31))
VIEWPORT = (1400, 2200)
# The dashboard's charts, by name (bi/superset/charts/*.yaml).
FRESHNESS = "Data as of"
HEATMAP = "Cohort retention (monthly cohorts)"
RETENTION = "Retention and churn by month"
NPS = "NPS by month with margin of error"
CLV = "12-month CLV by segment"
KPIS = "KPIs by month"
SQL_WORDS = {"max", "strftime", "case", "when", "then", "else", "end", "and", "or", "not"}
SQL_WORDS |= {"is", "null", "true", "false", "select", "from", "where", "as"}


def load_bundle(kind: str) -> list[dict]:
    return [yaml.safe_load(path.read_text()) for path in sorted((BUNDLE / kind).rglob("*.yaml"))]


def documented_columns() -> dict[str, set[str]]:
    """Each mart's columns as its dbt .yml documents them."""
    documented = {}
    for path in MARTS_DIR.rglob("*.yml"):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            documented[model["name"]] = {column["name"] for column in model.get("columns", [])}
    return documented


def run_record_columns() -> set[str]:
    """audit.pipeline_runs' columns as the manual's run record table documents them."""
    section = (PROJECT_ROOT / "docs" / "run-record.md").read_text().split("\n## ")[0]
    pairs = re.findall(r"^\| `(\w+)`(?:, `(\w+)`)?", section, re.M)
    return {name for pair in pairs for name in pair if name}


def identifiers(sql: str) -> set[str]:
    """The names an SQL expression uses, without string literals, functions and keywords."""
    sql = re.sub(r"'[^']*'", "", sql)
    return {name.lower() for name in re.findall(r"[A-Za-z_]\w*", sql)} - SQL_WORDS


def chart_columns(params: dict) -> set[str]:
    """Every column a chart's form data names, plain or inside SQL expressions."""
    used: set[str] = set()

    def visit(value):
        if isinstance(value, str):
            used.add(value)
        elif isinstance(value, dict):
            if value.get("expressionType") == "SQL":
                used.update(identifiers(value["sqlExpression"]))
            elif value.get("expressionType") == "SIMPLE":
                used.add(value["subject"])
        else:
            for item in value:
                visit(item)

    for key in ("x_axis", "groupby", "all_columns", "metrics", "metric", "adhoc_filters"):
        if key in params:
            visit(params[key])
    used.update(json.loads(column)[0] for column in params.get("order_by_cols", []))
    return used


# ---------------------------------------------------------------- the bundle itself (fast)


def test_datasets_read_only_documented_mart_columns():
    documented = documented_columns()
    datasets = load_bundle("datasets")
    assert {d["table_name"] for d in datasets if d["schema"] == "marts"} == {
        "cohort_retention",
        "retention_by_period",
        "nps_by_period",
        "clv_by_segment",
        "kpis_by_period",
    }
    for dataset in datasets:
        names = {column["column_name"] for column in dataset["columns"]}
        if dataset["schema"] == "marts":
            assert not dataset["sql"], dataset["table_name"]
            assert names <= documented[dataset["table_name"]], dataset["table_name"]
        else:  # the virtual freshness dataset: the run record and documented mart columns
            sql = dataset["sql"]
            assert set(re.findall(r"\b(?:from|join)\s+(\w+\.\w+)", sql)) == {
                "audit.pipeline_runs",
                "marts.kpis_by_period",
            }
            allowed = documented["kpis_by_period"] | run_record_columns() | names
            allowed |= {"runs", "audit", "pipeline_runs", "marts", "kpis_by_period"}
            allowed |= {"order", "by", "desc", "limit"}
            assert identifiers(sql) <= allowed


def test_charts_use_their_datasets_columns_and_the_dashboard_holds_each_chart_once():
    datasets = {d["uuid"]: d for d in load_bundle("datasets")}
    databases = {d["uuid"] for d in load_bundle("databases")}
    charts = load_bundle("charts")
    assert {c["slice_name"] for c in charts} == {FRESHNESS, HEATMAP, RETENTION, NPS, CLV, KPIS}
    for chart in charts:
        dataset = datasets[chart["dataset_uuid"]]
        assert dataset["database_uuid"] in databases
        columns = {column["column_name"] for column in dataset["columns"]}
        assert chart_columns(chart["params"]) <= columns, chart["slice_name"]
    (dashboard,) = load_bundle("dashboards")
    placed = [
        item["meta"]["uuid"]
        for item in dashboard["position"].values()
        if isinstance(item, dict)
        if item.get("type") == "CHART"
    ]
    assert sorted(placed) == sorted(chart["uuid"] for chart in charts)
    assert dashboard["slug"] == superset_setup.DASHBOARD_SLUG


def test_exposure_points_at_the_dashboard_and_the_marts_it_reads():
    exposures = yaml.safe_load((PROJECT_ROOT / "dbt_project/models/exposures.yml").read_text())
    (exposure,) = [e for e in exposures["exposures"] if e["name"] == "customer_marts_dashboard"]
    default_url = f"http://127.0.0.1:{superset_setup.DEFAULT_PORT}{superset_setup.DASHBOARD_PATH}"
    assert exposure["url"] == default_url
    read = set()
    for dataset in load_bundle("datasets"):
        if dataset["schema"] == "marts":
            read.add(dataset["table_name"])
        read.update(re.findall(r"\bmarts\.(\w+)", dataset["sql"] or ""))
    assert {re.fullmatch(r"ref\('(\w+)'\)", ref).group(1) for ref in exposure["depends_on"]} == read


def test_bundle_points_the_connection_at_the_warehouse_read_only(tmp_path):
    bundle = superset_setup.write_bundle(tmp_path / "wh", tmp_path / "bundle.zip")
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        (database,) = [n for n in names if n.startswith("customer_marts/databases/")]
        uri = yaml.safe_load(archive.read(database))["sqlalchemy_uri"]
        assert yaml.safe_load(archive.read("customer_marts/metadata.yaml"))["type"] == "assets"
    assert uri == f"duckdb:///{tmp_path / 'wh' / 'published.duckdb'}?access_mode=read_only"
    assert len(names) == len(list(BUNDLE.rglob("*.yaml")))


# ---------------------------------------------------------------- Chromium over CDP


class Browser:
    """Headless Chromium driven over the DevTools protocol (one page)."""

    def __init__(self, binary: str, profile: Path, viewport: tuple[int, int] = VIEWPORT):
        self.process = subprocess.Popen(
            [
                binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                f"--window-size={viewport[0]},{viewport[1]}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert self.process.poll() is None, "chromium exited at start"
            assert time.monotonic() < deadline, "chromium opened no DevTools port"
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        self.socket = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        for domain in ("Page", "Network", "Runtime"):
            self.send(f"{domain}.enable")
        width, height = viewport
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def send(self, method: str, timeout: float = 60, **params) -> dict:
        request_id = next(self.ids)
        self.socket.send(json.dumps({"id": request_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == request_id:
                assert "error" not in message, f"{method}: {message['error']}"
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def pump(self, seconds: float) -> None:
        """Collect events for a while."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                message = json.loads(self.socket.recv(timeout=left))
            except TimeoutError:
                return
            if "method" in message:
                self.events.append(message)

    def eval(self, expression: str):
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.eval(expression):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            self.pump(0.25)

    def type_into(self, selector: str, text: str) -> None:
        """Focus a field and type, as a keyboard would (React sees the input events)."""
        self.eval(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", text=text)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(
            base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        )
        return path

    def close(self) -> None:
        try:
            self.socket.close()
        finally:
            self.process.terminate()
            self.process.wait(timeout=30)


# Per chart on the dashboard: its id, whether it shows an error, whether it drew anything.
CHART_STATES = """JSON.stringify(Array.from(document.querySelectorAll(
    '[data-test="chart-grid-component"]')).map(holder => ({
  id: Number(holder.getAttribute('data-test-chart-id')),
  title: (holder.querySelector('[data-test="editable-title"]') || {}).textContent || '',
  error: Array.from(holder.querySelectorAll('.ant-alert-error, [role=alert]'))
      .map(alert => alert.textContent.slice(0, 300)).join(' | '),
  loading: holder.querySelectorAll('.loading, [aria-label="Loading"]').length,
  drawn: holder.querySelectorAll(
      '[data-test="chart-container"] canvas, [data-test="chart-container"] table').length,
  text: holder.innerText.slice(0, 2000),
})))"""


@dataclass
class DashboardView:
    charts: list[dict]  # CHART_STATES once every chart settled
    chart_requests: dict[int, tuple[str, str]] = field(default_factory=dict)  # id: url, body
    statuses: dict[int, int] = field(default_factory=dict)  # id: HTTP status
    exceptions: list[str] = field(default_factory=list)


def open_dashboard(browser: Browser, base_url: str, expected: int) -> DashboardView:
    """Load the dashboard and wait until each of its charts drew or showed an error."""
    browser.events.clear()
    browser.send("Page.navigate", url=base_url + superset_setup.DASHBOARD_PATH)
    deadline = time.monotonic() + 120
    while True:
        browser.pump(0.5)
        charts = json.loads(browser.eval(CHART_STATES))
        settled = [c for c in charts if not c["loading"] and (c["error"] or c["drawn"])]
        if len(charts) == expected and len(settled) == expected:
            break
        assert time.monotonic() < deadline, f"charts did not settle: {charts}"
    browser.pump(3)  # ECharts animates its series in: let them finish before a screenshot
    view = DashboardView(charts=json.loads(browser.eval(CHART_STATES)))
    ids = {}
    for event in browser.events:
        params = event["params"]
        if event["method"] == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if "/api/v1/chart/data" in url and params["request"]["method"] == "POST":
                slice_id = json.loads(params["request"]["postData"])["form_data"]["slice_id"]
                ids[params["requestId"]] = slice_id
                view.chart_requests[slice_id] = (url, params["request"]["postData"])
        elif event["method"] == "Network.responseReceived" and params["requestId"] in ids:
            view.statuses[ids[params["requestId"]]] = params["response"]["status"]
        elif event["method"] == "Runtime.exceptionThrown":
            view.exceptions.append(params["exceptionDetails"].get("text", ""))
    return view


# ---------------------------------------------------------------- Superset and the warehouse


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def bi_venv() -> Path:
    """.venv-bi from bi/requirements.lock (`make bi-venv`, a no-op when up to date)."""
    result = subprocess.run(
        ["make", "-s", "bi-venv"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1200
    )
    venv = superset_setup.venv_dir()
    if result.returncode != 0 or not superset_setup.superset_bin(venv).exists():
        pytest.skip(
            "!!! SUPERSET COULD NOT BE INSTALLED (`make bi-venv` from bi/requirements.lock "
            "failed): the dashboard was NOT tested. "
            + (result.stdout + result.stderr).strip()[-500:]
        )
    return venv


@dataclass
class Site:
    settings: object
    base_url: str
    server: subprocess.Popen
    log: Path
    published: list[date] = field(default_factory=list)

    @property
    def published_db(self) -> Path:
        return self.settings.published_db

    def publish(self, as_of: date) -> None:
        # dbt's data and unit tests left out: the dashboard reads the marts, not test results
        with dbt_tests_left_out():
            pipeline.run_all(self.settings, as_of)
        self.published.append(as_of)


@pytest.fixture(scope="module")
def site(bi_venv, small_demo, tmp_path_factory):
    """Superset provisioned as `make bi` does, over a warehouse not yet published."""
    root = tmp_path_factory.mktemp("superset_site")
    settings = make_settings(root)
    shutil.copytree(small_demo, settings.landing_dir, dirs_exist_ok=True)
    bi_home = root / "bi"
    env = superset_setup.provision(bi_home, settings.warehouse_dir, USER, PASSWORD, bi_venv)
    port = free_port()
    log = root / "superset.log"
    with log.open("w") as out:
        server = superset_setup.start(env, port, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        superset_setup.wait_healthy(base_url, server)
        yield Site(settings, base_url, server, log)
    finally:
        server.terminate()
        server.wait(timeout=30)


def api_session(base_url: str) -> requests.Session:
    """Logged in to Superset's REST API: JWT bearer plus the CSRF token its POSTs need."""
    session = requests.Session()
    login = session.post(
        f"{base_url}/api/v1/security/login",
        json={"username": USER, "password": PASSWORD, "provider": "db", "refresh": True},
        timeout=60,
    )
    login.raise_for_status()
    session.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    csrf = session.get(f"{base_url}/api/v1/security/csrf_token/", timeout=60)
    csrf.raise_for_status()
    session.headers.update({"X-CSRFToken": csrf.json()["result"], "Referer": base_url})
    return session


@pytest.fixture(scope="module")
def browser(chromium, site, tmp_path_factory):  # noqa: F811
    """Chromium logged in through Superset's login form."""
    browser = Browser(chromium, tmp_path_factory.mktemp("chromium_profile"))
    try:
        browser.send("Page.navigate", url=f"{site.base_url}/login/")
        browser.wait_for("!!document.querySelector('#username')")
        browser.type_into("#username", USER)
        browser.type_into("#password", PASSWORD)
        browser.eval("document.querySelector('button[type=submit]').click()")
        browser.wait_for("!location.pathname.startsWith('/login')")
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def dashboard_charts(site) -> dict[str, int]:
    charts = api_session(site.base_url).get(
        f"{site.base_url}/api/v1/dashboard/{superset_setup.DASHBOARD_SLUG}/charts", timeout=60
    )
    charts.raise_for_status()
    return {chart["slice_name"]: chart["id"] for chart in charts.json()["result"]}


@pytest.fixture(scope="module")
def unpublished_view(site, browser, dashboard_charts) -> DashboardView:
    assert not site.published_db.exists()
    return open_dashboard(browser, site.base_url, len(dashboard_charts))


@pytest.fixture(scope="module")
def view(site, browser, dashboard_charts, unpublished_view) -> DashboardView:
    """The dashboard after the first publish."""
    site.publish(FIRST_AS_OF)
    return open_dashboard(browser, site.base_url, len(dashboard_charts))


def replay(session: requests.Session, view: DashboardView, slice_id: int) -> dict:
    """The chart's own query, as the dashboard sent it, through the chart-data API."""
    url, body = view.chart_requests[slice_id]
    response = session.post(
        url, data=body, headers={"Content-Type": "application/json"}, timeout=120
    )
    assert response.status_code == 200, (
        f"chart {slice_id}: {response.status_code} {response.text[:300]}"
    )
    (result,) = response.json()["result"]
    assert not result.get("error"), result.get("error")
    return result


def clv_points(data: list[dict]) -> list[tuple[str, str, float]]:
    """(lifecycle stage, segment, mean 12-month CLV) from the bar chart's answer: one row per
    stage with a column per segment (the series), empty where a stage has no such segment."""
    return sorted(
        (row["lifecycle_stage"], key.split(", ")[-1], round(value, 6))
        for row in data
        for key, value in row.items()
        if key != "lifecycle_stage" and value is not None
    )


def expected_clv_points(path: Path) -> list[tuple[str, str, float]]:
    sql = "select lifecycle_stage, is_high_value, avg_clv_12m from marts.clv_by_segment"
    return sorted(
        (stage, "high value" if high else "other", round(value, 6))
        for stage, high, value in published(path, sql)
    )


def month(epoch_ms: float) -> str:
    return np.datetime64(int(epoch_ms), "ms").astype("datetime64[M]").astype(str)


def published(path: Path, sql: str) -> list[tuple]:
    """Rows of a published file, DECIMAL money as float (as Superset's JSON has it)."""
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.sql(sql).fetchall()
    return [tuple(float(v) if isinstance(v, Decimal) else v for v in row) for row in rows]


# ---------------------------------------------------------------- the dashboard in the browser


@pytest.mark.slow
def test_before_the_first_publish_every_chart_shows_its_error(unpublished_view, dashboard_charts):
    """The render check can fail: with no published.duckdb yet each chart shows the error."""
    assert len(unpublished_view.charts) == len(dashboard_charts) == 6
    for chart in unpublished_view.charts:
        assert "published.duckdb" in chart["error"], chart["title"]
        assert not chart["drawn"], chart["title"]
    assert all(status >= 400 for status in unpublished_view.statuses.values())


@pytest.mark.slow
def test_every_chart_renders_without_error(view, dashboard_charts):
    assert {chart["id"] for chart in view.charts} == set(dashboard_charts.values())
    for chart in view.charts:
        assert not chart["error"], f"{chart['title']}: {chart['error']}"
        assert chart["drawn"], f"{chart['title']} drew nothing"
    assert view.statuses == {slice_id: 200 for slice_id in dashboard_charts.values()}
    assert not view.exceptions
    (freshness,) = [c for c in view.charts if c["id"] == dashboard_charts[FRESHNESS]]
    assert FIRST_AS_OF.isoformat() in freshness["text"]  # the dashboard names its as-of date


@pytest.mark.slow
def test_screenshot_of_the_dashboard(view, browser, tmp_path):
    path = browser.screenshot(tmp_path / "superset_dashboard.png")
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(path, SCREENSHOT)
    pixels = png_rgb(path)
    assert pixels.shape[:2] == (VIEWPORT[1], VIEWPORT[0])
    # not blank: the heatmap, lines and bars give many colours over much of the page
    colours = np.unique(rgb_codes(pixels))
    assert len(colours) > 200
    assert SCREENSHOT.exists(), "docs/images/superset_dashboard.png: run with UPDATE_SCREENSHOTS=1"


@pytest.mark.slow
def test_chart_figures_equal_the_marts(site, view, dashboard_charts):
    """The latest month's retention and NPS, CLV by segment, the heatmap, the as-of date."""
    session = api_session(site.base_url)
    db = site.published_db

    def rows(name: str) -> list[dict]:
        return replay(session, view, dashboard_charts[name])["data"]

    latest = {month(row["period_start"]): row for row in rows(RETENTION)}
    (expected,) = published(
        db,
        "select strftime(period_start, '%Y-%m'), retention_rate_pct, churn_rate_pct "
        "from marts.retention_by_period where grain = 'month' and dimension = 'overall' "
        "order by period_start desc limit 1",
    )
    assert max(latest) == expected[0] == "2025-09"  # the first publish's as-of month
    assert latest[expected[0]]["Retention rate %"] == pytest.approx(expected[1])
    assert latest[expected[0]]["Churn rate %"] == pytest.approx(expected[2])

    nps = {month(row["period_start"]): row for row in rows(NPS)}
    (expected,) = published(
        db,
        "select strftime(period_start, '%Y-%m'), nps, nps_margin_of_error from marts.nps_by_period "
        "where grain = 'month' and dimension = 'overall' order by period_start desc limit 1",
    )
    assert max(nps) == expected[0]
    row = nps[expected[0]]
    assert row["NPS"] == pytest.approx(expected[1])
    assert row["NPS - margin of error"] == pytest.approx(expected[1] - expected[2])
    assert row["NPS + margin of error"] == pytest.approx(expected[1] + expected[2])

    clv = rows(CLV)
    assert {row["lifecycle_stage"] for row in clv} == {"active", "at_risk", "churned", "new"}
    assert clv_points(clv) == expected_clv_points(db)

    cells = {(row["cohort"], row["period_number"]): row["Retention %"] for row in rows(HEATMAP)}
    expected = published(
        db,
        "select strftime(cohort_start, '%Y-%m'), period_number, retention_pct "
        "from marts.cohort_retention where grain = 'month' and dimension = 'overall'",
    )
    assert cells == pytest.approx({(c, n): pct for c, n, pct in expected})

    kpis = rows(KPIS)
    (expected,) = published(
        db,
        "select period_start, orders, revenue, nps from marts.kpis_by_period "
        "where grain = 'month' order by period_start desc limit 1",
    )
    assert month(kpis[0]["period_start"]) == expected[0].strftime("%Y-%m")
    assert (kpis[0]["orders"], kpis[0]["revenue"]) == (
        expected[1],
        pytest.approx(float(expected[2])),
    )

    (freshness,) = rows(FRESHNESS)
    assert freshness["as_of_date"] == FIRST_AS_OF.isoformat()
    assert freshness["latest_month_in_marts"] == "2025-09"


@pytest.mark.slow
def test_dataset_columns_exist_in_the_published_marts_with_their_time_type(site, view):
    for dataset in load_bundle("datasets"):
        if dataset["schema"] != "marts":
            continue
        types = dict(
            published(
                site.published_db,
                "select column_name, data_type from information_schema.columns "
                f"where table_schema = 'marts' and table_name = '{dataset['table_name']}'",
            )
        )
        for column in dataset["columns"]:
            name = column["column_name"]
            assert name in types, f"{dataset['table_name']}.{name} is not published"
            is_time = types[name] in ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE")
            assert column["is_dttm"] == is_time, f"{dataset['table_name']}.{name}"


@pytest.mark.slow
def test_the_docs_site_shows_the_dashboard_and_what_feeds_it(site, view):
    manifest = json.loads((site.settings.warehouse_dir / "docs" / "manifest.json").read_text())
    exposure = manifest["exposures"]["exposure.customer_marts.customer_marts_dashboard"]
    assert exposure["label"] == "Customer Marts dashboard"
    assert exposure["url"].endswith(superset_setup.DASHBOARD_PATH)
    assert set(exposure["depends_on"]["nodes"]) == {
        f"model.customer_marts.{name}"
        for name in ("cohort_retention", "retention_by_period", "nps_by_period")
        + ("clv_by_segment", "kpis_by_period")
    }


# ---------------------------------------------------------------- while the pipeline publishes


def as_of_month(name: str, data: list[dict]) -> str:
    """The month of the as-of date a chart's answer shows."""
    if name == FRESHNESS:
        (row,) = data
        # one query reads the run record and a mart: both from the same published version
        assert row["latest_month_in_marts"] == row["as_of_date"][:7], row
        return row["latest_month_in_marts"]
    if name == HEATMAP:
        return max(row["cohort"] for row in data)
    return max(month(row["period_start"]) for row in data)


@pytest.mark.slow
def test_no_chart_query_fails_and_each_shows_a_complete_publish_while_runs_publish(
    site, view, browser, dashboard_charts
):
    names = {slice_id: name for name, slice_id in dashboard_charts.items()}
    answers: list[tuple[str, int, object]] = []  # (chart, status, as-of month or CLV rows)
    failures: list[str] = []
    stop = threading.Event()
    rounds = [0]  # complete rounds over every chart

    def query_repeatedly():
        session = api_session(site.base_url)
        deadline = time.monotonic() + 900  # bounded whatever happens
        while not stop.is_set() and time.monotonic() < deadline:
            rounds[0] += 1
            stop.wait(1)  # a dashboard refreshed every few seconds, not a load test
            for slice_id, name in names.items():
                url, body = view.chart_requests[slice_id]
                try:
                    response = session.post(
                        url, data=body, headers={"Content-Type": "application/json"}, timeout=120
                    )
                    result = response.json()["result"][0] if response.ok else {}
                    if not response.ok or result.get("error"):
                        failures.append(f"{name}: {response.status_code} {response.text[:300]}")
                        continue
                    data = result["data"]
                    if name == CLV:
                        shown = clv_points(data)
                    else:
                        shown = as_of_month(name, data)
                    answers.append((name, response.status_code, shown))
                except (requests.RequestException, AssertionError, KeyError, ValueError) as error:
                    failures.append(f"{name}: {error!r}")

    reader = threading.Thread(target=query_repeatedly)
    reader.start()
    try:
        for as_of in NEXT_AS_OF:
            before, started = len(answers), time.monotonic()
            site.publish(as_of)
            print(
                f"publish {as_of}: {time.monotonic() - started:.0f} s, {len(answers) - before} answers"
            )
            assert len(answers) > before, "no chart query answered during a publish"
        # two more rounds, begun after the last publish: each chart reads the last version
        after = rounds[0]
        deadline = time.monotonic() + 300
        while rounds[0] < after + 2 and reader.is_alive() and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        stop.set()
        reader.join(timeout=300)
    assert not reader.is_alive()
    assert not failures, failures[:5]

    publishes = [as_of.strftime("%Y-%m") for as_of in site.published]
    assert publishes == ["2025-09", "2025-10", "2025-11", "2025-12"]
    # the CLV of each version, read with duckdb from the kept published-<run_id>.duckdb files
    versions = published(
        site.published_db,
        "select published_version from audit.pipeline_runs where status = 'success' "
        "order by started_at",
    )
    clv_of_versions = [
        expected_clv_points(site.settings.warehouse_dir / version) for (version,) in versions
    ]
    assert len(clv_of_versions) == len(publishes)
    seen: dict[str, list] = {}
    for name, _, shown in answers:
        if name == CLV:
            assert shown in clv_of_versions, "CLV by segment matches no published version"
            shown = publishes[clv_of_versions.index(shown)]
        else:
            assert shown in publishes, f"{name} shows {shown}, no publish's as-of month"
        seen.setdefault(name, []).append(shown)
    for name, months in seen.items():
        assert months == sorted(months), f"{name} went back to an older version: {months}"
    assert set(seen) == set(dashboard_charts)
    # a run takes tens of seconds and a round of six queries a few: every chart was asked
    # while each version was the published one, and showed it
    for name, months in seen.items():
        assert set(months) == set(publishes), f"{name} showed only {sorted(set(months))}"

    final = open_dashboard(browser, site.base_url, len(dashboard_charts))
    assert all(chart["drawn"] and not chart["error"] for chart in final.charts), final.charts
    (freshness,) = [c for c in final.charts if c["id"] == dashboard_charts[FRESHNESS]]
    assert NEXT_AS_OF[-1].isoformat() in freshness["text"]
