"""The demo-borough generator: a synthetic Frameworki-style borough (CALIBRATION.md, SCHEMA.md).

Entry point: ``generate_borough(url, population=..., years=..., seed=..., as_of=...)``.
"""

from dashboard.demo.borough import DemoDataError, DemoReport, generate_borough

__all__ = ["DemoDataError", "DemoReport", "generate_borough"]
