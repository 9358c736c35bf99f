"""The one log format: JSON lines that say what happened without saying who it happened to."""

from __future__ import annotations

import io
import json
import logging

import pytest
from pydantic import BaseModel, ValidationError

from handrail.config import Settings
from handrail.observability.logs import JsonFormatter, configure_logging, safe_exception_text


class _Person(BaseModel):
    phone: int


_SUBMITTED = {"phone": "+447700900123 Quinn Testperson"}


def _record(name: str, msg: str, args=(), exc_info=None, **extra) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, exc_info)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_line_is_one_json_object_with_time_level_logger_and_message() -> None:
    line = JsonFormatter().format(_record("handrail.worker", "polling %s", ("handrail",)))
    entry = json.loads(line)
    assert entry["level"] == "INFO" and entry["logger"] == "handrail.worker"
    assert entry["message"] == "polling handrail" and entry["time"].endswith("+00:00")


def test_access_lines_keep_method_route_and_status_but_drop_the_query_string() -> None:
    record = _record("uvicorn.access", '%s - "%s %s HTTP/%s" %d',
                     ("203.0.113.5:5000", "GET", "/api/transitions?owner=7&q=Quinn", "1.1", 200))
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/api/transitions", 200)
    assert "Quinn" not in json.dumps(entry) and "203.0.113.5" not in json.dumps(entry)


def test_temporal_context_is_kept_as_fields() -> None:
    context = {"workflow_id": "handoff-1234", "workflow_type": "PostCrisisHandoff", "attempt": 1}
    entry = json.loads(JsonFormatter().format(_record("temporalio.workflow", "linked",
                                                      temporal_workflow=context)))
    assert entry["temporal_workflow"] == context


def test_a_validation_error_is_logged_without_the_values_that_failed() -> None:
    try:
        _Person(**_SUBMITTED)
    except ValidationError:
        import sys

        line = JsonFormatter().format(_record("handrail.api", "refused", exc_info=sys.exc_info()))
    entry = json.loads(line)
    assert "ValidationError" in entry["exception"] and "phone" in entry["exception"]
    assert "Quinn" not in line and "447700900123" not in line


def test_pydantic_input_in_an_already_formatted_message_is_hidden() -> None:
    message = ("Failing workflow task: 1 validation error for HandoffInput\nperson.phone\n  Field "
               "required [type=missing, input_value={'given_name': 'Quinn'}, input_type=dict]")
    entry = json.loads(JsonFormatter().format(_record("temporalio.core", message)))
    assert "Quinn" not in entry["message"] and "input_value=<hidden>" in entry["message"]


def test_causes_are_named_in_the_exception_text() -> None:
    try:
        try:
            raise KeyError("consent")
        except KeyError as inner:
            raise RuntimeError("activity failed") from inner
    except RuntimeError as outer:
        assert safe_exception_text(outer) == "RuntimeError: activity failed <- KeyError: 'consent'"


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_configure_logging_formats_the_root_logger_as_set(log_format, tmp_path, monkeypatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging(Settings(data_dir=tmp_path, log_format=log_format, log_level="INFO"))
        logging.getLogger("handrail.test").info("hello")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    output = stream.getvalue().strip()
    if log_format == "json":
        assert json.loads(output)["message"] == "hello"
    else:
        assert output.endswith("INFO handrail.test hello")


def test_a_database_error_does_not_carry_the_rows_values(tmp_path) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from handrail.store.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE person (phone TEXT UNIQUE)"))
            connection.execute(text("INSERT INTO person VALUES (:phone)"), {"phone": "+447700900321"})
        with pytest.raises(IntegrityError) as refused, engine.begin() as connection:
            connection.execute(text("INSERT INTO person VALUES (:phone)"), {"phone": "+447700900321"})
        assert "UNIQUE" in str(refused.value) and "447700900321" not in str(refused.value)
    finally:
        engine.dispose()
