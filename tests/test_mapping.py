"""The mapping engine and the shipped mapping files, in both directions."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError, MappingError
from core.mapping import load_mapping
from core.model import Escalation, SlaMetric, SlaMetricName, State

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"


@pytest.fixture(params=["zendesk", "jira", "azure_devops"])
def mapping(request):
    return load_mapping(MAPPINGS / f"{request.param}.yaml")


def test_shipped_mappings_load(mapping):
    assert mapping.fields and mapping.source.endswith(f"{mapping.tracker}.yaml")


def test_every_model_state_maps_out_and_back_in(mapping):
    """Outbound then inbound gives a state the model accepts (no unknown tracker value)."""
    for state in State:
        native = mapping.to_tracker(Escalation(state=state), only={"state"})
        back = mapping.to_model(native)
        assert back["state"] in {s.value for s in State} | set(State)


def test_azure_devops_covers_seed_000_fields_and_six_states():
    ado = load_mapping(MAPPINGS / "azure_devops.yaml")
    paths = {f.path for f in ado.fields.values()}
    for path in ["System.Title", "System.Description", "Custom.RequestorAlias", "Custom.PartnerName",
                 "Custom.SellerId", "Custom.PartnerContactName", "Custom.PartnerContactEmail",
                 "Custom.SRNumber", "Custom.EscalationRecommended", "Custom.TopPartner",
                 "Custom.AcknowledgedOnTime", "Custom.AcknowledgedDelayedReason",
                 "Custom.SolutionProvidedOnTime", "Custom.SolutionDelayedReason", "Custom.CloseReason",
                 "Custom.CloseDelayedReason", "Custom.Source", "Custom.OfferType", "Custom.OfferIds",
                 "Custom.OfferNames", "Custom.EngagementType", "System.State"]:
        assert path in paths, path
    states = ado.fields["state"].values
    assert set(states) == {"New", "Actively Working", "Waiting on Publisher", "Waiting on Internal",
                           "Solution Proposed", "Closed"}
    for name, state in states.items():
        assert ado.to_tracker(Escalation(state=state), only={"state"}) == {"System.State": name}


def test_azure_devops_engagement_item_in_both_directions():
    ado = load_mapping(MAPPINGS / "azure_devops.yaml")
    item = {"System.Title": "12345678910123 - SAS web address doesn't work",
            "System.State": "Waiting on Publisher", "Custom.OfferIds": "offer-a, offer-b",
            "Custom.TopPartner": "True", "Microsoft.VSTS.Common.Severity": "3 - Medium",
            "Custom.PartnerContactEmail": "ana@publisher.example", "Custom.SupportPlan": "Professional"}
    model = ado.to_model(item)
    assert model["title"] == "SAS web address doesn't work" and model["sr_number"] == "12345678910123"
    assert model["state"] == "waiting_on_customer" and model["offer_ids"] == ["offer-a", "offer-b"]
    assert model["top_partner"] is True and model["severity"] == 3
    esc = Escalation(**model)
    native = ado.to_tracker(esc)
    assert native["System.Title"] == item["System.Title"]
    assert native["Custom.OfferIds"] == "offer-a, offer-b"
    assert native["System.State"] == "Waiting on Publisher"
    assert native["Microsoft.VSTS.Common.Severity"] == "3 - Medium"


def test_state_falls_back_to_category_for_custom_state_names():
    ado = load_mapping(MAPPINGS / "azure_devops.yaml")
    model = ado.to_model({"System.State": "Investigating", "System.State.category": "InProgress"})
    assert model["state"] == "actively_working"


def test_unknown_value_names_file_key_and_value():
    zd = load_mapping(MAPPINGS / "zendesk.yaml")
    with pytest.raises(MappingError) as exc:
        zd.to_model({"custom_fields.360010000002": "sev_9"})
    message = str(exc.value)
    assert "zendesk.yaml" in message and "fields.severity" in message and "sev_9" in message


def test_zendesk_ticket_inbound_with_tags_and_custom_fields():
    zd = load_mapping(MAPPINGS / "zendesk.yaml")
    model = zd.to_model({"subject": "12345678901234 - Portal down", "status": "pending",
                         "priority": "urgent", "tags": ["escalate_tier2", "top_partner"],
                         "custom_fields.360010000003": "plan_professional",
                         "custom_fields.360010000006": "o1,o2"})
    assert model["state"] == "waiting_on_customer" and model["customer_priority"] == "urgent"
    assert model["top_partner"] is True and model["support_plan"] == "professional"
    assert model["offer_ids"] == ["o1", "o2"]


def test_sla_fields_go_out_as_iso_utc():
    ado = load_mapping(MAPPINGS / "azure_devops.yaml")
    from datetime import datetime, timezone
    due = datetime(2026, 3, 3, 17, 0, tzinfo=timezone.utc)
    esc = Escalation(sla={SlaMetricName.ACKNOWLEDGEMENT: SlaMetric(due_at=due, on_time=True)})
    native = ado.to_tracker(esc)
    assert native["Custom.AcknowledgementDue"] == "2026-03-03T17:00:00Z"
    assert native["Custom.AcknowledgedOnTime"] is True


@pytest.mark.parametrize("text,problem", [
    ("tracker: zendesk\nfields:\n  colour: {path: x}\n", "fields.colour"),
    ("tracker: zendesk\nfields:\n  state: {path: status, direction: sideways}\n", "fields.state.direction"),
    ("tracker: zendesk\nfields:\n  state: {path: status, values: {open: opened}}\n", "'opened'"),
    ("tracker: zendesk\nfields:\n  title: {path: subject, transform: shout}\n", "unknown transform"),
    ("tracker: zendesk\nfields:\n  title: {path: subject}\n  description: {path: subject}\n", "already written"),
    ("tracker: zendesk\nfields: [\n", "not valid YAML"),
])
def test_broken_mapping_errors_name_file_key_and_value(tmp_path, text, problem):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_mapping(path)
    message = "\n".join(exc.value.problems)
    assert str(path) in message and problem in message
