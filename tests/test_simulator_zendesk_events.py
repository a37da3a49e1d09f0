"""The Zendesk simulator's incremental ticket event export (simulators/zendesk_events.py), at full
scale of the realistic profile: comments only with the sideload, the last minute left out, time-
based paging, 400 on a bad start_time, the export's shared rate limit, admins only."""
from __future__ import annotations

from datetime import timedelta

from tests.test_simulator_realism import AGENT, EXPORT, auth, create, zendesk  # noqa: F401

EVENTS = "/api/v2/incremental/ticket_events.json"


def _comment(client, ticket_id: int, body: str) -> None:
    answer = client.put(f"/api/v2/tickets/{ticket_id}.json",
                        json={"ticket": {"comment": {"body": body, "public": False}}})
    assert answer.status_code == 200, answer.get_json()


def test_comments_come_with_the_comment_events_sideload_only(zendesk):
    sim, client = zendesk
    ticket = create(client)
    _comment(client, ticket["id"], "second words")
    sim.clock.now += timedelta(minutes=2)
    full = client.get(f"{EVENTS}?start_time=0&include=comment_events").get_json()
    events = [e for e in full["ticket_events"] if e["ticket_id"] == ticket["id"]]
    assert [e["event_type"] for e in events] == ["Audit", "Audit"]
    assert any(c["event_type"] == "Create" for c in events[0]["child_events"])
    (note,) = [c for c in events[1]["child_events"] if c["event_type"] == "Comment"]
    assert (note["body"], note["public"]) == ("second words", False)
    bare = client.get(f"{EVENTS}?start_time=0").get_json()
    (flag,) = [c for e in bare["ticket_events"] if e["ticket_id"] == ticket["id"]
               for c in e["child_events"] if c["event_type"] == "Comment"][-1:]
    assert flag == {"id": note["id"], "comment_present": True, "comment_public": False,
                    "event_type": "Comment"}
    assert full["end_of_stream"] is True and full["end_time"] == events[-1]["timestamp"]
    assert f"start_time={full['end_time']}" in full["next_page"]  # the next page starts there


def test_the_last_minute_is_left_out(zendesk):
    sim, client = zendesk
    ticket = create(client)
    sim.clock.now += timedelta(seconds=59)
    early = client.get(f"{EVENTS}?start_time=0&include=comment_events").get_json()
    assert [e for e in early["ticket_events"] if e["ticket_id"] == ticket["id"]] == []
    sim.clock.now += timedelta(seconds=2)
    later = client.get(f"{EVENTS}?start_time=0&include=comment_events").get_json()
    assert [e["ticket_id"] for e in later["ticket_events"]][-1:] == [ticket["id"]]


def test_a_bad_start_time_is_a_400(zendesk):
    sim, client = zendesk
    assert client.get(f"{EVENTS}?start_time=soon").status_code == 400
    future = int((sim.clock.now + timedelta(hours=1)).timestamp())
    answer = client.get(f"{EVENTS}?start_time={future}")
    assert answer.status_code == 400 and answer.get_json()["error"] == "InvalidValue"
    assert client.get(EVENTS).status_code == 400


def test_the_event_export_shares_the_exports_ten_requests_a_minute(zendesk):
    _, client = zendesk
    answers = [client.get(f"{EXPORT}?start_time=0") for _ in range(5)]
    answers += [client.get(f"{EVENTS}?start_time=0") for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 10 + [429]
    assert answers[-1].headers["Retry-After"]


def test_the_event_export_is_for_admins(zendesk):
    _, client = zendesk
    assert client.get(f"{EVENTS}?start_time=0", headers=auth(AGENT)).status_code == 403
