"""Malformed tracker records never crash the mapping or the engine: each bad one is quarantined
with its reason and the rest of its page syncs (property-based, with hypothesis)."""
from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.connector import Page, RemoteRecord
from core.engine import CycleReport
from core.errors import MappingError
from core.mapping import load_mapping
from tests.engine_helpers import make_engine, partner_ticket

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"
ZENDESK = load_mapping(MAPPINGS / "zendesk.yaml")
PATHS = sorted({f.path for f in ZENDESK.fields.values()}) + ["status", "tags", "subject"]

weird_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(blacklist_categories=()), max_size=20),  # includes lone surrogates
    st.just("\ud800broken\udfff"),
    st.just("x" * 200_000),
    st.sampled_from(["sev_9", "plan_gold", "esc_level_9", "weird-status", "", "null"]),
)
values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), weird_text),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.text(max_size=5), children, max_size=3)),
    max_leaves=6,
)
records = st.dictionaries(st.sampled_from(PATHS), values, max_size=12)


@settings(max_examples=60, deadline=None)
@given(records)
def test_mapping_either_maps_or_raises_mapping_error(data):
    try:
        ZENDESK.to_model(data)
    except MappingError as exc:
        assert "zendesk.yaml" in str(exc)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(records, min_size=1, max_size=4))
def test_engine_quarantines_bad_records_and_syncs_the_rest(tmp_path_factory, bad_records):
    engine, t = make_engine(tmp_path_factory.mktemp("bad") / "s.db")
    clock = engine.clock
    page = []
    for i, data in enumerate(bad_records):
        data = dict(data)
        data["tags"] = ["escalate_tier2"]  # every record asks to open an escalation
        page.append(RemoteRecord(tracker="zendesk", id=f"bad-{i}", version="1", updated_at=clock(),
                                 data=data))
    good = RemoteRecord(tracker="zendesk", id="good", version="1", updated_at=clock(),
                        data=partner_ticket())
    page.insert(len(page) // 2, good)
    report = CycleReport(run_id="prop")
    engine.planner.run_id = "prop"
    engine.process_page("zendesk", Page(records=page, cursor="c1"), report)
    assert report.opened + report.quarantined + report.ignored == len(page)
    with engine.store.transaction() as tx:
        assert engine.store.links_for(tx, "zendesk", ["good"]), "the good record did not sync"
        assert engine.store.get_cursor(tx, "zendesk") == "c1"
        for row in engine.store.quarantined(tx):
            assert row["reason"]
    engine.store.close()
