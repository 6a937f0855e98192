"""Providers, cost centres, care packages, service elements, payments and budgets.

Every placement with a provider is priced as a PLACEMENT element at CALIBRATION.md's weekly unit
costs (log-normal, with a long tail of solo children's-home placements); support, education,
therapy, transport and allowances add roughly 10-20% on top. In-house carers are paid weekly,
agencies and homes invoice four-weekly and are paid two to six weeks later, so paid lags incurred.
Budgets are set last, from what was spent, at about 0.87 of it overall so the borough forecasts an
overspend of roughly 15%, some cost centres under budget and some far over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dashboard.demo import care as care_kinds
from dashboard.demo.calendar import NULL, financial_year_of, fy_start_day
from dashboard.demo.timescales import Context

# provider type -> (providers at the default borough, PR codes, weekly cost median, low, high)
PROVIDER_TYPES: dict[str, tuple[int, tuple[str, ...], float, float, float]] = {
    "IN_HOUSE_FOSTERING": (60, ("PR0",), 450, 250, 800),
    "KINSHIP": (40, ("PR0",), 300, 170, 500),
    "IFA": (15, ("PR3", "PR4"), 900, 700, 1400),
    "CHILDRENS_HOME": (25, ("PR3", "PR3", "PR4", "PR1"), 6100, 4000, 12000),
    "SUPPORTED_ACCOMMODATION": (12, ("PR3", "PR4"), 1200, 600, 3000),
    "SECURE": (4, ("PR1", "PR2"), 8000, 7000, 10000),
    "RESIDENTIAL_SCHOOL": (8, ("PR3", "PR4"), 4000, 2500, 6000),
    "PARENT_AND_CHILD": (5, ("PR3", "PR4"), 2500, 1500, 4000),
    "OTHER": (20, ("PR2", "PR3", "PR4", "PR5"), 600, 200, 1500),
}
PROVIDER_NAMES = {
    "IN_HOUSE_FOSTERING": "Foster carers (in-house) household",
    "KINSHIP": "Connected persons carers",
    "IFA": "Independent fostering agency",
    "CHILDRENS_HOME": "Children's home",
    "SUPPORTED_ACCOMMODATION": "Supported accommodation",
    "SECURE": "Secure children's home",
    "RESIDENTIAL_SCHOOL": "Residential school",
    "PARENT_AND_CHILD": "Parent and child unit",
    "OTHER": "Support services",
}
KIND_PROVIDER_TYPE = [k[1] for k in care_kinds.PLACEMENT_KINDS]

# code, description, service area, budget holder's area, budget as a share of spend
COST_CENTRES: tuple[tuple[str, str, str, str, float], ...] = (
    ("FOST-INH", "In-house fostering", "CLA", "CLA", 1.08),
    ("FOST-KIN", "Kinship and connected-persons care", "CLA", "CLA", 1.05),
    ("FOST-IFA", "Independent fostering agencies", "CLA", "CLA", 0.90),
    ("RES-CH", "Residential children's homes", "CLA", "CLA", 0.76),
    ("RES-SEC", "Secure placements", "CLA", "CLA", 0.55),
    ("RES-SCH", "Residential schools", "CLA", "CLA", 0.92),
    ("PAR-CHILD", "Parent and child placements", "CLA", "CLA", 0.95),
    ("PLC-OTHER", "Other placements", "CLA", "CLA", 1.00),
    ("SUPP-ACC", "Supported accommodation 16+", "LEAVING_CARE", "LEAVING_CARE", 0.93),
    ("LEAV-CARE", "Leaving care allowances", "LEAVING_CARE", "LEAVING_CARE", 1.12),
    ("UASC", "Unaccompanied asylum-seeking children", "CLA", "CLA", 1.02),
    ("DISAB", "Children with disabilities", "DISABILITY", "DISABILITY", 0.90),
    ("CIN-SUPP", "Child in need support", "CIN_CP", "CIN_CP", 1.18),
    ("CLA-SUPP", "Looked-after children support", "CLA", "CLA", 0.97),
)
CC_CODES = np.array([c[0] for c in COST_CENTRES], dtype=object)
CC_INDEX = {c[0]: i for i, c in enumerate(COST_CENTRES)}
KIND_CC = np.array(
    [
        CC_INDEX[c]
        for c in (
            "FOST-INH",
            "FOST-KIN",
            "FOST-IFA",
            "RES-CH",
            "SUPP-ACC",
            "RES-SEC",
            "RES-SCH",
            "PAR-CHILD",
            "PLC-OTHER",
            "PLC-OTHER",
            "PLC-OTHER",
        )
    ]
)
WEEKLY_PAID = {"IN_HOUSE_FOSTERING", "KINSHIP"}
BUDGET_SHARE_OF_SPEND = 0.87


@dataclass
class Providers:
    frame: dict[str, np.ndarray]
    by_type: dict[str, np.ndarray]  # provider type -> provider ids
    type_of: np.ndarray  # provider id -> type name


def build_providers(rng: np.random.Generator, population: int) -> Providers:
    scale = max(population / 60_000, 0.1)
    ids, names_, types, codes, urns = [], [], [], [], []
    by_type: dict[str, np.ndarray] = {}
    for ptype, (count, prs, *_costs) in PROVIDER_TYPES.items():
        n = max(2, round(count * scale**0.5))
        first = len(ids) + 1
        for i in range(n):
            ids.append(first + i)
            names_.append(f"{PROVIDER_NAMES[ptype]} {i + 1}")
            types.append(ptype)
            codes.append(prs[int(rng.integers(len(prs)))])
            urns.append(
                None
                if ptype in ("IN_HOUSE_FOSTERING", "KINSHIP", "OTHER")
                else f"SC{int(rng.integers(100000, 999999))}"
            )
        by_type[ptype] = np.arange(first, first + n)
    frame = {
        "provider_id": np.array(ids, dtype=np.int64),
        "name": np.array(names_, dtype=object),
        "provider_type": np.array(types, dtype=object),
        "pr_code": np.array(codes, dtype=object),
        "ofsted_urn": np.array(urns, dtype=object),
    }
    return Providers(frame, by_type, np.array([""] + types, dtype=object))


def cost_centres_frame(holders: dict[str, int]) -> dict[str, np.ndarray]:
    return {
        "cost_centre_code": CC_CODES.copy(),
        "description": np.array([c[1] for c in COST_CENTRES], dtype=object),
        "service_area": np.array([c[2] for c in COST_CENTRES], dtype=object),
        "budget_holder_worker_id": np.array([holders[c[3]] for c in COST_CENTRES], dtype=np.int64),
    }


def _weekly_cost(rng: np.random.Generator, ptype: np.ndarray) -> np.ndarray:
    cost = np.zeros(len(ptype))
    for name, (_n, _pr, median, low, high) in PROVIDER_TYPES.items():
        sel = ptype == name
        k = int(sel.sum())
        sigma = np.log(high / low) / 4
        cost[sel] = np.clip(rng.lognormal(np.log(median), sigma, k), low, high)
    # A few solo placements in children's homes cost £10,000-£15,000 a week.
    solo = (ptype == "CHILDRENS_HOME") & (rng.random(len(ptype)) < 0.06)
    cost[solo] = rng.uniform(10_000, 15_000, int(solo.sum()))
    return np.round(cost, 2)


def _pick_provider(rng: np.random.Generator, providers: Providers, ptype: np.ndarray) -> np.ndarray:
    out = np.full(len(ptype), NULL)
    for name, ids in providers.by_type.items():
        sel = ptype == name
        # A few big providers take most placements.
        weights = 1.0 / np.arange(1, len(ids) + 1) ** 0.8
        out[sel] = ids[rng.choice(len(ids), size=int(sel.sum()), p=weights / weights.sum())]
    return out


@dataclass
class ElementParts:
    """Service elements gathered column-wise before statuses are set."""

    cols: dict[str, list[np.ndarray]] = field(default_factory=lambda: {k: [] for k in _EL})

    def add(self, **values: np.ndarray) -> None:
        n = len(values["package"])
        for key in _EL:
            v = values.get(key)
            if v is None:
                v = np.full(n, NULL)
            self.cols[key].append(np.asarray(v))

    def frame(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) if v else np.zeros(0) for k, v in self.cols.items()}


_EL = (
    "package",
    "person",
    "placement",
    "provider",
    "element_type",
    "cc",
    "weekly_cost",
    "start",
    "end",
    "planned_end",
    "adult",
    "weekly_paid",
)


@dataclass
class FinanceRecords:
    packages: dict[str, np.ndarray]
    elements: dict[str, np.ndarray]
    payments: dict[str, np.ndarray]


def simulate_finance(
    rng: np.random.Generator,
    ctx: Context,
    providers: Providers,
    care: dict[str, np.ndarray],
    periods_end: np.ndarray,
    placements: dict[str, np.ndarray],
    cin_support: dict[str, np.ndarray],
    cc_holder: np.ndarray,
) -> FinanceRecords:
    as_of = ctx.as_of
    parts = ElementParts()
    n_periods = len(care["start"])
    period_end = np.where(periods_end == NULL, care["end"], periods_end)

    # Placement elements: one per placement with a paid provider.
    kind = placements["kind"]
    ptype = np.array(
        [KIND_PROVIDER_TYPE[k] or "" for k in range(len(KIND_PROVIDER_TYPE))], dtype=object
    )[kind]
    priced = ~np.isin(kind, [care_kinds.PARENTS, care_kinds.ADOPTION])
    provider = _pick_provider(rng, providers, np.where(priced, ptype, ""))
    placements["provider_id"] = np.where(priced, provider, NULL)
    cc = KIND_CC[kind]
    cc = np.where(placements["uasc"], CC_INDEX["UASC"], cc)
    cc = np.where(
        placements["disabled"] & np.isin(kind, [care_kinds.HOME, care_kinds.SCHOOL]),
        CC_INDEX["DISAB"],
        cc,
    )
    p = np.flatnonzero(priced)
    pl_end = placements["end_date"][p]
    parts.add(
        package=placements["period"][p],
        person=placements["person"][p],
        placement=p,
        provider=provider[p],
        element_type=np.full(len(p), "PLACEMENT", dtype=object),
        cc=cc[p],
        weekly_cost=_weekly_cost(rng, ptype[p]),
        start=placements["start_date"][p],
        end=pl_end,
        adult=placements["adult"][p],
        weekly_paid=np.isin(ptype[p], list(WEEKLY_PAID)),
    )
    # One-to-one support for a quarter of children's-home placements.
    h = p[(kind[p] == care_kinds.HOME) & (rng.random(len(p)) < 0.25)]
    parts.add(
        package=placements["period"][h],
        person=placements["person"][h],
        provider=_pick_provider(rng, providers, np.full(len(h), "OTHER", dtype=object)),
        element_type=np.full(len(h), "SUPPORT", dtype=object),
        cc=np.full(len(h), CC_INDEX["CLA-SUPP"]),
        weekly_cost=np.round(rng.uniform(800, 3000, len(h)), 2),
        start=placements["start_date"][h],
        end=placements["end_date"][h],
        adult=placements["adult"][h],
        weekly_paid=np.zeros(len(h), dtype=bool),
    )
    # Education, therapy, transport and support for some children in care.
    for etype, share, low, high in (
        ("EDUCATION", 0.12, 150, 1200),
        ("THERAPY", 0.15, 80, 450),
        ("TRANSPORT", 0.18, 40, 300),
        ("SUPPORT", 0.10, 150, 800),
    ):
        k = np.flatnonzero(rng.random(n_periods) < share)
        start = care["start"][k] + rng.integers(0, 90, len(k))
        end = start + rng.integers(60, 500, len(k))
        keep = (start < period_end[k]) & (start <= as_of)  # future support is not yet booked
        k, start, end = k[keep], start[keep], np.minimum(end[keep], period_end[k[keep]])
        parts.add(
            package=k,
            person=care["child"][k],
            provider=_pick_provider(rng, providers, np.full(len(k), "OTHER", dtype=object)),
            element_type=np.full(len(k), etype, dtype=object),
            cc=np.full(len(k), CC_INDEX["CLA-SUPP"]),
            weekly_cost=np.round(rng.uniform(low, high, len(k)), 2),
            start=start,
            end=np.where(end > as_of, NULL, end),
            adult=care["adult"][k],
            weekly_paid=np.zeros(len(k), dtype=bool),
        )
    # Proposed therapy for a few children still in care, starting in the coming weeks.
    k = np.flatnonzero((period_end > as_of) & (rng.random(n_periods) < 0.03))
    start = as_of + rng.integers(7, 60, len(k))
    parts.add(
        package=k,
        person=care["child"][k],
        provider=_pick_provider(rng, providers, np.full(len(k), "OTHER", dtype=object)),
        element_type=np.full(len(k), "THERAPY", dtype=object),
        cc=np.full(len(k), CC_INDEX["CLA-SUPP"]),
        weekly_cost=np.round(rng.uniform(80, 450, len(k)), 2),
        start=start,
        end=np.full(len(k), NULL),
        adult=care["adult"][k],
        weekly_paid=np.zeros(len(k), dtype=bool),
    )
    # Allowances from 16.
    sixteen = care["adult"] - 2 * 365
    from_16 = np.maximum(care["start"], sixteen)
    k = np.flatnonzero((from_16 < period_end) & (from_16 <= as_of) & (rng.random(n_periods) < 0.7))
    start = np.maximum(care["start"][k], sixteen[k])
    parts.add(
        package=k,
        person=care["child"][k],
        provider=None,
        element_type=np.full(len(k), "ALLOWANCE", dtype=object),
        cc=np.where(care["uasc"][k], CC_INDEX["UASC"], CC_INDEX["LEAV-CARE"]),
        weekly_cost=np.round(rng.uniform(60, 120, len(k)), 2),
        start=start,
        end=np.where(period_end[k] > as_of, NULL, period_end[k]),
        adult=care["adult"][k],
        weekly_paid=np.ones(len(k), dtype=bool),
    )
    # Child-in-need support packages (short breaks for disabled children).
    cs = cin_support
    share = np.where(cs["disabled"], 0.35, 0.06)
    k = np.flatnonzero(rng.random(len(cs["start"])) < share)
    start = cs["start"][k] + rng.integers(5, 60, len(k))
    end = np.minimum(start + rng.integers(56, 280, len(k)), cs["end"][k])
    keep = (start < end) & (start <= as_of)
    k, start, end = k[keep], start[keep], end[keep]
    disabled = cs["disabled"][k]
    parts.add(
        package=n_periods + np.arange(len(k)),
        person=cs["child"][k],
        provider=_pick_provider(rng, providers, np.full(len(k), "OTHER", dtype=object)),
        element_type=np.full(len(k), "SUPPORT", dtype=object),
        cc=np.where(disabled, CC_INDEX["DISAB"], CC_INDEX["CIN-SUPP"]),
        weekly_cost=np.round(
            np.where(disabled, rng.uniform(150, 900, len(k)), rng.uniform(100, 600, len(k))), 2
        ),
        start=start,
        end=np.where(end > as_of, NULL, end),
        adult=np.full(len(k), NULL),
        weekly_paid=np.zeros(len(k), dtype=bool),
    )
    package_person = np.concatenate([care["child"], cs["child"][k]])
    package_step = np.concatenate([care["step"], cs["step"][k]])

    el = parts.frame()
    el = _statuses(rng, ctx, el, cc_holder)
    packages = _packages(el, package_person, package_step, as_of)
    payments = _payments(rng, ctx, el)
    return FinanceRecords(packages, el, payments)


def _statuses(
    rng: np.random.Generator, ctx: Context, el: dict[str, np.ndarray], cc_holder: np.ndarray
) -> dict[str, np.ndarray]:
    as_of = ctx.as_of
    n = len(el["start"])
    start, end = el["start"].astype(np.int64), el["end"].astype(np.int64)
    running = end == NULL
    status = np.where(running, "AUTHORISED", "ENDED").astype(object)
    recent = running & (start > as_of - 21) & (rng.random(n) < 0.35)
    status[recent] = "AWAITING_AUTHORISATION"
    proposed = start > as_of
    status[proposed] = "PROPOSED"
    cancel = ~running & (el["element_type"] != "PLACEMENT") & (rng.random(n) < 0.01)
    status[cancel] = "CANCELLED"
    # Planned ends: at 18 where that is known, else some soon, some later, many open-ended.
    r = rng.random(n)
    planned = np.where(
        r < 0.1,
        as_of + rng.integers(1, 29, n),
        np.where(r < 0.5, as_of + rng.integers(29, 400, n), NULL),
    )
    adult = el["adult"].astype(np.int64)
    planned = np.where((adult != NULL) & (adult > as_of) & (r >= 0.1), adult, planned)
    planned = np.where(running, planned, np.where(rng.random(n) < 0.7, end, NULL))
    planned = np.where((planned != NULL) & (planned < start), start, planned)
    requested = np.minimum(start - rng.integers(0, 10, n), as_of)
    authorised = np.minimum(requested + rng.integers(0, 8, n), as_of)
    awaiting = np.isin(status, ["AWAITING_AUTHORISATION", "PROPOSED"])
    requested = np.where(proposed, NULL, requested)
    cc = el["cc"].astype(np.int64)
    holder = cc_holder[cc]
    el.update(
        status=status,
        planned_end=planned,
        requested=requested,
        authorised=np.where(awaiting, NULL, authorised),
        authorised_by=np.where(awaiting, NULL, holder),
        true_cc=cc,
        cc=cc,
        start=start,
        end=end,
    )
    return el


def _packages(
    el: dict[str, np.ndarray], person: np.ndarray, step: np.ndarray, as_of: int
) -> dict[str, np.ndarray]:
    n = len(person)
    pkg = el["package"].astype(np.int64)
    start = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(start, pkg, el["start"])
    end = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(end, pkg, np.where(el["end"] == NULL, np.iinfo(np.int64).max, el["end"]))
    live = np.zeros(n, dtype=bool)
    np.logical_or.at(live, pkg, el["status"] != "CANCELLED")
    has = np.zeros(n, dtype=bool)
    has[pkg] = True
    open_ = end == np.iinfo(np.int64).max
    status = np.where(~live, "CANCELLED", np.where(open_, "ACTIVE", "ENDED")).astype(object)
    return {
        "has_elements": has,
        "person": person,
        "step": step,
        "start_date": np.where(has, start, NULL),
        "end_date": np.where(open_ | ~has, NULL, end),
        "status": status,
    }


def _payments(
    rng: np.random.Generator, ctx: Context, el: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Payments per invoicing period; none for periods before the history's first financial year."""
    as_of = ctx.as_of
    pay_from = fy_start_day(int(financial_year_of(np.array([ctx.history_start]))[0]))
    paid = np.isin(el["status"], ["AUTHORISED", "ENDED"])
    idx = np.flatnonzero(paid)
    weekly = el["weekly_paid"][idx].astype(bool)
    interval = np.where(weekly, 7, 28)
    start = el["start"][idx]
    stop = np.where(el["end"][idx] == NULL, as_of, np.minimum(el["end"][idx], as_of))
    # Periods are aligned to the element's start; skip whole periods before pay_from.
    skip = np.maximum(0, (pay_from - start) // interval)
    first = start + skip * interval
    count = np.where(stop >= first, (stop - first) // interval + 1, 0)
    owner = np.repeat(np.arange(len(idx)), count)
    k = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    p_start = first[owner] + k * interval[owner]
    p_end = np.minimum(p_start + interval[owner] - 1, stop[owner])
    complete = (p_end < p_start + interval[owner] - 1) & (el["end"][idx][owner] != NULL)
    keep = (p_end + 1 - p_start == interval[owner]) | complete
    keep &= p_end < as_of
    owner, p_start, p_end = owner[keep], p_start[keep], p_end[keep]
    m = len(owner)
    lag = np.where(weekly[owner], rng.integers(1, 6, m), rng.integers(14, 43, m))
    paid_on = p_end + lag
    element = idx[owner]
    amount = np.round(el["weekly_cost"][element] / 7 * (p_end - p_start + 1), 2)
    status = np.where(paid_on <= as_of, "PAID", "CERTIFIED").astype(object)
    invoiced = (paid_on <= as_of) | (p_end + 7 <= as_of)
    rejected = rng.random(m) < 0.003
    status[rejected] = "REJECTED"
    keep = invoiced
    return {
        "element": element[keep],
        "cc": el["true_cc"][element][keep],
        "period_start": p_start[keep],
        "period_end": p_end[keep],
        "amount": amount[keep],
        "status": status[keep],
        "paid_on": np.where(status[keep] == "PAID", paid_on[keep], NULL),
    }


def fy_spend(el: dict[str, np.ndarray], as_of: int, years: range) -> np.ndarray:
    """Spend per (financial year, cost centre) by INDICATORS.md's rules: incurred for past years,
    forecast outturn (incurred to date plus committed) for the current one."""
    out = np.zeros((len(years), len(COST_CENTRES)))
    cc = el["cc"].astype(np.int64)
    has_cc = cc != NULL
    rate = el["weekly_cost"].astype(float) / 7
    start, end, planned = el["start"], el["end"], el["planned_end"]
    status = el["status"]
    counted = np.isin(status, ["AUTHORISED", "ENDED"]) & has_cc
    current = int(financial_year_of(np.array([as_of]))[0])
    for row, year in enumerate(years):
        fy_start, fy_end = fy_start_day(year), fy_start_day(year + 1) - 1
        s = np.maximum(start, fy_start)
        t = np.where(end != NULL, end, np.where(planned != NULL, planned, fy_end))
        t = np.minimum(t, fy_end)
        if year < current:
            days = np.clip(np.minimum(t, as_of) - s + 1, 0, None)
            total = rate * days * counted
        else:
            accrued = np.clip(np.minimum(as_of, t) - s + 1, 0, None) * counted
            committed = np.clip(t - np.maximum(as_of + 1, s) + 1, 0, None) * (
                (status == "AUTHORISED") & has_cc & (t > as_of)
            )
            total = rate * (accrued + committed)
        out[row] = np.bincount(cc[has_cc], weights=total[has_cc], minlength=len(COST_CENTRES))
    return out


def budgets_frame(
    rng: np.random.Generator, spend: np.ndarray, years: range
) -> dict[str, np.ndarray]:
    """Budgets per cost centre and year: a share of spend that differs by cost centre, scaled so
    the whole borough's budget is 0.87 of its spend (or forecast) in every year."""
    share = np.array([c[4] for c in COST_CENTRES])
    rows_cc, rows_year, original, revised = [], [], [], []
    for row, year in enumerate(years):
        wanted = spend[row] * share * rng.uniform(0.97, 1.03, len(share))
        total = spend[row].sum()
        if wanted.sum() > 0:
            wanted *= BUDGET_SHARE_OF_SPEND * total / wanted.sum()
        # A cost centre with nothing spent still gets a small budget line.
        wanted = np.where(wanted <= 0, 10_000.0, wanted)
        rev = np.round(wanted, -2)
        orig = np.round(rev * rng.uniform(0.92, 1.0, len(share)), -2)
        rows_cc.extend(CC_CODES)
        rows_year.extend([year] * len(share))
        original.extend(orig)
        revised.extend(rev)
    return {
        "cost_centre_code": np.array(rows_cc, dtype=object),
        "financial_year": np.array(rows_year, dtype=np.int64),
        "original_budget": np.array(original),
        "revised_budget": np.array(revised),
    }
