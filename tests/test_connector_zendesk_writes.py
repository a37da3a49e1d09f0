"""Writes of the Zendesk connector against ``responses`` in front of zenpy: create with its
idempotency key, updates with safe_update, comments, update_many jobs — asserting the bodies."""
from __future__ import annotations

import pytest
import requests
from responses import matchers

from core.connector import OriginRef
from core.errors import Conflict, PermanentError
from tests.test_connector_zendesk_helpers import API, api, body, load, make, waits  # noqa: F401  (fixtures)

KEY = "tiersync:esc-1:zendesk"
SHOW_MANY = f"{API}/tickets/show_many.json"
BY_KEY = [matchers.query_param_matcher({"external_id": KEY, "include": "users,organizations",
                                        "page[size]": "100"})]


def _created_ticket_readable(api):
    show = load("show_many")
    show["tickets"] = [load("create_response")["ticket"]]
    api.get(SHOW_MANY, json=show, match=[matchers.query_param_matcher(
        {"ids": "35440", "include": "users,organizations"})])


def test_create_sends_the_key_and_fields_then_find_by_key(api, make):
    post = api.post(f"{API}/tickets.json", json=load("create_response"), status=201)
    _created_ticket_readable(api)
    api.get(f"{API}/tickets.json", json=load("tickets_by_external_id"), match=BY_KEY)
    connector = make()
    created = connector.create(
        {"subject": "12345678901237 - Mirror", "custom_fields.360010000002": "sev_2",
         "custom_fields.360010000020": 2, "priority": "high", "assignee.email": "alice.agent@tier1.example.com",
         "requester.email": "pat@contoso-partner.example.com", "requester.name": "Pat Partner",
         "description": "Portal down", "organization.name": "ignored", "tags": ["escalate_tier2"]},
        idempotency_key=KEY)
    assert body(post.calls[0]) == {"ticket": {
        "subject": "12345678901237 - Mirror", "priority": "high", "tags": ["escalate_tier2"],
        "assignee_email": "alice.agent@tier1.example.com", "external_id": KEY,
        "custom_fields": [{"id": 360010000002, "value": "sev_2"}, {"id": 360010000020, "value": 2}],
        "requester": {"email": "pat@contoso-partner.example.com", "name": "Pat Partner"},
        "comment": {"body": "Portal down", "public": False}}}
    assert created.id == "35440" and created.idempotency_key == KEY
    found = connector.find_by_idempotency_key(KEY)
    assert found.id == "35440" and found.idempotency_key == KEY


def test_find_by_an_unknown_key_is_none(api, make):
    api.get(f"{API}/tickets.json", json=load("tickets_none"))
    assert make().find_by_idempotency_key("tiersync:nope:zendesk") is None


def test_500_on_create_looks_the_key_up_before_sending_again(api, make, waits):
    post = api.post(f"{API}/tickets.json", json=load("error_500"), status=500)
    lookup = api.get(f"{API}/tickets.json", json=load("tickets_none"), match=BY_KEY)
    api.post(f"{API}/tickets.json", json=load("create_response"), status=201)
    _created_ticket_readable(api)
    record = make().create({"subject": "S - x"}, idempotency_key=KEY,
                           origin=OriginRef("jira", "SUP-1", "https://jira.example/SUP-1"))
    assert record.id == "35440"
    sequence = [(c.request.method, c.request.url.split("?")[0].rsplit("/api/v2", 1)[1])
                for c in api.calls]
    assert sequence[:3] == [("POST", "/tickets.json"), ("GET", "/tickets.json"), ("POST", "/tickets.json")]
    posts = [c for c in api.calls if c.request.method == "POST"]
    assert len(posts) == 2 and post.call_count == 1 and lookup.call_count == 1 and len(waits) == 1
    first_comment = body(api.calls[0])["ticket"]["comment"]
    assert first_comment == {"body": "[tiersync] mirror of jira SUP-1 (https://jira.example/SUP-1)",
                             "public": False}


def test_a_create_that_did_happen_is_not_sent_again(api, make, waits):
    post = api.post(f"{API}/tickets.json", body=requests.ConnectionError("connection reset"))
    api.get(f"{API}/tickets.json", json=load("tickets_by_external_id"), match=BY_KEY)
    _created_ticket_readable(api)
    assert make().create({"subject": "S - x"}, idempotency_key=KEY).id == "35440"
    assert post.call_count == 1


def test_update_sends_safe_update_and_a_stale_version_conflicts(api, make):
    put = api.put(f"{API}/tickets/35436.json", json=load("error_409_update_conflict"), status=409)
    with pytest.raises(Conflict) as err:
        make().update("35436", {"status": "hold", "custom_fields.360010000010": "tier_l2",
                                "via.channel": "web"}, expected_version="2026-01-05T08:58:52Z")
    assert put.call_count == 1  # a conflict is never retried
    assert body(put.calls[0]) == {"ticket": {
        "id": 35436, "status": "hold", "custom_fields": [{"id": 360010000010, "value": "tier_l2"}],
        "safe_update": True, "updated_stamp": "2026-01-05T08:58:52Z"}}
    assert "409" in str(err.value)


def test_update_returns_the_new_version(api, make):
    api.put(f"{API}/tickets/35436.json", json=load("update_response"))
    users = api.get(f"{API}/users/show_many.json", json={"users": load("show_many")["users"]})
    api.get(f"{API}/organizations/show_many.json", json={"organizations": load("show_many")["organizations"]})
    record = make().update("35436", {"status": "hold"}, expected_version="2026-01-05T08:58:52Z")
    assert record.version == "2026-01-05T09:30:00Z" and record.data["status"] == "hold"
    assert record.data["requester.email"] == "pat@contoso-partner.example.com"
    assert users.call_count == 1  # people a page did not sideload are fetched, then cached


def test_update_of_an_unknown_path_is_permanent(make):
    with pytest.raises(PermanentError, match="summary"):
        make().update("35436", {"summary": "x"}, expected_version=None)


def test_private_note_and_public_reply(api, make):
    put = api.put(f"{API}/tickets/35436.json", json=load("comment_response"))
    connector = make()
    assert connector.add_comment("35436", "[tiersync] note", public=False) == "9202"
    connector.add_comment("35436", "We are on it", public=True)
    assert [body(c)["ticket"]["comment"] for c in put.calls] == [
        {"body": "[tiersync] note", "public": False}, {"body": "We are on it", "public": True}]


def test_a_comment_with_unknown_outcome_is_found_instead_of_resent(api, make, waits):
    put = api.put(f"{API}/tickets/35436.json", json=load("error_500"), status=502)
    comments = load("comments")
    comments["comments"][1]["body"] = "[tiersync] note"
    comments["comments"][1]["created_at"] = "2999-01-01T00:00:00Z"
    api.get(f"{API}/tickets/35436/comments.json", json=comments)
    assert make().add_comment("35436", "[tiersync] note", public=False) == "1276"
    assert put.call_count == 1


def test_update_many_chunks_by_100_and_polls_the_job(api, make, waits):
    queued = load("job_status_queued")
    job_url = f"{API}/job_statuses/{queued['job_status']['id']}.json"
    put = api.put(f"{API}/tickets/update_many.json", json=queued)
    api.get(job_url, json=queued)
    api.get(job_url, json=load("job_status_completed"))
    api.get(job_url, json=load("job_status_completed"))
    items = [(str(35436 + i), {"priority": "urgent"}) for i in range(101)]
    results = make(job_poll_seconds=0.5).update_many(items)
    assert [len(body(c)["tickets"]) for c in put.calls] == [100, 1]
    assert body(put.calls[0])["tickets"][0] == {"id": 35436, "priority": "urgent"}
    assert (results[0].ok, results[1].ok, results[1].error) == (
        True, False, "Status: closed prevents ticket update")
    assert results[2].error == "no result for this ticket in the job" and len(results) == 101
    assert waits == [0.5, 0.5, 0.5]
