"""The Jira connector over real HTTP against the Jira simulator: the shared contract (plain Jira,
Jira Service Management, marker-label lookup) and failure paths end to end."""
from __future__ import annotations

import pytest

from core.connector import OriginRef
from connectors.jira import JiraConfig, JiraConnector
from core.errors import AuthError, PermanentError
from core.mapping import load_mapping, resolve_mapping_path
from core.reconcile import older_version
from simulators.jira import JiraSimulator, connector_config
from tests.contract import ConnectorContract

SAMPLE = {"summary": "12345678901234 - Portal down", "description": "Partner cannot log in.",
          "priority": "High", "labels": ["partner"], "components": ["Portal"],
          "customfield_10100": "12345678901234", "customfield_10101": "Sev 2",
          "customfield_10104": "L3", "customfield_10105": "2026-01-05T09:00:00Z",
          "customfield_10106": "No", "status": "In Progress"}


@pytest.fixture(scope="module")
def sim():
    # lenient: no search index lag. The shared contract checks the connector's semantics
    # (create then find, cursor resume) at once; the lag has its own tests
    # (tests/test_jira_realism_e2e.py, tests/test_simulator_jira_realism.py).
    with JiraSimulator(index_lag_seconds=0) as simulator:
        yield simulator


@pytest.fixture
def sleeps(monkeypatch):
    waited: list[float] = []
    monkeypatch.setattr("connectors.retry.sleep", waited.append)
    return waited


def build(sim: JiraSimulator, monkeypatch, **overrides) -> JiraConnector:
    wiring = connector_config(sim, **overrides)
    for name, value in wiring["env"].items():
        monkeypatch.setenv(name, value)
    return JiraConnector("jira", JiraConfig(**wiring["config"]))


class TestJiraContract(ConnectorContract):
    overrides: dict = {}

    @pytest.fixture
    def connector(self, sim, monkeypatch):
        connector = build(sim, monkeypatch, **self.overrides)
        yield connector
        connector.close()

    @pytest.fixture
    def sample_fields(self):
        return dict(SAMPLE)

    @pytest.fixture
    def human_edit(self, sim):
        return lambda remote_id, fields: sim.human_edit(remote_id, fields)


class TestJiraServiceManagementContract(TestJiraContract):
    overrides = {"project": "SUP", "service_management": True}


class TestJiraMarkerPropertyContract(TestJiraContract):
    overrides = {"idempotency_lookup": "property"}


# -- end to end failure paths --------------------------------------------------------------------
def test_reply_lost_after_the_issue_was_created_does_not_duplicate_it(sim, monkeypatch, sleeps):
    jira = build(sim, monkeypatch)
    jira.catalog  # connect and read the field list before the fault is armed
    real_create = sim.store.create

    def create_then_disarm(*args, **kwargs):
        sim.faults.drop_after_rate = 0.0  # this request's reply is still dropped
        return real_create(*args, **kwargs)

    monkeypatch.setattr(sim.store, "create", create_then_disarm)
    sim.set_faults(drop_after_rate=1.0)
    before = len([r for r in sim.write_requests() if r.path == "/rest/api/2/issue"])

    record = jira.create(dict(SAMPLE), idempotency_key="tiersync:lost-reply")

    creates = [r for r in sim.write_requests() if r.path == "/rest/api/2/issue"]
    assert len(creates) - before == 1
    after_create = [r for r in sim.requests[sim.requests.index(creates[-1]) + 1:]
                    if r.path != "/rest/api/2/field"]  # the library reads the field list once
    assert after_create[0].path == "/rest/api/2/search/jql"  # the lookup that found it
    assert "tiersync:lost-reply" in after_create[0].query["jql"][0] and len(sleeps) == 1
    assert [str(i["id"]) for i in sim.snapshot()["issues"]
            if i["properties"].get("tiersync", {}).get("key") == "tiersync:lost-reply"] == [record.id]


def test_429_from_the_simulator_is_waited_out_with_its_retry_after(sim, monkeypatch, sleeps):
    jira = build(sim, monkeypatch)
    sim.set_faults(fail_next=[{"path": "/rest/api/2/search/jql", "count": 1, "status": 429, "retry_after": 3}])

    list(jira.fetch_changes(None))

    assert sleeps == [3.0]


def test_wrong_token_is_an_auth_error_naming_the_variables(monkeypatch):
    with JiraSimulator(email="bot@example.com", token="right-token") as locked:
        wiring = connector_config(locked)
        monkeypatch.setenv("JIRA_EMAIL", "bot@example.com")
        monkeypatch.setenv("JIRA_API_TOKEN", "wrong-token")
        jira = JiraConnector("jira", JiraConfig(**wiring["config"]))
        with pytest.raises(AuthError, match=r"\[jira\] HTTP 401: the tracker refused JIRA_EMAIL/JIRA_API_TOKEN"):
            jira.get("ENG-1")
        assert jira.check_online(["summary"], {})[0].startswith("[jira] HTTP 401")


def test_every_status_is_reached_through_the_workflow_with_the_mapped_resolution(sim, monkeypatch):
    jira = build(sim, monkeypatch)
    jira.use_mapping(load_mapping(resolve_mapping_path("jira")))
    record = jira.create({"summary": "walk the workflow"}, idempotency_key="tiersync:workflow")
    for status in ("Waiting for customer", "Waiting for support", "Done", "To Do", "Resolved",
                   "Waiting for customer", "Done"):
        record = jira.update(record.id, {"status": status}, expected_version=record.version)
        assert record.data["status"] == status
        assert record.data["resolution"] == ("Done" if status in ("Resolved", "Done") else None)
    assert record.data["status.category"] == "done"


def test_a_read_in_the_middle_of_a_walk_is_older_than_the_walks_own_read(sim, monkeypatch):
    """Another daemon reading the issue while a walk passes through In Progress sees the status
    the walk came from (the walking mark), at an ``updated`` before the walk's end: by the
    connector's version order that read is older than the one after the walk, so the engine
    does not take it as a change once the walk's own read is recorded (core/engine.py)."""
    jira, other = build(sim, monkeypatch), build(sim, monkeypatch)
    jira.use_mapping(load_mapping(resolve_mapping_path("jira")))
    created = jira.create({"summary": "read mid-walk"}, idempotency_key="tiersync:mid-walk")
    assert created.data["status"] == "To Do"
    middle = []
    post = jira.api.post_json

    def transition_then_read(path, body):
        reply = post(path, body)
        if path.endswith("/transitions") and not middle:
            middle.append(other.get(created.id))  # the issue is In Progress now
        return reply

    monkeypatch.setattr(jira.api, "post_json", transition_then_read)
    final = jira.update(created.id, {"status": "Waiting for support"},
                        expected_version=created.version)
    assert middle[0].data["status"] == "To Do" and final.data["status"] == "Waiting for support"
    order = jira.capabilities().version_order
    assert older_version(order, middle[0].version, final.version)
    assert not older_version(order, final.version, middle[0].version)
    assert not older_version(order, final.version, final.version)


def test_a_required_screen_field_the_mapping_lacks_is_a_dead_letter_naming_it(sim, monkeypatch):
    jira = build(sim, monkeypatch)
    record = jira.create({"summary": "no resolution mapped"}, idempotency_key="tiersync:no-resolution")
    with pytest.raises(PermanentError) as caught:
        jira.update(record.id, {"status": "Done"}, expected_version=None)
    message = str(caught.value)
    for fragment in (record.key, "from 'In Progress' to 'Resolved'", "'Done'", "'resolution'"):
        assert fragment in message, fragment
    assert sim.issue(record.key).status == "In Progress"  # walked as far as it could; until the
    assert jira.get(record.id).data["status"] == "To Do"  # walk is done it reads as where it began


def test_an_issue_edited_during_a_paged_scan_is_still_delivered(sim, monkeypatch):
    jira = build(sim, monkeypatch, project="SUP", page_size=3, service_management=True)
    keys = [jira.create({"summary": f"scan {n}"}, idempotency_key=f"tiersync:scan-{n}").id for n in range(7)]
    pages = jira.fetch_changes(None)
    first = next(pages)
    sim.human_edit(first.records[0].id, {"summary": "edited mid-scan"})
    rest = [r for page in pages for r in page.records]
    delivered = [r.id for r in first.records + rest]
    assert set(keys) <= set(delivered)
    assert len(delivered) == len(set((r.id, r.version) for r in first.records + rest))
    assert any(r.id == first.records[0].id and r.data["summary"] == "edited mid-scan" for r in rest)


def test_all_comments_are_read_beyond_the_ones_embedded_in_the_issue(sim, monkeypatch):
    jira = build(sim, monkeypatch, project="SUP", service_management=True)
    key = jira.create({"summary": "chatty"}, idempotency_key="tiersync:chatty").id
    for n in range(25):
        sim.human_comment(key, f"note {n}", internal=n % 2 == 1, author="dana.okafor@engineering.example.com")
    comments = jira.get(key).comments
    assert [c.body for c in comments] == [f"note {n}" for n in range(25)]
    assert [c.public for c in comments[:2]] == [True, False]
    assert comments[0].author == "dana.okafor@engineering.example.com"


def test_remote_link_back_to_the_origin_is_created_once(sim, monkeypatch):
    jira = build(sim, monkeypatch)
    origin = OriginRef("zendesk", "4242", "https://tier1.example/tickets/4242", "SR 4242")
    record = jira.create({"summary": "linked"}, idempotency_key="tiersync:linked", origin=origin)
    marker = sim.issue(record.key).properties["tiersync"]
    assert marker["linked"] is True and marker["origin_url"] == origin.url
    jira.links.link(record.id, marker)  # a repair links again: same globalId, no second link
    links = next(i for i in sim.snapshot()["issues"] if i["key"] == record.key)["links"]
    assert links == [{"globalId": "tiersync:zendesk:4242", "url": "https://tier1.example/tickets/4242",
                      "title": "SR 4242", "relationship": "escalated from"}]


def _mapping_paths_and_values():
    mapping = load_mapping(resolve_mapping_path("jira"))
    paths, values = [], {}
    for fmap in mapping.fields.values():
        paths.append(fmap.path)
        if fmap.values:
            values.setdefault(fmap.path, []).extend(list(fmap.values) + list(fmap.outbound_values.values()))
        if fmap.category_path:
            paths.append(fmap.category_path)
            values.setdefault(fmap.category_path, []).extend(fmap.categories)
    for path, value in mapping.create_defaults.items():
        values.setdefault(path, []).append(value)
    return paths, values


def test_check_online_accepts_the_shipped_mapping_against_the_default_fixture(sim, monkeypatch):
    paths, values = _mapping_paths_and_values()
    values["customfield_10106"] = ["Yes", "No"]  # the bool_text transform's two values
    jira = build(sim, monkeypatch)
    jira.use_mapping(load_mapping(resolve_mapping_path("jira")))
    assert jira.check_online(paths, values) == []


def test_check_online_names_the_paths_and_values_that_do_not_exist(sim, monkeypatch):
    problems = build(sim, monkeypatch, issue_type="Bug").check_online(
        ["summary", "customfield_10199", "fields.nope", "status"],
        {"status": ["Waiting on vendor"], "customfield_10101": ["Sev 5"], "priority": ["Blocker"],
         "status.category": ["finished"]})
    assert len(problems) == 7, problems  # no mapping handed over: no transition fields either
    for fragment in ("customfield_10199: no such field", "fields.nope: not a Jira field path",
                     "transition_fields.Resolved.resolution: the transition 'Resolve' (In Progress -> "
                     "Resolved) requires 'Resolution'",
                     "'Waiting on vendor' is not a status of ENG/Bug", "customfield_10101: 'Sev 5'",
                     "priority: 'Blocker'", "status.category: 'finished'"):
        assert any(fragment in p for p in problems), fragment
    missing = build(sim, monkeypatch, issue_type="Story").check_online(["summary"], {})
    assert missing == ["project ENG: no issue type 'Story', or the project does not exist / is not "
                       "visible to this account"]
