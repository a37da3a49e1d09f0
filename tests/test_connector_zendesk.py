"""The Zendesk connector against ``responses`` in front of the real zenpy: reads, paging, cursors,
rate limits and authentication. Payloads are recorded shapes under tests/fixtures/zendesk/."""
from __future__ import annotations

import re

import pytest
import responses
from responses import matchers

from core.errors import PULL, TRACKER, AuthError, NotFound, RateLimited
from tests.test_connector_zendesk_helpers import API, BASE, api, load, make, waits  # noqa: F401  (fixtures)

EXPORT = f"{API}/incremental/tickets/cursor.json"
JAN_1 = "1767225600"  # 2026-01-01T00:00:00Z
SIDELOADS = "users,organizations"


def _export(api, name, **query):
    api.get(EXPORT, json=load(name), match=[matchers.query_param_matcher(query)])


def test_pages_across_a_boundary_drop_the_repeated_ticket(api, make):
    _export(api, "export_page1", start_time=JAN_1, include=SIDELOADS)
    _export(api, "export_page2", cursor=load("export_page1")["after_cursor"], include=SIDELOADS)
    pages = list(make().fetch_changes(None))
    assert [[r.id for r in p.records] for p in pages] == [["35436", "35437"], ["35438"]]
    first = pages[0].records[0]
    assert first.version == "2026-01-05T08:58:52Z" and first.updated_at.tzinfo is not None
    assert first.data["requester.email"] == "pat@contoso-partner.example.com"
    assert first.data["assignee.email"] == "alice.agent@tier1.example.com"
    assert first.data["organization.name"] == "Contoso Partner"
    assert first.data["custom_fields.360010000002"] == "sev_2"
    assert first.data["custom_fields.360010000015"] is False
    assert first.data["via.channel"] == "web" and first.data["tags"] == ["escalate_tier2", "sev_2"]
    assert first.url == f"{BASE}/agent/tickets/35436"
    assert len(api.calls) == 2  # people came sideloaded: no user requests


def test_resume_from_a_saved_cursor_never_repeats_a_version(api, make):
    _export(api, "export_page1", start_time=JAN_1, include=SIDELOADS)
    _export(api, "export_page2", cursor=load("export_page1")["after_cursor"], include=SIDELOADS)
    connector = make()
    pages = connector.fetch_changes(None)
    saved = next(pages).cursor  # the run stops after the first page
    resumed = list(make().fetch_changes(saved))
    assert [r.id for p in resumed for r in p.records] == ["35438"]  # 35437 was delivered already
    _export(api, "export_page3_later", cursor=load("export_page2")["after_cursor"], include=SIDELOADS)
    later = list(make().fetch_changes(resumed[-1].cursor))
    assert [(r.id, r.version) for p in later for r in p.records] == [("35436", "2026-01-05T10:15:00Z")]


def test_an_idle_stream_yields_nothing_new(api, make):
    cursor_page = load("export_page2")
    cursor_page["tickets"] = []
    api.get(EXPORT, json=cursor_page)
    first = list(make().fetch_changes(None))
    assert [p.records for p in first] == [[]]
    assert list(make().fetch_changes(first[0].cursor)) == []


def test_comments_come_without_the_description_and_with_authors(api, make):
    api.get(f"{API}/tickets/show_many.json", json=load("show_many"),
            match=[matchers.query_param_matcher({"ids": "35436", "include": SIDELOADS})])
    api.get(f"{API}/tickets/35436/comments.json", json=load("comments"),
            match=[matchers.query_param_matcher({"page[size]": "100", "include_inline_images": "false"})])
    record = make(include_comments=True).get("35436")
    assert [(c.id, c.public, c.author) for c in record.comments] == [
        ("1276", False, "alice.agent@tier1.example.com")]
    assert record.data["description"] == "The portal is down for every user."


def test_unknown_people_are_fetched_once_per_page(api, make):
    page = load("export_page1")
    page.pop("users")
    page["end_of_stream"] = True
    api.get(EXPORT, json=page)
    users = api.get(f"{API}/users/show_many.json", json={"users": load("export_page1")["users"]},
                    match=[matchers.query_param_matcher({"ids": "235323,20978392"})])
    records = [r for p in make().fetch_changes(None) for r in p.records]
    assert users.call_count == 1
    assert {r.data["requester.email"] for r in records} == {"pat@contoso-partner.example.com"}


def test_get_of_a_missing_ticket_is_not_found(api, make):
    api.get(f"{API}/tickets/show_many.json", json={"tickets": [], "users": [], "organizations": []})
    with pytest.raises(NotFound):
        make().get("999")
    with pytest.raises(NotFound):
        make().get("SUP-1")


def test_429_waits_the_stated_seconds_once_then_succeeds(api, make, waits):
    url = f"{API}/tickets/show_many.json"
    api.get(url, json=load("error_429"), status=429, headers={"Retry-After": "7"})
    api.get(url, json=load("show_many"))
    assert make().get("35436").id == "35436"
    assert waits == [7.0]
    assert len(api.calls) == 2


def test_zenpy_never_sleeps_or_resends_on_its_own(api, make, monkeypatch):
    import zenpy.lib.api as zenpy_api
    monkeypatch.setattr(zenpy_api, "sleep", lambda s: pytest.fail("zenpy slept"))
    monkeypatch.setattr("connectors.retry.sleep", lambda s: None)
    api.get(f"{API}/tickets/show_many.json", json=load("error_429"), status=429,
            headers={"Retry-After": "30"})
    with pytest.raises(RateLimited) as err:
        make(max_attempts=1).get("35436")
    assert err.value.retry_after == 30.0 and len(api.calls) == 1
    adapter = make().client.session.get_adapter(BASE)
    assert adapter.max_retries.total == 0


def test_a_429_of_the_export_holds_back_the_feed_only_and_one_of_show_many_the_tracker(api, make, monkeypatch):
    monkeypatch.setattr("connectors.retry.sleep", lambda s: None)
    api.get(EXPORT, json=load("error_429"), status=429, headers={"Retry-After": "40"})
    with pytest.raises(RateLimited) as feed:
        list(make(max_attempts=1).fetch_changes(None))
    assert feed.value.scope == PULL and feed.value.retry_after == 40.0  # the export's own limit
    api.get(f"{API}/tickets/show_many.json", json=load("error_429"), status=429,
            headers={"Retry-After": "30"})
    with pytest.raises(RateLimited) as single:
        make(max_attempts=1).get("35436")
    assert single.value.scope == TRACKER  # the account's limit: every call waits


def test_401_names_the_tracker_and_the_credential_variables(api, make):
    api.get(f"{API}/tickets/show_many.json", json=load("error_401"), status=401)
    with pytest.raises(AuthError) as err:
        make().get("35436")
    message = str(err.value)
    assert "[zendesk]" in message and "HTTP 401" in message
    assert "ZENDESK_EMAIL/ZENDESK_TOKEN" in message and "tok-123456" not in message
    auth = api.calls[0].request.headers["Authorization"]
    import base64
    assert base64.b64decode(auth.split()[1]).decode() == "tiersync@tier1.example.com/token:tok-123456"


def test_base_url_is_per_instance(api, make):
    other = "http://127.0.0.1:8123"
    api.get(re.compile(rf"{other}/api/v2/tickets/show_many\.json.*"), json=load("show_many"))
    api.get(re.compile(rf"{API}/tickets/show_many\.json.*"), json=load("show_many"))
    local, remote = make(base_url=other), make()
    local.get("35436")
    remote.get("35436")
    assert [c.request.url.split("/api/")[0] for c in api.calls] == [other, BASE]


def test_start_at_epoch_exports_everything(api, make):
    _export(api, "export_page2", start_time="0", include=SIDELOADS)
    assert len([r for p in make(start_at="epoch").fetch_changes(None) for r in p.records]) == 2


def test_check_online_reports_auth_failure_and_bad_fields(api, make):
    api.get(f"{API}/ticket_fields.json", json=load("ticket_fields"))
    problems = make().check_online(
        ["custom_fields.360010000002", "custom_fields.360010000015", "custom_fields.360010000016",
         "priority"], {"custom_fields.360010000002": ["sev_1", "sev_5"], "priority": ["urgent"],
                       "custom_fields.360010000015": ["yes"]})
    assert problems == [
        "custom_fields.360010000002: 'sev_5' is not an option of ticket field 'Severity' "
        "(options: sev_1, sev_2)",
        "custom_fields.360010000015: ticket field 'Security incident' is a checkbox; 'yes' is not a bool",
        "custom_fields.360010000016: ticket field 'Queue' is inactive"]
    api.replace(responses.GET, f"{API}/ticket_fields.json", json=load("error_401"), status=401)
    [problem] = make().check_online(["priority"], {})
    assert "ZENDESK_EMAIL/ZENDESK_TOKEN" in problem


def test_a_base_url_zenpy_cannot_express_is_a_config_error():
    from pydantic import ValidationError

    from connectors.zendesk import ZendeskConfig
    with pytest.raises(ValidationError, match="base_url"):
        ZendeskConfig(base_url="http://sim:8080", mapping="zendesk")
    assert ZendeskConfig(base_url="http://localhost:8080", mapping="zendesk").kind == "zendesk"
