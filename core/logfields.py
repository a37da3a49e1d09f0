"""Structured logs: one JSON object a line with the run id, tracker, record and action as fields.

The run id comes from the context (``run_context``) the daemon or ``run`` sets around a sync
pass; tracker, record, action and escalation come from a call's ``extra=``. A logged exception
carries its traceback in ``traceback``. Every text passes the secret redactor.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from datetime import datetime, timezone
from typing import Callable, Iterator

RUN_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("tiersync_run_id", default=None)
FIELDS = ("tracker", "record", "action", "escalation")


@contextlib.contextmanager
def run_context(run_id: str) -> Iterator[str]:
    token = RUN_ID.set(run_id)
    try:
        yield run_id
    finally:
        RUN_ID.reset(token)


class JsonFormatter(logging.Formatter):
    def __init__(self, redact: Callable[[str], str] = lambda text: text):
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        data = {"at": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
                "level": record.levelname, "logger": record.name,
                "message": self.redact(record.getMessage())}
        run_id = getattr(record, "run_id", None) or RUN_ID.get()
        if run_id:
            data["run_id"] = run_id
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = str(value)
        if record.exc_info:
            data["traceback"] = self.redact(self.formatException(record.exc_info))
        return json.dumps(data)
