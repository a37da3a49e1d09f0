"""Redaction screens a text with one RE2 set of every pattern and runs only the patterns that
match: the result must be exactly that of running every pattern in turn, including where masking
one credential makes a later pattern match (or stop matching)."""
from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from core import redact as redaction
from core.redact_patterns import FORMATS, PHRASE

from bench.redaction import generators  # the planted formats of bench/redaction.py

CORPUS = [line for line in (Path(__file__).parent / "fixtures" / "ticket_corpus.txt")
          .read_text().splitlines() if line and not line.startswith("#")]


def every_pattern_in_turn(text: str) -> str:
    """The reference: each format's pattern over the whole text, then the password phrase."""
    for fmt in FORMATS:
        text = fmt.pattern.sub(lambda m, f=fmt: redaction._mask_format(m, f), text)
    return PHRASE.sub(redaction._mask_phrase, text)


def test_planted_credentials_in_prose_redact_exactly_as_every_pattern_in_turn():
    rnd = random.Random(11)
    for _ in range(150):
        planted = list(generators(rnd).values())
        rnd.shuffle(planted)
        pieces = [rnd.choice(CORPUS)] + [p for p, _ in planted[:rnd.randint(0, 4)]] + [rnd.choice(CORPUS)]
        text = " ".join(pieces)
        assert redaction._redact(text) == every_pattern_in_turn(text), text
        assert redaction._redact(text, screened=False) == every_pattern_in_turn(text)


def test_ordinary_text_is_one_screen_and_unchanged():
    for line in CORPUS:
        assert redaction._redact(line) == every_pattern_in_turn(line)


def test_a_credential_masked_inside_a_url_lets_the_url_pattern_see_the_password():
    # the 40-character AWS secret holds a '/', so before it is masked the URL's user part cannot
    # span it and the URL pattern does not match the original text at all
    secret = "Ab1/" + "x" * 36
    text = f"ftp://u-{secret}:Hunter2pw@files.example.com"
    assert redaction._redact(text) == every_pattern_in_turn(text)
    assert "Hunter2pw" not in every_pattern_in_turn(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["password: ", "PIN ", "Bearer ", "Basic ", "https://", "://",
                                 "u:", "@h.io", "AKIA", "ghp_", "eyJ", "AccountKey=", "?token=",
                                 "-----BEGIN PRIVATE KEY-----", "/", "+", "=", " ", "\n", "[REDACTED]",
                                 "Aa1", "zz9Q~", "xoxb-", "sk-", "0123456789", "ABCDEFGHIJKLMNOP",
                                 "abcdefghij"]), max_size=30).map("".join))
def test_fragments_of_every_format_redact_exactly_as_every_pattern_in_turn(text):
    assert redaction._redact(text) == every_pattern_in_turn(text)
