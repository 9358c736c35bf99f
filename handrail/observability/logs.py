"""One log format for every process: text for a developer's terminal, JSON lines for a pipeline.

What a log line may hold: ids (workflow ids carry no personal data), types, counts, routes and
status codes. Never a name, a phone number, a record number or a clinical summary. The code
logs none; this formatter also keeps out the two places they could slip in by accident: query
strings of access-log lines and the input values that pydantic puts in its error messages.
(The engine hides SQL parameters in database errors: store/db.py.)
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime

from ..config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Extras that the Temporal SDK attaches to workflow and activity log records: ids, types, attempts.
TEMPORAL_EXTRAS = ("temporal_workflow", "temporal_activity")
# pydantic's error text as it reaches us already formatted (the SDK core's task-failure lines).
_PYDANTIC_INPUT = re.compile(r"input_value=.*?, input_type=", re.DOTALL)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and a few known-safe extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        access = _access_fields(record)
        if access is not None:
            entry.update(access)
            entry["message"] = f"{access['method']} {access['path']} {access['status']}"
        else:
            entry["message"] = scrub(record.getMessage())
        for extra in TEMPORAL_EXTRAS:
            value = getattr(record, extra, None)
            if isinstance(value, dict):
                entry[extra] = {k: v for k, v in value.items() if isinstance(v, str | int | float)}
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = safe_exception_text(record.exc_info[1])
            entry["traceback"] = "".join(traceback.format_tb(record.exc_info[2]))
        return json.dumps(entry, ensure_ascii=False, default=str)


def _access_fields(record: logging.LogRecord) -> dict[str, object] | None:
    # uvicorn's access log: args are (client, method, full path, HTTP version, status).
    if record.name != "uvicorn.access" or not isinstance(record.args, tuple) or len(record.args) != 5:
        return None
    _client, method, full_path, _version, status = record.args
    return {"method": method, "path": str(full_path).split("?", 1)[0], "status": status}


def safe_exception_text(error: BaseException) -> str:
    """The exception's type and message, and its causes' — without pydantic's input values."""
    parts, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {scrub(_message(current))}")
        current = current.__cause__ or current.__context__
    return " <- ".join(parts)


def scrub(text: str) -> str:
    return _PYDANTIC_INPUT.sub("input_value=<hidden>, input_type=", text)


def _message(error: BaseException) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors) and type(error).__name__ == "ValidationError":
        try:
            return "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in errors(include_input=False, include_url=False)
            )
        except TypeError:  # not pydantic's after all
            pass
    return str(error)


def configure_logging(settings: Settings) -> None:
    """The root logger of this process, to stderr, in the configured format and level. uvicorn is
    run with `log_config=None`, so its loggers propagate here too."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
