"""Indicators: declarations (catalogue), measures (team, budget, borough, quality), charts and
RAG threshold overrides. The data layer (dashboard.data) is the only caller pages should use."""

from dashboard.indicators.catalogue import DEFINITIONS, VIEW_DATASETS, Definition
from dashboard.indicators.measure import MeasureInput, Measurement

__all__ = ["DEFINITIONS", "VIEW_DATASETS", "Definition", "MeasureInput", "Measurement"]
