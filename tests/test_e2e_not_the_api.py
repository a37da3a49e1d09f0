"""Answers that are not the API's (issue 9): an HTML login page, an empty body or JSON of the
wrong shape from any tracker stops that tracker's pull with a clear error (tracker, URL, what came
back), exit code 2, and the cursor where it was; `check --online` says the same, no traceback."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from core.store import Store
from harness.sandbox import Sandbox
from sync import app

pytestmark = pytest.mark.e2e
runner = CliRunner()
LOGIN_PAGE = ("<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>"
              "password: <input name=password></form></body></html>")
# the path each tracker's pull reads first once it has a cursor
FEEDS = {"zendesk": r"/incremental/tickets", "azure_devops": r"/wiql", "jira": r"/search/jql"}


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    with Sandbox(tmp_path_factory.mktemp("not-the-api")) as sandbox:
        sandbox.cycle()  # every tracker has a cursor now
        sandbox.stop_store()
        yield sandbox


def cursors(box) -> dict:
    store = Store(box.load_config().settings.store)
    with store.transaction() as tx:
        found = {name: store.get_cursor(tx, name) for name in FEEDS}
    store.close()
    return found


def run_once(box) -> tuple[int, str]:
    result = runner.invoke(app, ["run", "--once", "--config", str(box.config_path)])
    return result.exit_code, result.output


@pytest.mark.parametrize("tracker", sorted(FEEDS))
@pytest.mark.parametrize("answer, what", [(LOGIN_PAGE, "an HTML page"), ("", "an empty body"),
                                          ('{"unexpected": true}', "JSON of an unexpected shape")])
def test_an_answer_that_is_not_the_apis_stops_the_pull_with_exit_2(box, tracker, answer, what):
    # (other tests register secrets such as "wrong" for redaction: the messages avoid such words)
    before = cursors(box)
    box.sims[tracker].set_faults(fail_next=[{"path": FEEDS[tracker], "count": 1, "status": 200,
                                             "body": answer, "content_type": "text/html"
                                             if answer.startswith("<") else "application/json"}])
    code, output = run_once(box)
    assert code == 2, output
    said = " ".join(output.split())  # the console wraps long lines
    problem = said[said.index(f"[{tracker}] {box.sims[tracker].base_url}"):]
    assert what in problem and "check base_url" in problem, output
    if answer.startswith("<"):
        assert "Sign in" in problem and "Traceback" not in output
    # that tracker's cursor stays; the other trackers' lanes pull on concurrently (Jira's cursor
    # also keeps the issue ids seen at its boundary, which change with the index lag although
    # nothing new arrived)
    assert cursors(box)[tracker] == before[tracker]


def test_check_online_names_the_login_page_and_exits_2(box):
    box.sims["zendesk"].set_faults(fail_next=[{"path": "ticket_fields", "count": 5, "status": 200,
                                               "body": LOGIN_PAGE}])
    result = runner.invoke(app, ["check", "--online", "--config", str(box.config_path)])
    box.sims["zendesk"].clear_faults()
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())  # the console wraps long lines
    assert "[zendesk]" in said and "an HTML page" in said
    assert "/api/v2/ticket_fields" in said and "Traceback" not in said
