"""The credential formats redaction recognises, as RE2 patterns (linear time on any input).

Ticket text can be megabytes and is written by anyone, so every pattern is compiled with RE2
(google-re2), whose matching time is linear in the input whatever the pattern: no input can
make redaction backtrack. The token formats follow the vendors' documented prefixes, as
collected by detect-secrets' plugins and the vendors' own pages (GitHub "About authentication",
GitLab "Token overview", Slack "Token types", Google "API keys", Azure "Storage account keys",
AWS "IAM identifiers"). Where a bare format would also match ordinary text (40-character AWS
secrets versus git hashes, ``Basic`` headers versus the word "basic"), a check on the value
decides (:func:`_keep_whole`).
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Callable

import re2

MASK = "[REDACTED]"


@dataclass(frozen=True)
class Format:
    """One credential format: ``value`` is the group masked (0: the whole match)."""

    name: str
    pattern: "re2._Regexp"
    value: int = 0  # group number of the value masked (0: the whole match)
    check: Callable[[str], bool] | None = None


def _c(pattern: str) -> "re2._Regexp":
    return re2.compile(pattern)


def _mixed(value: str) -> bool:
    """Random keys mix cases and digits; hashes, words and paths do not."""
    return (any(c.isupper() for c in value) and any(c.islower() for c in value)
            and any(c.isdigit() for c in value) and value.count("/") <= 3
            and not value.startswith("/"))


def _basic_credentials(value: str) -> bool:
    """``Basic <base64>`` is a credential when it decodes to ``user:password``."""
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded and all(32 <= b < 127 for b in decoded)


def _token_like(value: str) -> bool:
    return len(value) >= 12 and any(c.isdigit() for c in value)


_B64 = r"A-Za-z0-9+/="
FORMATS: tuple[Format, ...] = (
    Format("private-key", _c(
        r"(?s)-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:.*?-----END[A-Z0-9 ]*PRIVATE KEY"
        r"(?: BLOCK)?-----|[" + _B64 + r"\r\n\\]*)")),
    Format("aws-access-key-id", _c(
        r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b")),
    Format("aws-secret-key", _c(r"(?:^|[^A-Za-z0-9/+])(?P<v>[A-Za-z0-9/+]{40})(?:$|[^A-Za-z0-9/+=])"),
           1, _mixed),
    Format("jwt", _c(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
    Format("github-token", _c(r"\b(?:(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})")),
    Format("gitlab-token", _c(
        r"\b(?:(?:glpat|gldt|glft|glsoat|glrt|glcbt|glimt|glptt|glagent|gloas)-[A-Za-z0-9_-]{20,}"
        r"|GR1348941[A-Za-z0-9_-]{20,})")),
    Format("slack-token", _c(
        r"\b(?:xox[abposr]-[A-Za-z0-9-]{10,}|xapp-[A-Za-z0-9-]{10,}"
        r"|https://hooks\.slack\.com/services/[A-Za-z0-9_/]+)")),
    Format("google-key", _c(r"\b(?:AIza[0-9A-Za-z_-]{35}|GOCSPX-[A-Za-z0-9_-]{28}|ya29\.[0-9A-Za-z_-]{20,})")),
    Format("azure-key", _c(
        r"(?i)\b(?:AccountKey|SharedAccessKey|SharedAccessSignature|sig)=(?P<v>[A-Za-z0-9%+/=_-]{16,})"), 1),
    Format("azure-client-secret", _c(r"\b[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}")),
    Format("atlassian-token", _c(r"\bATATT3[A-Za-z0-9_=-]{50,}")),
    Format("vendor-token", _c(
        r"\b(?:(?:sk|rk)_live_[0-9A-Za-z]{20,}|npm_[A-Za-z0-9]{36}|pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{40,}"
        r"|sk-(?:proj-)?[A-Za-z0-9_-]{32,})")),
    Format("bearer", _c(r"(?i)\bbearer\s+(?P<v>[A-Za-z0-9._~+/=-]{8,})"), 1, _token_like),
    Format("basic-auth", _c(r"(?i)\bbasic\s+(?P<v>[A-Za-z0-9+/]{6,}={0,2})"), 1, _basic_credentials),
    Format("url-credentials", _c(r"(?i)\b[a-z][a-z0-9+.-]*://[^:/@\s]+:(?P<v>[^@/\s]+)@"), 1),
    Format("url-token", _c(
        r"(?i)[?&#](?:access_token|refresh_token|id_token|token|api_key|apikey|api-key|key|sig"
        r"|signature|password|passwd|pwd|secret|client_secret|private_token)=(?P<v>[^&\s#\"'<>]+)"), 1),
)

# "password: hunter2", "root pw = x", "admin password is x", "PIN 4821", "token: abc",
# "'pin': '4821'", "password for the admin account is X"
_STRONG = (r"root\s*/\s*admin\s+password|(?:root|admin|administrator|sudo|db|database|user|login"
           r"|account|bios|wi-?fi|vpn|ssh|sa|service)?[\s_-]?(?:pass(?:word|wd|phrase|code)|pwd)"
           r"|pin(?:[\s_-]*(?:code|number|no\.?))?|(?:client[\s_-]*|shared[\s_-]*)?secret(?:[\s_-]*key)?"
           r"|api[\s_-]?(?:key|token)|(?:access|auth|personal[\s_-]*access|private)[\s_-]*(?:key|token)"
           r"|(?:aws[\s_-]*)?secret[\s_-]*access[\s_-]*key|(?:aws[\s_-]*)?access[\s_-]*key[\s_-]*id"
           r"|token|credentials?|pw")
PHRASE = _c(
    r"(?i)(?P<key>\b(?:" + _STRONG + r"))(?P<for>\s+(?:for|of)\s+(?:the\s+)?[\w.@-]+"
    r"(?:\s+(?:account|user|login))?)?(?P<sep>[\"']?\s*(?:[:=]|\bis\b|\bwas\b|\bwill be\b)\s*[\"']?"
    r"|\s+)(?P<value>[^\s,;\"'<>]+)")
