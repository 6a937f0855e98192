"""Server-side blocks of a list (``dashboard.web.grid_rows``) on a hand-made frame whose
answers were worked out by hand: slicing, sorting, the grid's text, number and date filters, and
requests the grid never sends."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard.web.grid_rows import BLOCK_ROWS, GridRequestError, block, parse_request

# Six steps. Worked by hand below: ids by name, days and due date.
FRAME = pd.DataFrame(
    {
        "step_id": pd.array([1, 2, 3, 4, 5, 6], dtype="Int64"),
        "child_name": pd.array(
            ["Amy Ball", "bob cole", None, "Amy Dunn", "Eve Ball", ""], dtype="string"
        ),
        "days_overdue": pd.array([10, 3, 7, None, 3, 30], dtype="Int64"),
        "due_date": pd.to_datetime(
            ["2026-11-01", "2026-11-20", "2026-11-10", None, "2026-11-20", "2026-10-01"]
        ),
    }
)


def ids(raw: dict) -> list[int]:
    rows, _total = block(FRAME, parse_request(raw))
    return [int(i) for i in rows["step_id"]]


def req(start: int = 0, end: int = 100, sort=None, filters=None) -> dict:
    return {"startRow": start, "endRow": end, "sortModel": sort or [], "filterModel": filters or {}}


def text(kind: str, value: str = "") -> dict:
    return {"filterType": "text", "type": kind, "filter": value}


# ----------------------------------------------------------------------------- slices and sorting


def test_a_block_is_its_slice_of_the_list_in_order_with_the_whole_count():
    rows, total = block(FRAME, parse_request(req(2, 4)))
    assert [int(i) for i in rows["step_id"]] == [3, 4]
    assert total == 6
    rows, total = block(FRAME, parse_request(req(4, 10)))  # past the end: what there is
    assert [int(i) for i in rows["step_id"]] == [5, 6] and total == 6


def test_sorting_is_stable_and_puts_empty_cells_last():
    desc = [{"colId": "days_overdue", "sort": "desc"}]
    assert ids(req(sort=desc)) == [6, 1, 3, 2, 5, 4]  # 2 and 5 tie at 3 days: list order
    asc = [{"colId": "days_overdue", "sort": "asc"}]
    assert ids(req(sort=asc)) == [2, 5, 3, 1, 6, 4]
    two = [{"colId": "due_date", "sort": "desc"}, {"colId": "step_id", "sort": "desc"}]
    assert ids(req(sort=two)) == [5, 2, 3, 1, 6, 4]
    by_name = [{"colId": "child_name", "sort": "asc"}]
    assert ids(req(sort=by_name)) == [6, 1, 4, 5, 2, 3]  # "" < "Amy" < "Eve" < "bob"; None last


def test_sorted_blocks_cover_every_row_once():
    desc = [{"colId": "days_overdue", "sort": "desc"}]
    pieces = [ids(req(s, s + 2, sort=desc)) for s in (0, 2, 4)]
    assert sum(pieces, []) == [6, 1, 3, 2, 5, 4]


# ----------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (text("contains", "ball"), [1, 5]),  # case does not matter
        (text("contains", "AMY"), [1, 4]),
        (text("notContains", "ball"), [2, 3, 4, 6]),  # an empty name does not contain it
        (text("equals", "BOB COLE"), [2]),
        (text("notEqual", "bob cole"), [1, 3, 4, 5, 6]),
        (text("startsWith", "amy"), [1, 4]),
        (text("endsWith", "ball"), [1, 5]),
        ({"filterType": "text", "type": "blank"}, [3, 6]),
        ({"filterType": "text", "type": "notBlank"}, [1, 2, 4, 5]),
    ],
)
def test_text_filters(condition, expected):
    assert ids(req(filters={"child_name": condition})) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"type": "equals", "filter": 3}, [2, 5]),
        ({"type": "notEqual", "filter": 3}, [1, 3, 6]),  # an empty cell is in no comparison
        ({"type": "lessThan", "filter": 7}, [2, 5]),
        ({"type": "lessThanOrEqual", "filter": 7}, [2, 3, 5]),
        ({"type": "greaterThan", "filter": 7}, [1, 6]),
        ({"type": "greaterThanOrEqual", "filter": 7}, [1, 3, 6]),
        ({"type": "inRange", "filter": 3, "filterTo": 10}, [3]),  # both ends excluded
        ({"type": "inRange", "filter": 30, "filterTo": 3}, [1, 3]),  # ends in either order
        ({"type": "blank"}, [4]),
        ({"type": "notBlank"}, [1, 2, 3, 5, 6]),
    ],
)
def test_number_filters(condition, expected):
    spec = {"filterType": "number", **condition}
    assert ids(req(filters={"days_overdue": spec})) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"type": "equals", "dateFrom": "2026-11-20 00:00:00"}, [2, 5]),
        ({"type": "lessThan", "dateFrom": "2026-11-10 00:00:00"}, [1, 6]),
        ({"type": "greaterThan", "dateFrom": "2026-11-10 00:00:00"}, [2, 5]),
        (
            {"type": "inRange", "dateFrom": "2026-10-01 00:00:00", "dateTo": "2026-11-20"},
            [1, 3],
        ),
        ({"type": "blank"}, [4]),
    ],
)
def test_date_filters(condition, expected):
    spec = {"filterType": "date", **condition}
    assert ids(req(filters={"due_date": spec})) == expected


def test_dates_held_as_text_filter_like_dates():
    frame = FRAME.assign(due_date=FRAME["due_date"].dt.strftime("%Y-%m-%d"))
    spec = {"filterType": "date", "type": "equals", "dateFrom": "2026-11-20 00:00:00"}
    rows, total = block(frame, parse_request(req(filters={"due_date": spec})))
    assert list(rows["step_id"]) == [2, 5] and total == 2


def test_two_conditions_and_two_columns():
    either = {
        "filterType": "text",
        "operator": "OR",
        "conditions": [text("startsWith", "bob"), text("endsWith", "dunn")],
    }
    assert ids(req(filters={"child_name": either})) == [2, 4]
    both = {
        "filterType": "number",
        "operator": "AND",
        "conditions": [
            {"filterType": "number", "type": "greaterThan", "filter": 3},
            {"filterType": "number", "type": "lessThan", "filter": 30},
        ],
    }
    assert ids(req(filters={"days_overdue": both})) == [1, 3]
    # Filter, then sort, then slice; the count is of the filtered rows.
    request = req(
        0,
        1,
        sort=[{"colId": "days_overdue", "sort": "asc"}],
        filters={"days_overdue": both, "child_name": text("contains", "amy")},
    )
    rows, total = block(FRAME, parse_request(request))
    assert list(rows["step_id"]) == [1] and total == 1


# ----------------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        "x",
        {},
        {"startRow": 0},
        {"startRow": "0", "endRow": "100"},
        {"startRow": 5, "endRow": 5},
        {"startRow": -1, "endRow": 10},
        {"startRow": True, "endRow": 10},
        {"startRow": 0, "endRow": BLOCK_ROWS + 1},  # more than a block: never the whole list
        {"startRow": 0, "endRow": 10**12},
        req(sort="days_overdue"),
        req(sort=[{"colId": "days_overdue", "sort": "up"}]),
        req(sort=[{"sort": "asc"}]),
        {"startRow": 0, "endRow": 10, "filterModel": []},
        req(filters={"child_name": "amy"}),
        req(filters={"child_name": {"filterType": "set", "values": ["Amy Ball"]}}),
        req(filters={"child_name": text("matches", "a.*")}),
        req(filters={"child_name": {"filterType": "text", "type": "contains"}}),
        req(filters={"child_name": text("contains", "x" * 201)}),
        req(filters={"days_overdue": {"filterType": "number", "type": "equals", "filter": "3"}}),
        req(filters={"days_overdue": {"filterType": "number", "type": "inRange", "filter": 3}}),
        req(filters={"due_date": {"filterType": "date", "type": "equals", "dateFrom": "soon"}}),
        req(
            filters={
                "child_name": {
                    "filterType": "text",
                    "operator": "XOR",
                    "conditions": [text("contains", "a"), text("contains", "b")],
                }
            }
        ),
        req(
            filters={
                "child_name": {
                    "filterType": "text",
                    "operator": "OR",
                    "conditions": [text("contains", c) for c in "abc"],
                }
            }
        ),
    ],
)
def test_requests_the_grid_never_sends_are_refused(raw):
    with pytest.raises(GridRequestError):
        parse_request(raw)


@pytest.mark.parametrize(
    "raw",
    [
        req(sort=[{"colId": "secret", "sort": "asc"}]),
        req(filters={"secret": text("contains", "a")}),
    ],
)
def test_a_column_the_list_does_not_have_is_refused(raw):
    with pytest.raises(GridRequestError, match="no column"):
        block(FRAME, parse_request(raw))


def test_an_empty_list_has_empty_blocks():
    rows, total = block(FRAME.head(0), parse_request(req(filters={"child_name": text("blank")})))
    assert rows.empty and total == 0
