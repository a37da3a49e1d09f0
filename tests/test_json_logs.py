"""JSON log lines: run id from the context, tracker/record/action from the call, tracebacks."""
from __future__ import annotations

import json
import logging

from core.logfields import JsonFormatter, run_context


def line(record: logging.LogRecord, redact=lambda text: text) -> dict:
    return json.loads(JsonFormatter(redact).format(record))


def make(msg: str, exc_info=None, **extra) -> logging.LogRecord:
    record = logging.LogRecord("tiersync.outbox", logging.ERROR, __file__, 1, msg, (), exc_info)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_fields_and_run_id_from_the_context():
    with run_context("run-abc123"):
        data = line(make("create jira dead-lettered", tracker="jira", record="ENG-7",
                         action="create#17", escalation="e-1"))
    assert data["run_id"] == "run-abc123"
    assert (data["tracker"], data["record"], data["action"], data["escalation"]) == \
        ("jira", "ENG-7", "create#17", "e-1")
    assert data["level"] == "ERROR" and data["logger"] == "tiersync.outbox"
    assert "run_id" not in line(make("outside a run"))


def test_a_logged_exception_carries_its_traceback_redacted():
    try:
        raise ValueError("token hunter2 refused")
    except ValueError:
        import sys
        data = line(make("boom", exc_info=sys.exc_info()), redact=lambda t: t.replace("hunter2", "***"))
    assert "Traceback (most recent call last)" in data["traceback"]
    assert "ValueError: token *** refused" in data["traceback"]
    assert "hunter2" not in json.dumps(data)
