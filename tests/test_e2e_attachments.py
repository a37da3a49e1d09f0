"""End to end over the simulators (issue 15): a publisher's screenshot on the Zendesk ticket
arrives once on the Azure DevOps item (upload + AttachedFile relation) and the Jira issue, with
its name, type and bytes; a process killed with SIGKILL between the upload and the relation
attaches it once after the restart; a file over a tracker's limit becomes a link with a note; a
file added in Jira comes back on a private Zendesk note, and never goes round again."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from core.audit import AuditLog
from harness.sandbox import Sandbox
from tests.e2e_files_helpers import (ado_blob, attached_files, cli_env, configure, cycle, digest,
                                     issue, item, jira_blob, open_case, tiersync_script)

pytestmark = pytest.mark.e2e
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(40_000)


def audit_of(box: Sandbox, action: str) -> list[dict]:
    with box.engine().store.transaction() as tx:
        return list(AuditLog().query(tx, action=action))


def test_screenshot_arrives_once_on_both_mirrors_with_name_type_and_bytes(tmp_path):
    with Sandbox(tmp_path) as box:
        token = box.people.zendesk.upload("sas-403.png", PNG, "image/png")
        open_case(box, uploads=[token])
        cycle(box)
        relations = attached_files(box)
        assert len(relations) == 1 and relations[0]["attributes"]["name"] == "sas-403.png"
        assert f"sha256:{digest(PNG)}" in relations[0]["attributes"]["comment"]
        assert ado_blob(box, relations[0]).sha256 == digest(PNG)
        [copy] = issue(box).attachments
        assert (copy["filename"], copy["mimeType"], copy["size"]) == ("sas-403.png", "image/png", len(PNG))
        assert jira_blob(box, copy).sha256 == digest(PNG)
        copied = audit_of(box, "attachment-copied")
        assert {e["tracker"] for e in copied} == {"azure_devops", "jira"}
        assert all(e["after"]["sha256"] == digest(PNG) and e["after"]["name"] == "sas-403.png"
                   and e["after"]["size"] == len(PNG) and e["after"]["source"].startswith("zendesk:")
                   for e in copied)
        box.clear_requests()
        cycle(box)
        assert box.write_requests() == {"zendesk": 0, "azure_devops": 0, "jira": 0}


def test_sigkill_between_upload_and_relation_attaches_once_after_restart(tmp_path):
    with Sandbox(tmp_path) as box:
        ticket_id = open_case(box)
        ado = box.sims["azure_devops"]
        # the relation (a work item PATCH) is held 20 s, long enough to kill the process
        ado.set_faults(fail_next=[{"path": r"/_apis/wit/workitems/\d+$", "method": "PATCH",
                                   "count": 5, "status": 503, "delay_ms": 20_000}])
        token = box.people.zendesk.upload("trace.log", b"trace line\n" * 5000, "text/plain")
        box.people.zendesk.comment_with_files(ticket_id, "Here is the trace.", [token])
        box.settle()
        box.clear_requests()
        process = subprocess.Popen([tiersync_script(), "run", "--once", "--config",
                                    str(box.config_path)], env=cli_env(box),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert _wait_for_relation_attempt(ado), "the upload and the relation never started"
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
        uploads = [r for r in ado.requests if r.method == "POST" and "/attachments" in r.path]
        assert len(uploads) == 1 and attached_files(box) == []
        box.stop_store()
        ado.clear_faults()
        cycle(box)
        cycle(box)
        relations = attached_files(box)
        assert len(relations) == 1 and relations[0]["attributes"]["name"] == "trace.log"
        assert len([r for r in ado.requests if r.method == "POST" and "/attachments" in r.path]) == 1
        assert [a["filename"] for a in issue(box).attachments] == ["trace.log"]


def _wait_for_relation_attempt(ado, timeout: float = 60.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with ado.lock:
            done = [r for r in ado.requests if r.method == "POST" and "/attachments" in r.path
                    and r.status in (200, 201)]
            held = [r for r in ado.requests if r.method == "PATCH" and r.fault]
        if done and held:
            return True
        time.sleep(0.05)
    return False


def test_file_over_the_limit_becomes_a_link_with_a_note(tmp_path):
    with Sandbox(tmp_path) as box:
        box.sims["jira"].files.upload_limit = 20_000  # the Jira site's own setting
        configure(box, "azure_devops", attachment_max_bytes=30_000)  # the admin's for Azure DevOps
        big = os.urandom(35_000)
        token = box.people.zendesk.upload("capture.pcap", big, "application/vnd.tcpdump.pcap")
        open_case(box, uploads=[token])
        cycle(box)
        assert attached_files(box) == [] and issue(box).attachments == []
        jira_notes = [c["body"] for c in issue(box).comments if "capture.pcap" in c["body"]]
        ado_notes = [r.fields.get("System.History") for r in item(box).revisions
                     if "capture.pcap" in str(r.fields.get("System.History") or "")]
        assert len(jira_notes) == 1 and "larger than jira's limit of 19.5 KB" in jira_notes[0]
        assert "/attachments/token/" in jira_notes[0]  # the link to the original
        assert len(ado_notes) == 1 and "29.3 KB" in ado_notes[0]
        linked = audit_of(box, "attachment-linked")
        assert {e["tracker"] for e in linked} == {"jira", "azure_devops"}
        assert all(e["after"]["size"] == len(big) for e in linked)


def test_jira_file_comes_back_on_a_private_zendesk_note_and_never_goes_round(tmp_path):
    with Sandbox(tmp_path) as box:
        ticket_id = open_case(box)
        jira = box.sims["jira"]
        key = issue(box).key
        fix = b"patched build notes\n" * 200
        response = box.people.jira.session.post(
            f"{box.people.jira.base_url}/rest/api/2/issue/{key}/attachments",
            headers={"X-Atlassian-Token": "no-check"},
            files={"file": ("fix-notes.txt", fix, "text/plain")}, timeout=10)
        assert response.status_code == 200
        jira.settle_index()
        cycle(box)
        cycle(box)
        zendesk = box.sims["zendesk"]
        notes = [c for c in zendesk.state.ticket(ticket_id).comments if c["attachments"]]
        assert len(notes) == 1 and notes[0]["public"] is False
        [file] = notes[0]["attachments"]
        assert (file["file_name"], file["content_type"], file["size"]) == ("fix-notes.txt", "text/plain", len(fix))
        assert [r["attributes"]["name"] for r in attached_files(box)] == ["fix-notes.txt"]
        box.clear_requests()
        cycle(box)
        assert box.write_requests() == {"zendesk": 0, "azure_devops": 0, "jira": 0}
        assert len(issue(box).attachments) == 1


def test_inline_images_follow_the_mapping_and_direction_is_per_mapping(tmp_path):
    with Sandbox(tmp_path) as box:
        shipped = (box.config_path.parents[0] / "zendesk.yaml")
        from tests.conftest import ROOT
        shipped.write_text((ROOT / "mappings" / "zendesk.yaml").read_text()
                           + "attachments: {direction: both, inline_images: false}\n")
        configure(box, "zendesk", mapping=str(shipped))
        jira_mapping = box.config_path.parents[0] / "jira.yaml"
        jira_mapping.write_text((ROOT / "mappings" / "jira.yaml").read_text()
                                + "attachments: {direction: inbound}\n")  # Jira's files go out only
        configure(box, "jira", mapping=str(jira_mapping))
        zendesk = box.sims["zendesk"]
        inline = box.people.zendesk.upload("pasted.png", PNG, "image/png")
        with zendesk.lock:  # pasted into the comment in the agent UI: an inline image
            for entry in zendesk.files.tokens[inline]["ids"]:
                zendesk.files.attachments[entry]["inline"] = True
        plain = box.people.zendesk.upload("report.pdf", b"%PDF-1.7 report", "application/pdf")
        open_case(box, uploads=[inline, plain])
        cycle(box)
        assert [r["attributes"]["name"] for r in attached_files(box)] == ["report.pdf"]
        assert issue(box).attachments == []  # Jira takes no files from the others


def test_a_jira_upload_whose_reply_was_lost_is_adopted_even_after_a_pull_read_it(tmp_path):
    """The upload landed, its reply was lost; the next cycle's Jira pull reads the issue (the
    file is on it now) before the retried action looks: the file is recognised by name, size and
    read-back hash, never uploaded twice."""
    with Sandbox(tmp_path, engine={"backoff_seconds": 1.0, "max_backoff_seconds": 1.0}) as box:
        ticket_id = open_case(box)
        box.sims["jira"].set_faults(fail_next=[{"path": r"/rest/api/2/issue/[^/]+/attachments$",
                                                "method": "POST", "count": 1, "lose_reply": True}])
        token = box.people.zendesk.upload("trace.log", b"trace line\n" * 5000, "text/plain")
        box.people.zendesk.comment_with_files(ticket_id, "Here is the trace.", [token])
        cycle(box)
        assert box.sims["jira"].requests[-1].reply_lost or any(
            r.reply_lost for r in box.sims["jira"].requests)
        time.sleep(1.2)  # the retry is due now, and the Jira pull of the next cycle goes first
        cycle(box)
        cycle(box)
        store = box.engine().store
        with store.transaction() as tx:
            assert [a.kind for a in store.actions(tx, state="pending")] == []  # the retry ran
        assert [a["filename"] for a in issue(box).attachments] == ["trace.log"]
        jira_uploads = [r for r in box.sims["jira"].requests
                        if r.method == "POST" and r.path.endswith("/attachments")]
        assert len(jira_uploads) == 1
        assert len(attached_files(box)) == 1
