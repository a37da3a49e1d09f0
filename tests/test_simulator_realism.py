"""The simulators' realistic profile (issue 9), each behaviour at full scale (time_scale=1).

Time-dependent behaviours are checked without waiting: Zendesk's export hold-back through the
simulator's clock, rate windows by filling them (a refusal says how long to wait).
"""
from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone

import pytest
import requests

from simulators.azure_devops import AzureDevOpsSimulator
from simulators.profile import LENIENT, Profile
from simulators.zendesk import ZendeskSimulator

ADMIN = "tiersync@tier1.example.com"  # an admin in the default fixture
AGENT = "alice.agent@tier1.example.com"  # an agent
EXPORT = "/api/v2/incremental/tickets/cursor.json"


class Clock:
    def __init__(self):
        self.now = datetime(2026, 3, 2, 9, 0, 0, 250_000, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def auth(user: str = ADMIN) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}/token:t".encode()).decode()}


@pytest.fixture
def zendesk():
    sim = ZendeskSimulator(fixture={"users": [{"email": ADMIN, "role": "admin"},
                                              {"email": AGENT, "role": "agent"}]})
    sim.clock = Clock()
    client = sim.app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = auth()["Authorization"]
    return sim, client


def create(client, subject: str = "123 - s") -> dict:
    response = client.post("/api/v2/tickets.json", json={"ticket": {"subject": subject,
                                                                    "comment": {"body": "b"}}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["ticket"]


# -- Zendesk --------------------------------------------------------------------------------------
def test_zendesk_stamps_updated_at_in_whole_seconds(zendesk):
    sim, client = zendesk
    ticket = create(client)
    assert re.fullmatch(r"2026-03-02T09:00:00Z", ticket["updated_at"])
    again = client.put(f"/api/v2/tickets/{ticket['id']}.json", json={"ticket": {"priority": "high"}})
    assert again.get_json()["ticket"]["updated_at"] == "2026-03-02T09:00:01Z"  # never the same


def test_zendesk_export_leaves_out_the_last_minute_and_keeps_the_cursor_before_it(zendesk):
    sim, client = zendesk
    ticket = create(client)
    sim.clock.now += timedelta(seconds=59)
    early = client.get(f"{EXPORT}?start_time=0").get_json()
    assert early["tickets"] == [] and early["end_of_stream"] is True
    sim.clock.now += timedelta(seconds=2)
    later = client.get(f"{EXPORT}?cursor={early['after_cursor']}").get_json()
    assert [t["id"] for t in later["tickets"]] == [ticket["id"]]


def test_zendesk_export_takes_ten_requests_a_minute_then_429_with_retry_after(zendesk):
    _, client = zendesk
    answers = [client.get(f"{EXPORT}?start_time=0") for _ in range(11)]
    assert [a.status_code for a in answers] == [200] * 10 + [429]
    assert 55 <= int(answers[-1].headers["Retry-After"]) <= 60


def test_zendesk_export_is_refused_to_agents(zendesk):
    _, client = zendesk
    refused = client.get(f"{EXPORT}?start_time=0", headers=auth(AGENT))
    assert refused.status_code == 403 and refused.get_json()["error"] == "Forbidden"


def test_zendesk_update_ticket_takes_30_updates_of_one_ticket_per_ten_minutes(zendesk):
    _, client = zendesk
    first, other = create(client), create(client)
    answers = [client.put(f"/api/v2/tickets/{first['id']}.json",
                          json={"ticket": {"priority": ["low", "high"][n % 2]}}) for n in range(31)]
    assert [a.status_code for a in answers] == [200] * 30 + [429]
    assert 590 <= int(answers[-1].headers["Retry-After"]) <= 600
    assert client.put(f"/api/v2/tickets/{other['id']}.json",
                      json={"ticket": {"priority": "low"}}).status_code == 200


def test_zendesk_update_ticket_takes_100_requests_a_minute_per_account(zendesk):
    _, client = zendesk
    ids = [create(client)["id"] for _ in range(5)]
    answers = [client.put(f"/api/v2/tickets/{ids[n % 5]}.json",
                          json={"ticket": {"priority": ["low", "high"][n // 5 % 2]}})
               for n in range(101)]
    assert [a.status_code for a in answers] == [200] * 100 + [429]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60


def test_zendesk_time_scale_shortens_the_windows_and_their_retry_after():
    sim = ZendeskSimulator(profile=Profile(time_scale=0.01))
    client = sim.app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = auth()["Authorization"]
    answers = [client.get(f"{EXPORT}?start_time=0") for _ in range(11)]
    assert answers[-1].status_code == 429 and float(answers[-1].headers["Retry-After"]) <= 0.6


def test_zendesk_lenient_profile_has_none_of_it():
    sim = ZendeskSimulator(profile=LENIENT)
    client = sim.app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = auth(AGENT)["Authorization"]
    ticket = create(client)
    assert "." in ticket["updated_at"]  # milliseconds
    answers = [client.get(f"{EXPORT}?start_time=0") for _ in range(12)]
    assert {a.status_code for a in answers} == {200} and answers[0].get_json()["tickets"]


# -- the fault API ----------------------------------------------------------------------------------
def test_fault_api_takes_json_without_a_content_type_and_clears_rules(zendesk):
    sim, client = zendesk
    raw = client.post("/_sim/faults", data='{"error_rate": 0.5, "fail_next": '
                      '[{"path": "tickets", "count": 3, "status": 503}]}')  # no Content-Type
    assert raw.status_code == 200 and raw.get_json()["error_rate"] == 0.5
    assert len(sim.faults.fail_next) == 1
    dropped = client.post("/_sim/faults", data='{"fail_next": null}')
    assert dropped.get_json()["fail_next"] == [] and dropped.get_json()["error_rate"] == 0.5
    cleared = client.post("/_sim/faults", json={"clear": True, "latency_ms": 5})
    assert cleared.get_json()["error_rate"] == 0 and cleared.get_json()["latency_ms"] == 5
    assert client.delete("/_sim/faults").get_json()["latency_ms"] == 0
    bad = client.post("/_sim/faults", data="not json")
    assert bad.status_code == 400 and "error" in bad.get_json()
    assert client.post("/_sim/profile", data='{"time_scale": 0.5}').get_json()["time_scale"] == 0.5


# -- Azure DevOps -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ado():
    with AzureDevOpsSimulator() as sim:
        yield sim


def wit(sim) -> str:
    return f"{sim.base_url}/myorg/Support/_apis/wit"


def test_azure_devops_has_bugs_tasks_and_features_with_their_own_states(ado):
    for kind, states in (("Bug", ["New", "Active", "Resolved", "Closed"]),
                         ("Task", ["New", "Active", "Closed", "Removed"]),
                         ("Feature", ["New", "Active", "Resolved", "Closed", "Removed"])):
        answer = requests.get(f"{wit(ado)}/workitemtypes/{kind}/states", auth=("", "p"), timeout=10)
        assert [s["name"] for s in answer.json()["value"]] == states
    bug = requests.post(f"{wit(ado)}/workitems/$Bug", auth=("", "p"), timeout=10, json=[
        {"op": "add", "path": "/fields/System.Title", "value": "crash"}])
    assert bug.status_code == 200 and bug.json()["fields"]["System.State"] == "New"
    wrong = requests.patch(f"{wit(ado)}/workitems/{bug.json()['id']}", auth=("", "p"), timeout=10,
                           json=[{"op": "add", "path": "/fields/System.State",
                                  "value": "Actively Working"}])  # an Engagement Item state
    assert wrong.status_code == 400


def test_azure_devops_comments_api_needs_a_preview_version_and_makes_a_revision(ado):
    item = requests.post(f"{wit(ado)}/workitems/$Task", auth=("", "p"), timeout=10, json=[
        {"op": "add", "path": "/fields/System.Title", "value": "t"}]).json()
    url = f"{wit(ado)}/workItems/{item['id']}/comments"
    released = requests.post(url, json={"text": "hi"}, auth=("", "p"), timeout=10,
                             headers={"Accept": "application/json;api-version=7.1"})
    assert released.status_code == 400 and "preview" in released.json()["message"]
    added = requests.post(url, json={"text": "hi"}, auth=("", "p"), timeout=10,
                          headers={"Accept": "application/json;api-version=7.1-preview.4"})
    assert added.status_code == 200 and added.json()["text"] == "hi"
    after = requests.get(f"{wit(ado)}/workitems/{item['id']}", auth=("", "p"), timeout=10).json()
    assert after["rev"] == item["rev"] + 1 and after["fields"]["System.CommentCount"] == 1


def test_azure_devops_answers_412_to_a_stale_rev_test(ado):
    item = requests.post(f"{wit(ado)}/workitems/$Task", auth=("", "p"), timeout=10, json=[
        {"op": "add", "path": "/fields/System.Title", "value": "t"}]).json()
    stale = requests.patch(f"{wit(ado)}/workitems/{item['id']}", auth=("", "p"), timeout=10, json=[
        {"op": "test", "path": "/rev", "value": item["rev"] - 1},
        {"op": "add", "path": "/fields/System.Title", "value": "u"}])
    assert stale.status_code == 412 and "TF26071" in stale.json()["message"]


def test_azure_devops_delays_before_it_blocks(ado):
    ado.delay_after = 3
    try:
        answers = [requests.get(f"{wit(ado)}/workitemtypes/Bug/states", auth=("", "p"), timeout=10)
                   for _ in range(4)]
    finally:
        ado.delay_after, ado._delay_window = 3000, None
    assert [a.status_code for a in answers] == [200] * 4
    assert "Retry-After" not in answers[2].headers
    delayed = answers[3].headers
    assert int(delayed["Retry-After"]) >= 1 and delayed["X-RateLimit-Resource"] == "Core"
    assert delayed["X-RateLimit-Remaining"] == "0" and float(delayed["X-RateLimit-Delay"]) > 0
    ado.set_faults(rate_limit_per_minute=1)
    try:
        requests.get(f"{wit(ado)}/workitemtypes/Bug/states", auth=("", "p"), timeout=10)
        blocked = requests.get(f"{wit(ado)}/workitemtypes/Bug/states", auth=("", "p"), timeout=10)
    finally:
        ado.set_faults(rate_limit_per_minute=0)
    assert blocked.status_code == 429 and "TF400733" in blocked.json()["message"]
    assert int(blocked.headers["Retry-After"]) >= 1
