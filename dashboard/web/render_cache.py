"""A per-worker cache of the render callbacks' responses, so a page view costs a look-up.

When a new snapshot lands, every open page fires its render callbacks again (tiles, charts,
daily history, the team matrix). Without this cache each of those requests builds the same
components and figures again for every user who looks at the same scope: 700 users of a borough
meant about 700 x 100-300 ms of CPU per new version (bench/RESULTS.md, Load). The response of a
render callback depends only on

- which callback and which of its outputs the page asked for (the request's ``output`` and
  ``outputs``: the page's tile, chart or indicator ids),
- the scope (the ``page-scope`` input), and
- the store's version (the data; the browser's own ``data-version`` input is only the trigger),

so the response bytes are kept per (callback, outputs, scope, store version) and served to every
user of that scope until the version changes, or for at most ``ttl_s`` (tiles show how old their
data is and when it went stale; that must not be frozen for longer than a minute).

Access is checked on every request, hit or miss: the guard has already checked the session and
the body's shape (``session.guard`` and ``callback_request_guard``), and here the scope is
checked against the logged-in user (``scope_or_abort``: 400 or 403, and no data) before anything
is served. Only callbacks whose responses hold aggregates are cached; lists of children are not
(each user's view of child-level rows is audited, so it is never served from a shared cache).

Concurrent requests for the same key wait for the one that is computing it (single flight), so a
burst after a new version costs one render per key per worker. Only 200 answers are kept.

Warming: the cache remembers the last request for each (callback, outputs, scope) asked in the
last ``RECENT_S`` seconds, with who asked (their checked access). When the worker's preloader
has loaded a new snapshot, ``install``'s warmer renders each of those again for the new version,
as that user, before the version is published to the browsers (``DataLayer.on_new_version``):
the burst of re-renders that follows every new snapshot is then answered from memory. A warmed
entry is still only served to a request whose own user passes ``scope_or_abort`` for its scope.
A request whose page shows nothing that changed between the version it was last rendered for
and the new one (``same``: e.g. a budget page when only the workforce was refreshed, a team
whose workers did not change when another team's did, or any page after a refresh that changed
no row) gets that answer carried over instead of rendered, with what does change with every
version, the tiles' freshness lines, drawn again (``refresh``: no measure runs). Each worker
carries its own answers over (cheaper than the store's round trips); only renders are shared.

Shared between workers (``shared``: the snapshot store's ``store_renders`` table, on by default
with a PostgreSQL store): a worker's browsers are its own, but a borough or service page is open
in every worker, and at regional scale it costs seconds to render. So each render is kept in the
store too (compressed bytes, aggregates only, pruned after minutes). A worker's warmer claims
each request before rendering it (one row insert: the first worker to claim renders it); the
requests another worker claimed are read from the store once it has rendered them (or rendered
here after ``SHARED_WAIT_S``, if it never does). A miss on the request path looks in the store
before rendering. The scope check is the same for a shared answer: ``scope_or_abort`` first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import dash
from flask import Response, g, request
from werkzeug.exceptions import HTTPException

from dashboard.web.session import scope_or_abort

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 60.0
DEFAULT_MAX_BYTES = 256 * 1024 * 1024  # per worker
SCOPE_INPUT = "page-scope"
VERSION_INPUT = "data-version"
# Pattern-matching component types whose render callbacks hold aggregates only (no child rows).
# A list's columns, its "N rows / Download" links and the digest of its rows are aggregates
# too: its rows come in blocks from another callback (``_list_rows``), never cached, each block
# audited.
AGGREGATE_TYPES = (
    "tile",
    "tile-body",
    "tile-meta",
    "chart",
    "history",
    "matrix",
    "list",
    "list-links",
    "list-rows",
)
EXTENSION_KEY = "csc_dashboard_render_cache"
# Requests remembered for warming: at most this many keys, asked within this many seconds.
RECENT_REQUESTS = 8192
RECENT_S = 900.0
# How long a warmer waits for the requests another worker claimed before rendering them itself.
SHARED_WAIT_S = 60.0
SHARED_LOOK_S = 0.25  # how often it looks meanwhile
SHARED_KEPT_S = 600.0  # shared renders older than this are pruned
# What the guard puts on ``flask.g`` about the user, which a render reads (``scoped_data``).
IDENTITY_ATTRIBUTES = ("username", "is_admin", "display_name", "access")


@dataclass(frozen=True)
class _Entry:
    body: bytes
    mimetype: str
    stored: float  # time.monotonic()


@dataclass(frozen=True)
class _Asked:
    """The last request for one (callback, outputs, scope), and who made it."""

    body: Any
    who: dict[str, Any]
    at: float  # time.monotonic()


class _Flight:
    """One computation in progress; other threads with the same key wait for it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.entry: _Entry | None = None


def shared_key(key: tuple[Hashable, ...]) -> str:
    """The store's name for a cache key (callback, outputs, scope, version)."""
    return hashlib.sha256(json.dumps(list(key)).encode()).hexdigest()


class RenderCache:
    """Response bytes by key, bounded in bytes, with a time limit per entry; optionally shared
    with the other workers through ``shared`` (a ``SnapshotStore``)."""

    def __init__(
        self,
        version: Callable[[], str],
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
        shared: Any = None,
    ) -> None:
        self.version = version
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self.clock = clock
        self.shared = shared
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._pruned = 0.0
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._bytes = 0
        self._flights: dict[Hashable, _Flight] = {}
        self._asked: OrderedDict[Hashable, _Asked] = OrderedDict()  # key without its version
        self._rendered: dict[Hashable, Hashable] = {}  # key without its version -> last version
        # Keys (without their version) whose last answer was rendered here, not read from the
        # store: this worker claims those first for a new version (its caches hold their data).
        self._own: set[Hashable] = set()
        # The version the preloader is warming: its answers do not expire before it is
        # published (a long warm would otherwise lose its first renders, here and shared).
        self._warming: Hashable | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.warmed = 0
        self.carried = 0
        self.fetched = 0  # answers read from the other workers' renders

    def remember(self, key: tuple[Hashable, ...], body: Any, who: dict[str, Any]) -> None:
        """Note that ``key``'s request (``body``) was asked by ``who``, for warming."""
        base = key[:-1]
        with self._lock:
            self._asked.pop(base, None)
            self._asked[base] = _Asked(body, who, self.clock())
            while len(self._asked) > RECENT_REQUESTS:
                self._asked.popitem(last=False)

    def recent(self) -> list[tuple[tuple[Hashable, ...], _Asked]]:
        """The requests remembered within ``RECENT_S``, newest first."""
        since = self.clock() - RECENT_S
        with self._lock:
            for base in [b for b, asked in self._asked.items() if asked.at < since]:
                del self._asked[base]
            return list(reversed(self._asked.items()))

    def count_warmed(self, rendered: int, carried: int = 0) -> None:
        with self._lock:
            self.warmed += rendered
            self.carried += carried

    def last_rendered(self, base: tuple[Hashable, ...]) -> tuple[Hashable, _Entry] | None:
        """(version, answer) of the newest answer kept for ``base`` (expired or not)."""
        with self._lock:
            version = self._rendered.get(base)
            entry = None if version is None else self._entries.get((*base, version))
        return None if entry is None else (version, entry)

    def carry(self, key: tuple[Hashable, ...], entry: _Entry, body: bytes | None = None) -> None:
        """Keep ``entry``'s answer for ``key`` too (or ``body`` in its place), as if rendered
        now."""
        self._keep(key, Response(entry.body if body is None else body, mimetype=entry.mimetype))

    def holds(self, key: Hashable) -> bool:
        with self._lock:
            return self._fresh(key) is not None

    def serve(self, key: Hashable, compute: Callable[[], Any], *, look: bool = True) -> Any:
        """The cached answer for ``key``, else the one another worker kept in the shared store
        (if ``look``), else ``compute()``'s (kept, and shared, when it is a 200)."""
        while True:
            with self._lock:
                entry = self._fresh(key)
                if entry is not None:
                    self.hits += 1
                    return Response(entry.body, mimetype=entry.mimetype)
                flight = self._flights.get(key)
                if flight is None:
                    flight = self._flights[key] = _Flight()
                    mine = True
                else:
                    mine = False
            if not mine:
                flight.done.wait()
                if flight.entry is not None:
                    with self._lock:
                        self.hits += 1
                    return Response(flight.entry.body, mimetype=flight.entry.mimetype)
                continue  # the computation failed or was refused: compute (or wait) again
            try:
                if look and self._shares(key):
                    found = self.fetch([key]).get(key)
                    if found is not None:
                        flight.entry = found
                        return Response(found.body, mimetype=found.mimetype)
                with self._lock:
                    self.misses += 1
                answer = compute()
                flight.entry = self._keep(key, answer)
                if flight.entry is not None:
                    self.share(key, flight.entry)
                    if isinstance(key, tuple):
                        with self._lock:
                            self._own.add(key[:-1])
                return answer
            finally:
                with self._lock:
                    self._flights.pop(key, None)
                flight.done.set()

    # --- shared with the other workers ---------------------------------------------------------

    def _shares(self, key: Hashable) -> bool:
        return self.shared is not None and isinstance(key, tuple)

    def claim(self, key: tuple[Hashable, ...]) -> bool:
        """May this worker render ``key``? (Always, without a shared store or when it fails.)"""
        if not self._shares(key):
            return True
        try:
            return bool(self.shared.claim_render(shared_key(key), self.worker))
        except Exception:  # the store is busy or down: render it here rather than wait
            log.warning("render cache: could not claim a render", exc_info=True)
            return True

    def share(self, key: Hashable, entry: _Entry) -> None:
        if not self._shares(key):
            return
        try:
            self.shared.put_render(shared_key(key), entry.body, entry.mimetype, self.worker)
        except Exception:  # the others render it themselves
            log.warning("render cache: could not share a render", exc_info=True)

    def fetch(self, keys: Iterable[tuple[Hashable, ...]]) -> dict[Hashable, _Entry]:
        """The answers the other workers kept for ``keys`` within ``ttl_s``, now kept here too."""
        names = {shared_key(key): key for key in keys if self._shares(key)}
        if not names:
            return {}
        try:
            found = self.shared.renders(names)
        except Exception:
            log.warning("render cache: could not read shared renders", exc_info=True)
            return {}
        now, clock = dt.datetime.now(dt.UTC), self.clock()
        kept: dict[Hashable, _Entry] = {}
        for name, render in found.items():
            age = max(0.0, (now - render.stored_at).total_seconds())
            if age > self.ttl_s and names[name][-1] != self._warming:
                continue
            answer = Response(render.body, mimetype=render.mimetype)
            entry = self._keep(names[name], answer, stored=clock - age)
            if entry is not None:
                kept[names[name]] = entry
        with self._lock:
            self.fetched += len(kept)
            self._own.difference_update(key[:-1] for key in kept)
        return kept

    def prune_shared(self) -> None:
        """Forget old shared renders (at most once a minute per worker)."""
        if self.shared is None or self.clock() - self._pruned < 60:
            return
        self._pruned = self.clock()
        try:
            self.shared.prune_renders(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=SHARED_KEPT_S))
        except Exception:
            log.warning("render cache: could not prune shared renders", exc_info=True)

    def begin_warming(self, version: Hashable) -> None:
        """``version``'s answers are kept, whatever their age, until ``restamp(version)``."""
        with self._lock:
            self._warming = version

    def restamp(self, version: Hashable) -> None:
        """Count the time limit of ``version``'s answers from now: the preloader rendered them
        before publishing the version, and no browser has seen them yet."""
        now = self.clock()
        with self._lock:
            if self._warming == version:
                self._warming = None
            for key, entry in self._entries.items():
                if isinstance(key, tuple) and key and key[-1] == version:
                    self._entries[key] = _Entry(entry.body, entry.mimetype, now)

    def _fresh(self, key: Hashable) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        warming = isinstance(key, tuple) and bool(key) and key[-1] == self._warming
        if not warming and self.clock() - entry.stored > self.ttl_s:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def _keep(self, key: Hashable, answer: Any, stored: float | None = None) -> _Entry | None:
        if not isinstance(answer, Response) or answer.status_code != 200:
            return None
        body = answer.get_data()
        if len(body) > self.max_bytes // 8:
            return None  # one huge answer must not push out everything else
        at = self.clock() if stored is None else stored
        entry = _Entry(body, answer.mimetype or "application/json", at)
        with self._lock:
            self._drop(key)
            self._entries[key] = entry
            if isinstance(key, tuple) and len(key) > 1:
                self._rendered[key[:-1]] = key[-1]
            self._bytes += len(body)
            while self._bytes > self.max_bytes and self._entries:
                self._drop(next(iter(self._entries)))
        return entry

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.body)

    def rendered_here(self, base: Hashable) -> bool:
        with self._lock:
            return base in self._own

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._rendered.clear()
            self._own.clear()
            self._bytes = 0


def request_key(body: Any, version: str) -> tuple[Hashable, Any] | None:
    """(key, requested scope) of a render request, or None if it is not one.

    The key holds the callback, the outputs asked for, the scope and the store version; the
    browser's ``data-version`` value is left out (it only triggers the render)."""
    if not isinstance(body, dict):
        return None
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        return None
    ids = {item.get("id"): item for item in inputs if isinstance(item, dict)}
    if set(ids) != {VERSION_INPUT, SCOPE_INPUT} or body.get("state"):
        return None
    scope = ids[SCOPE_INPUT].get("value")
    outputs = json.dumps(body.get("outputs"), sort_keys=True, separators=(",", ":"))
    return (body.get("output"), outputs, json.dumps(scope), version), scope


def aggregate_outputs(app: dash.Dash, types: Iterable[str] = AGGREGATE_TYPES) -> list[str]:
    """The ``output`` strings of the render callbacks (triggered by exactly the version and the
    scope) all of whose outputs are components of ``types``."""
    wanted = set(types)
    found = []
    for output, spec in app.callback_map.items():
        inputs = {(i["id"], i["property"]) for i in spec.get("inputs", [])}
        if inputs != {(VERSION_INPUT, "data"), (SCOPE_INPUT, "data")} or spec.get("state"):
            continue
        parts = output[2:-2].split("...") if output.startswith("..") else [output]
        kinds = set()
        for part in parts:
            ident = part.rsplit(".", 1)[0]
            kinds.add(json.loads(ident).get("type") if ident.startswith("{") else None)
        if kinds <= wanted:
            found.append(output)
    return found


def install(
    app: dash.Dash,
    cache: RenderCache,
    cached_outputs: Iterable[str],
    data: Any = None,
    same: Callable[[Any, Hashable, Hashable], bool] | None = None,
    refresh: Callable[[Any, bytes], bytes] | None = None,
) -> None:
    """Serve the callbacks whose ``output`` strings are in ``cached_outputs`` through ``cache``,
    and warm it for each new version ``data`` (a ``DataLayer``) preloads; ``same(body, old
    version, new version)`` says when a request's answer may be carried over unrendered, and
    ``refresh(body, old answer)`` gives the carried answer (run as the user who asked, for the
    new version: what changes with every version, the tiles' freshness lines, drawn again).

    Wraps the view function of ``/_dash-update-component``, so Flask's ``before_request`` hooks
    (the guard, the body check) still run first on every request."""
    endpoint = app.config.routes_pathname_prefix + "_dash-update-component"
    dispatch = app.server.view_functions[endpoint]
    wanted = frozenset(cached_outputs)
    missing = wanted - set(app.callback_map)
    if missing:
        raise ValueError(f"render cache: no such callback outputs: {sorted(missing)}")

    def cached_dispatch(*args: Any, **kwargs: Any) -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or body.get("output") not in wanted:
            return dispatch(*args, **kwargs)
        try:
            version = cache.version()
        except Exception:  # the store is down: the callback itself says so on each tile
            log.warning("render cache bypassed: version check failed", exc_info=True)
            return dispatch(*args, **kwargs)
        found = request_key(body, version)
        if found is None:
            return dispatch(*args, **kwargs)
        key, scope = found
        scope_or_abort(scope)  # this user, this scope: 400 / 403 before anything is served
        cache.remember(key, body, {name: g.get(name) for name in IDENTITY_ATTRIBUTES})
        return cache.serve(key, lambda: dispatch(*args, **kwargs))

    def render(key: tuple[Hashable, ...], asked: Any) -> bool:
        """Render ``key`` as the user who asked for it last; False if refused."""
        return as_asker(key, asked, lambda: cache.serve(key, dispatch, look=False))

    def carry(key: tuple[Hashable, ...], asked: Any, previous: _Entry) -> bool:
        """Carry ``previous`` over to ``key`` (refreshed as the user who asked); False if
        refused."""
        if refresh is None:
            cache.carry(key, previous)
            return True
        return as_asker(
            key, asked, lambda: cache.carry(key, previous, refresh(asked.body, previous.body))
        )

    def as_asker(key: tuple[Hashable, ...], asked: Any, work: Callable[[], Any]) -> bool:
        """Run ``work`` in a request for ``key``'s version as the user who asked ``key`` last;
        False if it was refused."""
        with app.server.test_request_context(endpoint, method="POST", json=asked.body):
            for name, value in asked.who.items():
                setattr(g, name, value)
            g.version_token = key[-1]  # what ``session.request_version`` returns
            try:
                work()
            except HTTPException as exc:  # e.g. a team the new organisation lacks
                log.info("render cache: not warmed (%s): %s", exc.code, key[0])
                return False
        return True

    def warm(version: str, superseded: Callable[[], bool]) -> int:
        """Render the recently asked requests for ``version``, each as the user who asked it
        last; returns how many were rendered here. Run by the preloader before it publishes
        ``version``, so the browsers' re-renders after a new snapshot find their answers.
        A request whose page shows nothing new (``same``) is carried over; with a shared store,
        each of the others is rendered by the first worker to claim it, and read from the store
        by the others."""
        done = carried = 0
        cache.begin_warming(version)
        todo = [((*base, version), asked) for base, asked in cache.recent()]
        todo = [(key, asked) for key, asked in todo if not cache.holds(key)]
        if todo and cache.shared is not None:  # what a worker that was quicker already did
            found = cache.fetch([key for key, _ in todo])
            todo = [(key, asked) for key, asked in todo if key not in found]
            # This worker's own renders first: its data layer still holds what they read, so
            # it renders them cheapest; the others' last, when they have mostly claimed them.
            todo.sort(key=lambda item: not cache.rendered_here(item[0][:-1]))
        theirs = []
        for key, asked in todo:
            if superseded():
                break
            # Carried over if the page shows nothing new (told from its teams' rows, or from
            # its changed measures); no other worker needs to know.
            previous = cache.last_rendered(key[:-1])
            if (
                previous is not None
                and same is not None
                and previous[0] != version
                and same(asked.body, previous[0], version)
            ):
                carried += carry(key, asked, previous[1])
            elif not cache.claim(key):
                theirs.append((key, asked))
            elif render(key, asked):
                done += 1
        deadline = cache.clock() + SHARED_WAIT_S
        while theirs and not superseded():
            found = cache.fetch([key for key, _ in theirs])
            theirs = [(key, asked) for key, asked in theirs if key not in found]
            if theirs and cache.clock() > deadline:
                log.warning("render cache: %d claimed renders never came; rendering", len(theirs))
                for key, asked in theirs:
                    if not superseded() and render(key, asked):
                        done += 1
                break
            if theirs:
                time.sleep(SHARED_LOOK_S)
        cache.restamp(version)
        cache.count_warmed(done, carried)
        cache.prune_shared()
        return done

    app.server.view_functions[endpoint] = cached_dispatch
    app.server.extensions[EXTENSION_KEY] = cache
    if data is not None:
        data.on_new_version(warm)


def of(server: Any) -> RenderCache:
    """The render cache installed on ``server`` (tests and the benchmark read its counters)."""
    return server.extensions[EXTENSION_KEY]
