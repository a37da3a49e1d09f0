"""Every credential format is masked wherever it is planted in support prose; ordinary ticket
text is left alone; redaction is idempotent and runs under RE2 (linear time)."""
from __future__ import annotations

import base64
import os
import string
from pathlib import Path

import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.redact import MASK, found_formats, redact, redact_text
from core.redact_patterns import FORMATS, PHRASE

CORPUS = [line.rstrip("\n") for line in
          (Path(__file__).parent / "fixtures" / "ticket_corpus.txt").read_text().splitlines()
          if line and not line.startswith("#")]
EXAMPLES = int(os.environ.get("TIERSYNC_PROPERTY_EXAMPLES", "40"))  # more for a deeper search
UPPER, LOWER, DIGITS = string.ascii_uppercase, string.ascii_lowercase, string.digits
ALNUM = UPPER + LOWER + DIGITS


def _chars(alphabet: str, n: int, m: int | None = None) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=n, max_size=m or n)


def _mixed(alphabet: str, n: int) -> st.SearchStrategy[str]:
    """Random keys as vendors issue them: upper, lower and digits all present."""
    return st.tuples(_chars(UPPER, 1), _chars(LOWER, 1), _chars(DIGITS, 1), _chars(alphabet, n - 3)) \
        .map("".join)


def _b64url(n: int) -> st.SearchStrategy[str]:
    return _chars(ALNUM + "-_", n)


_jwt = st.tuples(_b64url(20), _b64url(30), _b64url(43)).map(
    lambda p: f"eyJ{p[0]}.eyJ{p[1]}.{p[2]}")
_basic = st.tuples(_chars(LOWER, 3, 12), _mixed(ALNUM + "!#%", 10)).map(
    lambda up: base64.b64encode(f"{up[0]}:{up[1]}".encode()).decode())
SECRETS: dict[str, st.SearchStrategy[tuple[str, str]]] = {
    # (text planted, secret that must disappear)
    "aws-access-key-id": st.tuples(st.sampled_from(["AKIA", "ASIA"]), _chars(UPPER + DIGITS, 16))
    .map(lambda p: (p[0] + p[1],) * 2),
    "aws-secret-key": _mixed(ALNUM + "/+", 40).map(lambda s: (f"aws_secret_access_key={s}", s)),
    "aws-secret-bare": _mixed(ALNUM + "+", 40).map(lambda s: (s, s)),
    "jwt": _jwt.map(lambda s: (s, s)),
    "github": st.sampled_from(["ghp_", "gho_", "ghs_"]).flatmap(
        lambda p: _chars(ALNUM, 36).map(lambda s: (p + s, p + s))),
    "github-fine-grained": _chars(ALNUM + "_", 82).map(lambda s: ("github_pat_" + s,) * 2),
    "gitlab": _chars(ALNUM + "_-", 20).map(lambda s: ("glpat-" + s,) * 2),
    "slack": st.tuples(_chars(DIGITS, 12), _chars(DIGITS, 13), _chars(ALNUM, 24)).map(
        lambda p: (f"xoxb-{p[0]}-{p[1]}-{p[2]}",) * 2),
    "slack-webhook": _chars(ALNUM, 24).map(
        lambda s: (f"https://hooks.slack.com/services/T0123ABCD/B0456EFGH/{s}",) * 2),
    "azure-storage": _chars(ALNUM + "+/", 86).map(lambda s: (
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={s}==;EndpointSuffix=core.windows.net",
        s)),
    "azure-sas": _chars(ALNUM + "%", 43).map(lambda s: (
        f"https://acct.blob.core.windows.net/c?sv=2022-11-02&sp=r&sig={s}", s)),
    "azure-client-secret": st.tuples(_chars(ALNUM, 3), _chars(DIGITS, 1), _chars(ALNUM + "_~.-", 34))
    .map(lambda p: (f"{p[0]}{p[1]}Q~{p[2]}",) * 2),
    "google-api-key": _chars(ALNUM + "_-", 35).map(lambda s: ("AIza" + s,) * 2),
    "google-oauth-secret": _chars(ALNUM + "_-", 28).map(lambda s: ("GOCSPX-" + s,) * 2),
    "private-key": _chars(ALNUM + "+/", 64).map(lambda s: (
        f"-----BEGIN RSA PRIVATE KEY-----\nMIIE{s}\n{s[::-1]}\n-----END RSA PRIVATE KEY-----", s)),
    "bearer": _mixed(ALNUM + "._-", 32).map(lambda s: (f"Authorization: Bearer {s}", s)),
    "basic-auth": _basic.map(lambda s: (f"Authorization: Basic {s}", s)),
    "url-credentials": _mixed(ALNUM + "!*", 12).map(
        lambda s: (f"postgresql://admin:{s}@db01.contoso.com:5432/app", s)),
    "url-token": _mixed(ALNUM, 24).map(lambda s: (f"https://api.contoso.com/v1/x?access_token={s}", s)),
    "pin": _chars(DIGITS, 4, 8).flatmap(lambda d: st.sampled_from(
        [f"PIN {d}", f"pin: {d}", f"PIN is {d}", f"PIN code {d}", f"'pin': '{d}'"]).map(lambda t: (t, d))),
    "password-phrase": _mixed(ALNUM + "!@#$%", 12).flatmap(lambda p: st.sampled_from(
        [f"Root/Admin Password: {p}", f"the root password is {p}", f"password={p}",
         f"admin pw: {p}", f'"password": "{p}"', f"the password for the admin account is {p}"])
        .map(lambda t: (t, p))),
}


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), kind=st.sampled_from(sorted(SECRETS)))
def test_planted_secret_is_masked_in_prose(data, kind):
    planted, secret = data.draw(SECRETS[kind])
    before, after = data.draw(st.sampled_from(CORPUS)), data.draw(st.sampled_from(CORPUS))
    glue = data.draw(st.sampled_from([" ", "\n", " — ", ": ", " (", "\n\n> "]))
    text = f"{before}{glue}{planted}{glue}{after}"
    cleaned = redact_text(text)
    assert secret not in cleaned, (kind, cleaned)
    assert MASK in cleaned
    assert redact_text(cleaned) == cleaned  # idempotent: echoes compare equal
    assert redact_text(before) != before or before.split()[0] in cleaned


def test_ordinary_ticket_text_is_left_alone():
    changed = [line for line in CORPUS if redact_text(line) != line]
    assert len(CORPUS) >= 400
    assert len(changed) / len(CORPUS) < 0.01, changed


def test_every_format_has_a_name_found_in_its_sample():
    assert "aws-access-key-id" in found_formats("key AKIAIOSFODNN7EXAMPLE here")
    assert "jwt" in found_formats("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcDEF123_-x")
    assert found_formats("Version 4.2.1 on web01.contoso.com, SR 2311150040001234") == []


def test_git_hashes_words_and_basic_prose_are_not_credentials():
    for text in ["commit 3f786850e387550fdab836ed7e6dc881de23001b broke it",
                 "basic troubleshooting was done", "Bearer token expired yesterday",
                 "PIN pad broken", "pin 3 of the connector", "(using password: YES)",
                 "path /usr/lib/python3/dist-packages/contoso/AgentService2.py"]:
        assert redact_text(text) == text


def test_nested_values_are_redacted():
    assert redact({"d": ["PIN 4821", {"k": "AKIAIOSFODNN7EXAMPLE"}]}) == {"d": [f"PIN {MASK}", {"k": MASK}]}


def test_every_pattern_runs_under_re2_so_redaction_is_linear():
    """RE2 matches in time linear in the input, whatever the pattern: no backtracking."""
    assert all(isinstance(f.pattern, re2._Regexp) for f in FORMATS)
    assert isinstance(PHRASE, re2._Regexp)
    hostile = "password" + " " * 200_000 + "a" * 200_000 + "eyJ" + "A" * 200_000 + "://" + "u:" * 50_000
    assert redact_text(hostile).startswith("password") and redact_text(hostile).endswith(MASK)
