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


def test_azure_devops_note_mentions_the_people_so_azure_devops_notifies_them(monkeypatch):
    import responses

    from connectors.azure_devops import AzureDevOpsConfig, AzureDevOpsConnector
    from simulators.azure_devops_identities import IDENTITY_LOCATION
    from tests.test_connector_azure_devops import ORG, PAT, WIT, body as ado_body, load as ado_load
    from tests.test_connector_azure_devops import query
    vssps = "https://vssps.dev.azure.com/fabrikam"
    monkeypatch.setenv("AZURE_DEVOPS_PAT", PAT)
    connector = AzureDevOpsConnector("azure_devops", AzureDevOpsConfig(
        base_url=ORG, project="Support", mapping="azure_devops", max_attempts=2))
    lead = {"id": "0d7c1e0c-aaaa-4bbb-8ccc-000000000001", "providerDisplayName": "Lee Lead",
            "isActive": True, "descriptor": "x"}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:  # OPTIONS is cached
        api.add(responses.OPTIONS, f"{ORG}/_apis", json=ado_load("options.json"))
        api.add(responses.OPTIONS, f"{vssps}/_apis", json={"count": 1, "value": [IDENTITY_LOCATION]})
        api.add(responses.GET, f"{vssps}/_apis/Identities", json={"count": 1, "value": [lead]})
        api.add(responses.GET, f"{vssps}/_apis/Identities", json={"count": 0, "value": []})
        created = ado_load("comment_created.json")
        created.update(id=47, workItemId=301)
        api.add(responses.POST, f"{WIT}/workItems/301/comments", json=created)

        assert connector.add_comment("301", "[tiersync] level 2", public=False,
                                     notify=(LEAD, CSM)) == "47"

        lookups = [c for c in api.calls if "/identities" in c.request.url.lower()]
        assert [query(r) for r in lookups] == [
            {"searchFilter": "General", "filterValue": LEAD},
            {"searchFilter": "General", "filterValue": CSM}]
        [post] = [c for c in api.calls if c.request.method == "POST"]
        assert ado_body(post) == {"text": (
            '[tiersync] level 2<br><br>Notified: <a href="#" data-vss-mention="version:2.0,'
            '0d7c1e0c-aaaa-4bbb-8ccc-000000000001">@Lee Lead</a>, carla.csm@tier1.example.com')}
    connector.close()


def test_identity_service_url_for_the_organization():
    from connectors.azure_devops_notify import identity_base
    assert identity_base("https://dev.azure.com/fabrikam") == "https://vssps.dev.azure.com/fabrikam"
    assert identity_base("https://fabrikam.visualstudio.com") == "https://fabrikam.vssps.visualstudio.com"
    assert identity_base("http://127.0.0.1:9/myorg") == "http://127.0.0.1:9/myorg"
    assert identity_base("https://dev.azure.com/x", "https://ids.example/x/") == "https://ids.example/x"


def test_azure_devops_identity_lookup_over_a_dropped_connection_is_a_typed_retryable(monkeypatch):
    """A connection dropped on the identities lookup (the people directory) is Retryable and
    retried like any other call; msrest's own ClientRequestError used to end the daemon."""
    import pytest
    import requests
    import responses

    from connectors.azure_devops import AzureDevOpsConfig, AzureDevOpsConnector
    from core.errors import Retryable
    from simulators.azure_devops_identities import IDENTITY_LOCATION
    from tests.test_connector_azure_devops import ORG, PAT
    vssps = "https://vssps.dev.azure.com/fabrikam"
    monkeypatch.setenv("AZURE_DEVOPS_PAT", PAT)
    monkeypatch.setattr("connectors.retry.sleep", lambda s: None)
    connector = AzureDevOpsConnector("azure_devops", AzureDevOpsConfig(
        base_url=ORG, project="Support", mapping="azure_devops", max_attempts=2))
    dana = {"id": "0d7c1e0c-aaaa-4bbb-8ccc-000000000002", "providerDisplayName": "Dana",
            "isActive": True, "properties": {"Account": {"$value": "dana@eng.example"}}}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        api.add(responses.OPTIONS, f"{vssps}/_apis", json={"count": 1, "value": [IDENTITY_LOCATION]})
        dropped = requests.ConnectionError("Remote end closed connection without response")
        api.add(responses.GET, f"{vssps}/_apis/Identities", body=dropped)
        api.add(responses.GET, f"{vssps}/_apis/Identities", json={"count": 1, "value": [dana]})
        assert connector.find_user("dana@eng.example").ref == "dana@eng.example"  # retried once
        api.add(responses.GET, f"{vssps}/_apis/Identities", body=dropped)
        api.add(responses.GET, f"{vssps}/_apis/Identities", body=dropped)
        with pytest.raises(Retryable):
            connector.find_user("lee@eng.example")
    connector.close()
