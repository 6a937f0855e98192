"""Known answers: every indicator over the hand-built known borough, through the command line.

The expected numbers were worked out by hand from INDICATORS.md (the arithmetic is in
``tests/fixtures/KNOWN_ANSWERS.md``), never from the code under test. The test builds the fixture
into a real source (SQLite file, and PostgreSQL), runs ``csc-dashboard refresh --once`` and
``csc-dashboard indicators --json`` in-process against a separate store, and compares.

The child population is set to 10,000, so every rate per 10,000 children equals its count.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dashboard import cli
from tests.fixtures.known_borough import (
    AS_OF,
    CHILD_POPULATION,
    COST_CENTRES,
    SERVICE_A,
    SERVICE_B,
    TEAMS,
    build_known_borough,
)

NO_RAG = "no RAG asserted"  # borough-tier indicators have no default thresholds in INDICATORS.md


@dataclass(frozen=True)
class Expect:
    """A hand-worked answer. ``value`` None means "no data" (JSON null)."""

    value: float | int | None
    unit: str
    rag: str | None = None  # None: the JSON rag must be null (context indicator or no data)
    numerator: float | int | None = None
    denominator: float | int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_ratio(self) -> bool:
        return self.denominator is not None


def count(value: int, rag: str | None = None, **extra: Any) -> Expect:
    return Expect(value, "count", rag, extra=extra)


def rate(numerator: int, denominator: int, rag: str | None) -> Expect:
    """An on-time rate or share, as a percentage with two decimals; null when nothing is due."""
    if denominator == 0:
        return Expect(None, "percent", None, 0, 0)
    return Expect(round(100 * numerator / denominator, 2), "percent", rag, numerator, denominator)


def caseload(allocations: int, fte: float, rag: str) -> Expect:
    return Expect(round(allocations / fte, 2), "ratio", rag, allocations, fte)


def money(pounds: float, rag: str | None = None, **extra: Any) -> Expect:
    return Expect(pounds, "money", rag, extra=extra)


# --- Team tier (KNOWN_ANSWERS.md, "Organisation and workers", "Cases", "Steps") ------------------

TEAM_TIER: dict[str, dict[str, Expect]] = {
    "team:11": {
        "open_cases": count(14),
        "unallocated_cases": count(5, "amber"),
        "average_caseload": caseload(8, 2.5, "green"),
        "overdue_steps": count(10, "amber"),  # exactly 10: still amber
        "awaiting_signoff": count(3, "green", oldest_wait_days=177),
        "assessments_on_time": rate(2, 5, "red"),
        "cp_visits_on_time": rate(2, 4, "red"),
        "cla_visits_on_time": rate(0, 0, None),  # only PROPOSED/CANCELLED visits: no data
        "cla_reviews_on_time": rate(0, 0, None),
        "unfinished_steps": count(3, "amber"),
        "unstarted_steps": count(3, "amber"),
    },
    "team:12": {
        "open_cases": count(4),
        "unallocated_cases": count(1, "amber"),
        "average_caseload": caseload(3, 1.5, "green"),
        "overdue_steps": count(2, "amber"),
        "awaiting_signoff": count(1, "green", oldest_wait_days=24),
        "assessments_on_time": rate(2, 4, "red"),
        "cp_visits_on_time": rate(1, 1, "green"),
        "cla_visits_on_time": rate(1, 1, "green"),
        "cla_reviews_on_time": rate(0, 1, "red"),  # 0 of 1 is 0%, not "no data"
        "unfinished_steps": count(1, "amber"),
        "unstarted_steps": count(1, "amber"),
    },
    "team:21": {
        "open_cases": count(12),
        "unallocated_cases": count(6, "red"),  # 6: first red
        "average_caseload": caseload(6, 1.5, "green"),
        "overdue_steps": count(11, "red"),  # 11: first red
        "awaiting_signoff": count(1, "green", oldest_wait_days=23),
        "assessments_on_time": rate(0, 0, None),  # no assessments at all: no data
        "cp_visits_on_time": rate(2, 5, "red"),
        "cla_visits_on_time": rate(3, 5, "red"),
        "cla_reviews_on_time": rate(2, 3, "red"),
        "unfinished_steps": count(3, "amber"),
        "unstarted_steps": count(3, "amber"),
    },
    "team:22": {
        "open_cases": count(4),
        "unallocated_cases": count(0, "green"),
        "average_caseload": caseload(3, 2.0, "green"),  # 212 holds no children but has FTE 1.0
        "overdue_steps": count(0, "green"),
        "awaiting_signoff": count(1, "green", oldest_wait_days=84),
        "assessments_on_time": rate(3, 4, "amber"),  # exactly 75%: amber
        "cp_visits_on_time": rate(0, 0, None),
        "cla_visits_on_time": rate(1, 1, "green"),
        "cla_reviews_on_time": rate(0, 0, None),
        "unfinished_steps": count(0, "green"),
        "unstarted_steps": count(0, "green"),
    },
    f"service:{SERVICE_A}": {
        "open_cases": count(18),
        "unallocated_cases": count(6, "red"),
        "average_caseload": caseload(11, 4.0, "green"),
        "overdue_steps": count(12, "red"),
        "awaiting_signoff": count(4, "green", oldest_wait_days=177),
        "assessments_on_time": rate(4, 9, "red"),
        "cp_visits_on_time": rate(3, 5, "red"),
        "cla_visits_on_time": rate(1, 1, "green"),
        "cla_reviews_on_time": rate(0, 1, "red"),
        "unfinished_steps": count(4, "amber"),
        "unstarted_steps": count(4, "amber"),
    },
    f"service:{SERVICE_B}": {
        "open_cases": count(16),
        "unallocated_cases": count(6, "red"),
        "average_caseload": caseload(9, 3.5, "green"),
        "overdue_steps": count(11, "red"),
        "awaiting_signoff": count(2, "green", oldest_wait_days=84),
        "assessments_on_time": rate(3, 4, "amber"),
        "cp_visits_on_time": rate(2, 5, "red"),
        "cla_visits_on_time": rate(4, 6, "red"),
        "cla_reviews_on_time": rate(2, 3, "red"),
        "unfinished_steps": count(3, "amber"),
        "unstarted_steps": count(3, "amber"),
    },
    "teams:11,21": {  # a set of teams from two services
        "open_cases": count(26),
        "unallocated_cases": count(11, "red"),
        "average_caseload": caseload(14, 4.0, "green"),
        "overdue_steps": count(21, "red"),
        "awaiting_signoff": count(4, "green", oldest_wait_days=177),
        "assessments_on_time": rate(2, 5, "red"),
        "cp_visits_on_time": rate(4, 9, "red"),
        "cla_visits_on_time": rate(3, 5, "red"),
        "cla_reviews_on_time": rate(2, 3, "red"),
        "unfinished_steps": count(6, "amber"),
        "unstarted_steps": count(6, "amber"),
    },
    "borough": {
        "open_cases": count(34),
        "unallocated_cases": count(12, "red"),
        "average_caseload": caseload(20, 7.5, "green"),
        "overdue_steps": count(23, "red"),
        "awaiting_signoff": count(6, "amber", oldest_wait_days=177),
        "assessments_on_time": rate(7, 13, "red"),
        "cp_visits_on_time": rate(5, 10, "red"),
        "cla_visits_on_time": rate(5, 7, "red"),
        "cla_reviews_on_time": rate(2, 4, "red"),
        "unfinished_steps": count(7, "amber"),
        "unstarted_steps": count(7, "amber"),
    },
}

# --- Budget tier (KNOWN_ANSWERS.md, "Budget tier") -------------------------------------------------

BUDGET_TIER: dict[str, dict[str, Expect]] = {
    "cost_centre:CC100": {
        "budget": money(850_000.00),
        "paid_to_date": money(54_000.00),
        "accrued_to_date": money(431_068.00),
        "committed": money(436_728.00),
        "awaiting_authorisation": money(6_700.00),
        "forecast_outturn": money(867_796.00),
        "variance": money(17_796.00, "red", percent_of_budget=2.09),
        "active_placements": count(5),
        "high_cost_placements": count(2),
        "ending_soon": count(1),
    },
    "cost_centre:CC200": {
        "budget": money(18_460.00),
        "paid_to_date": money(5_270.54),
        "accrued_to_date": money(17_910.00),
        "committed": money(550.00),
        "awaiting_authorisation": money(1_800.00),
        "forecast_outturn": money(18_460.00),
        "variance": money(0.00, "green", percent_of_budget=0.00),  # exactly 0%: green
        "active_placements": count(0),
        "high_cost_placements": count(0),
        "ending_soon": count(1),
    },
    "borough": {
        "budget": money(868_460.00),
        "paid_to_date": money(59_270.54),
        "accrued_to_date": money(448_978.00),
        "committed": money(437_278.00),
        "awaiting_authorisation": money(8_500.00),
        "forecast_outturn": money(886_256.00),
        "variance": money(17_796.00, "red", percent_of_budget=2.05),
        "active_placements": count(5),
        "high_cost_placements": count(2),
        "ending_soon": count(2),
    },
}

# --- Borough tier (KNOWN_ANSWERS.md, "Borough tier"); population 10,000: per 10k = count ----------

BOROUGH_TIER: dict[str, Expect] = {
    "referrals_12m": Expect(38, "count", NO_RAG, extra={"per_10k": 38}),
    "rereferral_rate": Expect(10.53, "percent", NO_RAG, 4, 38),
    "cin_rate": Expect(33, "per_10k", NO_RAG),
    "cp_rate": Expect(5, "per_10k", NO_RAG),
    "cla_rate": Expect(4, "per_10k", NO_RAG),
    "icpc_on_time": Expect(60.00, "percent", NO_RAG, 3, 5),
    "cp_plans_2yrs": Expect(25.00, "percent", NO_RAG, 1, 4),
    "second_cp_plans": Expect(60.00, "percent", NO_RAG, 3, 5),
    "placement_moves": Expect(50.00, "percent", NO_RAG, 2, 4),
}

# --- Drill-downs: the exact rows each count is made of ---------------------------------------------

DRILLDOWNS: list[tuple[str, str, str, set[int] | set[str]]] = [
    ("overdue_steps", "team:11", "workflow_step_id",
     {1101, 1102, 1103, 1104, 1105, 1112, 1113, 1123, 1128, 1134}),
    ("overdue_steps", "team:21", "workflow_step_id",
     {2101, 2102, 2115, 2120, 2121, 2122, 2123, 2124, 2125, 2126, 2127}),
    ("overdue_steps", "team:22", "workflow_step_id", set()),
    ("unallocated_cases", "team:11", "referral_id", {5, 6, 7, 8, 9}),  # children 1005-1009
    ("unallocated_cases", f"service:{SERVICE_A}", "referral_id", {5, 6, 7, 8, 9, 26}),
    ("unfinished_steps", "team:11", "workflow_step_id", {1104, 1105, 1123}),
    ("unfinished_steps", "borough", "workflow_step_id", {1104, 1105, 1123, 1208, 2102, 2122, 2124}),
    ("unstarted_steps", "team:11", "workflow_step_id", {1101, 1111, 1128}),
    ("unstarted_steps", "team:21", "workflow_step_id", {2101, 2110, 2120}),
    ("awaiting_signoff", "team:11", "workflow_step_id", {1120, 1123, 1124}),
    ("awaiting_signoff", "borough", "workflow_step_id", {1120, 1123, 1124, 1206, 2103, 2202}),
    ("high_cost_placements", "cost_centre:CC100", "service_element_id", {702, 705}),
    ("high_cost_placements", "cost_centre:CC200", "service_element_id", set()),
    ("ending_soon", "cost_centre:CC100", "service_element_id", {702}),
    ("ending_soon", "borough", "service_element_id", {702, 712}),
]  # fmt: skip

RATIO_IDS = ("average_caseload", "assessments_on_time", "cp_visits_on_time",
             "cla_visits_on_time", "cla_reviews_on_time")  # fmt: skip

SCOPES = (*TEAM_TIER, *(s for s in BUDGET_TIER if s != "borough"))


def _cases() -> list[tuple[str, str, Expect]]:
    cases = [(s, i, e) for s, by_id in TEAM_TIER.items() for i, e in by_id.items()]
    cases += [(s, i, e) for s, by_id in BUDGET_TIER.items() for i, e in by_id.items()]
    cases += [("borough", i, e) for i, e in BOROUGH_TIER.items()]
    return cases


CASES = _cases()


# --- Running the command line ----------------------------------------------------------------------


@dataclass
class Run:
    """What the command line did with the known borough on one database."""

    backend: str
    refresh_status: int
    refresh_output: str
    by_scope: dict[str, dict[str, dict[str, Any]]]
    problems: dict[str, str]  # scope -> why `indicators` gave no usable JSON

    def item(self, scope: str, indicator_id: str) -> dict[str, Any]:
        assert self.refresh_status == 0, (
            f"refresh --once exited {self.refresh_status}:\n{self.refresh_output}"
        )
        assert scope not in self.problems, f"indicators --scope {scope}: {self.problems[scope]}"
        items = self.by_scope[scope]
        assert indicator_id in items, f"{indicator_id} missing for {scope}; got {sorted(items)}"
        return items[indicator_id]


def _main(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except SystemExit as exc:  # argparse errors
            status = exc.code if isinstance(exc.code, int) else 2
    return status, out.getvalue() + ("\n[stderr]\n" + err.getvalue() if err.getvalue() else "")


def _indicators(scope: str) -> tuple[dict[str, dict[str, Any]] | None, str]:
    argv = ["indicators", "--json", "--scope", scope, "--as-of", AS_OF.isoformat()]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 2
    if status != 0:
        return None, f"exit status {status}: {err.getvalue().strip()[-2000:]}"
    try:
        listing = json.loads(out.getvalue())
    except json.JSONDecodeError as exc:
        return None, f"stdout is not JSON ({exc}): {out.getvalue()[:500]!r}"
    items: dict[str, dict[str, Any]] = {}
    for item in listing:
        assert item["id"] not in items, f"{item['id']} listed twice for {scope}"
        items[item["id"]] = item
    return items, ""


@contextlib.contextmanager
def _pg_databases(admin_url: str, count: int) -> Iterator[list[str]]:
    """Fresh PostgreSQL databases for one module's worth of tests, dropped afterwards."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names = [f"csc_known_{uuid.uuid4().hex[:12]}" for _ in range(count)]
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield [
            make_url(admin_url).set(database=n).render_as_string(hide_password=False) for n in names
        ]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _run(backend: str, source_url: str, store_url: str) -> Iterator[Run]:
    build_known_borough(source_url)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DASHBOARD_SOURCE_URL", source_url)
        env.setenv("DASHBOARD_STORE_URL", store_url)
        env.setenv("DASHBOARD_AS_OF", AS_OF.isoformat())
        env.setenv("DASHBOARD_CHILD_POPULATION", str(CHILD_POPULATION))
        env.delenv("DASHBOARD_THRESHOLDS_FILE", raising=False)  # the default RAG bands
        status, output = _main(["refresh", "--once"])
        by_scope: dict[str, dict[str, dict[str, Any]]] = {}
        problems: dict[str, str] = {}
        if status == 0:
            for scope in SCOPES:
                items, problem = _indicators(scope)
                if items is None:
                    problems[scope] = problem
                else:
                    by_scope[scope] = items
        # The environment stays set while the module's tests run (the drill-down tests need it).
        yield Run(backend, status, output, by_scope, problems)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def known(request, tmp_path_factory) -> Iterator[Run]:
    """The known borough built, refreshed and read at every scope, on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        folder: Path = tmp_path_factory.mktemp("known")
        yield from _run(
            "sqlite",
            f"sqlite:///{folder / 'source.sqlite'}",
            f"sqlite:///{folder / 'store.sqlite'}",
        )
        return
    admin_url = request.getfixturevalue("pg_admin_url")
    with _pg_databases(admin_url, 2) as (source_url, store_url):
        yield from _run("postgres", source_url, store_url)


# --- The hand numbers agree with themselves ---------------------------------------------------------


def test_hand_numbers_borough_ratios_are_sums_over_teams():
    """Borough numerator and denominator = the sums over teams 11, 12, 21, 22 (never an average)."""
    for indicator_id in RATIO_IDS:
        teams = [TEAM_TIER[f"team:{t}"][indicator_id] for t in TEAMS]
        borough = TEAM_TIER["borough"][indicator_id]
        assert borough.numerator == sum(t.numerator for t in teams), indicator_id
        assert borough.denominator == pytest.approx(sum(t.denominator for t in teams)), indicator_id
        for service, members in ((SERVICE_A, (11, 12)), (SERVICE_B, (21, 22))):
            parts = [TEAM_TIER[f"team:{t}"][indicator_id] for t in members]
            whole = TEAM_TIER[f"service:{service}"][indicator_id]
            assert whole.numerator == sum(p.numerator for p in parts), (indicator_id, service)
            assert whole.denominator == pytest.approx(sum(p.denominator for p in parts))


def test_hand_numbers_counts_add_up_over_teams():
    for indicator_id in ("open_cases", "unallocated_cases", "overdue_steps", "awaiting_signoff",
                         "unfinished_steps", "unstarted_steps"):  # fmt: skip
        teams = sum(TEAM_TIER[f"team:{t}"][indicator_id].value for t in TEAMS)
        assert TEAM_TIER["borough"][indicator_id].value == teams, indicator_id
    for indicator_id, expect in BUDGET_TIER["borough"].items():
        parts = sum(BUDGET_TIER[f"cost_centre:{c}"][indicator_id].value for c in COST_CENTRES)
        assert expect.value == pytest.approx(parts, abs=0.01), indicator_id


# --- The dashboard agrees with the hand numbers -----------------------------------------------------


def test_refresh_once_succeeds(known: Run):
    assert known.refresh_status == 0, known.refresh_output


@pytest.mark.parametrize("scope", SCOPES)
def test_indicators_json_has_the_contract_keys(known: Run, scope: str):
    wanted = (TEAM_TIER.get(scope, {}) | BUDGET_TIER.get(scope, {})
              | (BOROUGH_TIER if scope == "borough" else {}))  # fmt: skip
    for indicator_id in wanted:
        item = known.item(scope, indicator_id)
        for key in ("id", "value", "unit", "rag", "computed_at"):
            assert key in item, f"{indicator_id} at {scope} has no {key!r}"
        assert item["computed_at"], f"{indicator_id} at {scope}: no computed_at"


@pytest.mark.parametrize(
    ("scope", "indicator_id", "expect"), CASES, ids=[f"{s}-{i}" for s, i, _ in CASES]
)
def test_known_answer(known: Run, scope: str, indicator_id: str, expect: Expect):
    item = known.item(scope, indicator_id)
    where = f"{indicator_id} at {scope} on {known.backend}"
    assert item["unit"] == expect.unit, f"{where}: unit"
    if expect.value is None:
        assert item["value"] is None, f"{where}: expected no data (null), got {item['value']!r}"
    elif expect.unit == "count":
        assert item["value"] == expect.value, f"{where}: value"
        assert isinstance(item["value"], int), f"{where}: counts are integers"
    elif expect.unit == "money":
        assert item["value"] == pytest.approx(expect.value, abs=0.01), f"{where}: value"
    else:  # percentages, ratios and rates carry two decimals
        assert item["value"] == pytest.approx(expect.value, abs=0.005), f"{where}: value"
    if expect.rag != NO_RAG:
        assert item["rag"] == expect.rag, f"{where}: RAG for {item['value']!r}"
    if expect.is_ratio:
        if expect.denominator == 0:  # "no data": the counts behind it are zero (or not given)
            assert item.get("denominator") in (0, None), f"{where}: denominator"
        else:
            assert item.get("numerator") == pytest.approx(expect.numerator), f"{where}: numerator"
            assert item.get("denominator") == pytest.approx(expect.denominator), (
                f"{where}: denominator"
            )
    for key, wanted in expect.extra.items():
        assert key in item, f"{where}: no {key!r} in {sorted(item)}"
        assert item[key] == pytest.approx(wanted, abs=0.005), f"{where}: {key}"


@pytest.mark.parametrize("indicator_id", RATIO_IDS)
def test_borough_ratio_is_sum_over_teams_in_json(known: Run, indicator_id: str):
    teams = [known.item(f"team:{t}", indicator_id) for t in TEAMS]
    borough = known.item("borough", indicator_id)
    assert borough["numerator"] == pytest.approx(sum(t["numerator"] or 0 for t in teams))
    assert borough["denominator"] == pytest.approx(sum(t["denominator"] or 0 for t in teams))


@pytest.mark.parametrize(
    ("indicator_id", "scope", "column", "rows"),
    DRILLDOWNS,
    ids=[f"{i}-{s}" for i, s, _, _ in DRILLDOWNS],
)
def test_drilldown_lists_exactly_the_rows_counted(
    known: Run, indicator_id: str, scope: str, column: str, rows: set
):
    from dashboard.config import Settings
    from dashboard.data import DataLayer
    from dashboard.model import Scope

    assert known.refresh_status == 0, known.refresh_output
    frame = DataLayer(Settings()).drilldown(indicator_id, Scope.parse(scope))
    assert column in frame.columns, (
        f"{indicator_id} at {scope}: no {column!r} in {list(frame.columns)}"
    )
    listed = [int(v) for v in frame[column]]
    assert sorted(listed) == sorted(rows), f"{indicator_id} at {scope} on {known.backend}"
    assert known.item(scope, indicator_id)["value"] == len(rows), "tile and list disagree"
