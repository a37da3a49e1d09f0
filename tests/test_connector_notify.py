"""Notifying people with a comment: Zendesk followers, Jira watchers and mentions — asserting
the bodies sent (``responses``), as the connectors' write path does it."""
from __future__ import annotations

from tests.test_connector_jira import API as JIRA_API
from tests.test_connector_jira import body as jira_body
from tests.test_connector_jira import env, http, load as jira_load, make as make_jira, sent  # noqa: F401
from tests.test_connector_zendesk_helpers import API, api, body, load, make  # noqa: F401

CSM = "carla.csm@tier1.example.com"
LEAD = "lee.lead@tier1.example.com"


def test_zendesk_note_adds_the_people_as_followers_in_the_same_update(api, make):
    put = api.put(f"{API}/tickets/35436.json", json=load("comment_response"))
    make().add_comment("35436", "[tiersync] level 2", public=False, notify=(LEAD, CSM))
    assert body(put.calls[0]) == {"ticket": {"id": 35436,
        "comment": {"body": "[tiersync] level 2", "public": False},
        "followers": [{"user_email": LEAD, "action": "put"},
                      {"user_email": CSM, "action": "put"}]}}


def test_zendesk_note_without_people_sends_no_followers(api, make):
    put = api.put(f"{API}/tickets/35436.json", json=load("comment_response"))
    make().add_comment("35436", "[tiersync] note", public=False)
    assert "followers" not in body(put.calls[0])["ticket"]


def test_jira_note_mentions_the_people_and_adds_them_as_watchers(http):
    lead = {"accountId": "acc-lead", "emailAddress": LEAD, "displayName": "Lee Lead"}
    http.get(f"{JIRA_API}/user/search", json=[lead])
    http.get(f"{JIRA_API}/user/search", json=[])  # the CSM has no Jira account
    http.post(f"{JIRA_API}/issue/ENG-2/comment", json=jira_load("comment_created.json"), status=201)
    http.post(f"{JIRA_API}/issue/ENG-2/watchers", status=204)

    comment_id = make_jira().add_comment("ENG-2", "[tiersync] level 2", public=False,
                                         notify=(LEAD, CSM))

    assert comment_id == "10005"
    sent_body = jira_body(sent(http, "POST", "issue/ENG-2/comment")[0])
    assert sent_body["body"] == "[tiersync] level 2\n\nNotified: [~accountid:acc-lead]"
    [watch] = sent(http, "POST", "issue/ENG-2/watchers")
    assert jira_body(watch) == "acc-lead"  # the accountId as a JSON string
    searches = sent(http, "GET", "user/search")
    assert [s.url.split("query=")[1] for s in searches] == ["lee.lead%40tier1.example.com",
                                                            "carla.csm%40tier1.example.com"]
