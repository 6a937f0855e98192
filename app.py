"""Run the dashboard.

``python app.py``: demo mode in one process: builds the demo borough into ``data/demo.sqlite``
if it is missing, starts the in-process refresher and serves http://127.0.0.1:8050.

``gunicorn app:server``: production. ``server`` is built on first access (PEP 562), so
importing this module creates nothing (STYLE.md); run the refresher as its own process
(``csc-dashboard scheduler``).
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _server() -> Any:
    from dashboard.web.app import create_app

    return create_app().server


def __getattr__(name: str) -> Any:
    if name == "server":
        return _server()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> int:
    from dashboard.config import Settings
    from dashboard.web.serve import serve

    return serve(Settings(), host="127.0.0.1", port=8050)


if __name__ == "__main__":
    raise SystemExit(main())
