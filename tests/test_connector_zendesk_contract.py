"""The shared connector contract, run against the Zendesk simulator over real HTTP with the real
connector (zenpy underneath), plus end-to-end checks of what only a live server can show."""
from __future__ import annotations

import time

import pytest

from connectors.zendesk import ZendeskConfig, ZendeskConnector
from core.errors import AuthError, Conflict
from simulators.profile import Profile
from simulators.zendesk import ZendeskSimulator, connector_config
from tests.contract import ConnectorContract

SEVERITY = "custom_fields.360010000002"


@pytest.fixture(scope="module")
def sim():
    with ZendeskSimulator(email="tiersync@tier1.example.com", token="s3cret-token",
                          profile=Profile(time_scale=0.01)) as server:
        yield server


@pytest.fixture
def make_connector(sim, monkeypatch):
    made = []

    def make(**overrides):
        wiring = connector_config(sim, **overrides)
        for key, value in wiring["env"].items():
            monkeypatch.setenv(key, value)
        connector = ZendeskConnector("zendesk", ZendeskConfig(**wiring["config"]))
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


class TestZendeskContract(ConnectorContract):
    @pytest.fixture
    def settle(self, sim):
        return lambda: time.sleep(sim.settle_seconds())  # the export's (scaled) hold-back

    @pytest.fixture
    def connector(self, make_connector):
        return make_connector()

    @pytest.fixture
    def sample_fields(self):
        return {"subject": "12345678901234 - Portal down", SEVERITY: "sev_2", "priority": "high",
                "custom_fields.360010000015": True, "requester.email": "pat@contoso-partner.example.com",
                "assignee.email": "alice.agent@tier1.example.com", "status": "hold",
                "description": "Nobody can log in since 09:00."}

    @pytest.fixture
    def human_edit(self, sim):
        return lambda remote_id, fields: sim.edit_ticket(remote_id, fields, comment="edited in the UI")


def test_created_ticket_has_sideloaded_people_and_tagger_tags(make_connector, sim):
    connector = make_connector()
    record = connector.create({"subject": "S - x", SEVERITY: "sev_1",
                               "requester.email": "rita@fabrikam.example.com",
                               "description": "first words"}, idempotency_key="tiersync:e1:zendesk")
    assert record.data["requester.name"] == "Rita Reseller"
    assert record.data["organization.name"] == "Fabrikam Reseller"
    assert record.data["via.channel"] == "api"
    assert "sev_1" in record.data["tags"]
    assert record.data["description"] == "first words"
    assert record.comments == ()  # the first comment is the description


def test_mirror_without_description_gets_marked_first_comment(make_connector, sim):
    from core.connector import OriginRef
    connector = make_connector()
    record = connector.create({"subject": "S - mirrored"}, idempotency_key="tiersync:e2:zendesk",
                              origin=OriginRef("jira", "SUP-7", "https://jira.example/SUP-7"))
    assert "description" not in record.data
    ticket = next(t for t in sim.snapshot()["tickets"] if t["id"] == int(record.id))
    assert ticket["comments"][0]["body"].startswith("[tiersync] mirror of jira SUP-7")
    assert ticket["comments"][0]["public"] is False


def test_wrong_token_is_an_auth_error_naming_the_variables(make_connector, monkeypatch):
    connector = make_connector()
    monkeypatch.setenv("ZENDESK_TOKEN", "wrong")
    with pytest.raises(AuthError) as err:
        connector.get("1")
    assert "ZENDESK_EMAIL/ZENDESK_TOKEN" in str(err.value) and "zendesk" in str(err.value)
    assert "wrong" not in str(err.value)


def test_update_many_polls_the_job_and_reports_each_ticket(make_connector, sim):
    connector = make_connector()
    first = connector.create({"subject": "S - a"}, idempotency_key="tiersync:b1:zendesk")
    second = connector.create({"subject": "S - b"}, idempotency_key="tiersync:b2:zendesk")
    sim.edit_ticket(second.id, {"status": "closed"})
    results = connector.update_many([(first.id, {"priority": "urgent"}),
                                     (second.id, {"priority": "urgent"})])
    assert [(r.remote_id, r.ok) for r in results] == [(first.id, True), (second.id, False)]
    assert "closed" in results[1].error
    assert connector.get(first.id).data["priority"] == "urgent"
    polls = [r for r in sim.requests if r.path.startswith("/api/v2/job_statuses/")]
    assert len(polls) >= 2


def test_check_online_names_bad_paths_and_values(make_connector):
    connector = make_connector()
    problems = connector.check_online(
        [SEVERITY, "custom_fields.999", "status", "bogus", "requester.email"],
        {SEVERITY: ["sev_1", "sev_9"], "status": ["hold", "held"]})
    assert any(p.startswith(f"{SEVERITY}: 'sev_9'") for p in problems)
    assert any(p.startswith("custom_fields.999:") for p in problems)
    assert any(p.startswith("status: 'held'") for p in problems)
    assert any(p.startswith("bogus:") for p in problems)
    assert len(problems) == 4


def test_stale_version_after_a_comment_conflicts(make_connector):
    connector = make_connector()
    record = connector.create({"subject": "S - c"}, idempotency_key="tiersync:c1:zendesk")
    connector.add_comment(record.id, "note", public=False)
    with pytest.raises(Conflict):
        connector.update(record.id, {"priority": "low"}, expected_version=record.version)


def test_a_500_on_create_is_looked_up_then_created_once(make_connector, sim, monkeypatch):
    monkeypatch.setattr("connectors.retry.sleep", lambda seconds: None)
    sim.set_faults(fail_next=[{"path": r"^/api/v2/tickets\.json$", "count": 1, "status": 500,
                               "method": "POST"}])
    record = make_connector().create({"subject": "S - flaky"}, idempotency_key="tiersync:f1:zendesk")
    assert [t["id"] for t in sim.snapshot()["tickets"]
            if t["external_id"] == "tiersync:f1:zendesk"] == [int(record.id)]
    lookups = [r for r in sim.requests if r.path == "/api/v2/tickets.json" and r.method == "GET"
               and r.query.get("external_id") == ["tiersync:f1:zendesk"]]
    assert len(lookups) == 1


def test_a_429_from_the_server_is_waited_out(make_connector, sim, monkeypatch):
    waited = []
    monkeypatch.setattr("connectors.retry.sleep", waited.append)
    sim.set_faults(fail_next=[{"path": r"^/api/v2/tickets/show_many", "count": 1, "status": 429,
                               "retry_after": 4}])
    assert make_connector().get("1").id == "1"
    assert waited == [4.0]


def test_the_shipped_mapping_reads_the_default_fixture(make_connector):
    from core.mapping import load_mapping, resolve_mapping_path
    mapping = load_mapping(resolve_mapping_path("zendesk"))
    record = make_connector().get("1")
    model = mapping.to_model(record.data)
    assert (model["sr_number"], model["title"]) == ("12345678901234", "Portal login fails for all users")
    assert (model["severity"], model["support_plan"], model["scope"]) == (2, "professional", "cloud")
    assert model["top_partner"] is True and model["partner_name"] == "Contoso Partner"
    assert model["state"] == "waiting_on_internal" and model["source"] == "web"
    assert [c.body for c in record.comments] == ["Collected HAR file and tenant id; still investigating."]
    outbound = mapping.to_tracker(mapping_model(mapping, record.data), only={"tier", "escalation_level",
                                                                               "security_incident"})
    written = make_connector().update("1", outbound, expected_version=record.version)
    assert written.data["custom_fields.360010000010"] == "tier_l2"


def mapping_model(mapping, data):
    from core.mapping import coerce_observation
    from core.model import Escalation
    fields = coerce_observation(mapping.to_model(data))
    return Escalation(**fields, tier="L2", escalation_level=1)


def test_lost_replies_never_duplicate_a_create(make_connector, sim, monkeypatch):
    """Replies lost after the server created the ticket (drop_after) are resolved by a lookup."""
    monkeypatch.setattr("connectors.retry.sleep", lambda seconds: None)
    sim.clear_requests()
    sim.set_faults(drop_after_rate=0.4, drop_rate=0.1, seed=2)
    try:
        connector = make_connector()
        records = [connector.create({"subject": f"S - lossy {n}"}, idempotency_key=f"tiersync:l{n}:zendesk")
                   for n in range(4)]
    finally:
        sim.set_faults(drop_after_rate=0.0, drop_rate=0.0)
    keys = [t["external_id"] for t in sim.snapshot()["tickets"]
            if (t["external_id"] or "").startswith("tiersync:l")]
    assert sorted(keys) == [f"tiersync:l{n}:zendesk" for n in range(4)]  # one ticket per key
    assert len({r.id for r in records}) == 4
    on_tickets = [r for r in sim.requests if r.path == "/api/v2/tickets.json"]
    assert len([r for r in on_tickets if r.method == "POST"]) == 4  # never sent twice
    assert [r for r in on_tickets if r.method == "GET"], "a lost reply was resolved by a lookup"
