"""Who sees what: one module per tier, each declaring a ``PAGE``.

A layout says WHICH indicators appear as tiles, which charts and which lists, and what the
scope selector offers; it never says how they render (that is ``dashboard.web.components``).
To show a new indicator on a tier, add its id to that tier's ``tiles`` here; the engine does
the rest (issue 4; STYLE.md "queries/ says what a number is; layouts/ says who sees it").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal

Selector = Literal["teams", "cost_centres", "teams_and_borough"]

# The order of the navigation bar. The landing page is first; it is not a tier.
MODULES = ("home", "team", "budget", "borough", "quality")


@dataclass(frozen=True)
class Section:
    """A titled group of tiles on a page (e.g. "Timeliness", "Rates per 10,000")."""

    title: str
    tiles: tuple[str, ...]


@dataclass(frozen=True)
class Page:
    """One page, declared as data.

    ``tiles`` are grouped in ``sections``; ``charts`` are chart ids served by the data layer's
    ``chart()``; ``history`` are indicator ids whose daily history (from the store) is charted;
    ``lists`` are indicator ids whose drill-down rows are shown inline as a table.
    """

    id: str
    path: str
    title: str
    nav_label: str
    question: str  # the question the page answers, shown under the title and on the landing page
    tier: Literal["home", "team", "budget", "borough", "quality"]
    sections: tuple[Section, ...] = ()
    charts: tuple[str, ...] = ()
    history: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    team_matrix: bool = False
    selector: Selector | None = None
    default_scope: str | None = None  # None: the first option of the selector

    @property
    def tiles(self) -> tuple[str, ...]:
        return tuple(tile for section in self.sections for tile in section.tiles)

    @property
    def indicator_ids(self) -> tuple[str, ...]:
        """Every indicator this page names, for consistency checks."""
        seen = dict.fromkeys(self.tiles + self.history + self.lists)
        return tuple(seen)


def all_pages() -> list[Page]:
    """The declared pages, in navigation order."""
    pages = []
    for name in MODULES:
        module = importlib.import_module(f"layouts.{name}")
        page = getattr(module, "PAGE", None)
        if not isinstance(page, Page):
            raise TypeError(f"layouts/{name}.py must define PAGE = Page(...)")
        pages.append(page)
    paths = [page.path for page in pages]
    if len(set(paths)) != len(paths):
        raise ValueError(f"two layouts declare the same path: {paths}")
    return pages
