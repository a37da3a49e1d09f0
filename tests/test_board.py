"""The board page (grouping, flags, escaping) and the daemon's HTTP listener."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import requests
from werkzeug.wrappers import Response

from core.board import groups, render_board
from core.errors import ConfigError
from core.listener import Listener, parse_listen

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def row(id_, queue, tier, status, remaining=None, title="t"):
    sla = {"acknowledgement": {"status": status, "due_at": NOW, "remaining_seconds": remaining}}
    return {"id": id_, "sr_number": None, "title": title, "links": [f"zendesk:{id_}"],
            "state": "new", "tier": tier, "queue": queue, "severity": 2,
            "support_plan": "enterprise", "assignee": None, "sla": sla, "flag": status}


def test_rows_are_grouped_by_queue_then_tier():
    rows = [row("a", "Security", "L2", "running"), row("b", None, "L1", "running"),
            row("c", "Security", "L1", "breached")]
    assert [(g["queue"], g["tier"], [r["id"] for r in g["rows"]]) for g in groups(rows)] == [
        ("Security", "L1", ["c"]), ("Security", "L2", ["a"]), ("no queue", "L1", ["b"])]


def test_breaches_and_warnings_are_counted_flagged_and_text_escaped():
    rows = [row("a", "Q", "L2", "breached", -5400), row("b", "Q", "L2", "warning", 1800,
                                                        title="<script>alert(1)</script>")]
    page = render_board(rows, NOW, refresh=2)
    assert "2 open · 1 breached · 1 warning" in page
    assert 'content="5"' in page  # reloads no more often than every 5 s
    assert 'class="flag-breached"' in page and "-1.5 business h left" in page
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_listen_address_is_checked():
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    for bad in ("8080", "host:", "host:http", "h:70000"):
        with pytest.raises(ConfigError, match="HOST:PORT"):
            parse_listen(bad)


def test_the_listener_routes_answers_404_405_and_survives_a_failing_handler():
    listener = Listener("127.0.0.1", 0)
    listener.route("/board", lambda request: Response("board"))
    listener.route("/broken", lambda request: 1 / 0)
    listener.start()
    try:
        assert requests.get(listener.address + "/board", timeout=5).text == "board"
        assert requests.post(listener.address + "/board", timeout=5).status_code == 405
        assert requests.get(listener.address + "/metrics", timeout=5).status_code == 404
        assert requests.get(listener.address + "/broken", timeout=5).status_code == 500
        assert requests.get(listener.address + "/board", timeout=5).status_code == 200
    finally:
        listener.stop()
