"""A tiny hand-built source and dataset files, shared by the refresher and scheduler tests.

Known answers, worked out by hand from the rows below (as of 2026-03-31):
- ``teams``: the two TEAM organisations, 20 and 21.
- ``workers``: workers who started on or before the as-of date: 1 (agency, 0.5 FTE) and 2;
  worker 3 starts on 2026-04-01, after it.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

from sqlalchemy import create_engine

from dashboard.schema import create_source_schema, organisations, workers

AS_OF = dt.date(2026, 3, 31)

TEAMS_SQL = """\
-- title: Teams
-- refresh: 15m
-- scope: [team_id]
-- columns:
--   team_id: int
--   name: str
SELECT org_id AS team_id, name
FROM organisations
WHERE org_level = 'TEAM'
ORDER BY org_id
"""

WORKERS_SQL = """\
-- title: Workers in post
-- refresh: 1h
-- personal: true
-- columns:
--   worker_id: int
--   username: str
--   start_date: date
--   fte: float
--   is_agency: bool
SELECT worker_id, username, start_date, fte, is_agency
FROM workers
WHERE start_date <= :as_of
ORDER BY worker_id
"""

BAD_SQL = """\
-- title: Refers to a table that does not exist
-- refresh: 15m
-- columns:
--   n: int
SELECT count(*) AS n FROM no_such_table
"""

BAD_HEADER = """\
-- title: Has no refresh interval
-- columns:
--   n: int
SELECT 1 AS n
"""

WRONG_COLUMNS = """\
-- title: Returns a column other than the one declared
-- refresh: 15m
-- columns:
--   n: int
SELECT 1 AS m
"""


def build_source(url: str) -> None:
    """Create the source schema and the rows the known answers above come from."""
    engine = create_engine(url)
    create_source_schema(engine)
    with engine.begin() as conn:
        conn.execute(
            organisations.insert(),
            [
                {
                    "org_id": 1,
                    "name": "Children's Services",
                    "org_level": "DIRECTORATE",
                    "parent_org_id": None,
                    "service_area": None,
                },
                {
                    "org_id": 10,
                    "name": "Safeguarding",
                    "org_level": "SERVICE",
                    "parent_org_id": 1,
                    "service_area": "CIN_CP",
                },
                {
                    "org_id": 20,
                    "name": "Assessment Team 1",
                    "org_level": "TEAM",
                    "parent_org_id": 10,
                    "service_area": "ASSESSMENT",
                },
                {
                    "org_id": 21,
                    "name": "CLA Team 2",
                    "org_level": "TEAM",
                    "parent_org_id": 10,
                    "service_area": "CLA",
                },
            ],
        )
        conn.execute(
            workers.insert(),
            [
                {
                    "worker_id": 1,
                    "first_names": "Ada",
                    "last_names": "Ames",
                    "username": "aames",
                    "is_agency": "Y",
                    "fte": 0.5,
                    "start_date": dt.date(2020, 1, 6),
                },
                {
                    "worker_id": 2,
                    "first_names": "Bo",
                    "last_names": "Bell",
                    "username": "bbell",
                    "is_agency": "N",
                    "fte": 1.0,
                    "start_date": dt.date(2026, 3, 31),
                },
                {
                    "worker_id": 3,
                    "first_names": "Cy",
                    "last_names": "Cole",
                    "username": "ccole",
                    "is_agency": "N",
                    "fte": 1.0,
                    "start_date": dt.date(2026, 4, 1),
                },
            ],
        )
    engine.dispose()


def write_queries(folder: Path, **files: str) -> Path:
    """Write dataset files ``<id>.sql`` into ``folder`` (created); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for dataset_id, body in files.items():
        (folder / f"{dataset_id}.sql").write_text(textwrap.dedent(body), encoding="utf-8")
    return folder
