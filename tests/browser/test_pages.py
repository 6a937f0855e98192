"""What only a browser shows: pages render cleanly, tiles update live, drill-downs and exports
match their tiles, the pages pass axe-core, and each tier prints. Screenshots of each tier go
to docs/screenshots/ for the README.

Every test logs in through the real login form first (as the demo director, who sees the
borough, unless it says otherwise).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from flask import request
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select
from sqlalchemy import create_engine, text

from dashboard.data import DataLayer
from dashboard.model import Scope
from dashboard.web import components
from dashboard.web.app import create_app
from dashboard.web.grid_rows import BLOCK_ROWS
from layouts import all_pages
from tests.conftest import skip_or_fail
from tests.web_support import AS_OF, DemoBorough, copy_sqlite_source, demo_borough, refresh

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
AXE_VERSION = "4.10"
WAIT_S = 20  # an upper bound for waits, never an assertion about speed
TIER_PATHS = {"home": "/", "team": "/team", "budget": "/budget", "borough": "/borough",
              "quality": "/quality"}  # fmt: skip


TEAM_LISTS = next(p for p in all_pages() if p.id == "team").lists


@pytest.fixture(scope="module")
def borough(small_demo_source_url, tmp_path_factory) -> DemoBorough:
    return demo_borough(small_demo_source_url, tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def settings(borough):
    return borough.settings


@pytest.fixture(scope="module")
def busiest_team(settings) -> str:
    data = DataLayer(settings)
    best = max(
        data.teams()["org_id"],
        key=lambda t: data.value("overdue_steps", Scope.team(t)).value or 0,
    )
    return f"team:{best}"


@pytest.fixture(scope="session")
def axe_source(tmp_path_factory) -> str:
    """axe-core from the npm registry, installed once into a cache folder."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "csc-dashboard-axe"
    script = cache / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            skip_or_fail("npm is not installed (needed to fetch axe-core)")
        cache.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [npm, "install", "--prefix", str(cache), f"axe-core@{AXE_VERSION}",
             "--no-audit", "--no-fund", "--silent"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if result.returncode != 0 or not script.exists():
            skip_or_fail(f"could not install axe-core from npm: {result.stderr.strip()[:300]}")
    return script.read_text()


# ----------------------------------------------------------------------------- helpers


def tile_selector(indicator_id: str) -> str:
    # Dash writes a pattern-matching id as JSON with sorted keys.
    return "[id='" + json.dumps({"ind": indicator_id, "type": "tile"}, separators=(",", ":")) + "']"


def start_logged_in(dash_duo, app, username: str) -> None:
    """Start ``app`` and log in as ``username``. (dash_duo's own start waits for the Dash page
    at "/", which an anonymous browser no longer gets: it is sent to the login form.)"""
    dash_duo.start_server(app, navigate=False)
    log_in(dash_duo, username)
    dash_duo.server_url = dash_duo.server.url  # now "/" leads to the user's own tier page


def log_in(dash_duo, username: str, password: str = "demo") -> None:
    """Log in through the real form, as a person would (labelled fields, then the button)."""
    driver = dash_duo.driver
    driver.get(dash_duo.server.url + "/login")
    driver.find_element(By.CSS_SELECTOR, "label[for='username']")  # the fields are labelled
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()
    wait_until(lambda: "/login" not in driver.current_url, message="login")
    dash_duo.wait_for_element("h1", timeout=WAIT_S)


def open_page(dash_duo, path: str) -> None:
    dash_duo.driver.get(dash_duo.server_url + path)
    dash_duo.wait_for_element("h1", timeout=WAIT_S)
    wait_until(lambda: not dash_duo.driver.find_elements(By.CSS_SELECTOR, ".tile--loading"))
    wait_until(lambda: dash_duo.driver.execute_script(
        "return !document.querySelector('[data-dash-is-loading=\"true\"]')"
    ))  # fmt: skip


def wait_until(condition, timeout: float = WAIT_S, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = condition()
        except Exception:  # the DOM is being replaced under us: try again
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {message}")


def tile_number(dash_duo, indicator_id: str) -> int:
    element = dash_duo.find_element(f"{tile_selector(indicator_id)} .tile__value")
    return int(element.text.split()[0].replace(",", ""))


def tile_meta(dash_duo, indicator_id: str) -> str:
    return dash_duo.find_element(f"{tile_selector(indicator_id)} .tile__meta").text


def save_full_page(dash_duo, name: str) -> None:
    driver = dash_duo.driver
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(height, 800), 6000))
    time.sleep(0.5)  # let responsive charts re-lay out to the new size before the picture
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    driver.set_window_size(size["width"], size["height"])


def run_axe(dash_duo, axe_source: str) -> list[dict]:
    driver = dash_duo.driver
    driver.set_script_timeout(60)
    driver.execute_script(axe_source)
    result = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        axe.run(document, {resultTypes: ['violations']})
           .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                 nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))))
           .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e)}]));
        """
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("tier", list(TIER_PATHS))
def test_page_renders_without_console_errors_and_passes_axe(
    dash_duo, borough, settings, tier, axe_source
):
    start_logged_in(dash_duo, create_app(settings), borough.director)
    open_page(dash_duo, TIER_PATHS[tier])
    assert dash_duo.find_element("h1").text
    if tier != "home":
        tiles = dash_duo.driver.find_elements(By.CSS_SELECTOR, ".tile")
        assert tiles and not dash_duo.driver.find_elements(By.CSS_SELECTOR, ".tile--loading")
    assert dash_duo.get_logs() == []
    serious = run_axe(dash_duo, axe_source)
    assert serious == [], json.dumps(serious, indent=2)
    save_full_page(dash_duo, tier)


def test_a_tile_updates_live_after_a_refresh(dash_duo, small_demo_source_url, tmp_path):
    source = copy_sqlite_source(small_demo_source_url, tmp_path / "source")
    live = demo_borough(source, tmp_path / "store")
    settings = live.settings
    engine = create_engine(source)
    with engine.connect() as conn:
        step_id, team_id = conn.execute(
            text(
                "SELECT workflow_step_id, responsible_team_id FROM workflow_steps "
                "WHERE step_status IN ('INCOMING', 'STARTED', 'REOPENED') "
                "AND incoming_on <= :as_of AND due_date >= :as_of ORDER BY workflow_step_id"
            ),
            {"as_of": AS_OF},
        ).first()
    start_logged_in(dash_duo, create_app(settings, poll_seconds=1), live.director)
    open_page(dash_duo, f"/team?scope=team:{team_id}")
    before = tile_number(dash_duo, "overdue_steps")

    # Make one open step of that team overdue: by definition the tile goes up by exactly one.
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE workflow_steps SET due_date = :due WHERE workflow_step_id = :id"),
            {"due": AS_OF - dt.timedelta(days=3), "id": step_id},
        )
    engine.dispose()
    refresh(settings, ["open_steps"])

    wait_until(lambda: tile_number(dash_duo, "overdue_steps") == before + 1, message="live tile")
    assert dash_duo.driver.execute_script("return performance.navigation.type") == 0  # no reload
    # Its freshness line (drawn by a callback of its own) says when the new value was computed.
    value = DataLayer(settings).value("overdue_steps", Scope.parse(f"team:{team_id}"))
    computed = f"Computed {components.format_time(value.computed_at)}"
    wait_until(lambda: tile_meta(dash_duo, "overdue_steps") == computed, message="its time")
    assert dash_duo.get_logs() == []


def grid_rows_shown(dash_duo, grid_id: str) -> int | None:
    """The rows a block grid says it holds (its row count, once the first block came)."""
    return dash_duo.driver.execute_script(
        "const api = dash_ag_grid.getApi(arguments[0]);"
        "return api.isLastRowIndexKnown() ? api.getDisplayedRowCount() : null;",
        grid_id,
    )


def grid_cell(dash_duo, grid_id: str, index: int, field: str):
    return dash_duo.driver.execute_script(
        "const row = dash_ag_grid.getApi(arguments[0]).getDisplayedRowAtIndex(arguments[1]);"
        "return row && row.data ? row.data[arguments[2]] : undefined;",
        grid_id,
        index,
        field,
    )


def block_responses(dash_duo) -> list[int]:
    """Sizes in bytes of the block responses the page has received (Resource Timing)."""
    return dash_duo.driver.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter(e => e.name.includes('_dash-update-component'))"
        ".map(e => e.encodedBodySize);"
    )


def test_drill_down_opens_by_keyboard_with_as_many_rows_as_the_tile_and_exports_them(
    dash_duo, borough, settings, busiest_team
):
    start_logged_in(dash_duo, create_app(settings), borough.director)
    open_page(dash_duo, f"/team?scope={busiest_team}")
    expected = tile_number(dash_duo, "overdue_steps")
    assert expected > 0

    dash_duo.find_element(tile_selector("overdue_steps")).send_keys(Keys.ENTER)
    count = dash_duo.wait_for_element("#drill-links .row-count", timeout=WAIT_S)
    assert int(count.get_attribute("data-count")) == expected
    # The grid's row count (from the server, with its first block) equals the tile.
    displayed = wait_until(lambda: grid_rows_shown(dash_duo, "drill-grid"), message="grid rows")
    assert displayed == expected

    dash_duo.find_element("#drill-links a[data-format='csv']").click()
    folder = Path(dash_duo.download_path)
    done = wait_until(
        lambda: [p for p in folder.glob("*.csv") if p.stat().st_size > 0], message="download"
    )
    rows = list(csv.DictReader(io.StringIO(done[0].read_text(encoding="utf-8-sig"))))
    assert len(rows) == expected
    assert done[0].name == f"overdue_steps-{busiest_team.replace(':', '-')}.csv"

    # From a child's row, the family view lists the open work of the whole family.
    dash_duo.driver.execute_script(
        "dash_ag_grid.getApi('drill-grid').getDisplayedRowAtIndex(0).setSelected(true)"
    )
    title = dash_duo.wait_for_element("#family-title", timeout=WAIT_S)
    wait_until(lambda: title.text.startswith("Open work of the family of"), message="family")
    assert dash_duo.get_logs() == []


def test_a_long_drill_down_sorts_and_filters_on_the_server_and_sends_one_block(
    dash_duo, borough, settings
):
    """The borough's overdue work: more rows than one block. The grid holds the right count,
    sorting and filtering are done on the server (the known answers come from the data layer's
    own list, sorted and filtered here with pandas), and no response carries the whole list."""
    frame = DataLayer(settings).drilldown("overdue_steps", Scope.borough())
    assert len(frame) > 2 * BLOCK_ROWS  # else this test shows nothing about blocks
    start_logged_in(dash_duo, create_app(settings), borough.director)
    open_page(dash_duo, "/team?scope=borough")  # the team tier's tiles, for the whole borough
    dash_duo.find_element(tile_selector("overdue_steps")).send_keys(Keys.ENTER)
    wait_until(lambda: grid_rows_shown(dash_duo, "drill-grid") == len(frame), message="rows")
    assert max(block_responses(dash_duo)) < 200_000  # one block, not the whole list

    # Sorted by days overdue, most first: the first row is the most overdue step.
    dash_duo.driver.execute_script(
        "dash_ag_grid.getApi('drill-grid').applyColumnState("
        "{state: [{colId: 'days_overdue', sort: 'desc'}], defaultState: {sort: null}})"
    )
    most = int(frame["days_overdue"].max())
    wait_until(lambda: grid_cell(dash_duo, "drill-grid", 0, "days_overdue") == most, message="sort")

    # Filtered to one team by name: the grid's count is that team's rows.
    team_name = str(frame["team_name"].value_counts().index[0])
    dash_duo.driver.execute_script(
        "dash_ag_grid.getApi('drill-grid').setFilterModel("
        "{team_name: {filterType: 'text', type: 'equals', filter: arguments[0]}})",
        team_name,
    )
    in_team = int((frame["team_name"] == team_name).sum())
    wait_until(lambda: grid_rows_shown(dash_duo, "drill-grid") == in_team, message="filter")
    assert grid_cell(dash_duo, "drill-grid", 0, "team_name") == team_name

    # Scrolled to the end, the last row arrives in its own block.
    dash_duo.driver.execute_script(
        "dash_ag_grid.getApi('drill-grid').ensureIndexVisible(arguments[0] - 1)", in_team
    )
    wait_until(
        lambda: grid_cell(dash_duo, "drill-grid", in_team - 1, "team_name") == team_name,
        message="the last block",
    )

    # Opening the list again starts afresh: unsorted, unfiltered, the tile's count.
    dash_duo.driver.execute_script("document.querySelector('#drill-modal .btn-close').click()")
    wait_until(lambda: not dash_duo.driver.find_elements(By.CSS_SELECTOR, "#drill-modal.show"))
    dash_duo.find_element(tile_selector("overdue_steps")).send_keys(Keys.ENTER)
    wait_until(lambda: grid_rows_shown(dash_duo, "drill-grid") == len(frame), message="afresh")
    first = int(frame["workflow_step_id"].iloc[0])
    wait_until(
        lambda: grid_cell(dash_duo, "drill-grid", 0, "workflow_step_id") == first,
        message="the list's own order",
    )
    assert dash_duo.get_logs() == []


def test_quality_lists_hold_their_counts_and_follow_the_scope(dash_duo, borough, settings):
    """Each inline list's grid holds as many rows as its "N rows" says, in blocks; choosing
    another scope starts each list again with that scope's rows."""
    data = DataLayer(settings)
    start_logged_in(dash_duo, create_app(settings), borough.director)
    open_page(dash_duo, "/quality")
    lists = dash_duo.driver.execute_script(
        "return [...document.querySelectorAll('.list-links')].map(e => e.id);"
    )
    assert len(lists) >= 2

    def counts() -> dict[str, tuple[int, int | None]]:
        out = {}
        for links_id in lists:
            indicator = json.loads(links_id)["ind"]
            said = dash_duo.driver.execute_script(
                "const e = document.getElementById(arguments[0]).querySelector('.row-count');"
                "return e ? Number(e.dataset.count) : null;",
                links_id,
            )
            grid = {"ind": indicator, "type": "list"}
            out[indicator] = (said, grid_rows_shown(dash_duo, grid))
        return out

    def matches(scope: Scope) -> bool:
        found = counts()
        return all(
            said == shown == len(data.drilldown(i, scope)) for i, (said, shown) in found.items()
        )

    wait_until(lambda: matches(Scope.parse(dash_duo.find_element("#scope-select")
                                             .get_attribute("value"))), message="lists")  # fmt: skip
    assert max(block_responses(dash_duo)) < 200_000

    team = max(
        data.teams()["org_id"],
        key=lambda t: len(data.drilldown("unfinished_steps", Scope.team(t))),
    )
    Select(dash_duo.find_element("#scope-select")).select_by_value(f"team:{team}")
    wait_until(lambda: matches(Scope.team(team)), message="lists of the chosen team")
    assert dash_duo.get_logs() == []


def test_a_list_asks_for_its_rows_again_only_when_they_changed(
    dash_duo, small_demo_source_url, tmp_path
):
    """A new version that leaves a list's rows as they were re-renders the page but sends no
    block request (and audits no view); one that changes them starts the grid again, and it
    shows the new rows."""
    source = copy_sqlite_source(small_demo_source_url, tmp_path / "source")
    live = demo_borough(source, tmp_path / "store")
    settings = live.settings
    (listed,) = TEAM_LISTS
    data = DataLayer(settings)
    team = max(data.teams()["org_id"], key=lambda t: len(data.drilldown(listed, Scope.team(t))))
    scope = Scope.team(team)
    before = data.drilldown(listed, scope)
    assert len(before) >= 2

    app = create_app(settings, poll_seconds=1)
    asked = {"blocks": 0, "lists": 0}

    @app.server.before_request
    def count_list_requests():
        output = (request.get_json(silent=True) or {}).get("output", "") if request.is_json else ""
        if "getRowsResponse" in output and '"type":"list"' in output:
            asked["blocks"] += 1
        elif '"type":"list-rows"' in output:
            asked["lists"] += 1

    start_logged_in(dash_duo, app, live.director)
    open_page(dash_duo, f"/team?scope={scope}")
    grid = {"ind": listed, "type": "list"}
    wait_until(lambda: grid_rows_shown(dash_duo, grid) == len(before), message="the list")
    wait_until(lambda: asked["blocks"] >= 1, message="its first block")
    blocks, lists = asked["blocks"], asked["lists"]

    # A refresh that changes nothing the list shows: the page hears of the new version and
    # asks for the lists' columns and digests again, but not for their rows.
    assert not refresh(settings, ["workforce"]).failed
    wait_until(lambda: asked["lists"] > lists, message="the lists asked for the new version")
    time.sleep(3)  # three more polls: any block request would have come by now
    assert asked["blocks"] == blocks
    assert grid_rows_shown(dash_duo, grid) == len(before)

    # One of the list's steps is signed off: its rows change, and the grid starts again.
    engine = create_engine(source)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE workflow_steps SET authorised_on = :day WHERE workflow_step_id = :id"),
            {"day": AS_OF, "id": int(before["workflow_step_id"].iloc[0])},
        )
    engine.dispose()
    assert not refresh(settings, ["signoff_queue"]).failed
    wait_until(lambda: grid_rows_shown(dash_duo, grid) == len(before) - 1, message="new rows")
    assert asked["blocks"] > blocks
    shown = {grid_cell(dash_duo, grid, i, "workflow_step_id") for i in range(len(before) - 1)}
    assert int(before["workflow_step_id"].iloc[0]) not in shown
    assert dash_duo.get_logs() == []


def test_team_matrix_cell_opens_that_teams_view(dash_duo, borough, settings):
    start_logged_in(dash_duo, create_app(settings), borough.director)
    open_page(dash_duo, "/borough")
    link = dash_duo.find_element(".team-matrix tbody th a")
    href = link.get_attribute("href")
    team = href.split("team%3A")[-1]
    link.send_keys(Keys.ENTER)  # keyboard, like every control
    wait_until(lambda: dash_duo.driver.current_url == href, message="navigation")
    wait_until(
        lambda: dash_duo.find_element("#scope-select").get_attribute("value") == f"team:{team}",
        message="the team's view",
    )
    assert dash_duo.find_element("h1").text == "Team"
    assert dash_duo.get_logs() == []


def test_each_tier_prints_on_a4_without_navigation(dash_duo, borough, settings):
    start_logged_in(dash_duo, create_app(settings), borough.director)
    open_page(dash_duo, "/team")
    driver = dash_duo.driver
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert (
        driver.execute_script("return getComputedStyle(document.querySelector('.navbar')).display")
        == "none"
    )
    columns = driver.execute_script(
        "return getComputedStyle(document.querySelector('.tile-grid')).gridTemplateColumns"
    )
    assert len(columns.split()) == 3
    pdf = driver.execute_cdp_cmd("Page.printToPDF", {"preferCSSPageSize": True})
    assert pdf["data"]  # Chromium laid the page out with the A4 @page rule


def test_a_team_manager_sees_only_their_team_and_can_log_out(dash_duo, borough, settings):
    """Logged in through the form as the demo team manager: their own tier, their own team in
    the selector, no borough or budget in the navigation, a refusal on /borough, and logout."""
    start_logged_in(dash_duo, create_app(settings), borough.team_manager)
    driver = dash_duo.driver
    wait_until(lambda: driver.current_url.endswith("/team"), message="the team tier")
    open_page(dash_duo, "/team")
    nav = {a.get_attribute("href").rsplit("/", 1)[-1] for a in
           driver.find_elements(By.CSS_SELECTOR, "nav[aria-label='Tiers'] a")}  # fmt: skip
    assert nav == {"team", "quality"}
    options = [
        o.get_attribute("value")
        for o in driver.find_elements(By.CSS_SELECTOR, "#scope-select option")
    ]
    data = DataLayer(settings)
    own = [o for o in options if o.startswith("team:")]
    assert len(own) == 1 and len(data.teams()) > 1  # one team of several
    assert "borough" not in options
    assert dash_duo.find_element("#current-user").text
    assert dash_duo.get_logs() == []

    driver.get(dash_duo.server.url + "/borough")
    message = dash_duo.wait_for_element("#refused-message", timeout=WAIT_S)
    assert "not available to you" in message.text
    assert not driver.find_elements(By.CSS_SELECTOR, ".tile")

    open_page(dash_duo, "/team")
    dash_duo.find_element("#logout-form button").click()
    wait_until(lambda: "/login" in driver.current_url, message="logged out")
    driver.get(dash_duo.server.url + "/team")
    wait_until(lambda: "/login" in driver.current_url, message="sent to the login form")
