from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from core.model import Escalation, SlaMetric, SlaMetricName, State, Severity


def test_defaults_and_enums():
    esc = Escalation(severity=2, state="actively_working", support_plan="enterprise")
    assert esc.severity is Severity.SEV2 and esc.state is State.ACTIVELY_WORKING
    assert esc.version == 1 and esc.tier.value == "L1" and esc.escalation_level == 0


def test_unknown_field_is_rejected():
    with pytest.raises(ValidationError, match="extra"):
        Escalation(colour="red")


def test_naive_datetime_is_rejected_and_aware_is_normalised_to_utc():
    with pytest.raises(ValidationError, match="timezone-aware"):
        Escalation(created_at=datetime(2026, 1, 1, 9, 0))
    cet = timezone(timedelta(hours=1))
    esc = Escalation(created_at=datetime(2026, 1, 1, 10, 0, tzinfo=cet))
    assert esc.created_at == datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)
    assert esc.created_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("field,value", [("severity", 5), ("escalation_level", 5), ("tier", "L5"),
                                         ("customer_priority", "critical"), ("state", "open")])
def test_out_of_range_values_are_rejected(field, value):
    with pytest.raises(ValidationError):
        Escalation(**{field: value})


def test_comma_separated_offer_ids_become_lists():
    assert Escalation(offer_ids="a1, b2,,c3").offer_ids == ["a1", "b2", "c3"]


def test_bumped_version_only_grows():
    esc = Escalation()
    later = esc.bumped("zendesk", datetime(2026, 1, 2, tzinfo=timezone.utc), state=State.CLOSED)
    assert later.version == esc.version + 1 and later.updated_by == "zendesk"
    with pytest.raises(ValidationError):
        Escalation(version=0)


def test_sla_metrics_and_round_trip_through_json():
    due = datetime(2026, 1, 2, 17, tzinfo=timezone.utc)
    esc = Escalation(sla={SlaMetricName.FIRST_SOLUTION: SlaMetric(due_at=due)})
    again = Escalation.model_validate_json(esc.model_dump_json())
    assert again.sla[SlaMetricName.FIRST_SOLUTION].due_at == due
    assert again == esc
