"""Redaction of credentials and passwords found in ticket text, logs and the store.

Seed 003 asks partners to send "Root/Admin Password" and PINs in tickets. Such values must never
reach a log line, the audit log, the store or another tracker. Three sources are redacted: the
credentials tiersync itself loaded (registered by ``core.secrets``), the token formats of
:mod:`core.redact_patterns` (AWS, JWT, GitHub, GitLab, Slack, Azure, Google, private keys,
bearer and basic headers, credentials in URLs) and password/PIN phrases in free text.

Rules: every pattern runs under RE2, so redaction is linear in the text's length; redaction is
idempotent (``redact_text(redact_text(x)) == redact_text(x)``), so redacted text read back from
a tracker compares equal to what tiersync stored and wrote (echo detection keeps working).
"""
from __future__ import annotations

import functools
import logging
from typing import Any

import re2

from core.redact_patterns import FORMATS, MASK, PHRASE, Format

_SECRETS: set[str] = set()
_STOPWORDS = {"reset", "resets", "expired", "expires", "missing", "required", "invalid", "not",
              "empty", "set", "refused", "wrong", "changed", "needed", "policy", "manager",
              "rotation", "change", "renewal", "request", "requested", "complexity", "field",
              "fields", "prompt", "screen", "page", "login", "and", "or", "the", "a", "an",
              "to", "for", "of", "in", "on", "from", "with", "via", "has", "have", "had"}

# what follows "password:" in error messages and forms without being one
_NOT_VALUES = {"yes", "no", "none", "null", "true", "false", "n/a", "***", "****", "********",
               "<redacted>", "<hidden>", "(hidden)", "hidden", "masked"}

__all__ = ["MASK", "register_secret", "redact_text", "redact", "RedactingFilter",
           "install_log_redaction", "found_formats", "is_clean",
           "screens_clean"]


def register_secret(value: str) -> None:
    if value and len(value) >= 4:
        _SECRETS.add(value)
        _redact_long.cache_clear()
        _redact_short.cache_clear()


def redact_text(text: str) -> str:
    """``text`` with registered secrets, credential formats and password values masked."""
    if not text or not isinstance(text, str):
        return text
    if len(text) > 4096:  # a long description is redacted once per cycle, not once per use
        return _redact_long(text)
    return _redact_short(text)


# redaction is a pure function of the text and the registered secrets: the same field values and
# comment bodies pass through it at every plan, audit entry and write, so short texts are
# remembered (bounded; cleared when a secret is registered)
@functools.lru_cache(maxsize=32768)
def _redact_short(text: str) -> str:
    return _redact(text, screened=True)


@functools.lru_cache(maxsize=8)  # a few big descriptions, not a memory sink
def _redact_long(text: str) -> str:
    return _redact(text, screened=False)


def _redact(text: str, *, screened: bool = True) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: no valid text holds them, and RE2 reads UTF-8
        text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
    # Each pattern, in order, is applied to the text as the earlier ones left it. Most text holds
    # no credential at all: one pass of the patterns' RE2 set names the ones that match anywhere,
    # and only those run; after a pattern changed the text, the rest are screened again, so the
    # result is exactly that of running every pattern in turn. Short texts only (field values,
    # comments: the engine's hot path, twice as fast); over a long description the set's DFA
    # has too many states to beat the patterns one by one (5 MB: 1.98 s against 1.37 s).
    every = range(len(FORMATS) + 1)  # not screened: every pattern runs, in turn
    start, matching = 0, (_SCREEN.Match(text) or ()) if screened else every
    while True:
        index = min((i for i in matching if i >= start), default=None)
        if index is None:
            return text
        if index == len(FORMATS):
            return PHRASE.sub(_mask_phrase, text)
        fmt = FORMATS[index]
        masked = fmt.pattern.sub(lambda m, f=fmt: _mask_format(m, f), text)
        start = index + 1
        if masked != text:
            text = masked
            if screened:
                matching = _SCREEN.Match(masked) or ()


def _screen() -> "re2.Set":
    """One RE2 set of every format's pattern and the password phrase (index ``len(FORMATS)``):
    one linear pass over a text tells which of them match in it. Its memory budget is large so
    that the set's DFA never runs out of room on a long text (a set that cannot match would
    report nothing and leave a credential in place): 64 MB, against RE2's default 8 MB."""
    options = re2.Options()
    options.max_mem = 64 << 20
    screen = re2.Set.SearchSet(options)
    for index, pattern in enumerate([fmt.pattern.pattern for fmt in FORMATS] + [PHRASE.pattern]):
        if screen.Add(pattern) != index:
            raise RuntimeError(f"redaction pattern {index} was not added to the RE2 set in order")
    screen.Compile()
    return screen


_SCREEN = _screen()


def found_formats(text: str) -> list[str]:
    """Names of the credential formats present in ``text`` (for the bench and tests)."""
    found = [fmt.name for fmt in FORMATS if any(_mask_format(m, fmt) != m.group(0)
                                                for m in fmt.pattern.finditer(text))]
    if any(_mask_phrase(m) != m.group(0) for m in PHRASE.finditer(text)):
        found.append("phrase")
    return found


def _mask_format(match: Any, fmt: Format) -> str:
    whole = match.group(0)
    value = match.group(fmt.value)
    if value == MASK or (fmt.check is not None and not fmt.check(value)):
        return whole
    if fmt.value == 0:
        return MASK
    start, end = match.start(fmt.value) - match.start(0), match.end(fmt.value) - match.start(0)
    return whole[:start] + MASK + whole[end:]


def _mask_phrase(match: Any) -> str:
    value = match.group("value")
    if value.startswith(MASK) or value.rstrip(".,:;!?)]").lower() in _NOT_VALUES:
        return match.group(0)
    sep = match.group("sep")
    loose = sep.strip(" \t\r\n\"'") not in (":", "=")  # "password is x", "PIN 4821"
    key = match.group("key").lower().lstrip()
    if loose and not _looks_secret(value, pin=key.startswith("pin")):
        return match.group(0)
    return f"{match.group('key')}{match.group('for') or ''}{sep}{MASK}"


def _looks_secret(word: str, *, pin: bool = False) -> bool:
    """After a loose separator ('password is hunter2', 'PIN 4821'), mask words that are not plain
    lowercase English: a digit, a symbol or a capital letter makes it look like a secret. A PIN
    is digits: at least four of them."""
    word = word.rstrip(".,:;!?)\"'")
    if pin:
        return sum(c.isdigit() for c in word) >= 4
    if not word or word.lower() in _STOPWORDS or word.startswith(("http://", "https://")):
        return False
    return any(not c.isalpha() for c in word) or word != word.lower()


def redact(value: Any) -> Any:
    """Redact strings inside nested dicts/lists (audit payloads, native views): a copy of
    ``value`` (tuples as lists) with every string as ``redact_text`` leaves it."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, (dict, list, tuple)):
        texts: list[str] = []
        copy = _copied(value, texts)
        if _all_clean(texts):  # most payloads hold no credential: one screen of all their text
            return copy
    return _redact_each(value)


def redact_shortened(value: Any, limit: int, shorten: Any) -> Any:
    """``redact(value)`` with every string longer than ``limit`` replaced by ``shorten(it)``
    (``shorten`` takes a string or a whole value, as ``compact`` does, and leaves shorter
    strings alone): one walk of the value when nothing in it is
    redacted (the audit's ``compact(redact(...))``)."""
    if isinstance(value, (dict, list, tuple)):
        texts: list[str] = []
        copy = _copied(value, texts, limit, shorten)
        if _all_clean(texts):
            return copy
    return shorten(redact(value))


def is_clean(value: Any) -> bool:
    """Whether ``redact(value)`` equals ``value`` (up to tuples read as lists): no string in it
    holds anything redaction masks."""
    return screens_clean(value) or _redact_each(value) == _copied(value, [])


def screens_clean(value: Any) -> bool:
    """True when one screen of all of ``value``'s strings shows redaction leaves them as they
    are; False when it may not (``redact`` then tells what it makes of them)."""
    texts: list[str] = []
    _strings(value, texts)
    return _all_clean(texts)


def _redact_each(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_each(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_each(v) for v in value]
    return value


_LEAVES = frozenset({int, float, bool, type(None)})  # kept as they are, nothing inside


def _copied(value: Any, texts: list[str], limit: int | None = None, shorten: Any = None) -> Any:
    """A copy of ``value`` as ``redact`` shapes it (dicts, lists; tuples as lists), its non-empty
    strings appended to ``texts`` (leaves handled inline: this runs on every payload); with
    ``limit``, a string longer than that is ``shorten(string)`` in the copy."""
    kind = type(value)
    if kind is dict or (kind is not list and isinstance(value, dict)):
        out = {}
        for key, item in value.items():
            if type(item) is str:
                if item:
                    texts.append(item)
                    if limit is not None and len(item) > limit:
                        item = shorten(item)
                out[key] = item
            elif type(item) in _LEAVES:
                out[key] = item
            else:
                out[key] = _copied(item, texts, limit, shorten)
        return out
    if kind is list or isinstance(value, (list, tuple)):
        return [item if type(item) in _LEAVES else _copied(item, texts, limit, shorten)
                for item in value]
    if isinstance(value, str) and value:
        texts.append(value)
        if limit is not None and len(value) > limit:
            return shorten(value)
    return value


def _strings(value: Any, texts: list[str]) -> None:
    """``value``'s non-empty strings appended to ``texts`` (as ``_copied`` finds them)."""
    if isinstance(value, dict):
        value = value.values()
    elif isinstance(value, str):
        if value:
            texts.append(value)
        return
    elif not isinstance(value, (list, tuple)):
        return
    for item in value:
        if type(item) is str:
            if item:
                texts.append(item)
        elif type(item) not in _LEAVES:
            _strings(item, texts)


SCREEN_ALL = 4096  # texts screened together at most, as a short text is screened alone


def _all_clean(texts: list[str]) -> bool:
    """True when ``redact_text`` leaves each of ``texts`` as it is, decided by one screen of
    them joined by newlines; False when that cannot be told so (the caller then redacts each).

    Sound because a pattern matching inside one text also matches in the joined text: the
    patterns' only context is word boundaries and start or end of text, where a newline, not a
    word character and not a token character, gives the same answer. No registered secret in
    the joined text means none in any of them. Past SCREEN_ALL characters, or with text RE2
    cannot read (lone surrogates), each text goes its own way."""
    if not texts:
        return True
    joined = "\n".join(texts)
    if len(joined) > SCREEN_ALL:
        return False
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return False
    if any(secret in joined for secret in _SECRETS):
        return False
    return not _SCREEN.Match(joined)


class RedactingFilter(logging.Filter):
    """Logging filter that redacts the formatted message, and any traceback, before any handler
    sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def install_log_redaction() -> None:
    """Attach the redacting filter to every handler of the root logger."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
