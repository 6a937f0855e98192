"""Forging what a browser sends, and counting what comes back, for the security tests.

``Forge`` builds ``/_dash-update-component`` bodies in exactly the shape the real page sends
(the callback's output key and its inputs/state ids are read from ``/_dash-dependencies``, as
the Dash renderer does), so a forged request differs from a real one only in the values.
``AttackLog`` counts every forged or malicious request and every one that leaked; the tests
print the totals and assert that none leaked.

``expected_access`` works out what a demo user may see straight from the SOURCE tables with its
own SQL (roles, the organisation tree, budget holders), not from ``dashboard.access``, so the
leak checks do not trust the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import create_engine, text

REFUSED = frozenset({400, 401, 403, 404, 405, 413})
TEAM_ROLES = ("TEAM_MANAGER",)
SERVICE_ROLES = ("SERVICE_MANAGER", "HEAD_OF_SERVICE")

INJECTIONS = (
    "team:1 OR 1=1",
    "'; DROP TABLE users; --",
    "team:1; DROP TABLE audit_events; --",
    "borough' OR '1'='1",
    "cost_centre:X' OR '1'='1",
    "teams:1,2) OR (1=1",
    "team:-1",
    "team:1e3",
    "team:0x10",
    "service:../../etc/passwd",
    "team:\x00",
    "borough\x00",
    "<script>alert(1)</script>",
    "team:１０",  # full-width digits
    "😀",
    "team:" + "9" * 5000,
    "teams:" + ",".join(str(i) for i in range(3000)),
    "x" * 10_000_000,
)


@dataclass
class AttackLog:
    """Forged and malicious requests tried, by kind, and the ones that leaked."""

    tried: Counter = field(default_factory=Counter)
    leaks: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.tried.values())

    def expect_refused(self, kind: str, response: Any, *, allowed: frozenset = REFUSED) -> None:
        """Count one request that must be refused: a refusal status and no data in the body."""
        self.tried[kind] += 1
        status = _status(response)
        if status not in allowed:
            self.leaks.append(f"{kind}: status {status}: {_body(response)[:200]!r}")

    def expect(self, kind: str, ok: bool, detail: str) -> None:
        """Count one request answered (200) whose content was checked for rows out of scope."""
        self.tried[kind] += 1
        if not ok:
            self.leaks.append(f"{kind}: {detail[:300]}")

    def summary(self) -> str:
        grouped: Counter = Counter()
        for kind, count in self.tried.items():
            grouped[kind.split(":")[0]] += count
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(grouped.items()))
        return (
            f"forged or malicious requests tried: {self.total}; leaked: {len(self.leaks)} ({kinds})"
        )


def report_attacks(request: Any, log: AttackLog) -> None:
    """Write the counts to the terminal (past pytest's output capture, so they show on a
    passing run too), e.g. ``test_security_http: forged or malicious requests tried: 5000;
    leaked: 0 (...)``."""
    line = f"{request.module.__name__}: {log.summary()}"
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(line)
            for leak in log.leaks[:20]:
                reporter.write_line(f"LEAK {leak}")
    else:
        print(line)


def _status(response: Any) -> int:
    return getattr(response, "status_code", 0)


def _body(response: Any) -> str:
    data = getattr(response, "data", None)
    if data is None:
        data = getattr(response, "content", b"")
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


# ----------------------------------------------------------------------------- Dash bodies


def _pattern(kind: str, key: str, value: str) -> dict[str, str]:
    return {key: value, "type": kind}


class Forge:
    """Bodies for ``POST /_dash-update-component``, shaped from ``/_dash-dependencies``."""

    def __init__(self, dependencies: list[dict[str, Any]]) -> None:
        self.by_output = {d["output"]: d for d in dependencies}

    def _output(self, starts: str) -> str:
        found = [o for o in self.by_output if o.startswith(starts)]
        assert len(found) == 1, (starts, found)
        return found[0]

    def _inputs(self, output: str, values: list[Any]) -> list[dict[str, Any]]:
        spec = self.by_output[output]["inputs"]
        assert len(spec) == len(values)
        return [{**item, "value": value} for item, value in zip(spec, values, strict=True)]

    def _state(self, output: str, values: list[Any]) -> list[dict[str, Any]]:
        spec = self.by_output[output]["state"]
        return [{**item, "value": value} for item, value in zip(spec, values, strict=True)]

    def render(
        self,
        scope: Any,
        token: Any = None,
        *,
        tiles: list[str] = (),
        charts: list[str] = (),
        history: list[str] = (),
        matrix: list[str] = (),
    ) -> dict[str, Any]:
        """The page's one render callback (tiles, charts, history charts, team matrix)."""
        output = self._output('..{"ind":["ALL"],"type":"tile-body"}.children')
        tile_ids = [_pattern("tile", "ind", i) for i in tiles]
        body_ids = [_pattern("tile-body", "ind", i) for i in tiles]
        meta_ids = [_pattern("tile-meta", "ind", i) for i in tiles]
        return {
            "output": output,
            "outputs": [
                [{"id": p, "property": "children"} for p in body_ids],
                [{"id": p, "property": "className"} for p in tile_ids],
                [{"id": p, "property": "children"} for p in meta_ids],
                [{"id": p, "property": "className"} for p in meta_ids],
                [{"id": _pattern("chart", "chart", c), "property": "figure"} for c in charts],
                [{"id": _pattern("history", "ind", i), "property": "figure"} for i in history],
                [{"id": _pattern("matrix", "page", m), "property": "children"} for m in matrix],
            ],
            "inputs": self._inputs(output, [token, scope]),
            "changedPropIds": ["page-scope.data"],
            "state": [],
        }

    def tiles(self, ids: list[str], scope: Any, token: Any = None) -> dict[str, Any]:
        return self.render(scope, token, tiles=ids)

    def charts(self, chart_ids: list[str], scope: Any) -> dict[str, Any]:
        return self.render(scope, charts=chart_ids)

    def history(self, ids: list[str], scope: Any) -> dict[str, Any]:
        return self.render(scope, history=ids)

    def lists(self, ids: list[str], scope: Any) -> dict[str, Any]:
        output = self._output('..{"ind":["ALL"],"type":"list"}.columnDefs')
        return {
            "output": output,
            "outputs": [
                [{"id": _pattern("list", "ind", i), "property": "columnDefs"} for i in ids],
                [{"id": _pattern("list-links", "ind", i), "property": "children"} for i in ids],
                [{"id": _pattern("list-rows", "ind", i), "property": "data"} for i in ids],
            ],
            "inputs": self._inputs(output, [None, scope]),
            "changedPropIds": ["page-scope.data"],
            "state": [],
        }

    def list_rows(self, indicator_id: str, request: Any, scope: Any) -> dict[str, Any]:
        """One block of an inline list, as its grid asks for it (``getRowsRequest``)."""
        output = self._output('..{"ind":["MATCH"],"type":"list"}.getRowsResponse')
        grid = _pattern("list", "ind", indicator_id)
        return {
            "output": output,
            "outputs": [
                {"id": grid, "property": "getRowsResponse"},
                {"id": _pattern("list-links", "ind", indicator_id), "property": "children"},
            ],
            "inputs": [{"id": grid, "property": "getRowsRequest", "value": request}],
            "changedPropIds": [json.dumps(grid, separators=(",", ":")) + ".getRowsRequest"],
            "state": self._state(output, [scope]),
        }

    def matrix(self, scope: Any) -> dict[str, Any]:
        return self.render(scope, matrix=["borough"])

    def drill(self, tile_ids: list[str], target: str, scope: Any) -> dict[str, Any]:
        output = self._output("..drill-modal.is_open")
        tile_ids = tile_ids if target in tile_ids else [*tile_ids, target]
        clicks = [
            {"id": _pattern("tile", "ind", i), "property": "n_clicks", "value": int(i == target)}
            for i in tile_ids
        ]
        changed = json.dumps(_pattern("tile", "ind", target), separators=(",", ":"))
        outputs = [
            {"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1]}
            for part in output.strip(".").split("...")
        ]
        return {
            "output": output,
            "outputs": outputs,
            "inputs": [clicks],
            "changedPropIds": [f"{changed}.n_clicks"],
            "state": self._state(output, [scope]),
        }

    def drill_rows(self, request: Any, state: Any) -> dict[str, Any]:
        """One block of the drill-down panel's list; ``state`` is what ``drill-state`` holds
        (``{"ind": ..., "scope": ..., "family": ...}``)."""
        output = self._output("..drill-grid.getRowsResponse")
        return {
            "output": output,
            "outputs": [
                {"id": "drill-grid", "property": "getRowsResponse"},
                {"id": "drill-links", "property": "children"},
            ],
            "inputs": [{"id": "drill-grid", "property": "getRowsRequest", "value": request}],
            "changedPropIds": ["drill-grid.getRowsRequest"],
            "state": self._state(output, [state]),
        }

    def family(self, child: Any, scope: Any, indicator_id: str = "open_cases") -> dict[str, Any]:
        output = self._output("..family-panel.hidden@")
        outputs = [
            {"id": "family-panel", "property": "hidden"},
            {"id": "family-title", "property": "children"},
            {"id": "family-grid", "property": "rowData"},
            {"id": "family-grid", "property": "columnDefs"},
        ]
        return {
            "output": output,
            "outputs": outputs,
            "inputs": self._inputs(output, [[{"child_id": child}]]),
            "changedPropIds": ["drill-grid.selectedRows"],
            "state": self._state(output, [{"ind": indicator_id, "scope": scope, "family": True}]),
        }

    def select(self, requested: Any, current: Any) -> dict[str, Any]:
        output = "page-scope.data"
        return {
            "output": output,
            "outputs": {"id": "page-scope", "property": "data"},
            "inputs": self._inputs(output, [requested]),
            "changedPropIds": ["scope-select.value"],
            "state": self._state(output, [current]),
        }

    def router(self, pathname: Any, search: Any) -> dict[str, Any]:
        output = self._output(".._pages_content.children")
        return {
            "output": output,
            "outputs": [
                {"id": "_pages_content", "property": "children"},
                {"id": "_pages_store", "property": "data"},
            ],
            "inputs": self._inputs(output, [pathname, search]),
            "changedPropIds": ["_pages_location.pathname"],
            "state": [],
        }


def block_request(start: int = 0, end: int = 200, **models: Any) -> dict[str, Any]:
    """A ``getRowsRequest`` as an infinite-model grid sends it (``sortModel``, ``filterModel``)."""
    return {"startRow": start, "endRow": end, "sortModel": [], "filterModel": {}, **models}


def response_part(body: dict[str, Any], component: Any, prop: str) -> Any:
    """One output's value from a Dash callback response."""
    key = (
        component
        if isinstance(component, str)
        else json.dumps(component, separators=(",", ":"), sort_keys=True)
    )
    return body["response"][key][prop]


def walk(node: Any):
    """Every dict in a JSON layout (Dash components serialise as dicts with ``props``)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


# ----------------------------------------------------------------------------- who sees what


@dataclass(frozen=True)
class Expected:
    """What a user may see, worked out from the source tables (not from dashboard.access)."""

    borough: bool
    teams: frozenset[int]
    cost_centres: frozenset[str]


def expected_access(source_url: str, username: str, as_of: dt.date) -> Expected:
    engine = create_engine(source_url)
    try:
        with engine.connect() as conn:
            roles = conn.execute(
                text(
                    "SELECT wr.role, wr.org_id FROM worker_roles wr "
                    "JOIN workers w ON w.worker_id = wr.worker_id "
                    "WHERE lower(w.username) = :u AND wr.start_date <= :d "
                    "AND (wr.end_date IS NULL OR wr.end_date > :d) "
                    "AND w.start_date <= :d AND (w.end_date IS NULL OR w.end_date > :d)"
                ),
                {"u": username, "d": as_of},
            ).all()
            tree = conn.execute(
                text("SELECT org_id, parent_org_id, org_level FROM organisations")
            ).all()
            centres = conn.execute(
                text(
                    "SELECT cc.cost_centre_code FROM cost_centres cc "
                    "JOIN workers w ON w.worker_id = cc.budget_holder_worker_id "
                    "WHERE lower(w.username) = :u AND w.start_date <= :d "
                    "AND (w.end_date IS NULL OR w.end_date > :d)"
                ),
                {"u": username, "d": as_of},
            ).all()
    finally:
        engine.dispose()
    children: dict[int, list[int]] = {}
    level = {}
    for org, parent, org_level in tree:
        level[org] = org_level
        if parent is not None:
            children.setdefault(parent, []).append(org)

    def teams_below(node: int) -> set[int]:
        found, stack = set(), [node]
        while stack:
            here = stack.pop()
            if level.get(here) == "TEAM":
                found.add(here)
            stack.extend(children.get(here, []))
        return found

    borough = any(role == "DIRECTOR" for role, _ in roles)
    teams: set[int] = set()
    for role, org in roles:
        if role in TEAM_ROLES:
            teams.add(org)
        elif role in SERVICE_ROLES:
            teams |= teams_below(org)
    return Expected(borough, frozenset(teams), frozenset(str(c) for (c,) in centres))


def all_scopes(source_url: str) -> dict[str, list[str]]:
    """Every team, service and cost centre of the borough, as scope strings."""
    engine = create_engine(source_url)
    try:
        with engine.connect() as conn:
            orgs = conn.execute(text("SELECT org_id, org_level FROM organisations")).all()
            centres = conn.execute(text("SELECT cost_centre_code FROM cost_centres")).all()
    finally:
        engine.dispose()
    return {
        "team": [f"team:{o}" for o, lvl in orgs if lvl == "TEAM"],
        "service": [f"service:{o}" for o, lvl in orgs if lvl == "SERVICE"],
        "cost_centre": [f"cost_centre:{c}" for (c,) in centres],
    }


def teams_of_services(source_url: str) -> dict[int, set[int]]:
    engine = create_engine(source_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT org_id, parent_org_id FROM organisations WHERE org_level = 'TEAM'")
            ).all()
    finally:
        engine.dispose()
    out: dict[int, set[int]] = {}
    for team, parent in rows:
        out.setdefault(parent, set()).add(team)
    return out
