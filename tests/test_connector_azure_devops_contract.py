"""The shared connector contract, and end-to-end checks, over real HTTP: the real connector and
azure-devops SDK against the Azure DevOps simulator."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from connectors import retry
from connectors.azure_devops import AzureDevOpsConfig, AzureDevOpsConnector
from core.errors import AuthError
from core.mapping import SHIPPED, load_mapping
from core.model import Escalation, Severity, SlaMetric, SlaMetricName, State, SupportPlan, SupportTier
from simulators.azure_devops import AzureDevOpsSimulator, connector_config, load_default_fixture
from tests.contract import ConnectorContract

SAMPLE = {
    "System.Title": "123456789012345 - SAS web address doesn't work",
    "Custom.SRNumber": "123456789012345",
    "Microsoft.VSTS.Common.Severity": "2 - High",
    "Custom.TopPartner": True,
    "System.AssignedTo": "tier2.agent@fabrikam.example",
    "System.Description": "Line 1\nLine <2> & more",
    "System.AreaPath": "Support\\Marketplace Experience",
    "Custom.EscalationLevel": 2,
}


@pytest.fixture(scope="module")
def sim():
    simulator = AzureDevOpsSimulator()
    simulator.start()
    yield simulator
    simulator.stop()


def make_connector(sim, monkeypatch, **overrides) -> AzureDevOpsConnector:
    wiring = connector_config(sim, **overrides)
    for name, value in wiring["env"].items():
        monkeypatch.setenv(name, value)
    return AzureDevOpsConnector("azure_devops", AzureDevOpsConfig(**wiring["config"]))


@pytest.fixture
def waits(monkeypatch):
    waited: list[float] = []
    monkeypatch.setattr(retry, "sleep", waited.append)
    return waited


class TestAzureDevOpsContract(ConnectorContract):
    @pytest.fixture
    def connector(self, sim, monkeypatch):
        connector = make_connector(sim, monkeypatch)
        yield connector
        connector.close()

    @pytest.fixture
    def sample_fields(self):
        return dict(SAMPLE)

    @pytest.fixture
    def human_edit(self, sim):
        return lambda remote_id, fields: sim.human_edit(remote_id, fields)


def _mapping():
    return load_mapping(SHIPPED / "azure_devops.yaml")


def test_the_shipped_mapping_round_trips_through_the_simulator(sim, monkeypatch):
    mapping = _mapping()
    due = datetime(2026, 1, 6, 17, 0, tzinfo=timezone.utc)
    escalation = Escalation(
        sr_number="123456789012345", title="Portal down", description="It broke.\nBadly.",
        requester_alias="tier1a", original_owner="tier1a@fabrikam.example",
        assignee="tier2.agent@fabrikam.example", partner_name="Contoso", seller_id="S-1",
        contact_name="Ann", contact_email="ann@contoso.example", source="Support",
        engagement_type="Technical", offer_type="SaaS", offer_ids=["o-1", "o-2"],
        offer_names=["One", "Two"], escalation_recommended=True, top_partner=True,
        security_incident=True, product="Marketplace", severity=Severity.SEV2,
        support_plan=SupportPlan.ENTERPRISE, queue="Security SMEs", tier=SupportTier.L3,
        escalation_level=1, state=State.WAITING_ON_CUSTOMER, close_reason=None,
        sla={SlaMetricName.ACKNOWLEDGEMENT: SlaMetric(due_at=due, on_time=True)})
    fields = {**mapping.create_defaults, **mapping.to_tracker(escalation)}
    connector = make_connector(sim, monkeypatch)
    created = connector.create(fields, idempotency_key="roundtrip-1")
    record = connector.get(created.id)
    assert record.data["System.AreaPath"] == "Support\\Security SMEs"
    assert record.data["System.State.category"] == "InProgress"
    model = mapping.to_model(record.data)
    for name in ("sr_number", "title", "requester_alias", "assignee", "offer_ids", "offer_names",
                 "escalation_recommended", "top_partner", "security_incident", "severity",
                 "support_plan", "state", "contact_email"):
        assert model[name] == getattr(escalation, name), name


def test_check_online_accepts_the_shipped_mapping_and_names_bad_paths(sim, monkeypatch):
    mapping = _mapping()
    paths = [f.path for f in mapping.fields.values()] + [
        f.category_path for f in mapping.fields.values() if f.category_path]
    values = {}
    for fmap in mapping.fields.values():
        if fmap.values:
            values[fmap.path] = list(fmap.values) + list(fmap.outbound_values.values())
        if fmap.category_path:
            values[fmap.category_path] = list(fmap.categories)
    connector = make_connector(sim, monkeypatch)
    assert connector.check_online(paths, values) == []
    problems = connector.check_online(paths + ["Custom.Typo"], {"System.State": ["Resolved"]})
    assert problems == [
        "Custom.Typo: no such field on work item type 'Engagement Item' in project 'Support'",
        "System.State: value 'Resolved' does not exist in Azure DevOps (allowed: Actively Working, "
        "Closed, New, Solution Proposed, Waiting on Internal, Waiting on Publisher)"]


def test_check_online_reports_refused_credentials(monkeypatch):
    with AzureDevOpsSimulator(pat="the-right-pat") as sim:
        connector = make_connector(sim, monkeypatch)
        monkeypatch.setenv("AZURE_DEVOPS_PAT", "a-wrong-pat")
        (problem,) = connector.check_online(["System.Title"], {})
        assert "credentials" in problem and "AZURE_DEVOPS_PAT" in problem


def test_wrong_pat_raises_auth_error_naming_the_variable(monkeypatch, waits):
    with AzureDevOpsSimulator(pat="the-right-pat") as sim:
        connector = make_connector(sim, monkeypatch)
        monkeypatch.setenv("AZURE_DEVOPS_PAT", "a-wrong-pat")
        with pytest.raises(AuthError, match="AZURE_DEVOPS_PAT") as failure:
            connector.get("1")
        assert "a-wrong-pat" not in str(failure.value) and waits == []


def _spread_fixture(count: int) -> dict:
    fixture = load_default_fixture()
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    fixture["work_items"] = [
        {"fields": {"System.Title": f"item {n}"},
         "changed_date": (start + timedelta(hours=7 * n)).isoformat()} for n in range(count)]
    return fixture


def test_full_wiql_results_page_on_by_changed_date_and_deliver_everything_once(monkeypatch):
    with AzureDevOpsSimulator(fixture=_spread_fixture(7), wiql_cap=3) as sim:
        connector = make_connector(sim, monkeypatch, wiql_max_results=3, page_size=2)
        pages = list(connector.fetch_changes(None))
        assert [r.id for p in pages for r in p.records] == [str(n) for n in range(1, 8)]
        queries = [r.body["query"] for r in sim.requests if r.path.endswith("/wiql")]
        assert [q.split(">= ")[1][:22] for q in queries] == [
            "'1970-01-01T00:00:00Z'", "'2026-01-01T14:00:00Z'", "'2026-01-02T04:00:00Z'",
            "'2026-01-02T18:00:00Z'"]  # each full result continues at its last item's second
        assert list(connector.fetch_changes(pages[-1].cursor)) == []


def test_vs402337_narrows_the_window_until_it_fits(monkeypatch):
    with AzureDevOpsSimulator(fixture=_spread_fixture(7), wiql_cap=3, wiql_honours_top=False) as sim:
        connector = make_connector(sim, monkeypatch, wiql_max_results=3, page_size=2)
        pages = list(connector.fetch_changes(None))
        ids = [r.id for p in pages for r in p.records]
        assert sorted(ids, key=int) == [str(n) for n in range(1, 8)] and len(set(ids)) == 7
        answers = [r.status for r in sim.requests if r.path.endswith("/wiql")]
        assert 400 in answers and answers[-1] == 200
        assert list(connector.fetch_changes(pages[-1].cursor)) == []


def test_500_on_create_over_http_creates_exactly_one_work_item(sim, monkeypatch, waits):
    connector = make_connector(sim, monkeypatch)
    sim.clear_requests()
    sim.set_faults(fail_next=[{"path": r"/workitems/\$", "count": 1, "status": 500, "method": "POST"}])
    created = connector.create(dict(SAMPLE), idempotency_key="e2e-500-create")
    made = [w for w in sim.snapshot()["work_items"] if "tiersync:e2e-500-create" in w["tags"]]
    assert [w["id"] for w in made] == [int(created.id)]
    trail = [(r.method, r.path.rsplit("/", 1)[-1], r.status) for r in sim.requests
             if r.method == "POST"]
    assert trail == [("POST", "$Engagement Item", 500), ("POST", "wiql", 200),
                     ("POST", "$Engagement Item", 200)]


def test_429_from_the_simulator_waits_its_retry_after(sim, monkeypatch, waits):
    connector = make_connector(sim, monkeypatch)
    created = connector.create(dict(SAMPLE), idempotency_key="e2e-429")
    sim.set_faults(fail_next=[{"path": r"/workitems/\d+$", "count": 1, "status": 429,
                               "method": "GET", "retry_after": 2}])
    assert connector.get(created.id).id == created.id
    assert waits == [2.0]


def test_comments_written_and_read_back_over_http(sim, monkeypatch):
    connector = make_connector(sim, monkeypatch)
    created = connector.create(dict(SAMPLE), idempotency_key="e2e-comments")
    sim.human_comment(created.id, "<div>Checked the <b>logs</b></div><div>nothing yet</div>")
    comment_id = connector.add_comment(created.id, "[tiersync] Status: waiting", public=False)
    comments = connector.get(created.id).comments
    assert [(c.body, c.author) for c in comments] == [
        ("Checked the logs\nnothing yet", "tier2.agent@fabrikam.example"),
        ("[tiersync] Status: waiting", "tiersync@fabrikam.example")]
    assert comments[1].id == comment_id
    links = next(w for w in sim.snapshot()["work_items"] if w["id"] == int(created.id))["links"]
    assert links == []
