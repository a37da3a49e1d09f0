import logging

import pytest

from core.redact import MASK, RedactingFilter, redact, redact_text, register_secret


@pytest.mark.parametrize("text,secret", [
    ("Root/Admin Password: Sup3r!secret and server web01", "Sup3r!secret"),
    ("the root password is hunter2.", "hunter2"),
    ("PIN 4821, server name db01", "4821"),
    ("login with https://bob:pa55w0rd@portal.example/x", "pa55w0rd"),
    ("pwd=abc123;", "abc123"),
    ("admin pw: Tr0ub4dor&3", "Tr0ub4dor&3"),
])
def test_password_phrases_are_masked(text, secret):
    cleaned = redact_text(text)
    assert secret not in cleaned and MASK in cleaned


def test_plain_text_about_passwords_is_kept():
    assert redact_text("Customer asks for a password reset") == "Customer asks for a password reset"


def test_registered_secrets_are_masked_in_nested_data_and_logs(caplog):
    register_secret("tok-ABCDEF123456")
    assert redact({"a": ["x tok-ABCDEF123456 y"]}) == {"a": [f"x {MASK} y"]}
    logger = logging.getLogger("tiersync.test")
    handler = logging.Handler()
    records = []
    handler.emit = records.append
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.warning("auth with %s failed", "tok-ABCDEF123456")
    logger.removeHandler(handler)
    assert "tok-ABCDEF123456" not in records[0].getMessage()
