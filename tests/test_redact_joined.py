"""``redact`` of a nested value screens all its strings at once (joined by newlines) and copies
the value when nothing in it matches: the result must be exactly that of redacting each string
alone, whatever the strings hold and however they are split between fields."""
from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.redaction import generators  # the planted formats of bench/redaction.py
from core import redact as redaction
from tests.test_redact_screen import CORPUS

FRAGMENTS = ["password: ", "PIN ", "Bearer ", "Basic ", "https://", "://", "u:", "@h.io", "AKIA",
             "ghp_", "eyJ", "AccountKey=", "?token=", "-----BEGIN PRIVATE KEY-----", "/", "+",
             "=", " ", "\n", "[REDACTED]", "Aa1", "zz9Q~", "xoxb-", "sk-", "0123456789",
             "ABCDEFGHIJKLMNOP", "abcdefghij", "Ab1/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]


def each_alone(value):
    """The reference: every string redacted on its own, the structure copied as ``redact`` does."""
    return redaction._redact_each(value)


texts = st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join)
nested = st.recursive(st.one_of(texts, st.integers(), st.none(), st.booleans()),
                      lambda inner: st.one_of(st.lists(inner, max_size=4),
                                              st.tuples(inner, inner),
                                              st.dictionaries(st.sampled_from("abcdef"), inner,
                                                              max_size=4)), max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(nested)
def test_fragments_split_between_fields_redact_as_each_field_alone(value):
    assert redaction.redact(value) == each_alone(value)
    assert redaction.is_clean(value) == (each_alone(value) == redaction._copied(value, []))


def test_planted_credentials_in_records_redact_as_each_field_alone():
    rnd = random.Random(5)
    for _ in range(200):
        planted = [p for p, _ in generators(rnd).values()]
        fields = {f"f{i}": rnd.choice(CORPUS) for i in range(rnd.randint(1, 12))}
        for _ in range(rnd.randint(0, 2)):  # a credential in one field, or split between two
            secret = rnd.choice(planted)
            cut = rnd.randint(0, len(secret))
            fields[f"f{rnd.randint(0, 12)}"] = secret[:cut]
            fields[f"f{rnd.randint(0, 12)}"] = secret[cut:] + " " + rnd.choice(CORPUS)
        value = {"data": fields, "tags": [rnd.choice(CORPUS), rnd.choice(planted)][:rnd.randint(0, 2)]}
        assert redaction.redact(value) == each_alone(value), value


def test_a_credential_at_the_edge_of_a_field_is_masked():
    secret = "Ab1/" + "x" * 36  # an AWS secret key alone in its field: start and end of text
    value = {"a": "ordinary text", "b": secret, "c": ("password: Hunter2pw",)}
    out = redaction.redact(value)
    assert out == each_alone(value)
    assert secret not in str(out) and "Hunter2pw" not in str(out)
    assert not redaction.is_clean(value)


def test_a_registered_secret_is_masked_in_any_field(monkeypatch):
    monkeypatch.setattr(redaction, "_SECRETS", set())
    redaction.register_secret("s3cr3t-value-42")
    try:
        value = {"a": "nothing here", "b": ["token s3cr3t-value-42 in a list"]}
        assert redaction.redact(value) == {"a": "nothing here", "b": ["token [REDACTED] in a list"]}
        assert not redaction.is_clean(value)
    finally:
        redaction._redact_short.cache_clear()
        redaction._redact_long.cache_clear()


def test_clean_values_are_copied_with_tuples_as_lists():
    value = {"a": ("x", "y"), "b": [{"c": "plain text"}], "d": 3}
    out = redaction.redact(value)
    assert out == {"a": ["x", "y"], "b": [{"c": "plain text"}], "d": 3}
    assert out is not value and out["b"] is not value["b"] and out["b"][0] is not value["b"][0]
    assert redaction.is_clean(value)


def test_long_and_unreadable_text_is_redacted_field_by_field():
    long_text = "ordinary words " * 400 + "password: Hunter2pw"
    value = {"a": long_text, "b": "x\ud800y password: Hunter2pw"}
    assert redaction.redact(value) == each_alone(value)
    assert "Hunter2pw" not in str(redaction.redact(value))


@settings(max_examples=200, deadline=None)
@given(nested)
def test_the_audits_shortened_copy_is_compact_of_redact(value):
    assert redaction.redact_shortened(value, 8, _short) == _short(redaction.redact(value))


def _short(value):
    if isinstance(value, str):
        return value[:3] + "…" if len(value) > 8 else value
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_short(v) for v in value]
    return value


def test_audit_values_are_redacted_then_compacted():
    from core.store_values import LIMIT, compact
    long_text = "word " * (LIMIT // 4)
    for value in ({"a": long_text, "b": "plain"}, {"a": long_text + " password: Hunter2pw"},
                  [long_text, ("x", "Bearer abcdef123456789")], long_text, None, 3):
        assert redaction.redact_shortened(value, LIMIT, compact) == compact(redaction.redact(value))
