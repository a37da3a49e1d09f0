"""The simulators accept and record the people a note notifies: Zendesk followers (agents only),
Jira watchers (known accountIds) and mentions."""
from __future__ import annotations

import pytest
import requests

from simulators.jira import JiraSimulator
from tests.test_simulator_jira import AUTH
from tests.test_simulator_zendesk import _create, client, sim  # noqa: F401  (fixtures)

LEAD = "lee.lead@tier1.example.com"
PARTNER = "pat@contoso-partner.example.com"  # an end user: cannot follow


def test_zendesk_followers_are_agents_added_and_removed(client, sim):
    ticket = _create(client, subject="x")
    put = client.put(f"/api/v2/tickets/{ticket['id']}.json", json={"ticket": {
        "comment": {"body": "note", "public": False},
        "followers": [{"user_email": LEAD, "action": "put"}, {"user_email": PARTNER},
                      {"user_email": "nobody@nowhere.example"}]}})
    assert put.status_code == 200
    lead_id = next(u["id"] for u in sim.snapshot()["users"] if u["email"] == LEAD)
    assert put.get_json()["ticket"]["follower_ids"] == [lead_id]
    [snap] = [t for t in sim.snapshot()["tickets"] if t["id"] == ticket["id"]]
    assert snap["followers"] == [LEAD]
    client.put(f"/api/v2/tickets/{ticket['id']}.json", json={"ticket": {
        "followers": [{"user_id": lead_id, "action": "delete"}]}})
    [snap] = [t for t in sim.snapshot()["tickets"] if t["id"] == ticket["id"]]
    assert snap["followers"] == []
    bad = client.put(f"/api/v2/tickets/{ticket['id']}.json", json={"ticket": {
        "followers": [{"user_email": LEAD, "action": "follow"}]}})
    assert bad.status_code == 422


@pytest.fixture(scope="module")
def jira_sim():
    with JiraSimulator() as simulator:
        yield simulator


@pytest.fixture
def api(jira_sim):
    session = requests.Session()
    session.auth = AUTH

    def call(method: str, path: str, expect: int = 200, **kwargs):
        response = session.request(method, f"{jira_sim.base_url}/rest/api/2/{path}", timeout=5,
                                   **kwargs)
        assert response.status_code == expect, response.text
        return response.json() if response.content else None
    return call


@pytest.fixture
def issue(api):
    return api("POST", "issue", 201, json={"fields": {
        "project": {"key": "ENG"}, "issuetype": {"name": "Escalation"},
        "summary": "12345678910123 - Disk full"}})["key"]


def test_jira_watchers_and_mentions_are_recorded(api, issue, jira_sim):
    lead = api("GET", "user/search", params={"query": LEAD})[0]["accountId"]
    before = api("GET", f"issue/{issue}")["fields"]["updated"]
    api("POST", f"issue/{issue}/watchers", 204, data=f'"{lead}"',
        headers={"Content-Type": "application/json"})
    api("POST", f"issue/{issue}/watchers", 204, data=f'"{lead}"',
        headers={"Content-Type": "application/json"})  # twice: no change
    watchers = api("GET", f"issue/{issue}/watchers")
    assert watchers["watchCount"] == 1 and watchers["watchers"][0]["accountId"] == lead
    assert api("GET", f"issue/{issue}")["fields"]["updated"] == before  # watching is no edit
    api("POST", f"issue/{issue}/watchers", 400, data='"no-such-account"',
        headers={"Content-Type": "application/json"})
    api("POST", f"issue/{issue}/comment", 201, json={"body": f"see [~accountid:{lead}]"})
    [snap] = [i for i in jira_sim.snapshot()["issues"] if i["key"] == issue]
    assert snap["watchers"] == [lead] and snap["comments"][-1]["mentions"] == [lead]


def test_azure_devops_identities_and_mention_notifications():
    from simulators.azure_devops import AzureDevOpsSimulator
    ado = AzureDevOpsSimulator()
    http = ado.app.test_client()
    auth = {"Authorization": "Basic OnBhdA=="}  # ":pat"
    found = http.get("/myorg/_apis/identities?searchFilter=General&filterValue=LEE.LEAD@tier1.example.com",
                     headers=auth).get_json()
    assert found["count"] == 1 and found["value"][0]["providerDisplayName"] == "Lee Lead"
    lead = found["value"][0]["id"]
    assert http.get("/myorg/_apis/identities?searchFilter=General&filterValue=nobody@x.example",
                    headers=auth).get_json() == {"count": 0, "value": []}
    assert http.get("/myorg/_apis/identities?searchFilter=Bogus&filterValue=x",
                    headers=auth).status_code == 400
    item = ado.human_create({"System.Title": "12345678910123 - x"})
    mention = f'<a href="#" data-vss-mention="version:2.0,{lead}">@Lee Lead</a>'
    for quiet in ("true", "false"):
        response = http.patch(f"/myorg/Support/_apis/wit/workitems/{item}?suppressNotifications={quiet}",
                              json=[{"op": "add", "path": "/fields/System.History", "value": mention}],
                              headers={**auth, "Content-Type": "application/json-patch+json"})
        assert response.status_code == 200, response.get_json()
    snap = ado.snapshot()
    assert snap["notifications"] == [{"work_item": item, "identity": lead}]  # only the loud one
    [work_item] = [w for w in snap["work_items"] if w["id"] == item]
    assert work_item["comments"][-1]["mentions"] == [lead]
