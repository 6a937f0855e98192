"""Structured logs: one JSON object per line, for every process (CLI, scheduler, gunicorn).

A council's log shipper (journald, Docker, a Procfile platform) collects the process's output
streams; one JSON line per record lets it index level, logger and process without parsing prose.
The messages themselves stay the ``key=value`` text the code writes, so a person reading the raw
journal still sees ``refresh dataset=open_steps status=ok version=12``.

Logs go to **stderr**: stdout is the result of a one-shot command (``indicators --json``,
``refresh``'s report), which scripts parse, and journald/systemd and Procfile runners collect
both streams alike. gunicorn's access log goes through the same formatter, with the request's
method, path, status, bytes and duration as their own fields (``gunicorn_logconfig``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Mapping
from typing import Any, TextIO

# gunicorn's access-log atoms (gunicorn.glogging.Logger.atoms) worth a field of their own.
ACCESS_FIELDS = {
    "m": "method",
    "U": "path",
    "q": "query",
    "s": "status",
    "B": "bytes",
    "M": "duration_ms",
    "h": "remote",
}
# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is kept.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "pid", "msg", ...extra, "exc"}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class AccessJsonFormatter(JsonFormatter):
    """gunicorn's access records: the request's atoms as fields, a short line as ``msg``."""

    def format(self, record: logging.LogRecord) -> str:
        atoms = record.args if isinstance(record.args, Mapping) else {}
        fields = {name: atoms.get(atom) for atom, name in ACCESS_FIELDS.items()}
        for name in ("status", "bytes", "duration_ms"):
            try:
                fields[name] = int(fields[name])
            except (TypeError, ValueError):
                pass  # '-' for a body gunicorn did not count: leave it as it came
        record = logging.makeLogRecord(
            {
                **vars(record),
                "msg": f"{fields['method']} {fields['path']} {fields['status']}",
                "args": None,
                **fields,
            }
        )
        return super().format(record)


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every logger's records, as JSON lines, to ``stream`` (default: stderr).

    Replaces the root logger's handlers, so calling it twice never doubles the lines.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


def gunicorn_logconfig(level: str = "INFO") -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its error and access logs and the app's own loggers, all
    as JSON lines on stderr (``deploy/gunicorn.conf.py``)."""
    stream = "ext://sys.stderr"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": f"{__name__}.JsonFormatter"},
            "access": {"()": f"{__name__}.AccessJsonFormatter"},
        },
        "handlers": {
            "app": {"class": "logging.StreamHandler", "formatter": "json", "stream": stream},
            "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": stream},
        },
        "root": {"level": level.upper(), "handlers": ["app"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["app"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
    }
