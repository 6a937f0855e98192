"""csc-dashboard: a real-time management dashboard for children's social care."""

__version__ = "0.1.0"
