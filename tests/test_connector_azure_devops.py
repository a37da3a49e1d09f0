"""Azure DevOps connector, read side, with `responses` in front of the real azure-devops SDK.

Payloads are files under tests/fixtures/azure_devops/, shaped like Microsoft's recorded
examples in /work/shared/specs/azure-devops/examples. The write side is in
test_connector_azure_devops_writes.py (it reuses the fixtures below).
"""
from __future__ import annotations

import copy
import functools
import json
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from connectors import retry
from connectors.azure_devops import AzureDevOpsConfig, AzureDevOpsConnector
from connectors.azure_devops_feed import Cursor
from core.errors import AuthError, PermanentError, Retryable

ORG = "https://dev.azure.com/fabrikam"
WIT = f"{ORG}/Support/_apis/wit"
FIXTURES = Path(__file__).parent / "fixtures" / "azure_devops"
PAT = "test-pat-value-0001"


@functools.lru_cache(maxsize=None)
def _read(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def load(name: str):
    """A fresh copy of a fixture file."""
    return copy.deepcopy(json.loads(_read(name)))


def work_item(item_id: int, rev: int, changed: str, **fields) -> dict:
    item = load("work_item.json")
    item.update(id=item_id, rev=rev, url=f"{ORG}/_apis/wit/workItems/{item_id}")
    item["fields"].update({"System.Id": item_id, "System.ChangedDate": changed, **fields})
    return item


def wiql_result(ids: list[int], as_of: str = "2026-01-05T10:00:00.617Z") -> dict:
    result = load("wiql_result.json")
    result["asOf"] = as_of
    result["workItems"] = [{"id": i, "url": f"{ORG}/_apis/wit/workItems/{i}"} for i in ids]
    return result


def batch(*items: dict) -> dict:
    return {"count": len(items), "value": list(items)}


def body(call) -> object:
    return json.loads(call.request.body)


def query(call) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def calls(api, method: str, fragment: str) -> list:
    return [c for c in api.calls if c.request.method == method and fragment in c.request.url]


@pytest.fixture
def waits(monkeypatch):
    waited: list[float] = []
    monkeypatch.setattr(retry, "sleep", waited.append)
    return waited


@pytest.fixture
def conn(monkeypatch):
    monkeypatch.setenv("AZURE_DEVOPS_PAT", PAT)
    config = AzureDevOpsConfig(base_url=ORG + "/", project="Support", mapping="azure_devops",
                               start_at="2026-01-01T00:00:00Z", page_size=2, max_attempts=3)
    connector = AzureDevOpsConnector("azure_devops", config)
    yield connector
    connector.close()


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.OPTIONS, f"{ORG}/_apis", json=load("options.json"))
        mock.add(responses.GET, f"{WIT}/workitemtypes/Engagement%20Item/states", json=load("states.json"))
        yield mock


# -- the flat native view --------------------------------------------------------------------------
def test_get_returns_the_flat_view_with_comments(conn, api):
    item = work_item(301, 4, "2026-01-05T09:00:00.57Z", **{"System.CommentCount": 2})
    api.add(responses.GET, f"{WIT}/workitems/301", json=item)
    api.add(responses.GET, f"{WIT}/workItems/301/comments", json=load("comments.json"))
    record = conn.get("301")
    assert (record.id, record.version, record.tracker) == ("301", "4", "azure_devops")
    assert record.updated_at == datetime(2026, 1, 5, 9, 0, 0, 570000, tzinfo=timezone.utc)
    assert record.data["System.AssignedTo"] == "tier2.agent@fabrikam.example"
    assert record.data["System.Tags"] == ["marketplace"]
    assert record.idempotency_key == "esc-1-azure_devops"
    assert record.data["System.State"] == "New" and record.data["System.State.category"] == "Proposed"
    assert record.data["System.Description"] == ("The SaaS landing page returns 404.\n"
                                                 'Started after "publish".')
    assert record.data["Custom.TopPartner"] is True and record.data["Custom.EscalationLevel"] == 1
    assert record.url == f"{ORG}/Support/_workitems/edit/301"
    assert [(c.id, c.body, c.public, c.author) for c in record.comments] == [
        ("44", "Moving to the right area path", False, "fabrikamfiber4@hotmail.com"),
        ("45", "Johnnie is going to take this work over.", False, "tier2.agent@fabrikam.example")]
    assert query(calls(api, "GET", "/comments")[0]) == {"$top": "200", "order": "asc"}


def test_get_skips_the_comments_call_when_there_are_none(conn, api):
    api.add(responses.GET, f"{WIT}/workitems/301", json=work_item(301, 1, "2026-01-05T09:00:00Z"))
    assert conn.get("301").comments == ()
    assert not calls(api, "GET", "/comments")


# -- incremental pull --------------------------------------------------------------------------------
def _first_run(conn, api):
    api.add(responses.POST, f"{WIT}/wiql", json=wiql_result([301, 302, 303]))
    api.add(responses.POST, f"{WIT}/workitemsbatch", json=batch(
        work_item(301, 1, "2026-01-05T09:00:00.57Z"), work_item(302, 2, "2026-01-05T09:00:01.2Z")))
    api.add(responses.POST, f"{WIT}/workitemsbatch", json=batch(
        work_item(303, 5, "2026-01-05T09:00:01.9Z")))
    return list(conn.fetch_changes(None))


def test_fetch_pages_through_a_wiql_window_at_its_as_of(conn, api):
    pages = _first_run(conn, api)
    assert [[r.id for r in p.records] for p in pages] == [["301", "302"], ["303"]]
    (wiql,) = calls(api, "POST", "/wiql")
    assert query(wiql) == {"timePrecision": "true", "$top": "20000"}
    assert body(wiql) == {"query": (
        "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project AND "
        "[System.WorkItemType] IN ('Engagement Item') AND [System.ChangedDate] >= "
        "'2026-01-01T00:00:00Z' ORDER BY [System.ChangedDate] ASC, [System.Id] ASC")}
    assert [body(c) for c in calls(api, "POST", "/workitemsbatch")] == [
        {"ids": [301, 302], "asOf": "2026-01-05T10:00:00.617Z", "errorPolicy": "omit",
         "$expand": "relations"},
        {"ids": [303], "asOf": "2026-01-05T10:00:00.617Z", "errorPolicy": "omit",
         "$expand": "relations"}]
    assert Cursor.decode(pages[-1].cursor).since == datetime(2026, 1, 5, 9, 0, 1, tzinfo=timezone.utc)


def test_resume_from_saved_cursor_skips_records_already_delivered(conn, api):
    saved = _first_run(conn, api)[-1].cursor
    api.reset()
    api.add(responses.POST, f"{WIT}/wiql", json=wiql_result([302, 303, 304], "2026-01-05T11:00:00Z"))
    api.add(responses.POST, f"{WIT}/workitemsbatch", json=batch(
        work_item(302, 2, "2026-01-05T09:00:01.2Z"),  # unchanged, at the cursor's boundary
        work_item(303, 6, "2026-01-05T10:30:00Z")))  # changed since
    api.add(responses.POST, f"{WIT}/workitemsbatch", json=batch(work_item(304, 1, "2026-01-05T10:31:00Z")))
    api.add(responses.GET, f"{WIT}/workitemtypes/Engagement%20Item/states", json=load("states.json"))
    pages = list(conn.fetch_changes(saved))
    assert [(r.id, r.version) for p in pages for r in p.records] == [("303", "6"), ("304", "1")]
    assert "[System.ChangedDate] >= '2026-01-05T09:00:01Z'" in body(calls(api, "POST", "/wiql")[0])["query"]
    api.reset()  # resuming from the last cursor with nothing new delivers nothing
    api.add(responses.POST, f"{WIT}/wiql", json=wiql_result([304], "2026-01-05T11:05:00Z"))
    api.add(responses.POST, f"{WIT}/workitemsbatch", json=batch(work_item(304, 1, "2026-01-05T10:31:00Z")))
    assert list(conn.fetch_changes(pages[-1].cursor)) == []


def test_wiql_over_the_cap_splits_the_window(conn, api):
    queries: list[str] = []
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.123Z")

    def answer(request):
        text = json.loads(request.body)["query"]
        queries.append(text)
        if len(queries) == 1:
            return 400, {}, json.dumps(load("error_wiql_too_large.json"))
        return 200, {}, json.dumps(wiql_result([301] if len(queries) == 2 else [], now))

    api.add_callback(responses.POST, f"{WIT}/wiql", callback=answer, content_type="application/json")
    api.add(responses.POST, f"{WIT}/workitemsbatch", json=batch(work_item(301, 1, "2026-01-02T00:00:00Z")))
    records = [r for page in conn.fetch_changes(None) for r in page.records]
    assert [r.id for r in records] == ["301"]
    assert "[System.ChangedDate] <" not in queries[0]
    assert "[System.ChangedDate] >= '2026-01-01T00:00:00Z' AND [System.ChangedDate] <" in queries[1]
    upper = queries[1].split("[System.ChangedDate] < ")[1][:22]
    assert f"[System.ChangedDate] >= {upper}" in queries[2]


def test_a_garbled_cursor_is_a_permanent_error(conn):
    with pytest.raises(PermanentError, match="cursor"):
        next(conn.fetch_changes("not-a-cursor"))


# -- errors and retries ------------------------------------------------------------------------------
def test_429_with_retry_after_is_retried_once_after_the_stated_wait(conn, api, waits):
    api.add(responses.GET, f"{WIT}/workitems/301", status=429, json=load("error_rate_limited.json"),
            headers={"Retry-After": "7", "X-RateLimit-Resource": "Core", "X-RateLimit-Remaining": "0"})
    api.add(responses.GET, f"{WIT}/workitems/301", json=work_item(301, 1, "2026-01-05T09:00:00Z"))
    assert conn.get("301").version == "1"
    assert waits == [7.0]
    assert len(calls(api, "GET", "/workitems/301")) == 2


def test_server_errors_are_retried_by_tiersync_not_by_msrest(conn, api, waits):
    for _ in range(3):
        api.add(responses.GET, f"{WIT}/workitems/301", status=503, json=load("error_server.json"))
    with pytest.raises(Retryable, match="HTTP 503"):
        conn.get("301")
    assert len(calls(api, "GET", "/workitems/301")) == 3  # max_attempts, no hidden urllib3 retries
    assert len(waits) == 2


def test_401_names_the_tracker_and_the_credential_variable(conn, api, waits):
    api.add(responses.GET, f"{WIT}/workitems/301", status=401, content_type="text/plain",
            body="TF400813: Resource not available for anonymous access.")
    with pytest.raises(AuthError) as failure:
        conn.get("301")
    message = str(failure.value)
    assert "azure_devops" in message and "AZURE_DEVOPS_PAT" in message and PAT not in message
    assert len(calls(api, "GET", "/workitems/301")) == 1 and waits == []


def test_a_delayed_200_slows_the_next_request_down(conn, api, waits):
    conn.categories("Engagement Item")
    api.add(responses.GET, f"{WIT}/workitems/301", json=work_item(301, 1, "2026-01-05T09:00:00Z"),
            headers={"Retry-After": "3", "X-RateLimit-Delay": "2.5"})
    api.add(responses.GET, f"{WIT}/workitems/301", json=work_item(301, 1, "2026-01-05T09:00:00Z"))
    conn.get("301")
    assert waits == []
    conn.get("301")
    assert waits == [3.0]
