"""A hand-built organisation for the access tests: tree, workers, roles and cost centres.

As of 2026-11-25::

    1 Children's Services (DIRECTORATE)
    ├── 2 Safeguarding (SERVICE)
    │   ├── 10 CP Team A          ├── 11 CP Team B
    │   └── 3 Locality North (SERVICE, nested)
    │       ├── 12 North Team 1   └── 13 North Team 2
    ├── 4 Children in Care (SERVICE)
    │   ├── 20 CLA Team           └── 21 Leaving Care Team
    └── 5 Finance (SERVICE)
        └── 30 Placements Finance

Known answers, worked out by hand (EXPECTED below):
- ateam: TEAM_MANAGER of 10                          -> team 10
- bsm: SERVICE_MANAGER on 2 (nested 3 below it), holds CC04 -> teams 10, 11, 12, 13; CC04
- chos: HEAD_OF_SERVICE on 4                          -> teams 20, 21
- ddir: DIRECTOR on 1                                 -> borough
- ebud: FINANCE_OFFICER (no access), holds CC01, CC02 -> CC01, CC02
- fmoved: TEAM_MANAGER of 11 ended 2026-06-30, of 20 since 2026-07-01 -> team 20 only
- gfuture: TEAM_MANAGER of 21 from 2026-12-01 (after as_of) -> nothing
- hleft: worker left 2026-10-31 (role still open on 13), holds CC03 -> nothing
- isw: a social worker (SW on 10)                     -> nothing
- jedge: TEAM_MANAGER of 12 ending ON as_of (ended), of 13 starting ON as_of (counts) -> team 13
- kservice: SERVICE_MANAGER on 3 (the nested node)    -> teams 12, 13
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import create_engine, insert

from dashboard.schema import (
    cost_centres,
    create_source_schema,
    organisations,
    worker_roles,
    workers,
)

AS_OF = dt.date(2026, 11, 25)
D = dt.date

ORGS = [
    # org_id, name, org_level, parent_org_id, service_area
    (1, "Children's Services", "DIRECTORATE", None, "DIRECTORATE"),
    (2, "Safeguarding", "SERVICE", 1, "CIN_CP"),
    (3, "Locality North", "SERVICE", 2, "CIN_CP"),
    (4, "Children in Care", "SERVICE", 1, "CLA"),
    (5, "Finance", "SERVICE", 1, "FINANCE"),
    (10, "CP Team A", "TEAM", 2, "CIN_CP"),
    (11, "CP Team B", "TEAM", 2, "CIN_CP"),
    (12, "North Team 1", "TEAM", 3, "CIN_CP"),
    (13, "North Team 2", "TEAM", 3, "CIN_CP"),
    (20, "CLA Team", "TEAM", 4, "CLA"),
    (21, "Leaving Care Team", "TEAM", 4, "LEAVING_CARE"),
    (30, "Placements Finance", "TEAM", 5, "FINANCE"),
]

WORKERS = [
    # worker_id, first_names, last_names, username, start_date, end_date
    (101, "Asha", "Team", "ateam", D(2018, 1, 1), None),
    (102, "Ben", "Service", "bsm", D(2015, 5, 1), None),
    (103, "Cara", "Head", "chos", D(2012, 9, 1), None),
    (104, "Dev", "Director", "ddir", D(2010, 1, 1), None),
    (105, "Ema", "Budget", "ebud", D(2019, 3, 1), None),
    (106, "Finn", "Moved", "fmoved", D(2016, 1, 1), None),
    (107, "Gita", "Future", "gfuture", D(2020, 1, 1), None),
    (108, "Hal", "Left", "hleft", D(2014, 1, 1), D(2026, 10, 31)),
    (109, "Ivy", "Worker", "isw", D(2021, 1, 1), None),
    (110, "Jo", "Edge", "jedge", D(2017, 1, 1), None),
    (111, "Kit", "North", "kservice", D(2013, 1, 1), None),
]

ROLES = [
    # worker_role_id, worker_id, org_id, role, start_date, end_date
    (1, 101, 10, "TEAM_MANAGER", D(2019, 1, 1), None),
    (2, 102, 2, "SERVICE_MANAGER", D(2016, 1, 1), None),
    (3, 103, 4, "HEAD_OF_SERVICE", D(2013, 1, 1), None),
    (4, 104, 1, "DIRECTOR", D(2011, 1, 1), None),
    (5, 105, 30, "FINANCE_OFFICER", D(2019, 3, 1), None),
    (6, 106, 11, "TEAM_MANAGER", D(2017, 1, 1), D(2026, 6, 30)),
    (7, 106, 20, "TEAM_MANAGER", D(2026, 7, 1), None),
    (8, 107, 21, "TEAM_MANAGER", D(2026, 12, 1), None),
    (9, 108, 13, "TEAM_MANAGER", D(2015, 1, 1), None),
    (10, 109, 10, "SW", D(2021, 1, 1), None),
    (11, 110, 12, "TEAM_MANAGER", D(2020, 1, 1), AS_OF),
    (12, 110, 13, "TEAM_MANAGER", AS_OF, None),
    (13, 111, 3, "SERVICE_MANAGER", D(2014, 1, 1), None),
]

COST_CENTRES = [
    # cost_centre_code, description, service_area, budget_holder_worker_id
    ("CC01", "Fostering placements", "CLA", 105),
    ("CC02", "Residential placements", "CLA", 105),
    ("CC03", "Leaving care support", "LEAVING_CARE", 108),
    ("CC04", "Safeguarding section 17", "CIN_CP", 102),
]

EXPECTED = {
    # username: (borough, team ids, cost centres)
    "ateam": (False, {10}, set()),
    "bsm": (False, {10, 11, 12, 13}, {"CC04"}),
    "chos": (False, {20, 21}, set()),
    "ddir": (True, set(), set()),
    "ebud": (False, set(), {"CC01", "CC02"}),
    "fmoved": (False, {20}, set()),
    "gfuture": (False, set(), set()),
    "hleft": (False, set(), set()),
    "isw": (False, set(), set()),
    "jedge": (False, {13}, set()),
    "kservice": (False, {12, 13}, set()),
}


def _dates(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for column in columns:
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
    return frame


def organisations_frame() -> pd.DataFrame:
    frame = pd.DataFrame(
        ORGS, columns=["org_id", "name", "org_level", "parent_org_id", "service_area"]
    )
    frame["org_id"] = frame["org_id"].astype("Int64")
    frame["parent_org_id"] = frame["parent_org_id"].astype("Int64")
    return frame


def roles_frame(roles=ROLES) -> pd.DataFrame:  # noqa: ANN001
    """Every role (the raw table joined to workers), in the user_roles dataset's columns."""
    by_id = {w[0]: w for w in WORKERS}
    rows = []
    for role_id, worker_id, org_id, role, start, end in roles:
        _, first, last, username, w_start, w_end = by_id[worker_id]
        rows.append(
            (username, worker_id, first, last, role_id, role, org_id, start, end, w_start, w_end)
        )
    frame = pd.DataFrame(
        rows,
        columns=[
            "username", "worker_id", "first_names", "last_names", "worker_role_id", "role",
            "org_id", "start_date", "end_date", "worker_start_date", "worker_end_date",
        ],
    )  # fmt: skip
    return _dates(frame, "start_date", "end_date", "worker_start_date", "worker_end_date")


def budget_holders_frame() -> pd.DataFrame:
    by_id = {w[0]: w for w in WORKERS}
    rows = []
    for code, description, area, holder in COST_CENTRES:
        _, first, last, username, w_start, w_end = by_id[holder]
        rows.append((code, description, area, holder, username, first, last, w_start, w_end))
    frame = pd.DataFrame(
        rows,
        columns=[
            "cost_centre_code", "description", "service_area", "worker_id", "username",
            "first_names", "last_names", "worker_start_date", "worker_end_date",
        ],
    )  # fmt: skip
    return _dates(frame, "worker_start_date", "worker_end_date")


def build_source(url: str) -> None:
    """Write the organisation into a fresh source database (the source schema's tables)."""
    engine = create_engine(url)
    try:
        create_source_schema(engine)
        with engine.begin() as conn:
            conn.execute(
                insert(organisations),
                [
                    dict(
                        zip(
                            ("org_id", "name", "org_level", "parent_org_id", "service_area"),
                            row,
                            strict=True,
                        )
                    )
                    for row in ORGS
                ],
            )
            conn.execute(
                insert(workers),
                [
                    {
                        "worker_id": w, "first_names": f, "last_names": last, "username": u,
                        "fte": 1.0, "start_date": s, "end_date": e,
                    }
                    for w, f, last, u, s, e in WORKERS
                ],
            )  # fmt: skip
            conn.execute(
                insert(worker_roles),
                [
                    {
                        "worker_role_id": r, "worker_id": w, "org_id": o, "role": role,
                        "primary_job": "Y", "start_date": s, "end_date": e,
                    }
                    for r, w, o, role, s, e in ROLES
                ],
            )  # fmt: skip
            conn.execute(
                insert(cost_centres),
                [
                    {"cost_centre_code": c, "description": d, "service_area": a,
                     "budget_holder_worker_id": h}
                    for c, d, a, h in COST_CENTRES
                ],
            )  # fmt: skip
    finally:
        engine.dispose()
