"""The Zendesk simulator's behaviour: auth, the export's paging, safe_update, validation, jobs,
fault injection with Zendesk's rate-limit headers, seeding and snapshots."""
from __future__ import annotations

import base64
from datetime import datetime

import pytest

from simulators.profile import LENIENT
from simulators.zendesk import ZendeskSimulator, connector_config

SEVERITY = 360010000002


def _auth(user: str = "tiersync@tier1.example.com/token", token: str = "t0ken") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


@pytest.fixture
def sim():
    # lenient: these tests check routes, shapes and pagination at once after each write; the
    # realistic behaviours (hold-back, limits, precision, 403) are in test_simulator_zendesk_realism.py
    return ZendeskSimulator(email="tiersync@tier1.example.com", token="t0ken", profile=LENIENT)


@pytest.fixture
def client(sim):
    test_client = sim.app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = _auth()["Authorization"]
    return test_client


def _create(client, **ticket):
    ticket.setdefault("comment", {"body": "words"})
    response = client.post("/api/v2/tickets.json", json={"ticket": ticket})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["ticket"]


def test_basic_auth_checks_the_configured_credentials(sim):
    anonymous = sim.app.test_client()
    assert anonymous.get("/api/v2/tickets/1.json").status_code == 401
    wrong = anonymous.get("/api/v2/tickets/1.json", headers=_auth(token="nope"))
    assert wrong.status_code == 401 and wrong.get_json() == {"error": "Couldn't authenticate you"}
    assert anonymous.get("/api/v2/tickets/1.json", headers=_auth()).status_code == 200
    open_sim = ZendeskSimulator(fixture={}, profile=LENIENT).app.test_client()
    assert open_sim.get("/api/v2/ticket_fields.json", headers=_auth("a@b/token", "x")).status_code == 200


def test_export_pages_with_cursor_and_gives_each_ticket_once(client, sim):
    sim.export_page_size = 2
    ids = [_create(client, subject=f"S - {n}")["id"] for n in range(3)]
    first = client.get("/api/v2/incremental/tickets/cursor.json?start_time=0").get_json()
    assert [t["id"] for t in first["tickets"]] == [1, ids[0]] and first["end_of_stream"] is False
    assert first["after_url"].endswith(f"cursor={first['after_cursor']}")
    sim.edit_ticket(1, {"priority": "urgent"})  # changed after it was exported: comes again, once
    second = client.get(f"/api/v2/incremental/tickets/cursor.json?cursor={first['after_cursor']}").get_json()
    assert [t["id"] for t in second["tickets"]] == ids[1:] and second["end_of_stream"] is False
    third = client.get(f"/api/v2/incremental/tickets/cursor.json?cursor={second['after_cursor']}").get_json()
    assert [(t["id"], t["priority"]) for t in third["tickets"]] == [(1, "urgent")]
    assert third["end_of_stream"] is True
    idle = client.get(f"/api/v2/incremental/tickets/cursor.json?cursor={third['after_cursor']}").get_json()
    assert idle["tickets"] == [] and idle["after_cursor"] == third["after_cursor"]


def test_export_start_time_filters_on_updated_at_and_sideloads(client, sim):
    late = _create(client, subject="S - late", requester={"email": "new@partner.example.com", "name": "New"})
    start = int(sim.state.tickets[late["id"]].updated_at.timestamp())
    page = client.get(f"/api/v2/incremental/tickets/cursor.json?start_time={start}"
                      "&include=users,organizations").get_json()
    assert late["id"] in [t["id"] for t in page["tickets"]]
    assert all(datetime.fromisoformat(t["updated_at"].replace("Z", "+00:00")).timestamp() >= start
               for t in page["tickets"])
    assert "new@partner.example.com" in [u["email"] for u in page["users"]]
    assert client.get("/api/v2/incremental/tickets/cursor.json?start_time=99999999999").status_code == 400
    assert client.get("/api/v2/incremental/tickets/cursor.json?cursor=%%%").status_code == 400


def test_safe_update_with_a_stale_stamp_is_409(client):
    ticket = _create(client)
    url = f"/api/v2/tickets/{ticket['id']}.json"
    fresh = client.put(url, json={"ticket": {"status": "open", "safe_update": True,
                                             "updated_stamp": ticket["updated_at"]}})
    assert fresh.status_code == 200
    assert fresh.get_json()["ticket"]["updated_at"] > ticket["updated_at"]
    stale = client.put(url, json={"ticket": {"status": "hold", "safe_update": True,
                                             "updated_stamp": ticket["updated_at"]}})
    assert stale.status_code == 409 and stale.get_json()["error"] == "UpdateConflict"


def test_validation_tagger_tags_and_closed_tickets(client, sim):
    bad = client.post("/api/v2/tickets.json", json={"ticket": {
        "comment": {"body": "x"}, "custom_fields": [{"id": SEVERITY, "value": "sev_9"}]}})
    assert bad.status_code == 422 and bad.get_json()["error"] == "RecordInvalid"
    assert client.post("/api/v2/tickets.json", json={"ticket": {"subject": "no comment"}}).status_code == 422
    ticket = _create(client, tags=["escalate_tier2"], custom_fields=[{"id": SEVERITY, "value": "sev_2"}],
                     requester={"email": "pat@contoso-partner.example.com"})
    assert ticket["tags"] == ["top_partner", "escalate_tier2", "sev_2"]  # org tag, given, tagger
    url = f"/api/v2/tickets/{ticket['id']}.json"
    changed = client.put(url, json={"ticket": {"status": "open",
                                               "custom_fields": [{"id": SEVERITY, "value": "sev_1"}]}})
    assert changed.get_json()["ticket"]["tags"] == ["top_partner", "escalate_tier2", "sev_1"]
    assert client.put(url, json={"ticket": {"status": "new"}}).status_code == 422
    sim.edit_ticket(ticket["id"], {"status": "closed"})
    assert client.put(url, json={"ticket": {"priority": "low"}}).status_code == 422
    assert client.get("/api/v2/tickets/4242.json").status_code == 404


def test_comments_public_private_and_cursor_paging(client):
    ticket = _create(client, comment={"body": "first", "public": True})
    url = f"/api/v2/tickets/{ticket['id']}.json"
    client.put(url, json={"ticket": {"comment": {"body": "private", "public": False}}})
    audit = client.put(url, json={"ticket": {"comment": {"body": "public"}}}).get_json()["audit"]
    assert [e["type"] for e in audit["events"]] == ["Comment"]
    page = client.get(f"/api/v2/tickets/{ticket['id']}/comments.json?page[size]=2").get_json()
    assert [c["body"] for c in page["comments"]] == ["first", "private"] and page["meta"]["has_more"]
    rest = client.get(page["links"]["next"]).get_json()
    assert [(c["body"], c["public"]) for c in rest["comments"]] == [("public", True)]
    assert rest["meta"]["has_more"] is False


def test_lookup_by_external_id_and_show_many(client):
    ticket = _create(client, external_id="tiersync:x:zendesk")
    found = client.get("/api/v2/tickets.json?external_id=tiersync:x:zendesk&include=users").get_json()
    assert [t["id"] for t in found["tickets"]] == [ticket["id"]] and found["users"]
    assert client.get("/api/v2/tickets.json?external_id=none").get_json()["tickets"] == []
    many = client.get(f"/api/v2/tickets/show_many.json?ids={ticket['id']},999").get_json()
    assert [t["id"] for t in many["tickets"]] == [ticket["id"]]


def test_update_many_limits_and_job_polling(client):
    too_many = client.put("/api/v2/tickets/update_many.json",
                          json={"tickets": [{"id": 1, "priority": "low"}] * 101})
    assert too_many.status_code == 400 and too_many.get_json()["error"] == "TooManyValues"
    job = client.put("/api/v2/tickets/update_many.json?ids=1,999",
                     json={"ticket": {"priority": "low"}}).get_json()["job_status"]
    assert job["status"] == "queued"
    url = f"/api/v2/job_statuses/{job['id']}.json"
    assert client.get(url).get_json()["job_status"]["status"] == "working"
    done = client.get(url).get_json()["job_status"]
    assert done["status"] == "completed"
    assert [(r["id"], "success" in r) for r in done["results"]] == [(1, True), (999, False)]


def test_rate_limit_carries_zendesk_headers(sim, client):
    sim.set_faults(rate_limit_per_minute=2)
    first = client.get("/api/v2/tickets/1.json")
    assert first.headers["X-Rate-Limit"] == "2" and first.headers["X-Rate-Limit-Remaining"] == "1"
    client.get("/api/v2/tickets/1.json")
    limited = client.get("/api/v2/tickets/1.json")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert limited.headers["X-Rate-Limit-Remaining"] == "0"


def test_export_endpoint_limit_and_injected_failures(sim, client):
    sim.export_limit_per_minute = 1
    assert client.get("/api/v2/incremental/tickets/cursor.json?start_time=0").status_code == 200
    second = client.get("/api/v2/incremental/tickets/cursor.json?start_time=0")
    assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 1
    sim.set_faults(fail_next=[{"path": r"^/api/v2/tickets\.json$", "count": 1, "status": 503,
                               "method": "POST"}])
    assert client.post("/api/v2/tickets.json", json={"ticket": {"comment": {"body": "x"}}}).status_code == 503
    assert client.post("/api/v2/tickets.json", json={"ticket": {"comment": {"body": "x"}}}).status_code == 201
    assert [r.fault for r in sim.requests if r.method == "POST"] == ["fail_next:503", None]
    assert len(sim.write_requests()) == 1


def test_seed_snapshot_and_connector_config(sim):
    snap = sim.snapshot()
    [ticket] = snap["tickets"]
    assert ticket["requester"] == "pat@contoso-partner.example.com"
    assert ticket["custom_fields"][str(SEVERITY)] == "sev_2"
    assert [c["public"] for c in ticket["comments"]] == [True, False]
    assert {u["email"] for u in snap["users"]} >= {"alice.agent@tier1.example.com"}
    sim.reset()
    sim.seed({"users": [{"id": 5, "email": "x@y.example", "role": "agent"}]})
    assert sim.snapshot()["tickets"] == [] and sim.snapshot()["users"][0]["id"] == 5
    with sim:
        wiring = connector_config(sim, start_at="2026-01-01T00:00:00Z")
    assert wiring["config"]["base_url"] == sim.base_url and wiring["config"]["kind"] == "zendesk"
    assert wiring["config"]["start_at"] == "2026-01-01T00:00:00Z"
    assert wiring["env"] == {"ZENDESK_EMAIL": "tiersync@tier1.example.com", "ZENDESK_TOKEN": "t0ken"}
