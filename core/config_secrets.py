"""Secrets in the configuration: refused inline, never printed, never inside URLs.

Rules:
- A tracker key that looks like a secret (``password``, ``api-token``, ``personal_access_token``,
  ``client_secret`` …) is refused unless it names where the secret lives (``*_env``, ``*_file``);
  the error names the key, never its value.
- A tracker URL carrying credentials (``user:pass@`` or a token query parameter) is refused with
  a pointer to the tracker's ``*_env`` settings.
- Whatever prints a URL (``check``, store errors) prints it through :func:`mask_url`.
"""
from __future__ import annotations

import re
from typing import Any, Iterable
from urllib.parse import parse_qsl, urlsplit

from core.redact import MASK

# the key *ends* with the noun of a secret: password, db_password, api-token, api_key,
# personal_access_token, client_secret, private_key, pat (token_type or auth_mode do not)
_SECRET_KEY = re.compile(
    r"(?i)(?:^|[_\-.])(?:pass(?:word|wd|phrase)?|pwd|secret|token|pat|api[_\-]?key|apikey|"
    r"credentials?|private[_\-]?key|access[_\-]?key|secret[_\-]?key)$")
_POINTER_SUFFIXES = ("_env", "-env", "_file", "-file", "_path")
_SECRET_PARAMS = re.compile(
    r"(?i)^(?:access_token|token|api[_-]?key|apikey|key|sig|signature|password|passwd|pwd|"
    r"secret|client_secret|private_token|auth|code|pat)$")


def looks_secret_key(key: Any) -> bool:
    """A configuration key whose value would be a secret (not a pointer to one)."""
    key = str(key)
    return bool(_SECRET_KEY.search(key)) and not key.lower().endswith(_POINTER_SUFFIXES)


def inline_secret_keys(section: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of secret-looking keys in ``section`` (nested mappings included)."""
    found = []
    for key, value in section.items():
        path = f"{prefix}{key}"
        if looks_secret_key(key):
            found.append(path)
        elif isinstance(value, dict):
            found.extend(inline_secret_keys(value, f"{path}."))
    return found


def url_credentials(url: Any) -> list[str]:
    """What in ``url`` is a credential: 'a password', 'a user name', 'the query parameter X'."""
    if not isinstance(url, str) or "://" not in url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = []
    if parts.password is not None:
        found.append("a user name and its password before the host")
    elif parts.username:
        found.append("a user name before the host")
    found.extend(f"the query parameter {name!r}" for name, _ in parse_qsl(parts.query)
                 if _SECRET_PARAMS.match(name))
    return found


_USERINFO = re.compile(r"(?i)^([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]*@")
_QUERY = re.compile(r"([?&;])([^=&#;]+)=([^&#;]*)")


def mask_url(url: Any) -> Any:
    """``url`` as written, with its password and secret query parameters replaced by
    [REDACTED] (``sqlite:////abs/path`` and other URLs without credentials are unchanged)."""
    if not isinstance(url, str) or "://" not in url:
        return url
    masked = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", url)
    return _QUERY.sub(lambda m: f"{m.group(1)}{m.group(2)}={MASK}"
                      if _SECRET_PARAMS.match(m.group(2)) else m.group(0), masked)


def url_problems(where: str, section: dict[str, Any], env_keys: Iterable[str]) -> list[str]:
    """A problem for each URL setting of a tracker that carries credentials."""
    pointer = ", ".join(sorted(env_keys)) or "the tracker's *_env settings"
    problems = []
    for key, value in section.items():
        found = url_credentials(value) if "url" in str(key).lower() else []
        if found:
            problems.append(f"{where}.{key}: the URL carries {' and '.join(found)}, which is refused: "
                            f"remove them from the URL, put the secret in an environment variable "
                            f"and name that variable with {pointer} (or set VARIABLE_FILE to a "
                            f"file holding it)")
    return problems
