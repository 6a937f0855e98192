"""The organisation tree (directorate, services, teams) and the workforce that fills it.

The tree and senior staff are built once for the borough. Case-holding workers are built per
locality after its casework is simulated, so each team gets the staff its open cases need: about
17 children per full-time equivalent (CALIBRATION.md), a few workers well over 25.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dashboard.demo import names
from dashboard.demo.calendar import NULL

# Case-holding areas, teams per area at the default borough, and the service that holds them.
TEAM_AREAS: dict[str, tuple[int, str]] = {
    "FRONT_DOOR": (1, "Front Door"),
    "ASSESSMENT": (3, "Assessment"),
    "CIN_CP": (4, "Safeguarding"),
    "CLA": (2, "Children in Care"),
    "LEAVING_CARE": (1, "Children in Care"),
    "DISABILITY": (1, "Children with Disabilities"),
}
SERVICES: tuple[tuple[str, str], ...] = (
    ("Front Door", "FRONT_DOOR"),
    ("Assessment", "ASSESSMENT"),
    ("Safeguarding", "CIN_CP"),
    ("Children in Care", "CLA"),
    ("Children with Disabilities", "DISABILITY"),
    ("Finance and Resources", "FINANCE"),
)
TEAM_NAMES = {
    "FRONT_DOOR": "Front Door (MASH)",
    "ASSESSMENT": "Assessment Team",
    "CIN_CP": "Child in Need and Protection Team",
    "CLA": "Children in Care Team",
    "LEAVING_CARE": "Leaving Care Team",
    "DISABILITY": "Disabled Children's Team",
}
STRONG, MID, WEAK = 0, 1, 2
# The first teams of an area are one strong and one weak performer, so every timeliness measure
# has a green team and a red team to show; the rest sit in between.
QUALITY_CYCLE = (STRONG, WEAK, MID, MID, STRONG, WEAK, MID)
CASELOAD_PER_FTE = 16.8
CASE_HOLDING_ROLES = ("SW", "SENIOR_PRACTITIONER", "ASYE")


@dataclass
class Locality:
    """A slice of the borough with its own set of case-holding teams."""

    index: int
    population: int
    teams: dict[str, np.ndarray]  # area -> org ids


@dataclass
class Workforce:
    """Workers and roles, appended to as they are created; usernames unique across the borough."""

    rng: np.random.Generator
    next_id: int = 1
    next_role_id: int = 1
    usernames: dict[str, int] = field(default_factory=dict)
    rows: dict[str, list] = field(default_factory=lambda: {k: [] for k in _WORKER_COLS})
    roles: dict[str, list] = field(default_factory=lambda: {k: [] for k in _ROLE_COLS})

    def hire(
        self,
        *,
        org_id: int,
        role: str,
        start: int,
        end: int = int(NULL),
        agency: bool = False,
        fte: float = 1.0,
    ) -> int:
        gender_f = self.rng.random() < 0.75  # the social work workforce is mostly women
        pool = names.FIRST_NAMES_F if gender_f else names.FIRST_NAMES_M
        first = pool[int(self.rng.integers(len(pool)))]
        last = names.SURNAMES[int(self.rng.integers(len(names.SURNAMES)))]
        base = (first[0] + last).lower()
        count = self.usernames.get(base, 0) + 1
        self.usernames[base] = count
        worker_id = self.next_id
        self.next_id += 1
        for key, value in zip(
            _WORKER_COLS,
            (
                worker_id,
                first,
                last,
                base if count == 1 else f"{base}{count}",
                "Y" if agency else "N",
                fte,
                start,
                end,
            ),
            strict=True,
        ):
            self.rows[key].append(value)
        for key, value in zip(
            _ROLE_COLS,
            (self.next_role_id, worker_id, org_id, role, "Y", start, end),
            strict=True,
        ):
            self.roles[key].append(value)
        self.next_role_id += 1
        return worker_id

    def take(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The rows made since the last call, as columns; the lists start again empty."""
        workers = _columns(self.rows, _WORKER_COLS)
        roles = _columns(self.roles, _ROLE_COLS)
        self.rows = {k: [] for k in _WORKER_COLS}
        self.roles = {k: [] for k in _ROLE_COLS}
        return workers, roles


_WORKER_COLS = (
    "worker_id",
    "first_names",
    "last_names",
    "username",
    "is_agency",
    "fte",
    "start_date",
    "end_date",
)
_ROLE_COLS = (
    "worker_role_id",
    "worker_id",
    "org_id",
    "role",
    "primary_job",
    "start_date",
    "end_date",
)


def _columns(rows: dict[str, list], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    out = {}
    for key in keys:
        values = rows[key]
        if key in ("first_names", "last_names", "username", "is_agency", "role", "primary_job"):
            out[key] = np.array(values, dtype=object)
        elif key == "fte":
            out[key] = np.array(values, dtype=np.float64)
        else:
            out[key] = np.array(values, dtype=np.int64)
    return out


@dataclass
class Organisation:
    frame: dict[str, np.ndarray]
    localities: list[Locality]
    team_area: dict[int, str]
    team_quality: dict[int, int]
    team_manager: dict[int, int]
    service_manager: dict[str, int]  # service area -> worker id
    head_of_service: int
    director: int
    finance_team: int


def build_organisation(
    population: int, sim_start: int, as_of: int, workforce: Workforce
) -> Organisation:
    """The tree, its localities, and the senior staff, team managers and finance officers."""
    rng = workforce.rng
    n_localities = max(1, round(population / 60_000))
    scale = population / 60_000
    rows: dict[str, list] = {
        k: [] for k in ("org_id", "name", "org_level", "parent_org_id", "service_area")
    }

    def add(name: str, level: str, parent: int, area: str | None) -> int:
        org_id = len(rows["org_id"]) + 1
        for key, value in zip(rows, (org_id, name, level, parent, area), strict=True):
            rows[key].append(value)
        return org_id

    directorate = add("Children's Services", "DIRECTORATE", int(NULL), "DIRECTORATE")
    service_of = {area: add(name, "SERVICE", directorate, area) for name, area in SERVICES}
    service_for_area = {
        "FRONT_DOOR": "FRONT_DOOR",
        "ASSESSMENT": "ASSESSMENT",
        "CIN_CP": "CIN_CP",
        "CLA": "CLA",
        "LEAVING_CARE": "CLA",
        "DISABILITY": "DISABILITY",
    }
    localities: list[Locality] = []
    team_area: dict[int, str] = {}
    team_quality: dict[int, int] = {}
    base_pop = population // n_localities
    for loc in range(n_localities):
        teams = {}
        for area, (base_count, _service) in TEAM_AREAS.items():
            count = (
                base_count if n_localities > 1 or scale >= 1 else max(1, round(base_count * scale))
            )
            ids = []
            for i in range(count):
                label = TEAM_NAMES[area] + (f" {i + 1}" if count > 1 else "")
                if n_localities > 1:
                    label = f"Locality {loc + 1} {label}"
                org_id = add(label, "TEAM", service_of[service_for_area[area]], area)
                team_area[org_id] = area
                team_quality[org_id] = QUALITY_CYCLE[i % len(QUALITY_CYCLE)] if count > 1 else MID
                ids.append(org_id)
            teams[area] = np.array(ids, dtype=np.int64)
        pop = base_pop + (population - base_pop * n_localities if loc == n_localities - 1 else 0)
        localities.append(Locality(loc, pop, teams))
    finance_team = add("Placements Finance Team", "TEAM", service_of["FINANCE"], "FINANCE")
    team_area[finance_team] = "FINANCE"

    def long_served() -> int:
        return int(sim_start - rng.integers(200, 3000))

    director = workforce.hire(org_id=directorate, role="DIRECTOR", start=long_served())
    head = workforce.hire(org_id=directorate, role="HEAD_OF_SERVICE", start=long_served())
    service_manager = {
        area: workforce.hire(org_id=org, role="SERVICE_MANAGER", start=long_served())
        for area, org in service_of.items()
    }
    team_manager = {
        team: workforce.hire(org_id=team, role="TEAM_MANAGER", start=long_served())
        for team in team_area
    }
    for _ in range(max(2, round(3 * scale))):
        workforce.hire(
            org_id=finance_team,
            role="FINANCE_OFFICER",
            start=long_served(),
            fte=float(rng.choice([1.0, 1.0, 0.6])),
        )
    frame = {
        "org_id": np.array(rows["org_id"], dtype=np.int64),
        "name": np.array(rows["name"], dtype=object),
        "org_level": np.array(rows["org_level"], dtype=object),
        "parent_org_id": np.array(rows["parent_org_id"], dtype=np.int64),
        "service_area": np.array(rows["service_area"], dtype=object),
    }
    return Organisation(
        frame,
        localities,
        team_area,
        team_quality,
        team_manager,
        service_manager,
        head,
        director,
        finance_team,
    )


@dataclass
class TeamSlots:
    """Case-holding posts of one locality: the current holder and, where the post changed hands
    during the history, the predecessor who held it until ``change``."""

    team: np.ndarray
    worker: np.ndarray
    predecessor: np.ndarray  # NULL where none
    change: np.ndarray  # day the current holder started
    weight: np.ndarray  # share of the team's new cases (fte times a personal load factor)


def staff_locality(
    open_per_team: dict[int, int],
    workforce: Workforce,
    sim_start: int,
    as_of: int,
) -> TeamSlots:
    """Hire case-holding staff for each team in proportion to its open cases at as_of."""
    rng = workforce.rng
    team, worker, predecessor, change, weight = [], [], [], [], []
    for team_id in sorted(open_per_team):
        need_fte = max(2.0, open_per_team[team_id] / CASELOAD_PER_FTE)
        fte_total = 0.0
        while fte_total < need_fte - 0.3:
            fte = 1.0 if rng.random() < 0.78 else float(rng.choice([0.5, 0.6, 0.8, 0.9]))
            agency = bool(rng.random() < 0.2)
            role = str(rng.choice(CASE_HOLDING_ROLES, p=[0.62, 0.2, 0.18]))
            if role == "ASYE":
                start = as_of - int(rng.integers(30, 330))
                agency = False
            elif agency:
                start = as_of - int(rng.integers(30, 700))
            else:
                start = as_of - int(rng.integers(60, 4000))
            worker_id = workforce.hire(
                org_id=team_id, role=role, start=start, agency=agency, fte=fte
            )
            prev = int(NULL)
            if start > sim_start:
                # The post existed before this worker: the leaver held its cases until `start`.
                prev = workforce.hire(
                    org_id=team_id,
                    role="SW",
                    start=sim_start - int(rng.integers(0, 1500)),
                    end=start,
                    agency=bool(rng.random() < 0.25),
                )
            load = 1.7 if rng.random() < 0.06 else float(rng.uniform(0.85, 1.12))
            if role == "ASYE":
                load = min(load, 0.85)  # protected caseloads in the first year
            team.append(team_id)
            worker.append(worker_id)
            predecessor.append(prev)
            change.append(start)
            weight.append(fte * load)
            fte_total += fte
        workforce.hire(
            org_id=team_id,
            role="FAMILY_SUPPORT",
            start=as_of - int(rng.integers(60, 3000)),
            fte=1.0,
        )
    return TeamSlots(
        np.array(team, dtype=np.int64),
        np.array(worker, dtype=np.int64),
        np.array(predecessor, dtype=np.int64),
        np.array(change, dtype=np.int64),
        np.array(weight, dtype=np.float64),
    )
