"""``generate_borough``: the whole demo borough, locality by locality, written in bulk.

The borough is cut into localities of about 60,000 children, each simulated and written on its
own, so memory stays flat however large the borough (the 100x benchmark writes 6 million
children's worth). Every random draw comes from one numpy ``Generator`` per part, spawned from
the seed, so a seed and an as-of date fix every row.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.engine import make_url

from dashboard.demo.calendar import WorkingCalendar, add_years, day_number, financial_year_of
from dashboard.demo.finance import (
    COST_CENTRES,
    budgets_frame,
    build_providers,
    cost_centres_frame,
)
from dashboard.demo.locality import IdCounters, build_locality
from dashboard.demo.organisation import Workforce, build_organisation
from dashboard.demo.steps import step_types_frame
from dashboard.demo.timescales import Context
from dashboard.demo.writer import open_writer

RUN_IN_YEARS = 3  # simulated before the history starts, so cases open on its first day exist


class DemoDataError(Exception):
    """The borough could not be built; the message is one line naming the cause."""


@dataclass
class DemoReport:
    url: str
    population: int
    years: int
    seed: int
    as_of: dt.date
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def __str__(self) -> str:
        lines = [
            f"Demo borough written to {self.url}: population {self.population:,}, "
            f"{self.years} years to {self.as_of.isoformat()}, seed {self.seed}.",
            f"{self.total_rows:,} rows in {self.seconds:.1f} s.",
        ]
        lines += [f"  {name:<22}{count:>12,}" for name, count in self.rows.items()]
        return "\n".join(lines)


def _check(population: int, years: int, seed: int, as_of: dt.date) -> None:
    if not isinstance(population, int) or population < 1:
        raise DemoDataError(f"population must be a whole number above zero, not {population!r}")
    if not isinstance(years, int) or not 1 <= years <= 30:
        raise DemoDataError(f"years must be a whole number from 1 to 30, not {years!r}")
    if not isinstance(seed, int) or seed < 0:
        raise DemoDataError(f"seed must be a whole number of zero or more, not {seed!r}")
    if not isinstance(as_of, dt.date) or not dt.date(1990, 1, 1) <= as_of <= dt.date(2100, 1, 1):
        raise DemoDataError(f"as-of date must be a date between 1990 and 2100, not {as_of!r}")


def generate_borough(
    url: str,
    *,
    population: int = 60_000,
    years: int = 6,
    seed: int = 42,
    as_of: dt.date | None = None,
) -> DemoReport:
    """Build the synthetic borough into ``url`` (replacing what is there) and report on it.

    On any failure the target is left as it was and ``DemoDataError`` says why in one line.
    """
    as_of = as_of or dt.date.today()
    _check(population, years, seed, as_of)
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception as exc:
        raise DemoDataError(f"not a database URL: {url!r} ({exc})") from None
    started = time.perf_counter()
    updated_on = dt.datetime.combine(as_of, dt.time())
    try:
        writer = open_writer(url, updated_on)
    except ValueError as exc:
        raise DemoDataError(str(exc)) from None
    try:
        writer.open()
        _build(writer, population, years, seed, as_of)
        writer.finish()
    except BaseException as exc:
        writer.abort()
        if isinstance(exc, Exception):
            message = " ".join(str(exc).split())[:300] or exc.__class__.__name__
            raise DemoDataError(
                f"could not build the demo borough in {shown}: {exc.__class__.__name__}: {message}"
            ) from exc
        raise
    return DemoReport(
        shown,
        population,
        years,
        seed,
        as_of,
        time.perf_counter() - started,
        dict(sorted(writer.rows.items())),
    )


def _build(writer, population: int, years: int, seed: int, as_of: dt.date) -> None:
    as_of_day = day_number(as_of)
    history_start = int(add_years(np.array([as_of_day]), -years)[0])
    sim_start = int(add_years(np.array([history_start]), -RUN_IN_YEARS)[0])
    first_year = as_of.year - years - RUN_IN_YEARS - 1
    cal = WorkingCalendar(first_year, as_of.year + 25)  # dues run on to 18th birthdays
    n_localities = max(1, round(population / 60_000))
    streams = [
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n_localities + 2)
    ]

    workforce = Workforce(streams[0])
    org = build_organisation(population, sim_start, as_of_day, workforce)
    quality = np.zeros(max(org.team_area) + 1, dtype=np.int64)
    for team, q in org.team_quality.items():
        quality[team] = q
    ctx = Context(cal, as_of_day, history_start, sim_start, quality)
    providers = build_providers(streams[1], population)
    holders = dict(org.service_manager)
    holders["LEAVING_CARE"] = org.team_manager[int(org.localities[0].teams["LEAVING_CARE"][0])]
    cc_frame = cost_centres_frame(holders)
    cc_holder = cc_frame["budget_holder_worker_id"]

    writer.write("organisations", org.frame)
    writer.write("workflow_step_types", step_types_frame())
    writer.write("providers", providers.frame)
    writer.write("cost_centres", cc_frame)

    budget_years = range(
        int(financial_year_of(np.array([history_start]))[0]),
        int(financial_year_of(np.array([as_of_day]))[0]) + 1,
    )
    spend = np.zeros((len(budget_years), len(COST_CENTRES)))
    ids = IdCounters()
    for loc in org.localities:
        frames, loc_spend = build_locality(
            streams[2 + loc.index],
            ctx,
            loc,
            org,
            providers,
            workforce,
            ids,
            cc_holder,
            budget_years,
        )
        for name, frame in frames.items():
            writer.write(name, frame)
        spend += loc_spend
        del frames
    workers, roles = workforce.take()
    writer.write("workers", workers)
    writer.write("worker_roles", roles)
    writer.write("budgets", budgets_frame(streams[1], spend, budget_years))
