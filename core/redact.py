"""Redaction of secrets and of passwords found in ticket text.

Seed 003 asks partners to send "Root/Admin Password" and PINs in tickets. Such values must never
reach a log line or the audit log. Two sources are redacted: the credentials tiersync itself
loaded (registered by ``core.secrets``) and password-like phrases in free text.
"""
from __future__ import annotations

import logging
import re
from typing import Any

MASK = "[REDACTED]"
_SECRETS: set[str] = set()

# "password: hunter2", "root pw = x", "admin password is x", "PIN 1234", "token: abc"
_KEYWORDS = r"(?:root\s*/\s*admin\s+password|(?:root|admin|administrator)?\s*pass(?:word|wd|phrase)?|pw|pwd|pin(?:\s*number)?|secret|api[\s_-]?key|token)"
_PHRASE = re.compile(
    rf"(?P<key>\b{_KEYWORDS})(?P<sep>\s*(?:[:=]|\bis\b|\bwas\b)\s*|\s+)(?P<value>[^\s,;]+)",
    re.IGNORECASE,
)
# bounded repetitions: ticket text can be megabytes, and an unbounded scheme is quadratic
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>\b[a-z][a-z0-9+.-]{0,20}://)(?P<user>[^:/@\s]{1,200}):(?P<pw>[^@/\s]{1,200})@",
    re.IGNORECASE)


def register_secret(value: str) -> None:
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact_text(text: str) -> str:
    """``text`` with registered secrets and password-like values masked."""
    if not text:
        return text
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)

    def _mask(match: re.Match[str]) -> str:
        if match["value"] == MASK:
            return match.group(0)
        loose = match["sep"].strip() not in (":", "=")  # "password is x", "password x"
        if loose and not _looks_secret(match["value"]):
            return match.group(0)
        return f"{match['key']}{match['sep']}{MASK}"

    return _PHRASE.sub(_mask, text)


def _looks_secret(word: str) -> bool:
    """After a loose separator ('password is hunter2', 'PIN 4821'), mask words that are not plain
    lowercase English: a digit, a symbol or a capital letter makes it look like a secret."""
    word = word.rstrip(".,:;!?)\"'")
    if not word or word.lower() in {"reset", "expired", "missing", "required", "invalid", "not",
                                    "empty", "set", "refused", "wrong", "changed", "needed"}:
        return False
    return bool(re.search(r"[\d\W_]", word)) or word != word.lower()


def redact(value: Any) -> Any:
    """Redact strings inside nested dicts/lists (audit payloads)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Logging filter that redacts the formatted message before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction() -> None:
    """Attach the redacting filter to every handler of the root logger."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
