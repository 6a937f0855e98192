"""Component builders called as plain functions: tile states, comparisons, sparklines, grids.

Expected texts and classes are worked out by hand from INDICATORS.md "What a tile shows".
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import unquote

import pandas as pd
import pytest

from dashboard.model import Freshness, Indicator, IndicatorValue, Thresholds
from dashboard.web import components
from dashboard.web.components import compare

AS_OF = dt.date(2026, 3, 31)
COMPUTED = dt.datetime(2026, 3, 31, 6, 15)


def fresh(tile, refresh_failed: bool = False) -> Freshness:
    """A tile value's freshness, as the data layer gives it to the freshness line."""
    return Freshness(tile.computed_at, tile.stale, refresh_failed)


def text_of(node: Any) -> str:
    """All visible text of a component tree, in order."""
    if node is None:
        return ""
    if isinstance(node, str | int | float):
        return str(node)
    if isinstance(node, list | tuple):
        return "".join(text_of(n) for n in node)
    return text_of(getattr(node, "children", None))


def classes_of(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, list | tuple):
        for n in node:
            found += classes_of(n)
    elif hasattr(node, "children"):
        found += (getattr(node, "className", None) or "").split()
        found += classes_of(node.children)
    return found


def value(**overrides: Any) -> IndicatorValue:
    base = dict(
        id="overdue_steps",
        title="Overdue work",
        scope="team:12",
        value=17,
        unit="count",
        polarity="lower_better",
        rag="red",
        computed_at=COMPUTED,
    )
    base.update(overrides)
    return IndicatorValue(**base)


def history(*pairs: tuple[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "day": [dt.date.fromisoformat(d) for d, _ in pairs],
            "value": [v for _, v in pairs],
            "numerator": [v for _, v in pairs],
            "denominator": [None for _ in pairs],
        }
    )


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("number", "unit", "expected"),
    [
        (17, "count", "17"),
        (1234, "count", "1,234"),
        (85.714, "percent", "85.7%"),
        (1_240_000.0, "money", "£1.24m"),
        (45_300.0, "money", "£45k"),
        (950.0, "money", "£950"),
        (-20_000.0, "money", "−£20k"),
        (330.33, "per_10k", "330.3"),
        (18.44, "ratio", "18.4"),
        (None, "percent", "no data"),
        (float("nan"), "count", "no data"),
    ],
)
def test_format_value(number, unit, expected):
    assert components.format_value(number, unit) == expected


# ----------------------------------------------------------------------------- comparison


@pytest.mark.parametrize(
    ("now", "before", "polarity", "direction", "judgement"),
    [
        (90.0, 85.0, "higher_better", "up", "better"),
        (80.0, 85.0, "higher_better", "down", "worse"),
        (17, 12, "lower_better", "up", "worse"),
        (9, 12, "lower_better", "down", "better"),
        (500, 400, "context", "up", "neutral"),
        (12, 12, "lower_better", "same", "neutral"),
    ],
)
def test_arrow_direction_and_colour_follow_polarity(now, before, polarity, direction, judgement):
    result = compare(now, before, "previous day", polarity)
    assert (result.direction, result.judgement) == (direction, judgement)
    line = components.comparison_line(result, "count")
    assert f"compare--{judgement}" in line.className
    assert result.arrow in text_of(line)
    if judgement != "neutral":  # colour is never the only signal
        assert f"({judgement})" in text_of(line)


def test_comparison_uses_previous_day_from_history_before_england():
    past = history(("2026-03-29", 15), ("2026-03-30", 12), ("2026-03-31", 17))
    shown = components.choose_comparison(
        value(comparator={"label": "England", "value": 3}), past, AS_OF
    )
    assert (shown.label, shown.other, shown.direction) == ("previous day", 12.0, "up")


def test_comparison_falls_back_to_england_without_history():
    shown = components.choose_comparison(
        value(
            id="assessments_on_time",
            value=80.0,
            unit="percent",
            polarity="higher_better",
            rag="amber",
            comparator={"label": "England", "value": 85.7},
        ),
        None,
        AS_OF,
    )
    assert (shown.label, shown.other, shown.judgement) == ("England", 85.7, "worse")


def test_no_comparison_without_value_history_or_comparator():
    assert components.choose_comparison(value(value=None), None, AS_OF) is None
    assert components.choose_comparison(value(), history(("2026-03-31", 17)), AS_OF) is None


# ----------------------------------------------------------------------------- tile states


@pytest.mark.parametrize(
    ("rag", "word", "symbol"),
    [("green", "On track", "✓"), ("amber", "Watch", "!"), ("red", "Act now", "✕")],
)
def test_rag_tile_has_colour_class_word_and_symbol(rag, word, symbol):
    tile = value(value=3, rag=rag)
    body = components.tile_body(tile, None, AS_OF)
    assert components.tile_class(tile) == f"tile tile--{rag}"
    assert f"rag--{rag}" in classes_of(body)
    text = text_of(body)
    assert word in text and symbol in text
    assert "Overdue work" in text and "3" in text
    assert "Computed" not in text  # the freshness line is drawn apart
    assert "Computed 31 Mar 2026 06:15" in text_of(components.tile_meta(fresh(tile)))


def test_no_data_tile_says_no_data_not_zero():
    tile = value(value=None, rag=None, status="no_data", unit="percent")
    body = components.tile_body(tile, None, AS_OF)
    assert components.tile_state(tile) == "no_data"
    assert "no data" in text_of(body)
    assert "0%" not in text_of(body)
    assert not any(c.startswith("rag--") for c in classes_of(body))


def test_failed_tile_shows_error_state_and_no_number():
    tile = value(value=None, rag=None, status="failed", error="open_steps: no such table")
    body = components.tile_body(tile, None, AS_OF)
    assert components.tile_class(tile) == "tile tile--failed"
    text = text_of(body)
    assert "Could not compute" in text
    assert "open_steps: no such table" in text
    assert "17" not in text


def test_failed_refresh_with_last_good_value_keeps_value_and_says_so():
    tile = value(status="failed", stale=True, error="timeout")
    body = components.tile_body(tile, None, AS_OF)
    assert "17" in text_of(body)
    meta = text_of(components.tile_meta(fresh(tile, refresh_failed=True)))
    assert "Refresh failed: last good value" in meta
    assert "Stale since 31 Mar 2026 06:15" in meta


def test_a_tile_never_refreshed_has_no_last_good_value_badge():
    meta = text_of(components.tile_meta(Freshness(None, stale=True, refresh_failed=False)))
    assert "Refresh failed: last good value" not in meta
    assert meta.startswith("Computed")


def test_stale_tile_has_badge_and_class():
    tile = value(stale=True)
    # Staleness is the freshness line's: the tile's own class is its numbers' (RAG).
    assert components.tile_class(tile) == "tile tile--red"
    assert components.tile_meta_class(fresh(tile)) == "tile__meta tile__meta--stale"
    meta = components.tile_meta(fresh(tile))
    assert "badge-stale" in classes_of(meta)
    assert "Stale since 31 Mar 2026 06:15" in text_of(meta)
    assert "badge-stale" not in classes_of(components.tile_body(tile, None, AS_OF))


def test_fresh_tile_has_no_stale_badge():
    assert "badge-stale" not in classes_of(components.tile_meta(fresh(value())))
    assert components.tile_meta_class(fresh(value())) == "tile__meta"


def test_context_indicator_has_no_rag_badge():
    tile = value(id="open_cases", title="Open cases", polarity="context", rag=None, value=212)
    body = components.tile_body(tile, None, AS_OF)
    assert components.tile_class(tile) == "tile tile--neutral"
    assert "212" in text_of(body)
    assert not any(c.startswith("rag--") for c in classes_of(body))


def test_tile_with_history_has_sparkline_with_text_alternative():
    past = history(("2026-03-29", 15), ("2026-03-30", 12), ("2026-03-31", 17))
    body = components.tile_body(value(), past, AS_OF)
    images = [n for n in body if getattr(n, "src", None)]
    assert len(images) == 1
    assert images[0].src.startswith("data:image/svg+xml")
    assert images[0].alt == "Daily history of Overdue work, 3 days: from 15 to 17"


def test_sparkline_points_scale_to_the_box():
    assert components.sparkline_svg([5.0]) is None
    svg = unquote(components.sparkline_svg([0.0, 10.0], width=104, height=26))
    # first point at the bottom-left inside a 2px margin, last at the top-right (3px margin)
    assert "points='2.0,23.0 102.0,3.0'" in svg


def test_tile_slot_is_a_button_only_when_a_list_exists():
    listed = Indicator(
        "overdue_steps",
        "Overdue work",
        "",
        "team",
        "count",
        "lower_better",
        ("open_steps",),
        Thresholds(0, 10),
        drilldown=True,
    )
    plain = Indicator("budget", "Budget", "", "budget", "money", "context", ("budgets",))
    button = components.tile_slot(listed, "team")
    assert button.__class__.__name__ == "Button"
    assert button.id == {"type": "tile", "ind": "overdue_steps"}
    # Its numbers and its freshness line are filled by two callbacks.
    assert [c.id for c in button.children] == [
        {"type": "tile-body", "ind": "overdue_steps"},
        {"type": "tile-meta", "ind": "overdue_steps"},
    ]
    assert components.tile_slot(plain, "budget").__class__.__name__ == "Div"


# ----------------------------------------------------------------------------- grids


def test_grid_records_are_json_ready():
    frame = pd.DataFrame(
        {
            "person_id": pd.array([1, None], dtype="Int64"),
            "due_date": [dt.date(2026, 3, 1), None],
            "when": pd.to_datetime(["2026-03-02", None]),
            "days_overdue": [30.0, float("nan")],
        }
    )
    assert components.grid_records(frame) == [
        {"person_id": 1, "due_date": "2026-03-01", "when": "2026-03-02", "days_overdue": 30.0},
        {"person_id": None, "due_date": None, "when": None, "days_overdue": None},
    ]


def test_column_defs_sort_and_filter_numbers_as_numbers():
    frame = pd.DataFrame({"last_name": ["A"], "days_overdue": [3]})
    defs = components.column_defs(frame)
    assert defs[0] == {
        "field": "last_name",
        "headerName": "Last name",
        "filter": "agTextColumnFilter",
    }
    assert defs[1]["filter"] == "agNumberColumnFilter"


def test_column_defs_filter_dates_as_dates():
    frame = pd.DataFrame({"due_date": pd.to_datetime(["2026-03-02"])})
    (spec,) = components.column_defs(frame)
    assert spec["filter"] == "agDateColumnFilter" and spec["cellDataType"] == "dateString"


def test_a_block_grid_holds_no_rows_and_asks_for_one_block_at_a_time():
    from dashboard.web.grid_rows import BLOCK_ROWS

    grid = components.data_grid("drill-grid", "Rows", blocks=True).children
    assert grid.rowModelType == "infinite"
    assert "rowData" not in grid.to_plotly_json()["props"]
    assert grid.dashGridOptions["cacheBlockSize"] == BLOCK_ROWS
    plain = components.data_grid("family-grid", "Rows").children
    assert plain.rowData == [] and "rowModelType" not in plain.to_plotly_json()["props"]


def test_team_matrix_cells_link_to_the_team_and_say_their_rag():
    matrix = pd.DataFrame(
        {
            "team_id": [12, 7],
            "team_name": ["North", "East"],
            "overdue_steps": [17, 0],
            "overdue_steps_rag": ["red", "green"],
        }
    )
    indicator = Indicator(
        "overdue_steps", "Overdue work", "", "team", "count", "lower_better", ("open_steps",)
    )
    ordered = components.matrix_teams_first(matrix, ["overdue_steps"])  # by name: few teams
    table = components.team_matrix_table(ordered, [indicator])
    rows = table.children[2].children
    assert [text_of(r.children[0]) for r in rows] == ["East", "North"]
    north_cell = rows[1].children[1]
    assert north_cell.className == "matrix-cell rag-cell--red"
    assert north_cell.children.href == "/team?scope=team%3A12"
    assert text_of(north_cell) == "17 ✕ Act now"


def test_a_large_matrix_shows_the_teams_with_the_most_red_then_amber_first():
    #            reds  ambers
    # Alder        1     2
    # Birch        2     0
    # Cedar        0     3
    # Damson       2     1
    # Elm          0     0
    # Fir          2     1   (ties with Damson: by name)
    rags = {
        "Alder": ["red", "amber", "amber"],
        "Birch": ["red", "red", "green"],
        "Cedar": ["amber", "amber", "amber"],
        "Damson": ["red", "amber", "red"],
        "Elm": ["green", "green", None],
        "Fir": ["amber", "red", "red"],
    }
    ids = ["a", "b", "c"]
    matrix = pd.DataFrame(
        {
            "team_id": range(1, 7),
            "team_name": list(rags),
            **{f"{i}_rag": [rags[t][n] for t in rags] for n, i in enumerate(ids)},
        }
    )
    top = components.matrix_teams_first(matrix, ids, limit=4)
    assert top["team_name"].tolist() == ["Damson", "Fir", "Birch", "Alder"]
    everyone = components.matrix_teams_first(matrix, ids, limit=6)
    assert everyone["team_name"].tolist() == ["Alder", "Birch", "Cedar", "Damson", "Elm", "Fir"]
