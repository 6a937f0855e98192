"""One version's snapshot frames with the row positions of each scope key, so a scope's rows are
taken by position instead of found by scanning the whole frame.

A boolean filter (``frame[frame["team_id"].isin(teams)]``) reads every row. The daily history and
the team matrix filter every frame once per team and per cost centre, and the number of teams
grows with the borough, so that work grew with teams x rows: quadratically with the data.
:class:`PartitionedFrames` groups a frame's row positions by a scope column once per version of
its dataset (the data layer does it when it loads a new version; the other datasets' frames keep
theirs), and a scope's rows are then
``frame.take(positions)``: work in proportion to the rows in scope, in the frame's own order, with
the frame's own index and dtypes, exactly what the boolean filter returns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd

Positions = Mapping[Hashable, np.ndarray]


class PartitionedFrames(Mapping[str, pd.DataFrame]):
    """Frames by dataset id (a read-only mapping) plus their row positions by scope key.

    Only the very frame objects held here are partitioned: a filtered, sorted or copied frame has
    other rows, so :meth:`rows` returns ``None`` for it and the caller filters it plainly. The
    frames are held for as long as this object lives, so their ``id`` cannot be reused by another
    frame meanwhile.

    ``previous``, the last version's frames: the row positions of every frame object both hold
    (a dataset without a new version keeps its very frame) carry over instead of being grouped
    again, so a new version of one dataset costs that dataset's rows, not every dataset's.
    """

    def __init__(
        self, frames: Mapping[str, pd.DataFrame], previous: PartitionedFrames | None = None
    ) -> None:
        self._frames = dict(frames)
        self._ids = {id(frame) for frame in self._frames.values()}
        self._positions: dict[tuple[int, str], Positions] = {}
        # Frames derived from one held frame (e.g. the workforce's one row per worker), by the
        # source frame's id and a name: built once per version of the source, partitioned too.
        self._derived: dict[tuple[int, str], pd.DataFrame] = {}
        self._lock = threading.Lock()
        if previous is not None:
            # Both objects hold their frames alive here, so an id found in both is one object.
            with previous._lock:
                self._derived = {
                    key: found for key, found in previous._derived.items() if key[0] in self._ids
                }
                self._ids |= {id(frame) for frame in self._derived.values()}
                self._positions = {
                    key: found for key, found in previous._positions.items() if key[0] in self._ids
                }

    def __getitem__(self, dataset_id: str) -> pd.DataFrame:
        return self._frames[dataset_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._frames)

    def __len__(self) -> int:
        return len(self._frames)

    def partition(self, columns: Iterable[str]) -> None:
        """Group every frame's rows by each of ``columns`` it has, now rather than on first use
        (so the first view of a team after a new version does not pay for it)."""
        for frame in self._frames.values():
            for column in columns:
                if column in frame.columns:
                    self.positions(frame, column)

    def derived(
        self, frame: pd.DataFrame, name: str, build: Callable[[pd.DataFrame], pd.DataFrame]
    ) -> pd.DataFrame:
        """``build(frame)``, once per version of ``frame`` for every scope and thread: a
        borough-wide step that every scope's measure would otherwise repeat (de-duplicating the
        workforce to one row per worker before cutting it to a team). The result's rows are
        grouped by scope key like a snapshot's, and it carries over to the next version's
        frames while ``frame`` does. ``build`` must depend on ``frame`` alone. A frame not
        held here is simply built from."""
        if id(frame) not in self._ids:
            return build(frame)
        key = (id(frame), name)
        with self._lock:
            found = self._derived.get(key)
        if found is None:
            built = build(frame)  # outside the lock; two threads may both build it once
            with self._lock:
                found = self._derived.setdefault(key, built)
                self._ids.add(id(found))
        return found

    def positions(self, frame: pd.DataFrame, column: str) -> Positions | None:
        """Row positions (ascending) of each non-empty key of ``column``; None for a frame not
        held here or without the column. Computed once per frame and column."""
        if id(frame) not in self._ids or column not in frame.columns:
            return None
        key = (id(frame), column)
        with self._lock:
            found = self._positions.get(key)
        if found is None:
            # Outside the lock: two threads may both build it once; either result is the same.
            found = group_positions(frame[column])
            with self._lock:
                found = self._positions.setdefault(key, found)
        return found

    def rows(
        self, frame: pd.DataFrame, column: str, keys: Iterable[Hashable]
    ) -> pd.DataFrame | None:
        """The rows of ``frame`` whose ``column`` is one of ``keys``, in frame order.

        None when ``frame`` is not one of the partitioned frames (the caller filters it).
        """
        index = self.positions(frame, column)
        if index is None:
            return None
        parts = [index[key] for key in keys if key in index]
        if not parts:
            positions = np.empty(0, dtype=np.intp)
        elif len(parts) == 1:
            positions = parts[0]
        else:
            positions = np.sort(np.concatenate(parts))  # back into frame order
        return frame.take(positions)


def group_positions(values: pd.Series) -> dict[Hashable, np.ndarray]:
    """Each non-missing value's row positions, ascending. Missing values are in no group, as a
    missing team or cost centre matches no scope but the borough."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    order = np.argsort(codes, kind="stable")  # grouped by code, ascending within a code
    if len(order) < np.iinfo(np.int32).max:
        order = order.astype(np.int32)  # half the memory; every worker holds these per version
    missing = int((codes < 0).sum())  # code -1 sorts first
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    groups = np.split(order[missing:], np.cumsum(counts)[:-1]) if len(uniques) else []
    return dict(zip(uniques.tolist(), groups, strict=True))
