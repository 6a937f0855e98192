"""Indicators declared in dataset files' headers, as catalogue definitions with generic measures.

An analyst adds a measure with one SQL file and one line in a layout (STYLE.md, issue 4): the
file's ``-- indicators:`` header (parsed by ``dashboard.datasets``) says what the dataset's rows
count, and this module measures it. The rows in scope are the dataset's rows filtered by the
tier's scope column (``team_id`` for team, ``cost_centre_code`` for budget; the borough takes
every row). Then:

- ``count``: the number of rows; the drill-down is those rows.
- ``sum``: the sum of a numeric column over those rows; the drill-down is the rows
  whose value is not zero (a 0/1 column is a count whose list matches it).
- ``ratio``: the sum of the numerator column over the sum of the denominator column (or over
  the number of rows), x 100 for a percent. A zero denominator is no value, never 0 or 100.
  The drill-down is the denominator rows, and both sums are taken over exactly those rows.

A service, a set of teams or the borough is the same computation over more rows, so its value is
a sum of numerators over a sum of denominators, like the built-ins'.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dashboard.datasets import (
    TIER_SCOPE_COLUMN,
    DatasetFileError,
    DatasetSpec,
    IndicatorDeclaration,
    load_datasets,
)
from dashboard.indicators.catalogue import DEFINITIONS, Definition
from dashboard.indicators.measure import MeasureInput, Measurement, counted, percent, ratio
from dashboard.model import Indicator


@dataclass(frozen=True)
class DeclaredMeasure:
    """The generic measure of one declared indicator (a plain value, so it compares and prints)."""

    dataset: str
    scope_column: str | None
    kind: str  # count | sum | ratio
    column: str | None
    denominator: str | None
    unit: str

    def rows(self, data: MeasureInput) -> pd.DataFrame:
        """The dataset's rows in scope (every row for the borough)."""
        frame = data.frame(self.dataset)
        if self.scope_column == "team_id":
            return data.scope.filter_teams(frame)
        if self.scope_column == "cost_centre_code":
            return data.scope.filter_cost_centres(frame)
        return frame

    def __call__(self, data: MeasureInput) -> Measurement:
        rows = self.rows(data)
        if self.kind == "count":
            return counted(rows)
        if self.kind == "sum":
            # The drill-down is the rows that add to the sum: a count kept as a 0/1 column then
            # opens exactly as many rows as the tile says (DESIGN.md: "17 overdue" opens 17).
            values = pd.to_numeric(rows[self.column])
            rows = rows[(values.notna() & (values != 0)).fillna(False).astype(bool)]
            total = _total(rows[self.column])
            return Measurement(total, rows=rows.reset_index(drop=True))
        if self.denominator is not None:
            denominators = pd.to_numeric(rows[self.denominator])
            rows = rows[(denominators.notna() & (denominators != 0)).fillna(False).astype(bool)]
            denominator = _total(rows[self.denominator])
        else:
            denominator = len(rows)
        numerator = _total(rows[self.column])
        share = percent if self.unit == "percent" else ratio
        return Measurement(
            share(numerator, denominator), numerator, denominator, rows=rows.reset_index(drop=True)
        )


def _total(series: pd.Series) -> int | float:
    """A column's sum as a plain number: an int for whole numbers, else a float."""
    total = pd.to_numeric(series).sum()
    if pd.api.types.is_float_dtype(series.dtype):
        return round(float(total), 6)
    return int(total)


def definition_of(spec: DatasetSpec, declaration: IndicatorDeclaration) -> Definition:
    """A catalogue definition for one indicator declared in ``spec``'s header."""
    indicator = Indicator(
        id=declaration.id,
        title=declaration.title,
        definition=declaration.definition,
        tier=declaration.tier,
        unit=declaration.unit,
        polarity=declaration.polarity,
        datasets=(spec.id,),
        thresholds=declaration.thresholds,
        england=declaration.england,
        england_label=declaration.england_label
        or ("England" if declaration.england is not None else ""),
        drilldown=declaration.drilldown,
        personal=spec.personal and declaration.drilldown,
    )
    measure = DeclaredMeasure(
        dataset=spec.id,
        scope_column=TIER_SCOPE_COLUMN[declaration.tier],
        kind=declaration.measure,
        column=declaration.column,
        denominator=declaration.denominator,
        unit=declaration.unit,
    )
    return Definition(indicator, measure)


def declared_definitions(
    specs: Mapping[str, DatasetSpec], builtins: Mapping[str, Definition] = DEFINITIONS
) -> tuple[dict[str, Definition], list[DatasetFileError]]:
    """Definitions declared by the dataset files, and an error for each one that cannot be used.

    Built-ins win an id clash, and of two files declaring one id the first by file name wins; the
    other gets an error naming its file and key, and the rest load as usual (one bad file marks
    only its own tiles).
    """
    found: dict[str, Definition] = {}
    origin: dict[str, str] = {}
    errors: list[DatasetFileError] = []
    for spec in sorted(specs.values(), key=lambda s: s.path.name):
        for index, declaration in enumerate(spec.indicators):
            key = f"indicators[{index}].id"
            if declaration.id in builtins:
                errors.append(
                    DatasetFileError(
                        spec.path,
                        f"{declaration.id!r} is a built-in indicator; the built-in is kept, "
                        "so choose another id",
                        key,
                    )
                )
            elif declaration.id in found:
                errors.append(
                    DatasetFileError(
                        spec.path,
                        f"{declaration.id!r} is already declared in {origin[declaration.id]}",
                        key,
                    )
                )
            else:
                found[declaration.id] = definition_of(spec, declaration)
                origin[declaration.id] = spec.path.name
    return found, errors


def full_catalogue(
    specs: Mapping[str, DatasetSpec], builtins: Mapping[str, Definition] = DEFINITIONS
) -> tuple[dict[str, Definition], list[DatasetFileError]]:
    """The built-in definitions followed by those the dataset files declare, and the errors."""
    declared, errors = declared_definitions(specs, builtins)
    return {**builtins, **declared}, errors


def load_catalogue(queries_dir: Path) -> tuple[dict[str, Definition], list[DatasetFileError]]:
    """``full_catalogue`` of the good dataset files in ``queries_dir``."""
    specs, _bad = load_datasets(queries_dir)
    return full_catalogue(specs)
