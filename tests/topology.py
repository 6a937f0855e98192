"""The production topology, started for real on this machine: gunicorn workers and schedulers.

Shared by ``tests/test_production_*.py`` and ``bench/bench_load.py``. Every process is a real
subprocess (``gunicorn -c deploy/gunicorn.conf.py app:server``, ``python -m dashboard
scheduler``) on a free 127.0.0.1 port, with its output (JSON log lines) in a file; ``Topology``
stops them all when its block ends, whatever happened. Requests go over real HTTP, logged in as a
browser would be (``login``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
from faultproxy import free_port
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parent.parent
GUNICORN_CONF = REPO / "deploy" / "gunicorn.conf.py"
# Generous, so a loaded CI machine never fails a test that works; nothing here is timed.
DEADLINE_S = 120
SECRET_KEY = "topology-test-signing-key-not-a-real-secret-0123456789"  # one key for every worker: sessions cross workers
# The one render callback of a page: tiles (numbers, class, freshness line and its class),
# charts, daily history and the team matrix.
RENDER_PARTS = (
    ("tile-body", "ind", "children"),
    ("tile", "ind", "className"),
    ("tile-meta", "ind", "children"),
    ("tile-meta", "ind", "className"),
    ("chart", "chart", "figure"),
    ("history", "ind", "figure"),
    ("matrix", "page", "children"),
)
RENDER_OUTPUT = (
    ".."
    + "...".join(f'{{"{key}":["ALL"],"type":"{kind}"}}.{prop}' for kind, key, prop in RENDER_PARTS)
    + ".."
)
DRILL_OUTPUTS = (
    ("drill-modal", "is_open"),
    ("drill-title", "children"),
    ("drill-grid", "columnDefs"),
    ("drill-links", "children"),
    ("drill-state", "data"),
    ("family-panel", "hidden"),
    ("drill-grid", "selectedRows"),
    ("drill-grid", "filterModel"),
    ("drill-grid", "columnState"),
)
# The drill-down grid's rows come in blocks, one request each (the callback's second output
# is a duplicate of the links, for when the audit trail cannot be written).
DRILL_ROWS_OUTPUT_PREFIX = "..drill-grid.getRowsResponse...drill-links.children@"
FIRST_BLOCK = {"startRow": 0, "endRow": 200, "sortModel": [], "filterModel": {}}
_REFRESH_LINE = re.compile(r"^--\s*refresh:.*$", re.MULTILINE)
_HIDDEN_INPUT = re.compile(r"<input[^>]*type=\"hidden\"[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r"(name|value)=\"([^\"]*)\"")


def fast_queries(target: Path, every: str, extra: Mapping[str, str] | None = None) -> Path:
    """A copy of ``queries/`` whose every dataset refreshes ``every`` (e.g. '5s'), plus
    ``extra`` dataset files by id."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted((REPO / "queries").glob("*.sql")):
        content = path.read_text(encoding="utf-8")
        content, found = _REFRESH_LINE.subn(f"-- refresh: {every}", content, count=1)
        assert found == 1, f"{path.name} has no refresh line"
        (target / path.name).write_text(content, encoding="utf-8")
    for dataset_id, content in (extra or {}).items():
        (target / f"{dataset_id}.sql").write_text(content, encoding="utf-8")
    return target


def wait_until(
    condition: Any, what: str, deadline_s: float = DEADLINE_S, every: float = 0.2
) -> Any:
    """Poll ``condition()`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")


class Proc:
    """A subprocess in its own session, its output (stdout and stderr) in ``log``."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], folder: Path) -> None:
        self.name = name
        self.log = folder / f"{name}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=REPO,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # killing the group reaches gunicorn's workers too
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def mark(self) -> int:
        """A position in the log; ``wait_for(..., after=mark)`` looks only past it."""
        return len(self.text())

    def lines(self, after: int = 0) -> list[str]:
        return self.text()[after:].splitlines()

    def records(self, after: int = 0) -> list[dict[str, Any]]:
        """The JSON log records past ``after`` (other output lines skipped)."""
        out = []
        for line in self.lines(after):
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def wait_for(self, pattern: str, after: int = 0, deadline_s: float = DEADLINE_S) -> str:
        regex = re.compile(pattern)

        def found() -> str | None:
            for line in self.lines(after):
                if regex.search(line):
                    return line
            if not self.alive:
                raise AssertionError(
                    f"{self.name} exited ({self.proc.returncode}) before logging {pattern!r}:\n"
                    + "\n".join(self.lines()[-40:])
                )
            return None

        try:
            return wait_until(found, f"{self.name} to log {pattern!r}", deadline_s)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\n--- {self.name} log tail:\n{self.text()[-4000:]}"
            ) from None

    def signal(self, signum: int) -> None:
        if self.alive:
            self.proc.send_signal(signum)

    def wait(self, deadline_s: float = DEADLINE_S) -> int:
        return self.proc.wait(timeout=deadline_s)

    def stop(self) -> None:
        """SIGTERM the whole group, then SIGKILL whatever is left."""
        for signum, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signum)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
                break
        with contextlib.suppress(ProcessLookupError):  # stray children of a dead leader
            os.killpg(self.proc.pid, signal.SIGKILL)


class Web:
    """One gunicorn app server (``-w workers``) on its own port."""

    def __init__(self, proc: Proc, port: int, workers: int) -> None:
        self.proc = proc
        self.port = port
        self.workers = workers
        self.url = f"http://127.0.0.1:{port}"

    def worker_pids(self) -> set[int]:
        return {
            int(m.group(1))
            for m in re.finditer(r"Booting worker with pid: (\d+)", self.proc.text())
        }

    def access(self, after: int = 0) -> list[dict[str, Any]]:
        return [r for r in self.proc.records(after) if r.get("logger") == "gunicorn.access"]


class Topology:
    """Processes over one store; use as a context manager so everything is always stopped."""

    def __init__(self, folder: Path, **settings: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
        self.env = {
            **base,
            "PYTHONUNBUFFERED": "1",
            "DASHBOARD_SECRET_KEY": SECRET_KEY,
            "DASHBOARD_LOG_LEVEL": "INFO",
            **{f"DASHBOARD_{key.upper()}": str(value) for key, value in settings.items()},
        }
        self.settings = dict(settings)
        self.procs: list[Proc] = []

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def start(self, name: str, argv: list[str], **env: str) -> Proc:
        proc = Proc(name, argv, {**self.env, **env}, self.folder)
        self.procs.append(proc)
        return proc

    def scheduler(self, name: str = "scheduler", lock_retry_s: int = 1, **env: str) -> Proc:
        argv = [sys.executable, "-m", "dashboard", "scheduler", "--lock-retry", str(lock_retry_s)]
        return self.start(name, argv, **env)

    def web(self, name: str = "web", workers: int = 4, **env: str) -> Web:
        port = free_port()
        gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).with_name("gunicorn"))
        argv = [gunicorn, "-c", str(GUNICORN_CONF), "-w", str(workers), "-b", f"127.0.0.1:{port}"]
        web = Web(self.start(name, argv, **env), port, workers)
        wait_until(lambda: len(web.worker_pids()) >= workers, f"{name}'s {workers} workers")
        wait_until(lambda: _answers(web.url), f"{name} to answer HTTP")
        return web


def _answers(url: str) -> bool:
    try:
        requests.get(f"{url}/health", timeout=30)
        return True
    except requests.RequestException:
        return False


# --- the store, read directly (what the tests count) -----------------------------------------


def snapshot_rows(store_url: str) -> list[dict[str, Any]]:
    """Every snapshot metadata row in the store, oldest first."""
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT snapshot_id, dataset_id, version, status, computed_at, row_count,"
                    " error"
                    " FROM store_snapshots ORDER BY snapshot_id"
                )
            )
            return [dict(row._mapping) for row in rows]
    finally:
        engine.dispose()


def latest_good_versions(store_url: str) -> dict[str, int]:
    """Each dataset's latest good version."""
    return {d: version for d, (version, _at) in latest_good(store_url).items()}


def latest_good(store_url: str) -> dict[str, tuple[int, dt.datetime]]:
    """Each dataset's latest good (version, computed_at)."""
    latest: dict[str, tuple[int, dt.datetime]] = {}
    for row in snapshot_rows(store_url):
        if row["status"] == "ok" and row["version"] > latest.get(row["dataset_id"], (0,))[0]:
            latest[row["dataset_id"]] = (row["version"], row["computed_at"].astimezone(dt.UTC))
    return latest


# --- a browser's requests ------------------------------------------------------------------------


def login(session: requests.Session, url: str, username: str, password: str = "demo") -> bool:
    """Log ``session`` in as a browser would: the form's hidden fields, then the password.

    Returns False when the app has no login form (``/login`` answers 404: no login required,
    or a single sign-on header does the work, see ``header_session``).
    """
    form = session.get(f"{url}/login", timeout=30)
    if form.status_code == 404:
        return False
    form.raise_for_status()
    fields = {}
    for tag in _HIDDEN_INPUT.findall(form.text):
        attrs = dict(_ATTR.findall(tag))
        if "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    fields.update(username=username, password=password)
    answer = session.post(f"{url}/login", data=fields, timeout=30, allow_redirects=False)
    if answer.status_code not in (200, 302, 303):
        raise AssertionError(
            f"login as {username} refused: {answer.status_code} {answer.text[:200]}"
        )
    return True


def header_session(header: str, username: str) -> requests.Session:
    """A session whose every request carries the single sign-on header (header auth mode)."""
    session = requests.Session()
    session.headers[header] = username
    return session


def poll_body(known: str | None, n: int = 1) -> dict[str, Any]:
    """The version check a page sends every poll interval."""
    return {
        "output": "data-version.data",
        "outputs": {"id": "data-version", "property": "data"},
        "inputs": [{"id": "poll", "property": "n_intervals", "value": n}],
        "changedPropIds": ["poll.n_intervals"],
        "state": [{"id": "data-version", "property": "data", "value": known}],
    }


def render_body(
    token: str | None,
    scope: str,
    *,
    tiles: Sequence[str] = (),
    charts: Sequence[str] = (),
    history: Sequence[str] = (),
    matrix: Sequence[str] = (),
) -> dict[str, Any]:
    """The render callback a page sends when the version (or its scope) changes, for the
    tiles, charts, history charts and matrices (by page id) the page has."""
    ids = {
        "tile-body": tiles,
        "tile": tiles,
        "tile-meta": tiles,
        "chart": charts,
        "history": history,
        "matrix": matrix,
    }
    return {
        "output": RENDER_OUTPUT,
        "outputs": [
            [{"id": {key: i, "type": kind}, "property": prop} for i in ids[kind]]
            for kind, key, prop in RENDER_PARTS
        ],
        "inputs": [
            {"id": "data-version", "property": "data", "value": token},
            {"id": "page-scope", "property": "data", "value": scope},
        ],
        "changedPropIds": ["data-version.data"],
        "state": [],
    }


def tiles_body(tiles: list[str], token: str | None, scope: str) -> dict[str, Any]:
    """The render callback of a page showing only ``tiles``."""
    return render_body(token, scope, tiles=tiles)


def drill_body(tiles: list[str], target: str, scope: str) -> dict[str, Any]:
    """A click on one tile: the drill-down callback."""
    return {
        "output": ".." + "...".join(f"{c}.{p}" for c, p in DRILL_OUTPUTS) + "..",
        "outputs": [{"id": c, "property": p} for c, p in DRILL_OUTPUTS],
        "inputs": [
            [
                {
                    "id": {"ind": i, "type": "tile"},
                    "property": "n_clicks",
                    "value": int(i == target),
                }
                for i in tiles
            ]
        ],
        "changedPropIds": [
            json.dumps({"ind": target, "type": "tile"}, separators=(",", ":")) + ".n_clicks"
        ],
        "state": [{"id": "page-scope", "property": "data", "value": scope}],
    }


def drill_rows_body(dependencies: list[dict[str, Any]], target: str, scope: str) -> dict[str, Any]:
    """The drill-down grid asking for its first block of ``target``'s list in ``scope``
    (``dependencies``: ``/_dash-dependencies``, for the callback's output key)."""
    (output,) = [
        d["output"] for d in dependencies if d["output"].startswith(DRILL_ROWS_OUTPUT_PREFIX)
    ]
    return {
        "output": output,
        "outputs": [
            {"id": "drill-grid", "property": "getRowsResponse"},
            {"id": "drill-links", "property": "children"},
        ],
        "inputs": [{"id": "drill-grid", "property": "getRowsRequest", "value": FIRST_BLOCK}],
        "changedPropIds": ["drill-grid.getRowsRequest"],
        "state": [
            {
                "id": "drill-state",
                "property": "data",
                "value": {"ind": target, "scope": scope, "family": True},
            }
        ],
    }


def store_url_via(url: str, port: int) -> str:
    """``url`` (a PostgreSQL URL on 127.0.0.1) pointed at another port (a FaultProxy's)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(port=port).render_as_string(hide_password=False)
