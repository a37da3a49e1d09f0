"""Secrets come from the environment or a secret file, never from the config file.

A configuration names an environment variable (``token_env: ZENDESK_TOKEN``). The value is read
from ``$ZENDESK_TOKEN`` or, when that is unset, from the file named by ``$ZENDESK_TOKEN_FILE``
(Docker/Kubernetes secrets). Values are registered with the log redactor so that they never
appear in logs or the audit log.
"""
from __future__ import annotations

import os
from pathlib import Path

from core.errors import ConfigError
from core.redact import register_secret


def read_secret(variable: str, *, tracker: str, purpose: str) -> str:
    """The secret held by ``variable`` (or ``variable``_FILE); ConfigError naming both if absent."""
    value = os.environ.get(variable)
    if value is None:
        file_var = f"{variable}_FILE"
        path = os.environ.get(file_var)
        if path:
            try:
                value = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"trackers.{tracker}: cannot read {purpose} from the file in "
                                  f"${file_var} ({path}): {exc.strerror}") from None
    if not value:
        raise ConfigError(f"trackers.{tracker}: {purpose} is missing: set the environment "
                          f"variable {variable} (or {variable}_FILE with a path to a file)")
    register_secret(value)
    return value
