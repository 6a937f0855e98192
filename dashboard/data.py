"""The data layer: the ONE door to data for pages, callbacks, exports and the JSON API.

Everything here reads the snapshot store (never the source: no SQL runs on a page view), filters
to a scope, and runs the indicator measures. Results are cached inside the instance per scope and
per content of the datasets each result reads, so a page view costs a version check and dictionary
look-ups, a new snapshot of one dataset recomputes only what reads that dataset (the scheduler
refreshes some datasets every few minutes), and a snapshot whose rows did not change recomputes
nothing (only the computed time it shows is new). The cache is bounded and there is no module-level
state (each gunicorn worker has its own DataLayer).

Access control will wrap this class: every public method that returns data takes an explicit
``Scope`` so a user's scope can be checked or narrowed in one place.

Chart ids for :meth:`DataLayer.chart` are listed in ``dashboard/indicators/charts.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from dashboard.config import Settings
from dashboard.datasets import SCOPE_COLUMNS, load_datasets
from dashboard.indicators.catalogue import (
    VIEW_DATASETS,
    Definition,
    rag_of,
    team_matrix_frame,
)
from dashboard.indicators.charts import CHARTS, TEAM_LOCAL_CHARTS
from dashboard.indicators.declared import full_catalogue
from dashboard.indicators.measure import (
    DEFAULT_POPULATION,
    MeasureInput,
    Measurement,
    full_name,
)
from dashboard.indicators.rag import effective_thresholds
from dashboard.indicators.team import DERIVED_FRAMES, TEAM_LOCAL
from dashboard.model import Freshness, Indicator, IndicatorValue, Scope, ScopeError, Tier
from dashboard.partition import PartitionedFrames
from dashboard.priority import lower_this_thread
from dashboard.reporting import ReportingPeriod
from dashboard.scopes import Organisation, ResolvedScope, resolve, team_scope
from dashboard.store import Snapshot, SnapshotStore, StoreVersions

log = logging.getLogger(__name__)

# Results kept per worker (LRU). A page holds about 20 (its measures, charts, scope, names), and
# a worker may serve hundreds of teams' pages at regional scale: a new snapshot of one dataset
# then recomputes only the measures that read it, not every page's every measure.
CACHE_ENTRIES = 16384
# A team matrix over more teams than this is only read from the recorded daily history.
MATRIX_COMPUTED_TEAMS = 60
# Cells the day's history lacks (a new team or indicator, a value that failed when recorded)
# are computed one by one when there are at most this many; more are shown as not recorded
# yet: a few thousand at regional scale would take each web worker minutes.
MATRIX_COMPUTED_CELLS = 60
RECENT_VIEWS = 64  # (scope, indicators) views whose values the preloader computes first
# How much nicer than its worker the preloader's thread runs (it loads and warms new versions).
PRELOAD_THREAD_NICE = 5
PUBLISHED_KEPT = 8  # published versions remembered, to tell what changed between two
# While the preloader's last good look at the store is this recent (and at least a few of its
# intervals), requests use what it published instead of asking the store for its version.
FOLLOW_FRESH_S = 5.0
# A new version the scheduler holds (``SnapshotStore.hold_publication``: the day's history it
# records next belongs with it) waits in a worker at most this long after the worker first saw
# it, then is published anyway.
PUBLISH_HOLD_MAX_S = 30.0
# What the recent results showed (a small digest each), kept across versions.
RESULTS_KEPT = 65536
# Per-team digests of the rows of a dataset version (and its derived frames), kept.
TEAM_DIGESTS_KEPT = 64
HISTORY = "<history>"  # the daily history's write stamp, beside the datasets a result reads
DEFAULT_REFRESH = dt.timedelta(hours=1)  # for a dataset whose file is gone or broken
T = TypeVar("T")


class NotApplicable(ScopeError):
    """An indicator or chart asked for a scope it does not apply to."""


Inputs = tuple[tuple[str, Hashable], ...]  # (dataset id or HISTORY, its version), sorted


@dataclass(frozen=True)
class _State:
    """What one version of the store holds: the latest good snapshot and status per dataset."""

    token: str
    snapshots: dict[str, Snapshot]
    status: dict[str, Any]  # dataset id -> store.DatasetStatus
    frames: PartitionedFrames  # the snapshots' frames, rows grouped by team and cost centre
    # Each dataset's content (its stored frame's digest) and HISTORY's last write: what a
    # cached result's key says it was computed from. A refresh that changed no row keeps it,
    # and with it every result computed from that dataset.
    versions: dict[str, Hashable]

    def inputs(self, names: Iterable[str]) -> Inputs:
        """The versions of ``names`` (None: no snapshot), the last part of every cache key."""
        return _inputs(self.versions, names)

    def holds(self, inputs: Inputs) -> bool:
        """Are these still the versions of these inputs? (If not, the result is superseded.)"""
        return all(self.versions.get(name) == version for name, version in inputs)


def _inputs(versions: dict[str, Hashable], names: Iterable[str]) -> Inputs:
    return tuple((name, versions.get(name)) for name in sorted(set(names)))


@dataclass(frozen=True)
class _Published:
    """What a version the preloader loaded was made of (``DataLayer.unchanged_between``)."""

    content: dict[str, Hashable]  # _State.versions: each dataset's content, HISTORY's stamp
    attempts: dict[str, tuple[str, str]]  # dataset id -> its latest attempt's (status, error)
    day: dt.date  # the reporting date (what a tile's comparisons are counted back from)


class DataLayer:
    def __init__(self, settings: Settings, store: SnapshotStore | None = None) -> None:
        self.settings = settings
        self.store = store if store is not None else SnapshotStore.from_settings(settings)
        specs, _bad = load_datasets(settings.queries_dir)
        # The built-in indicators plus those declared in the dataset files' headers; a
        # declaration that clashes is left out, logged, and listed in declaration_errors.
        self._definitions, self.declaration_errors = full_catalogue(specs)
        for error in self.declaration_errors:
            log.error("indicator declaration left out: %s", error)
        # A bad thresholds file stops here with a message naming the file and the key.
        self._thresholds = effective_thresholds(settings.thresholds_file, self._definitions)
        self._refresh = {key: spec.refresh for key, spec in specs.items()}
        self._titles = {key: spec.title for key, spec in specs.items()}
        self._dataset_ids = sorted(
            set(specs)
            | set(VIEW_DATASETS)
            | {
                d
                for definition in self._definitions.values()
                for d in definition.indicator.datasets
            }
        )
        # Every team-tier headline: the built-ins' TEAM plus team-tier declared indicators.
        self._matrix_columns = [
            d
            for d in self._definitions.values()
            if d.indicator.tier == "team" and not (d.quality or d.chart)
        ]
        # The datasets each measure reads (tests/test_data_incremental.py checks each reads no
        # other): its declared ones; the matrix also reads every column's and the team list.
        self._reads = {key: set(d.indicator.datasets) for key, d in self._definitions.items()}
        if "team_matrix" in self._reads:
            # The matrix is read from the recorded history where it can be: HISTORY too.
            self._reads["team_matrix"] |= {"organisation", HISTORY}.union(
                *(d.indicator.datasets for d in self._matrix_columns)
            )
        self._population = settings.child_population or DEFAULT_POPULATION
        self._lock = threading.Lock()  # the cache and the current state
        self._loading = threading.Lock()  # one thread loads a new version; the others wait for it
        self._state: _State | None = None
        self._token: Callable[[], str] = self.store.version_token
        # Keys end with the Inputs they were computed from; a new state evicts superseded ones.
        self._cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        # The version the preloader finished (read, indexed, recent values and warmers done):
        # what requests serve while it follows the store (``served_token``).
        self.preloaded: str | None = None
        self._followed_at: float | None = None  # time.monotonic() of its last good check
        self._follow_fresh_s = FOLLOW_FRESH_S
        self._publishing = False  # the preloader is warming a new version (it saw the store)
        # When the preloader first saw a version it has not published (the hold's clock).
        self._unpublished_since: float | None = None
        # Called with (new token, superseded) before a preloaded version is published, e.g.
        # the web app's render cache rendering the pages viewed recently.
        self._warmers: list[Callable[[str, Callable[[], bool]], int]] = []
        # Called at each of the preloader's looks at the store (e.g. the account counter).
        self._followers: list[Callable[[], None]] = []
        # What each of the last few versions the preloader loaded was made of: each dataset's
        # content and HISTORY's stamp, each dataset's latest attempt and the reporting day
        # (``unchanged_between``).
        self._published: OrderedDict[str, _Published] = OrderedDict()
        # What each result computed recently showed (``_shown``), by its cache key; kept after
        # a new version evicts the result itself, to tell whether a page's numbers changed.
        self._results: OrderedDict[tuple[Any, ...], Hashable] = OrderedDict()
        # The state the preloader's new one replaced, while it warms the new one: what a page
        # showed there is computed from it when this worker did not compute it then.
        self._previous: _State | None = None
        # (dataset id, content) -> team id -> digest of that team's rows (``_team_rows``).
        self._team_digests: OrderedDict[tuple[str, Hashable], dict[Any, Hashable]] = OrderedDict()
        self._history_changes: dict[tuple[Any, Any], frozenset[str] | None] = {}
        # The (scope, indicators) asked for most recently, for the preloader.
        self._recent: OrderedDict[tuple[Scope, tuple[str, ...]], None] = OrderedDict()

    def use_version(self, source: Callable[[], str]) -> None:
        """Where the store's version token is read (default: one query per call). The web app
        passes its once-per-request read, so one page view's many reads cost one query."""
        self._token = source

    # --- versions and snapshots ------------------------------------------------------------

    def version_token(self) -> str:
        """Changes whenever any dataset gets a new version or history is written (cheap)."""
        return self.store.version_token()

    def served_token(self) -> str | None:
        """The version this worker serves without asking the store: the one the preloader
        published, while it is following the store (its last check succeeded within a few
        seconds). None when there is no preloader or it cannot reach the store: ask the store.

        A new snapshot is published only once it is loaded, its recent values computed and
        the warmers run, so the browsers that poll for it find it ready."""
        followed = self._followed_at
        if self.preloaded is None or followed is None:
            return None
        if not self._publishing and time.monotonic() - followed > self._follow_fresh_s:
            return None
        return self.preloaded

    def on_new_version(self, warm: Callable[[str, Callable[[], bool]], int]) -> None:
        """Run ``warm(token, superseded)`` in the preloader for each new version before it is
        published; it returns how much it did and stops early once ``superseded()``."""
        self._warmers.append(warm)

    def on_follow(self, follow: Callable[[], None]) -> None:
        """Run ``follow()`` at each of the preloader's looks at the store (every interval)."""
        self._followers.append(follow)

    def _current(self) -> _State:
        state = self._state
        if state is not None and self.served_token() is not None:
            return state  # the preloader keeps it current: no query on the request path
        return self._check()

    def _check(self, keep_previous: bool = False, token: str | None = None) -> _State:
        """The state of the store's current version (``token``, else read now), loaded if it
        is new. ``keep_previous`` (the preloader): the state it replaces is kept until the new
        one is published, to tell what a page showed in it (``unchanged_between``)."""
        if token is None:
            token = self._token()  # one small query (or the request's), no pandas
        state = self._state
        if state is not None and state.token == token:
            return state
        with self._loading:
            state = self._state
            if state is not None and state.token == token:
                return state  # another thread loaded it meanwhile
            previous = state
            state = self._load(self.store.versions(), previous)
            with self._lock:
                self._state = state
                if keep_previous:
                    self._previous = previous
                for key in [k for k in self._cache if not state.holds(k[-1])]:
                    del self._cache[key]  # computed from a version that is gone
        return state

    def _load(self, versions: StoreVersions, previous: _State | None) -> _State:
        """The state for ``versions``, reusing ``previous``'s snapshots and row positions of every
        dataset without a new version (only a new version is read, decoded and partitioned)."""
        if previous is not None and previous.token == versions.token:
            return previous
        kept = previous.snapshots if previous is not None else {}
        snapshots = {}
        for dataset_id in self._dataset_ids:
            if dataset_id not in versions.snapshots:
                continue  # never had a good snapshot
            old = kept.get(dataset_id)
            if old is not None and _identity(old) == versions.snapshots[dataset_id]:
                snapshots[dataset_id] = old
                continue
            snapshot = self.store.latest(dataset_id)
            if snapshot is not None and old is not None and _content(snapshot) == _content(old):
                # A refresh that changed no row: keep the very frame, with its row positions
                # and derived frames (the new version's own time and version, though).
                snapshot = replace(snapshot, frame=old.frame)
            if snapshot is not None:
                snapshots[dataset_id] = snapshot
        frames = PartitionedFrames(
            {key: s.frame for key, s in snapshots.items()},
            previous.frames if previous is not None else None,
        )
        frames.partition(SCOPE_COLUMNS)  # O(rows) of the new versions only
        for dataset_id, derivations in DERIVED_FRAMES.items():
            for name, build in derivations:
                if dataset_id not in frames:
                    continue
                try:  # a new version only (the others carry theirs over)
                    frames.positions(frames.derived(frames[dataset_id], name, build), "team_id")
                except Exception:  # e.g. a column missing: the measures that need it say so
                    log.exception("could not derive %s from %s", name, dataset_id)
        contents: dict[str, Hashable] = {key: _content(s) for key, s in snapshots.items()}
        contents[HISTORY] = versions.history
        return _State(versions.token, snapshots, dict(self.store.status()), frames, contents)

    def warm(self) -> None:
        """Read, decode and index the latest snapshots now (a new web worker, before serving)."""
        self._current()

    def preload(self, every_s: float, stale_after_s: float | None = None) -> Callable[[], None]:
        """Follow the store from a background thread: every ``every_s`` seconds one version
        query, and a new version is read, decoded and indexed (and the frames every scope
        derives from it built), the recent pages' values computed and the warmers run, before
        it is published to requests (``served_token``). So the first view after a refresh
        costs what the views after it do, at any scale, and requests ask the store nothing
        while the preloader keeps up (if its last good check is older than ``stale_after_s``,
        default five intervals and at least ``FOLLOW_FRESH_S``, they ask the store again).
        Returns a function that stops it."""
        stop = threading.Event()

        def follow() -> None:
            # Background work: a new version's warming takes the CPU the requests leave (the
            # requests serve the published version meanwhile).
            lower_this_thread(PRELOAD_THREAD_NICE)
            failing = False
            while not stop.wait(every_s):
                try:
                    started = time.perf_counter()
                    token = self._token()  # outside a request: the store's own version query
                    held = self._held(token)
                    state = None if held else self._check(keep_previous=True, token=token)
                    for follower in self._followers:
                        follower()
                    self._followed_at = time.monotonic()
                    if state is not None and state.token != self.preloaded:
                        self._publishing = True
                        try:
                            self._publish(state, stop, time.perf_counter() - started)
                        finally:
                            self._publishing = False
                            self._previous = None  # its frames are not needed any more
                except Exception as exc:  # the store is down: requests say so; keep trying
                    self._followed_at = None  # requests ask the store (and answer 503) again
                    if not failing:
                        log.warning("preload failed (retrying every %gs): %s", every_s, exc)
                    failing = True
                else:
                    if failing:
                        log.info("preload recovered")
                    failing = False

        self._follow_fresh_s = (
            max(FOLLOW_FRESH_S, 5 * every_s) if stale_after_s is None else stale_after_s
        )
        threading.Thread(target=follow, name="snapshot-preload", daemon=True).start()
        return stop.set

    def _held(self, token: str) -> bool:
        """Should the preloader leave the store's version ``token`` unpublished for now (and
        unloaded: requests keep the published one)? Only while the scheduler holds publication
        (it is refreshing a dataset and records that day's history next), so the browsers get
        the snapshot and its history as one version; for at most ``PUBLISH_HOLD_MAX_S`` after
        this worker first saw a version it had not published; never before its first."""
        if self.preloaded is None or token == self.preloaded:
            self._unpublished_since = None
            return False
        now = time.monotonic()
        if self._unpublished_since is None:
            self._unpublished_since = now
        if now - self._unpublished_since >= PUBLISH_HOLD_MAX_S:
            return False
        return self.store.publication_held()

    def _publish(self, state: _State, stop: threading.Event, loaded: float) -> None:
        """Run the warmers (the pages viewed recently) and compute the other recent values
        (e.g. the JSON API's) for ``state``, then serve it."""
        self._remember_published(state)  # what it is made of, for the warmers' comparisons
        started = time.perf_counter()

        def superseded() -> bool:
            return stop.is_set() or self._state is not state

        warmed = 0
        for warm in self._warmers:
            try:
                warmed += warm(state.token, superseded)
            except Exception:  # a warmer is an optimisation: requests compute what it missed
                log.exception("warming version %s failed", state.token)
        warm_s = time.perf_counter() - started
        views = self._compute_recent(state, stop)
        if superseded():
            return  # a newer version is already loaded: publish that one instead
        self.preloaded = state.token
        since = self._unpublished_since
        log.info(
            "snapshots preloaded version=%s waited_s=%.1f duration_s=%.3f warmed=%d "
            "warm_s=%.3f recent_views=%d values_s=%.3f",
            state.token,
            0.0 if since is None else time.monotonic() - since,
            loaded,
            warmed,
            warm_s,
            views,
            time.perf_counter() - started - warm_s,
        )

    def _remember_published(self, state: _State) -> None:
        attempts = {}
        for dataset_id, status in state.status.items():
            attempt = getattr(status, "last_attempt", None)
            attempts[dataset_id] = (
                str(getattr(attempt, "status", "ok")),
                str(getattr(attempt, "error", None) or ""),
            )
        published = _Published(dict(state.versions), attempts, self.settings.reporting_date())
        with self._lock:
            self._published[state.token] = published
            while len(self._published) > PUBLISHED_KEPT:
                self._published.popitem(last=False)

    def unchanged_between(
        self,
        old_token: str,
        new_token: str,
        scope: Scope,
        indicator_ids: Iterable[str],
        chart_ids: Iterable[str] = (),
        *,
        rows: bool = False,
    ) -> bool:
        """Does a page of ``scope`` showing ``indicator_ids`` (with their daily history) and
        ``chart_ids`` show the same numbers at ``new_token`` as at ``old_token``? (Its tiles'
        computed times are drawn again for every version: ``callbacks.refresh_freshness``.)
        With ``rows``, the same rows of each indicator's list too: the same result is not
        enough, only datasets that kept their content or their teams' rows.

        True only if the preloader loaded both, no dataset the page reads (its indicators', its
        charts', its scope's and the team names) has a new failure or error, the reporting day
        is the same, no history row of its scope (or its teams) was written in between, and
        each dataset read either kept its content (a refresh that changed no row) or changed
        no number the page shows: each of its measures and charts that reads a changed dataset
        is computed for ``new_token`` and compared with what it showed at ``old_token``. So at
        regional scale a workforce change in one team renders that team's page (and its
        service's and the borough's) again, not every team's. Anything unknown answers False
        (render again)."""
        with self._lock:
            old, new = self._published.get(old_token), self._published.get(new_token)
        if old is None or new is None or old.day != new.day:
            return False
        reads = set(self._scope_reads(scope)) | {"organisation"}
        for indicator_id in indicator_ids:
            if indicator_id not in self._reads:
                return False
            reads |= self._reads[indicator_id]
        for chart_id in chart_ids:
            if chart_id not in CHARTS:
                return False
            reads |= set(CHARTS[chart_id].datasets)
        reads.discard(HISTORY)
        if any(old.attempts.get(d) != new.attempts.get(d) for d in reads):
            return False
        changed = {d for d in reads if old.content.get(d) != new.content.get(d)}
        if changed and not self._same_shown(
            old, new_token, scope, indicator_ids, chart_ids, changed, rows=rows
        ):
            return False
        before, after = old.content.get(HISTORY), new.content.get(HISTORY)
        if before == after:
            return True
        history_changed = self._history_changed(before, after)
        return history_changed is not None and not (
            set(self._history_scopes(scope)) & history_changed
        )

    def _same_shown(
        self,
        old: _Published,
        new_token: str,
        scope: Scope,
        indicator_ids: Iterable[str],
        chart_ids: Iterable[str],
        changed: set[str],
        *,
        rows: bool = False,
    ) -> bool:
        """Do the measures and charts of ``scope`` that read a ``changed`` dataset show at
        ``new_token`` (the state being loaded) what they showed at ``old``? Computes the new
        results (kept, as a render would), and the old ones from the state the new one replaced
        when this worker did not compute them then (another worker rendered the old page);
        False when neither is known."""
        state, previous = self._state, self._previous
        if state is None or state.token != new_token or "organisation" in changed:
            return False  # (a new organisation may resolve the scope to other teams)
        if previous is not None and _inputs(previous.versions, changed) != _inputs(
            old.content, changed
        ):
            previous = None  # not the state the page was last shown in
        try:
            resolved = self.resolve(scope)
        except ScopeError:
            return False
        scope_reads = set(self._scope_reads(scope))
        teams = resolved.team_ids

        def teams_kept(datasets: set[str]) -> bool:
            return teams is not None and self._teams_kept(old, previous, state, datasets, teams)

        for indicator_id in indicator_ids:
            definition = self._definitions[indicator_id]
            reads = self._reads[indicator_id] | scope_reads
            if not (reads & changed) or not definition.applies_to(scope):
                continue
            if definition.measure in TEAM_LOCAL and teams_kept(reads & changed):
                continue  # its teams' rows are as they were: so is its result
            if rows:
                return False  # the same count may be other rows
            old_key = ("measure", indicator_id, scope, _inputs(old.content, reads))
            if old_key not in self._results and previous is not None:
                self._measure(previous, definition, resolved)  # records what it showed
            was = self._results.get(old_key)
            if was is None:
                return False
            self._measure(state, definition, resolved)
            if self._results.get(self._measure_key(state, indicator_id, scope)) != was:
                return False
        for chart_id in chart_ids:
            reads = {*CHARTS[chart_id].datasets, "organisation", *scope_reads}
            if not (reads & changed):
                continue
            if chart_id in TEAM_LOCAL_CHARTS and teams_kept(reads & changed):
                continue
            old_key = ("chart", chart_id, scope, _inputs(old.content, reads))
            try:
                if old_key not in self._results and previous is not None:
                    self._chart_frame(previous, chart_id, scope, resolved)
                was = self._results.get(old_key)
                if was is None:
                    return False
                self._chart_frame(state, chart_id, scope, resolved)
            except ScopeError:
                return False
            if self._results.get(self._chart_key(state, chart_id, scope)) != was:
                return False
        return True

    def _teams_kept(
        self,
        old: _Published,
        previous: _State | None,
        state: _State,
        datasets: set[str],
        teams: frozenset[int],
    ) -> bool:
        """Are ``teams``' rows of each of ``datasets`` (and of the frames derived from it) in
        ``state`` what they were at ``old``? False when that cannot be told."""
        for dataset_id in datasets:
            new = self._team_rows(state, dataset_id)
            was = self._team_digests.get((dataset_id, old.content.get(dataset_id)))
            if was is None and previous is not None:
                if previous.versions.get(dataset_id) == old.content.get(dataset_id):
                    was = self._team_rows(previous, dataset_id)
            if new is None or was is None:
                return False
            if any(new.get(team) != was.get(team) for team in teams):
                return False
        return True

    def _team_rows(self, state: _State, dataset_id: str) -> dict[Any, Hashable] | None:
        """Team id -> a digest of that team's rows of ``dataset_id`` in ``state`` and of the
        frames derived from it (in order); None if it has no ``team_id`` column. Once per
        dataset content (O(rows))."""
        key = (dataset_id, state.versions.get(dataset_id))
        with self._lock:
            found = self._team_digests.get(key)
        if found is not None:
            return found
        if dataset_id not in state.snapshots:
            return None
        frame = state.frames[dataset_id]
        if "team_id" not in frame.columns:
            return None
        parts = [frame] + [
            state.frames.derived(frame, name, build)
            for name, build in DERIVED_FRAMES.get(dataset_id, ())
        ]
        try:
            digests = [_rows_by_team(part) for part in parts]
        except (TypeError, KeyError, ValueError):  # unhashable values, a team id not a number
            return None
        found = {team: tuple(d.get(team) for d in digests) for team in set().union(*digests)}
        with self._lock:
            self._team_digests[key] = found
            while len(self._team_digests) > TEAM_DIGESTS_KEPT:
                self._team_digests.popitem(last=False)
        return found

    def _history_changed(self, before: Any, after: Any) -> frozenset[str] | None:
        """The scopes whose history rows were written after stamp ``before`` (one query per
        pair of stamps); None if that cannot be told."""
        if before is None or after is None:
            return None
        key = (before, after)
        with self._lock:
            if key in self._history_changes:
                return self._history_changes[key]
        try:
            found: frozenset[str] | None = frozenset(self.store.history_scopes_since(before))
        except Exception:  # render again rather than guess
            log.exception("could not read which scopes' history changed")
            found = None
        with self._lock:
            self._history_changes[key] = found
            while len(self._history_changes) > PUBLISHED_KEPT:
                self._history_changes.pop(next(iter(self._history_changes)))
        return found

    def _compute_recent(self, state: _State, stop: threading.Event) -> int:
        """The values of the scopes viewed most recently, newest first, for ``state``: what
        their pages will ask for at their next poll. Stops when a newer version lands."""
        with self._lock:
            recent = list(reversed(self._recent))
        done = 0
        for scope, ids in recent:
            if stop.is_set() or self._state is not state:
                break
            try:
                self._values(state, scope, ids)
            except ScopeError:
                continue  # e.g. a team that the new organisation no longer has
            done += 1
        return done

    def latest(self, dataset_id: str) -> Snapshot | None:
        """The latest good snapshot of a dataset as loaded here (None: none yet). What the
        store's ``latest`` returns, without a query once this version is loaded."""
        return self._current().snapshots.get(dataset_id)

    def has_snapshots(self) -> bool:
        return bool(self._current().snapshots)

    def snapshot_as_of(self) -> dt.date | None:
        """The reporting date the latest snapshots were computed for (the most recent)."""
        days = [s.meta.as_of for s in self._current().snapshots.values()]
        return max(days) if days else None

    def _cached(self, key: tuple[Any, ...], build: Callable[[], T]) -> T:
        """The cached result for ``key`` (whose last part is its Inputs), built on a miss."""
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = build()
        with self._lock:
            # A thread still on an older state must not put back what the new one evicted.
            if self._state is None or self._state.holds(key[-1]):
                self._cache[key] = value
                while len(self._cache) > CACHE_ENTRIES:
                    self._cache.popitem(last=False)
        return value

    def _remember_shown(self, key: tuple[Any, ...], shown: Hashable) -> None:
        with self._lock:
            self._results[key] = shown
            self._results.move_to_end(key)
            while len(self._results) > RESULTS_KEPT:
                self._results.popitem(last=False)

    @staticmethod
    def _scope_reads(scope: Scope) -> tuple[str, ...]:
        """The dataset a scope is resolved against (its teams or cost centres)."""
        if scope.is_borough:
            return ()
        return ("budgets",) if scope.kind == "cost_centre" else ("organisation",)

    def _frames(self, state: _State) -> PartitionedFrames:
        return state.frames

    def _period(self, state: _State, datasets: Sequence[str]) -> ReportingPeriod:
        days = [state.snapshots[d].meta.as_of for d in datasets if d in state.snapshots]
        return ReportingPeriod.for_date(max(days) if days else self.settings.reporting_date())

    def _input(
        self, state: _State, resolved: ResolvedScope, datasets: Sequence[str]
    ) -> MeasureInput:
        return MeasureInput(
            self._frames(state),
            resolved,
            self._period(state, datasets),
            self._population,
            self._thresholds,
        )

    # --- scopes ----------------------------------------------------------------------------

    def resolve(self, scope: Scope) -> ResolvedScope:
        """The team ids and cost centres a scope covers; ScopeError for unknown ids."""
        state = self._current()
        key = ("resolve", scope, state.inputs(self._scope_reads(scope)))
        return self._cached(key, lambda: self._resolve(state, scope))

    def _resolve(self, state: _State, scope: Scope) -> ResolvedScope:
        if scope.is_borough:
            return resolve(scope, pd.DataFrame(), ())
        if scope.kind == "cost_centre":
            if "budgets" not in state.snapshots:
                raise ScopeError(f"cannot check {scope}: the budgets dataset has no snapshot yet")
            codes = state.snapshots["budgets"].frame["cost_centre_code"].dropna()
            return resolve(scope, pd.DataFrame(), set(codes.astype(str)))
        if "organisation" not in state.snapshots:
            raise ScopeError(f"cannot check {scope}: the organisation dataset has no snapshot yet")
        frame = state.snapshots["organisation"].frame
        # The tree's look-ups once per version, not a pass over the tree per scope.
        key = ("organisation", state.inputs(["organisation"]))
        tree = self._cached(key, lambda: Organisation.of(frame))
        return resolve(scope, tree, ())

    # --- the catalogue and values ------------------------------------------------------------

    def catalogue(self, tier: Tier | None = None) -> list[Indicator]:
        """Every indicator's declaration (of one tier if given), in page order."""
        return [
            d.indicator
            for d in self._definitions.values()
            if tier is None or d.indicator.tier == tier
        ]

    def definition(self, indicator_id: str) -> Definition:
        try:
            return self._definitions[indicator_id]
        except KeyError:
            raise KeyError(f"unknown indicator: {indicator_id!r}") from None

    def applicable(self, scope: Scope) -> list[str]:
        return [key for key, d in self._definitions.items() if d.applies_to(scope)]

    def freshness(self, scope: Scope, ids: Sequence[str]) -> list[Freshness]:
        """How fresh each of ``ids`` is in ``scope`` (as a tile's freshness line says), from
        the snapshots' metadata alone: no measure runs. Not applicable: no time."""
        state = self._current()
        found = []
        for indicator_id in ids:
            definition = self._definitions.get(indicator_id)
            if definition is None or not definition.applies_to(scope):
                found.append(Freshness())
                continue
            datasets = definition.indicator.datasets
            computed_at, stale, errors = self._freshness(state, datasets)
            shown = all(d in state.snapshots for d in datasets)
            found.append(Freshness(computed_at, stale, bool(errors) and shown))
        return found

    def values(
        self, scope: Scope, ids: Sequence[str] | None = None, *, remember: bool = True
    ) -> list[IndicatorValue]:
        """Values of the given indicators (default: every one that applies to the scope).
        ``remember``: the preloader computes them for each new version (the JSON API's
        views; a page's tiles are warmed by the render cache instead, with its answer)."""
        wanted = tuple(self.applicable(scope) if ids is None else ids)
        found = self._values(self._current(), scope, wanted)
        if not remember:
            return found
        with self._lock:  # what the preloader computes for the next version
            self._recent[(scope, wanted)] = None
            self._recent.move_to_end((scope, wanted))
            while len(self._recent) > RECENT_VIEWS:
                self._recent.popitem(last=False)
        return found

    def _values(self, state: _State, scope: Scope, ids: Sequence[str]) -> list[IndicatorValue]:
        key = ("resolve", scope, state.inputs(self._scope_reads(scope)))
        resolved = self._cached(key, lambda: self._resolve(state, scope))
        return [self._value(state, self.definition(key), resolved) for key in ids]

    def result_version(self, indicator_id: str, scope: Scope) -> Hashable:
        """What the indicator's value for ``scope`` is computed from: the versions of the
        datasets it reads (and of the scope's teams or cost centres) and which of them failed
        their latest attempt. While this is unchanged, so is the value (freshness aside)."""
        state = self._current()
        definition = self.definition(indicator_id)
        failing = tuple(
            dataset_id
            for dataset_id in definition.indicator.datasets
            if getattr(getattr(state.status.get(dataset_id), "last_attempt", None), "status", "ok")
            != "ok"
        )
        return self._measure_key(state, indicator_id, scope)[-1], failing

    def value(self, indicator_id: str, scope: Scope) -> IndicatorValue:
        return self.values(scope, [indicator_id])[0]

    def drilldown(self, indicator_id: str, scope: Scope) -> pd.DataFrame:
        """The rows the number counts (for a count indicator, exactly ``value`` rows)."""
        return self.drilldown_view(indicator_id, scope).copy()

    def drilldown_view(self, indicator_id: str, scope: Scope) -> pd.DataFrame:
        """``drilldown`` without the copy: the cached frame itself, which the caller must not
        change (a grid that only filters, sorts and slices it). Team names are added once per
        version, not per request (a borough list at 100x holds over a million rows)."""
        definition = self.definition(indicator_id)
        state = self._current()
        resolved = self.resolve(scope)
        measurement, _error = self._measure(state, definition, resolved)
        rows = measurement.rows if measurement is not None else None
        if rows is None:
            return pd.DataFrame()
        key = self._measure_key(state, definition.id, resolved.scope)
        inputs = state.inputs(
            set(self._reads[indicator_id]) | set(self._scope_reads(scope)) | {"organisation"}
        )
        return self._cached(("named", *key[1:-1], inputs), lambda: self._named(state, rows))

    def _measure(
        self, state: _State, definition: Definition, resolved: ResolvedScope
    ) -> tuple[Measurement | None, str | None]:
        if not definition.applies_to(resolved.scope):
            raise NotApplicable(f"{definition.id} does not apply to scope {resolved.scope}")
        missing = [d for d in definition.indicator.datasets if d not in state.snapshots]
        if missing:
            return None, f"no good snapshot of {', '.join(missing)}"

        key = self._measure_key(state, definition.id, resolved.scope)

        def build() -> tuple[Measurement | None, str | None]:
            data = self._input(state, resolved, definition.indicator.datasets)
            try:
                if definition.id == "team_matrix":
                    # As the page has it: recorded in the daily history where it can be
                    # (computing every team's measures takes minutes at regional scale).
                    result = Measurement(None, rows=self._matrix_for(state, resolved)), None
                else:
                    result = definition.measure(data), None
            except Exception as exc:  # one broken measure marks only its own tile
                log.exception("measure %s failed for %s", definition.id, resolved.scope)
                result = None, f"could not compute: {exc.__class__.__name__}: {exc}"
            self._remember_shown(key, _shown(result, whole=definition.chart))
            return result

        return self._cached(key, build)

    def _measure_key(self, state: _State, indicator_id: str, scope: Scope) -> tuple[Any, ...]:
        reads = self._reads[indicator_id].union(self._scope_reads(scope))
        return ("measure", indicator_id, scope, state.inputs(reads))

    def _value(
        self, state: _State, definition: Definition, resolved: ResolvedScope
    ) -> IndicatorValue:
        indicator = definition.indicator
        measurement, error = self._measure(state, definition, resolved)
        computed_at, stale, dataset_errors = self._freshness(state, indicator.datasets)
        errors = [e for e in (error, *dataset_errors) if e]
        comparator = (
            {"label": indicator.england_label or "England", "value": indicator.england}
            if indicator.england is not None
            else None
        )
        common = dict(
            id=indicator.id,
            title=indicator.title,
            scope=str(resolved.scope),
            unit=indicator.unit,
            polarity=indicator.polarity,
            comparator=comparator,
            computed_at=computed_at,
            stale=stale,
            error="; ".join(errors) or None,
        )
        if measurement is None:
            return IndicatorValue(value=None, status="failed", **common)
        thresholds = self._thresholds.get(indicator.id)
        extra: dict[str, Any] = dict(measurement.extra)
        if definition.chart:
            rows = measurement.rows if measurement.rows is not None else pd.DataFrame()
            extra["series"] = _records(self._named(state, rows))
        # A failed latest attempt keeps the last good value on show, stale, with the error.
        status = "ok" if measurement.value is not None or definition.chart else "no_data"
        if dataset_errors:
            status = "failed"
        return IndicatorValue(
            value=measurement.value,
            rag=rag_of(definition, measurement, thresholds),
            numerator=measurement.numerator,
            denominator=measurement.denominator,
            status=status,
            extra=extra,
            **common,
        )

    def _freshness(
        self, state: _State, datasets: Sequence[str]
    ) -> tuple[dt.datetime | None, bool, list[str]]:
        """(oldest computed_at, stale?, errors) over an indicator's datasets.

        Stale: the last good snapshot is older than twice the dataset's refresh interval, or
        the latest attempt failed (the last good value is shown, with the error).
        """
        now = dt.datetime.now(dt.UTC)
        computed: list[dt.datetime] = []
        stale = False
        errors: list[str] = []
        for dataset_id in datasets:
            snapshot = state.snapshots.get(dataset_id)
            if snapshot is not None:
                computed.append(snapshot.meta.computed_at)
                limit = 2 * self._refresh.get(dataset_id, DEFAULT_REFRESH)
                if now - snapshot.meta.computed_at > limit:
                    stale = True
            status = state.status.get(dataset_id)
            attempt = getattr(status, "last_attempt", None)
            if attempt is not None and attempt.status != "ok":
                stale = True
                errors.append(f"{dataset_id}: {attempt.error or 'refresh failed'}")
        return (min(computed) if computed else None), stale, errors

    # --- charts, matrix, history ------------------------------------------------------------

    def chart(self, chart_id: str, scope: Scope) -> pd.DataFrame:
        """Chart data (ids in dashboard/indicators/charts.py). Empty when its data is missing."""
        try:
            chart = CHARTS[chart_id]
        except KeyError:
            raise KeyError(f"unknown chart: {chart_id!r}; known: {', '.join(CHARTS)}") from None
        applies = scope.is_borough or (
            not chart.borough_only
            and (
                (chart.tier == "team" and scope.is_teams)
                or (chart.tier == "budget" and scope.kind == "cost_centre")
            )
        )
        if not applies:
            raise NotApplicable(f"chart {chart_id} does not apply to scope {scope}")
        return self._chart_frame(self._current(), chart_id, scope, self.resolve(scope)).copy()

    def _chart_frame(
        self, state: _State, chart_id: str, scope: Scope, resolved: ResolvedScope
    ) -> pd.DataFrame:
        """The chart's rows in ``state`` (cached while it is current): not to be changed."""
        chart = CHARTS[chart_id]
        if any(d not in state.snapshots for d in chart.datasets):
            return pd.DataFrame()
        key = self._chart_key(state, chart_id, scope)

        def build() -> pd.DataFrame:
            frame = self._named(state, chart.build(self._input(state, resolved, chart.datasets)))
            self._remember_shown(key, _shown(frame, whole=True))
            return frame

        return self._cached(key, build)

    def chart_figure(
        self,
        chart_id: str,
        scope: Scope,
        draw: Callable[[pd.DataFrame], T],
        variant: Hashable = None,
    ) -> T:
        """``draw(self.chart(chart_id, scope))``, kept with the chart's data: drawn again only
        when the chart's rows change (``variant``: anything else ``draw`` depends on), not
        whenever a dataset it reads has a new version. At regional scale a workforce refresh
        changes one team's caseload chart and leaves hundreds of others' rows as they were.
        The result is shared: callers must not change it."""
        if chart_id not in CHARTS:
            return draw(self.chart(chart_id, scope))  # says which charts there are
        chart_key = self._chart_key(self._current(), chart_id, scope)

        def content() -> Hashable:
            try:
                return frame_digest(self.chart(chart_id, scope))
            except TypeError:  # a value pandas cannot hash: keyed by the versions read
                return chart_key[-1]

        content_key = self._cached(("chart-content", *chart_key[1:]), content)
        return self._cached(
            # Keyed by content, so kept across versions (no inputs to go stale: ``()``).
            ("figure", *chart_key[1:-1], variant, content_key, ()),
            lambda: draw(self.chart(chart_id, scope)),
        )

    def _chart_key(self, state: _State, chart_id: str, scope: Scope) -> tuple[Any, ...]:
        # _named reads the organisation (team names).
        reads = {*CHARTS[chart_id].datasets, "organisation", *self._scope_reads(scope)}
        return ("chart", chart_id, scope, state.inputs(reads))

    def team_matrix(self, scope: Scope) -> pd.DataFrame:
        """One row per team in scope; per team-tier indicator ``<id>`` (value) and ``<id>_rag``."""
        if not (scope.is_borough or scope.is_teams):
            raise NotApplicable(f"the team matrix does not apply to scope {scope}")
        state = self._current()
        resolved = self.resolve(scope)
        definition = self._definitions["team_matrix"]
        if any(d not in state.snapshots for d in definition.indicator.datasets):
            return pd.DataFrame()
        return self._matrix_for(state, resolved).copy()

    def _matrix_for(self, state: _State, resolved: ResolvedScope) -> pd.DataFrame:
        """The team matrix of ``resolved``: recorded, pending, or computed (``team_matrix``).
        Also what the ``team_matrix`` indicator's value holds (the JSON API asks for it)."""
        scope = resolved.scope
        definition = self._definitions["team_matrix"]
        recorded = self._recorded_matrix(state, resolved)
        if recorded is not None:
            return recorded
        teams = resolved.team_ids
        count = len(self.teams()) if teams is None else len(teams)
        if count > MATRIX_COMPUTED_TEAMS:
            # Nothing recorded for the day yet (the scheduler's first history run after a
            # start takes minutes at regional scale): computing 11 measures for each of
            # thousands of teams in every web worker would take those minutes from every page.
            pending = pd.DataFrame()
            pending.attrs["pending_teams"] = count
            return pending
        data = self._input(state, resolved, definition.indicator.datasets)
        reads = self._reads["team_matrix"].union(self._scope_reads(scope))
        key = ("matrix", scope, state.inputs(reads))
        return self._cached(key, lambda: self._matrix_frame(state, data))

    def _recorded_matrix(self, state: _State, resolved: ResolvedScope) -> pd.DataFrame | None:
        """The matrix from the daily history, which the scheduler writes after each refresh
        having just computed every team's values: so a web worker reads one day's rows instead
        of running every team-tier measure for every team (minutes at regional scale, where a
        borough-wide view has over a thousand teams). ``attrs["recorded_at"]`` says when.

        None (compute it) until history holds any team's values for the reporting day, e.g.
        before the first history run. A cell the history lacks (a newly declared indicator, a
        new team, a value that failed when recorded) is computed alone, through the cache.
        Between a refresh and the next history write (seconds to a couple of minutes) the matrix
        shows the values recorded after the previous refresh, with that time; each cell opens
        the team's view, which is computed from the latest snapshots."""
        if state.versions.get(HISTORY) is None or "organisation" not in state.snapshots:
            return None
        reads = {HISTORY, *self._reads["team_matrix"], *self._scope_reads(resolved.scope)}
        key = ("matrix-recorded", resolved.scope, state.inputs(reads))
        return self._cached(key, lambda: self._read_matrix(state, resolved))

    def _recorded_cells(
        self, state: _State, day: dt.date
    ) -> tuple[dict[tuple[str, str], Any], dt.datetime | None]:
        """One day's recorded team values of the matrix's columns, by (scope, indicator)."""

        def read() -> tuple[dict[tuple[str, str], Any], dt.datetime | None]:
            ids = [c.id for c in self._matrix_columns]
            found, recorded_at = self.store.history_day(day, ids, "team:")
            cells = {(row.scope, row.indicator_id): row for row in found.itertuples(index=False)}
            return cells, recorded_at

        return self._cached(("history-day", day, state.inputs([HISTORY])), read)

    def _read_matrix(self, state: _State, resolved: ResolvedScope) -> pd.DataFrame | None:
        columns = self._matrix_columns
        datasets = sorted({d for c in columns for d in c.indicator.datasets})
        day = self._period(state, datasets).as_of
        cells, recorded_at = self._recorded_cells(state, day)
        if not cells:
            return None  # nothing recorded for the day yet: compute the matrix
        organisation = state.snapshots["organisation"].frame
        teams = organisation[organisation["org_level"] == "TEAM"]
        if resolved.team_ids is not None:
            teams = teams[teams["org_id"].astype(int).isin(resolved.team_ids)]
        names = dict(zip(organisation["org_id"].astype(int), organisation["name"], strict=True))
        missing = sum(
            (f"team:{int(org_id)}", definition.id) not in cells
            for org_id in teams["org_id"]
            for definition in columns
        )
        compute_missing = missing <= MATRIX_COMPUTED_CELLS
        rows = []
        for org_id, name, parent in zip(
            teams["org_id"], teams["name"], teams["parent_org_id"], strict=True
        ):
            row: dict[str, object] = {
                "team_id": int(org_id),
                "team_name": str(name),
                "service_id": None if pd.isna(parent) else int(parent),
                "service_name": None if pd.isna(parent) else names.get(int(parent)),
            }
            for definition in columns:
                cell = cells.get((f"team:{int(org_id)}", definition.id))
                if cell is None and not compute_missing:
                    measured = Measurement(None)  # shown as not recorded yet
                elif cell is None:  # not recorded: this cell alone, as the team's page has it
                    measured, _error = self._measure(
                        state, definition, team_scope(int(org_id), str(name))
                    )
                    measured = measured if measured is not None else Measurement(None)
                else:
                    measured = Measurement(
                        _number(cell.value, definition.indicator.unit),
                        _number(cell.numerator, "count"),
                        _number(cell.denominator, "number"),
                    )
                thresholds = self._thresholds.get(definition.id, definition.indicator.thresholds)
                row[definition.id] = measured.value
                row[f"{definition.id}_rag"] = rag_of(definition, measured, thresholds)
            rows.append(row)
        frame = pd.DataFrame(rows)
        frame.attrs["recorded_at"] = recorded_at
        if not compute_missing:
            frame.attrs["unrecorded_cells"] = missing
        return frame

    def _matrix_frame(self, state: _State, data: MeasureInput) -> pd.DataFrame:
        def cached(definition: Definition, team: MeasureInput) -> Measurement:
            if any(d not in state.snapshots for d in definition.indicator.datasets):
                return Measurement(None)  # e.g. a newly declared indicator not yet refreshed
            # The team page's own period, so the cell and the tile are one cached result.
            team = replace(team, period=self._period(state, definition.indicator.datasets))
            key = self._measure_key(state, definition.id, team.scope.scope)
            found = self._cached(key, lambda: (definition.measure(team), None))[0]
            return found if found is not None else definition.measure(team)

        return team_matrix_frame(data, cached, self._matrix_columns)

    def history(self, indicator_id: str, scope: Scope) -> pd.DataFrame:
        """Daily history [day, value, numerator, denominator] recorded by the refresher.

        Recorded for the borough, each team and each cost centre; a service or set of teams is
        the sum of its teams' numerators over the sum of their denominators, day by day.
        """
        definition = self.definition(indicator_id)
        if not definition.applies_to(scope):
            raise NotApplicable(f"{indicator_id} does not apply to scope {scope}")
        # Keyed by the history's last write, so a cached copy is never stale.
        state = self._current()
        key = ("history", indicator_id, scope, state.inputs([HISTORY, *self._scope_reads(scope)]))
        return self._cached(key, lambda: self._history(definition, scope)).copy()

    def prefetch_history(self, indicator_ids: Iterable[str], scope: Scope) -> None:
        """Read the daily history of ``indicator_ids`` in ``scope`` that is not cached yet in ONE
        store query (a page's tiles: one query, not one per tile and team), then cache each
        indicator's as ``history`` would compute it."""
        state = self._current()
        inputs = state.inputs([HISTORY, *self._scope_reads(scope)])
        wanted = [
            self.definition(i)
            for i in dict.fromkeys(indicator_ids)
            if i in self._definitions and self.definition(i).applies_to(scope)
        ]
        with self._lock:
            wanted = [d for d in wanted if ("history", d.id, scope, inputs) not in self._cache]
        if not wanted:
            return
        names = self._history_scopes(scope)
        frame = self.store.histories([d.id for d in wanted], names)
        columns = ["day", "value", "numerator", "denominator"]
        own = frame[frame["scope"] == str(scope)]
        teams = frame[frame["scope"] != str(scope)]  # empty unless a service or set of teams
        by_indicator = dict(tuple(own.groupby("indicator_id", sort=False)))
        team_rows = dict(tuple(teams.groupby("indicator_id", sort=False)))
        empty = frame[columns].iloc[0:0]

        def history(definition: Definition) -> pd.DataFrame:
            """``_history`` over the rows read: the scope's own series, or its teams' summed
            day by day (one group-by for all its teams, not a frame per team)."""
            rows = team_rows.get(definition.id)
            if rows is None:
                found = by_indicator.get(definition.id)
                return empty.copy() if found is None else found[columns].reset_index(drop=True)
            return self._summed_history(definition, rows)

        for definition in wanted:
            key = ("history", definition.id, scope, inputs)
            self._cached(key, lambda d=definition: history(d))

    def _history_scopes(self, scope: Scope) -> list[str]:
        """The recorded scopes a scope's history is made of: itself, and its teams if it is
        neither the borough nor one team or cost centre (recorded for those only)."""
        if scope.is_borough or scope.kind in ("team", "cost_centre"):
            return [str(scope)]
        resolved = self.resolve(scope)
        return [str(scope), *(str(Scope.team(t)) for t in sorted(resolved.team_ids or ()))]

    def _history(self, definition: Definition, scope: Scope) -> pd.DataFrame:
        """One indicator's daily history in ``scope``, a store query per recorded series."""
        indicator_id = definition.id
        if scope.is_borough or scope.kind in ("team", "cost_centre"):
            return self.store.history(indicator_id, str(scope))
        resolved = self.resolve(scope)
        parts = [
            self.store.history(indicator_id, str(Scope.team(t)))
            for t in sorted(resolved.team_ids or ())
        ]
        parts = [p for p in parts if not p.empty]
        if not parts:
            return self.store.history(indicator_id, str(scope))
        return self._summed_history(definition, pd.concat(parts))

    @staticmethod
    def _summed_history(definition: Definition, rows: pd.DataFrame) -> pd.DataFrame:
        """Several teams' recorded rows of one indicator as one series: numerators and
        denominators summed day by day, and a rate's value worked out from the sums."""
        daily = rows.groupby("day", as_index=False)[["value", "numerator", "denominator"]].sum(
            min_count=1
        )
        unit = definition.indicator.unit
        if unit in ("percent", "ratio"):
            scale = 100.0 if unit == "percent" else 1.0
            den = daily["denominator"].where(daily["denominator"] != 0)
            daily["value"] = (scale * daily["numerator"] / den).round(2)
        return daily

    # --- lists and views -------------------------------------------------------------------

    def teams(self) -> pd.DataFrame:
        """Every team: org_id, name, service_id, service_name, service_area."""
        state = self._current()
        if "organisation" not in state.snapshots:
            return pd.DataFrame(
                columns=["org_id", "name", "service_id", "service_name", "service_area"]
            )
        org = state.snapshots["organisation"].frame
        names = dict(zip(org["org_id"], org["name"], strict=True))
        teams = org[org["org_level"] == "TEAM"]
        return pd.DataFrame(
            {
                "org_id": teams["org_id"].astype(int),
                "name": teams["name"],
                "service_id": teams["parent_org_id"],
                "service_name": teams["parent_org_id"].map(names),
                "service_area": teams["service_area"],
            }
        ).reset_index(drop=True)

    def services(self) -> pd.DataFrame:
        """Every SERVICE node: org_id, name, service_area."""
        state = self._current()
        if "organisation" not in state.snapshots:
            return pd.DataFrame(columns=["org_id", "name", "service_area"])
        org = state.snapshots["organisation"].frame
        services = org[org["org_level"] == "SERVICE"]
        return services[["org_id", "name", "service_area"]].reset_index(drop=True)

    def cost_centres(self) -> pd.DataFrame:
        """Every cost centre: code, description, service_area, budget holder, revised budget."""
        state = self._current()
        if "budgets" not in state.snapshots:
            return pd.DataFrame(
                columns=[
                    "cost_centre_code",
                    "description",
                    "service_area",
                    "budget_holder_worker_id",
                    "budget_holder",
                    "revised_budget",
                ]
            )
        frame = state.snapshots["budgets"].frame
        return pd.DataFrame(
            {
                "cost_centre_code": frame["cost_centre_code"],
                "description": frame["description"],
                "service_area": frame["service_area"],
                "budget_holder_worker_id": frame["budget_holder_worker_id"],
                "budget_holder": full_name(frame["holder_first_names"], frame["holder_last_names"]),
                "revised_budget": frame["revised_budget"],
            }
        )

    def family(self, person_id: int, scope: Scope) -> pd.DataFrame:
        """The child's family group members and their open work (cases and open steps).

        The child must have an open case or open step in the scope. One row per member and open
        item; a member with no open work has one row with an empty ``kind``.
        """
        state = self._current()
        resolved = self.resolve(scope)
        needed = ("open_cases", "open_steps", "family_members")
        if any(d not in state.snapshots for d in needed):
            return pd.DataFrame()
        cases = state.snapshots["open_cases"].frame
        steps = state.snapshots["open_steps"].frame
        members = state.snapshots["family_members"].frame
        person_id = int(person_id)
        in_scope = (resolved.filter_teams(cases)["person_id"] == person_id).any() or (
            resolved.filter_teams(steps)["person_id"] == person_id
        ).any()
        if not in_scope:
            raise NotApplicable(f"child {person_id} has no open case or open step in {scope}")
        groups = set(members.loc[members["person_id"] == person_id, "group_id"].dropna())
        family = members[members["group_id"].isin(list(groups))]
        people = sorted(set(family["person_id"].dropna().astype(int)) | {person_id})
        work = pd.concat(
            [
                pd.DataFrame(
                    {
                        "person_id": cases["person_id"],
                        "kind": "case",
                        "item_id": cases["referral_id"],
                        "description": "Open case",
                        "category": "CASE",
                        "status": "OPEN",
                        "due_date": pd.NaT,
                        "worker_name": full_name(
                            cases["worker_first_names"], cases["worker_last_names"]
                        ),
                        "team_id": cases["team_id"],
                    }
                )[cases["person_id"].isin(people).fillna(False).astype(bool)],
                pd.DataFrame(
                    {
                        "person_id": steps["person_id"],
                        "kind": "step",
                        "item_id": steps["workflow_step_id"],
                        "description": steps["step_description"],
                        "category": steps["category"],
                        "status": steps["step_status"],
                        "due_date": steps["due_date"],
                        "worker_name": full_name(
                            steps["worker_first_names"], steps["worker_last_names"]
                        ),
                        "team_id": steps["team_id"],
                    }
                )[steps["person_id"].isin(people).fillna(False).astype(bool)],
            ],
            ignore_index=True,
        )
        who = family.drop_duplicates("person_id")[
            ["person_id", "group_id", "first_names", "last_name", "date_of_birth"]
        ]
        everyone = pd.DataFrame({"person_id": pd.array(people, dtype="Int64")}).merge(
            who.assign(person_id=who["person_id"].astype("Int64")), on="person_id", how="left"
        )
        everyone["child_name"] = full_name(everyone["first_names"], everyone["last_name"])
        out = everyone.drop(columns=["first_names", "last_name"]).merge(
            work.assign(person_id=work["person_id"].astype("Int64")), on="person_id", how="left"
        )
        return self._named(
            state, out.sort_values(["person_id", "kind", "due_date"]).reset_index(drop=True)
        )

    def dataset_status(self) -> list[dict[str, Any]]:
        """Per dataset: title, refresh, computed_at, age, status, error, rows, as_of."""
        state = self._current()
        now = dt.datetime.now(dt.UTC)
        out = []
        for dataset_id in sorted(set(self._refresh) | set(state.status)):
            status = state.status.get(dataset_id)
            good = getattr(status, "last_good", None)
            attempt = getattr(status, "last_attempt", None)
            refresh = self._refresh.get(dataset_id, DEFAULT_REFRESH)
            age = (now - good.computed_at).total_seconds() if good is not None else None
            if good is None:
                state_text = "failed" if attempt is not None else "never"
            elif attempt is not None and attempt.status != "ok":
                state_text = "failed"
            elif age is not None and age > 2 * refresh.total_seconds():
                state_text = "stale"
            else:
                state_text = "ok"
            out.append(
                {
                    "dataset_id": dataset_id,
                    "title": self._titles.get(dataset_id, dataset_id),
                    "refresh_s": int(refresh.total_seconds()),
                    "computed_at": good.computed_at if good is not None else None,
                    "age_s": age,
                    "status": state_text,
                    "error": attempt.error
                    if attempt is not None and attempt.status != "ok"
                    else None,
                    "rows": good.row_count if good is not None else None,
                    "as_of": good.as_of if good is not None else None,
                    "version": good.version if good is not None else None,
                }
            )
        return out

    # --- helpers ---------------------------------------------------------------------------

    def _named(self, state: _State, frame: pd.DataFrame) -> pd.DataFrame:
        """Add ``team_name`` beside ``team_id`` so lists show names, not numbers."""
        if (
            "team_id" not in frame.columns
            or "team_name" in frame.columns
            or "organisation" not in state.snapshots
        ):
            return frame
        org = state.snapshots["organisation"].frame
        names = pd.Series(org["name"].to_numpy(dtype=object), index=org["org_id"].astype("int64"))
        names = names[~names.index.duplicated()]
        ids = pd.to_numeric(frame["team_id"], errors="coerce")
        found = ids.map(names)  # one vectorised look-up, not a Python call per row
        frame = frame.copy()
        position = list(frame.columns).index("team_id") + 1
        frame.insert(position, "team_name", found.astype(object).where(found.notna(), None))
        return frame


def _number(value: float, unit: str) -> float | int | None:
    """A recorded value as the measure returned it: None for missing, whole counts as ints."""
    if value is None or pd.isna(value):
        return None
    if unit == "count" and float(value).is_integer():
        return int(value)
    return float(value)


def _identity(snapshot: Snapshot) -> tuple[int, dt.datetime]:
    """A snapshot's version as the store's frame cache tells versions apart."""
    return snapshot.meta.version, snapshot.meta.computed_at


def _content(snapshot: Snapshot) -> Hashable:
    """What a snapshot's rows are: its digest (equal for a refresh that changed nothing), or
    its version when the digest is unknown."""
    return ("rows", snapshot.content) if snapshot.content else _identity(snapshot)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as JSON-ready records: ISO dates, None for missing, plain numbers."""
    out = []
    for row in frame.to_dict(orient="records"):
        clean: dict[str, Any] = {}
        for key, value in row.items():
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                clean[key] = None
            elif isinstance(value, pd.Timestamp | dt.date):
                clean[key] = (
                    value.date().isoformat()
                    if isinstance(value, pd.Timestamp)
                    else value.isoformat()
                )
            elif hasattr(value, "item"):
                clean[key] = value.item()
            else:
                clean[key] = value
        out.append(clean)
    return out


def _shown(result: Any, *, whole: bool = False) -> Hashable:
    """What a page shows of ``result`` (a measure's (Measurement, error), a chart's frame), as
    a small hashable digest. A Measurement's drill-down rows count by their number and columns
    (a list shows those; its rows come in blocks, never from a cached render), unless
    ``whole``: a chart-like indicator draws its rows."""
    if isinstance(result, pd.DataFrame):
        if whole:
            try:
                return frame_digest(result)
            except TypeError:  # a value pandas cannot hash: never the same
                return object()
        return ("rows", len(result), tuple(str(c) for c in result.columns))
    if isinstance(result, Measurement):
        return (
            "measurement",
            _shown(result.value),
            _shown(result.numerator),
            _shown(result.denominator),
            _shown(dict(result.extra), whole=True),
            None if result.rows is None else _shown(result.rows, whole=whole),
        )
    if isinstance(result, dict):
        return ("dict", tuple(sorted((str(k), _shown(v, whole=whole)) for k, v in result.items())))
    if isinstance(result, list | tuple):
        return ("seq", tuple(_shown(v, whole=whole) for v in result))
    if isinstance(result, float) and result != result:
        return "nan"
    if result is None or isinstance(result, str | int | float | bool | dt.date):
        return (type(result).__name__, result)
    return ("repr", type(result).__name__, repr(result))


def _rows_by_team(frame: pd.DataFrame) -> dict[Any, tuple[int, int, int]]:
    """Team id (None for rows without one) -> (rows, and two 64-bit digests of its rows'
    values in order): equal for a team whose rows are the same, in the same order."""
    if frame.empty:
        return {}
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype="uint64")
    codes, teams = pd.factorize(frame["team_id"], use_na_sentinel=True)
    order = np.argsort(codes, kind="stable")
    codes, hashes = codes[order], hashes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    counts = np.diff(np.r_[starts, len(codes)])
    rank = (np.arange(len(codes)) - np.repeat(starts, counts)).astype("uint64")
    with np.errstate(over="ignore"):
        weighted = np.add.reduceat(hashes * (rank * np.uint64(2) + np.uint64(1)), starts)
    xored = np.bitwise_xor.reduceat(hashes, starts)
    found = {}
    for start, count, total, xor in zip(starts, counts, weighted, xored, strict=True):
        code = codes[start]
        team = None if code < 0 else int(teams[code])
        found[team] = (int(count), int(total), int(xor))
    return found


def frame_digest(frame: pd.DataFrame) -> tuple[Any, ...]:
    """What a frame holds (its columns, their types, its index and every value), as a small
    hashable key: equal for equal frames, different (barring a 64-bit collision) otherwise."""
    rows = pd.util.hash_pandas_object(frame, index=True).to_numpy() if len(frame) else ()
    digest = hashlib.blake2b(bytes(memoryview(rows)) if len(frame) else b"", digest_size=16)
    return (
        tuple(str(c) for c in frame.columns),
        tuple(str(t) for t in frame.dtypes),
        len(frame),
        digest.hexdigest(),
    )
