"""Azure DevOps connector, write side (create, find, update, comments), with `responses` in
front of the real azure-devops SDK; asserts on the JSON Patch documents sent."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import responses

from core.connector import OriginRef
from core.errors import Conflict, PermanentError
from tests.test_connector_azure_devops import (WIT, api, batch, body, calls, conn, load,  # noqa: F401
                                               query, waits, wiql_result, work_item)

CREATE = f"{WIT}/workitems/$Engagement%20Item"
KEY = "esc-9-azure_devops"


def _created(**fields) -> dict:
    return work_item(310, 1, "2026-01-05T09:30:00Z",
                     **{"System.Tags": f"tiersync:{KEY}", **fields})


def _writes(api) -> list[tuple[str, str]]:
    """(method, path) of the calls that are not route discovery or metadata reads."""
    return [(c.request.method, c.request.url.split("/_apis/wit/")[1].split("?")[0])
            for c in api.calls if "/_apis/wit/" in c.request.url and "/states" not in c.request.url]


def test_create_sends_marker_tag_and_origin_link_then_find_by_key(conn, api):
    api.add(responses.POST, CREATE, json=_created())
    created = conn.create({"System.WorkItemType": "Engagement Item", "System.Title": "123 - Portal down",
                           "System.Description": "a < b\nsecond line", "Custom.TopPartner": False},
                          idempotency_key=KEY,
                          origin=OriginRef("zendesk", "77", "https://fabrikam.zendesk.com/agent/tickets/77",
                                           "Portal down"))
    assert (created.id, created.idempotency_key) == ("310", KEY)
    (post,) = calls(api, "POST", "/workitems/")
    assert query(post) == {"suppressNotifications": "true"}
    assert body(post) == [
        {"op": "add", "path": "/fields/System.Title", "value": "123 - Portal down"},
        {"op": "add", "path": "/fields/System.Description", "value": "a &lt; b<br>second line"},
        {"op": "add", "path": "/fields/Custom.TopPartner", "value": False},
        {"op": "add", "path": "/fields/System.Tags", "value": f"tiersync:{KEY}"},
        {"op": "add", "path": "/relations/-", "value": {
            "rel": "Hyperlink", "url": "https://fabrikam.zendesk.com/agent/tickets/77",
            "attributes": {"comment": "tiersync origin: zendesk 77 - Portal down"}}}]
    api.add(responses.POST, f"{WIT}/wiql", json=wiql_result([310]))
    api.add(responses.POST, f"{WIT}/workitemsbatch", json=batch(_created()))
    found = conn.find_by_idempotency_key(KEY)
    assert found is not None and found.id == "310" and found.idempotency_key == KEY
    assert body(calls(api, "POST", "/wiql")[0]) == {"query": (
        "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project AND "
        f"[System.Tags] CONTAINS 'tiersync:{KEY}' ORDER BY [System.Id] ASC")}
    assert body(calls(api, "POST", "/workitemsbatch")[0]) == {"ids": [310], "errorPolicy": "omit"}


def test_find_is_exact_about_the_key(conn, api):
    api.add(responses.POST, f"{WIT}/wiql", json=wiql_result([310]))
    api.add(responses.POST, f"{WIT}/workitemsbatch",
            json=batch(_created(**{"System.Tags": f"tiersync:{KEY}0"})))
    assert conn.find_by_idempotency_key(KEY) is None


def test_500_on_create_is_followed_by_a_lookup_before_the_resend(conn, api, waits):
    api.add(responses.POST, CREATE, status=500, json=load("error_server.json"))
    api.add(responses.POST, f"{WIT}/wiql", json=wiql_result([]))
    api.add(responses.POST, CREATE, json=_created())
    assert conn.create({"System.Title": "t"}, idempotency_key=KEY).id == "310"
    assert _writes(api) == [("POST", "workitems/$Engagement%20Item"), ("POST", "wiql"),
                            ("POST", "workitems/$Engagement%20Item")]
    assert len(waits) == 1


def test_create_whose_reply_was_lost_is_not_sent_again(conn, api, waits):
    api.add(responses.POST, CREATE, status=503, json=load("error_server.json"))
    api.add(responses.POST, f"{WIT}/wiql", json=wiql_result([310]))
    api.add(responses.POST, f"{WIT}/workitemsbatch", json=batch(_created()))
    assert conn.create({"System.Title": "t"}, idempotency_key=KEY).id == "310"
    assert [w for w in _writes(api) if w[1].startswith("workitems/$")] == [
        ("POST", "workitems/$Engagement%20Item")]


def test_update_carries_the_expected_rev_and_a_stale_one_conflicts(conn, api, waits):
    api.add(responses.PATCH, f"{WIT}/workitems/301",
            json=work_item(301, 4, "2026-01-05T10:00:00Z", **{"System.State": "Actively Working"}))
    record = conn.update("301", {"System.State": "Actively Working", "System.State.category": "InProgress",
                                 "Custom.CloseReason": None}, expected_version="3")
    assert (record.version, record.data["System.State.category"]) == ("4", "InProgress")
    patch = calls(api, "PATCH", "/workitems/301")[0]
    assert query(patch) == {"suppressNotifications": "true"}
    assert body(patch) == [{"op": "test", "path": "/rev", "value": 3},
                           {"op": "add", "path": "/fields/System.State", "value": "Actively Working"},
                           {"op": "remove", "path": "/fields/Custom.CloseReason"}]
    api.add(responses.PATCH, f"{WIT}/workitems/301", status=412, json=load("error_conflict.json"))
    with pytest.raises(Conflict, match="TF26071"):
        conn.update("301", {"System.State": "Closed"}, expected_version="3")
    assert len(calls(api, "PATCH", "/workitems/301")) == 2 and waits == []


def test_writing_tags_keeps_the_marker(conn, api):
    api.add(responses.GET, f"{WIT}/workitems/301", json=work_item(301, 3, "2026-01-05T10:00:00Z"))
    api.add(responses.PATCH, f"{WIT}/workitems/301", json=work_item(301, 4, "2026-01-05T10:01:00Z"))
    conn.update("301", {"System.Tags": ["vip"]}, expected_version="3")
    assert body(calls(api, "PATCH", "/workitems/301")[0])[1] == {
        "op": "add", "path": "/fields/System.Tags", "value": "vip; tiersync:esc-1-azure_devops"}


def test_a_mapping_mistake_is_a_permanent_error(conn, api, waits):
    error = {"$id": "1", "message": "TF51535: Cannot find field Custom.Nope.", "typeKey":
             "WorkItemTrackingFieldDefinitionNotFoundException", "errorCode": 0, "eventId": 3200}
    api.add(responses.PATCH, f"{WIT}/workitems/301", status=400, json=error)
    with pytest.raises(PermanentError, match="TF51535"):
        conn.update("301", {"Custom.Nope": 1}, expected_version=None)
    assert waits == []


def test_comment_is_one_post_to_the_comments_api_without_a_rev_test(conn, api):
    # Microsoft's recorded Comments - Add answer (5.1 names the id commentId; 7.1's Comment: id)
    created = load("comment_created.json")
    created.update(id=46, workItemId=301)
    api.add(responses.POST, f"{WIT}/workItems/301/comments", json=created)
    assert conn.add_comment("301", "[tiersync] Status: a <b>\nnext", public=False) == "46"
    [call] = calls(api, "POST", "/comments")
    assert body(call) == {"text": "[tiersync] Status: a &lt;b&gt;<br>next"}
    assert "api-version=7.1-preview.4" in call.request.headers["Accept"]  # a preview API
    assert calls(api, "PATCH", "/workitems/301") == [] and calls(api, "GET", "/workitems/301") == []


def test_comment_with_unknown_outcome_is_looked_for_before_resending(conn, api, waits):
    api.add(responses.POST, f"{WIT}/workItems/301/comments", status=502, json=load("error_server.json"))
    comments = load("comments.json")
    text = "Johnnie is going to take this work over."
    for comment in comments["comments"]:  # written just now: the lost reply's comment
        comment["createdDate"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    api.add(responses.GET, f"{WIT}/workItems/301/comments", json=comments)
    assert conn.add_comment("301", text, public=False) == "45"
    assert len(calls(api, "POST", "/comments")) == 1


def test_comment_refused_with_429_is_sent_again_without_looking(conn, api, waits):
    api.add(responses.POST, f"{WIT}/workItems/301/comments", status=429,
            json=load("error_rate_limited.json"), headers={"Retry-After": "2"})
    api.add(responses.POST, f"{WIT}/workItems/301/comments", json=load("comment_created.json"))
    assert conn.add_comment("301", "hello", public=False) == "50"
    assert len(calls(api, "POST", "/comments")) == 2 and waits == [2.0]
    assert calls(api, "GET", "/comments") == []
