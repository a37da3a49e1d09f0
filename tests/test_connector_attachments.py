"""The connectors' attachment and user halves against `responses`, in front of the real client
libraries: the bodies and headers of uploads (Zendesk raw bytes, Jira multipart with the
XSRF header, Azure DevOps octet-stream and chunked ranges), the relation and note that attach
them, streamed reads, and user lookups by address."""
from __future__ import annotations

import io
import json
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from connectors.base import RemoteAttachment
from core.attachments import Upload
from core.errors import NotTheApi
from tests.test_connector_azure_devops import ORG, WIT, api as ado_api, conn as ado, load as ado_load  # noqa: F401
from tests.test_connector_jira import API as JIRA_API, env, http, load as jira_load, make as jira  # noqa: F401
from tests.test_connector_zendesk_helpers import API as ZD_API, api as zd_api, make as zd_make  # noqa: F401

CONTENT = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
SHA = "ab" * 32


def upload(name: str = "shot.png", content: bytes = CONTENT, kind: str = "image/png") -> Upload:
    return Upload(name=name, content_type=kind, size=len(content), sha256=SHA,
                  file=io.BytesIO(content), note="[tiersync] Attachment shot.png from zendesk record 7")


def query(call) -> dict[str, list[str]]:
    return parse_qs(urlparse(call.request.url).query)


def raw(call) -> bytes:
    body = call.request.body
    if hasattr(body, "read"):
        body.seek(0)
        return body.read()
    if isinstance(body, (bytes, str)):
        return body if isinstance(body, bytes) else body.encode()
    return b"".join(body)


# -- Zendesk ------------------------------------------------------------------------------------
def test_zendesk_upload_sends_raw_bytes_with_their_type_then_a_private_note_with_the_token(zd_api, zd_make):
    post = zd_api.post(f"{ZD_API}/uploads.json", status=201, json={"upload": {
        "token": "tok-1", "attachment": {"id": 5, "file_name": "shot.png"}, "attachments": []}})
    put = zd_api.put(f"{ZD_API}/tickets/77.json", json={
        "ticket": {"id": 77, "updated_at": "2026-01-05T09:00:00Z"},
        "audit": {"id": 1, "events": [{"id": 9, "type": "Comment", "attachments": [
            {"id": 5, "file_name": "shot.png"}]}]}})
    connector = zd_make()
    token = connector.upload_attachment("77", upload())
    assert token == "tok-1"
    call = post.calls[0]
    assert query(call) == {"filename": ["shot.png"]}
    assert call.request.headers["Content-Type"] == "image/png"
    assert raw(call) == CONTENT
    assert connector.attach_upload("77", upload(), token) == "5"
    assert json.loads(put.calls[0].request.body)["ticket"]["comment"] == {
        "body": "[tiersync] Attachment shot.png from zendesk record 7", "public": False,
        "uploads": ["tok-1"]}


def test_zendesk_read_streams_with_the_api_credentials_and_refuses_a_login_page(zd_api, zd_make):
    url = "https://acme.zendesk.com/attachments/token/abc/?name=shot.png"
    zd_api.get(url, body=CONTENT, content_type="image/png")
    connector = zd_make()
    chunks = list(connector.read_attachment(RemoteAttachment("5", "shot.png", url)))
    assert b"".join(chunks) == CONTENT
    assert zd_api.calls[0].request.headers["Authorization"].startswith("Basic ")
    zd_api.replace(responses.GET, url, body="<html>sign in</html>", content_type="text/html")
    with pytest.raises(NotTheApi):
        list(connector.read_attachment(RemoteAttachment("5", "shot.png", url)))


def test_zendesk_user_search_by_address_end_users_are_not_agents(zd_api, zd_make):
    zd_api.get(f"{ZD_API}/users/search.json", json={"users": [
        {"id": 1, "email": "pat@partner.example", "name": "Pat", "role": "end-user", "active": True},
        {"id": 2, "email": "alice@tier1.example", "name": "Alice", "role": "agent", "active": True}]})
    connector = zd_make()
    alice = connector.find_user("Alice@tier1.example")
    assert (alice.ref, alice.active) == ("alice@tier1.example", True)
    pat = connector.find_user("pat@partner.example")
    assert (pat.active, pat.why_not) == (False, "not an agent")
    assert connector.find_user("nobody@x.example") is None
    assert query(zd_api.calls[0])["query"] == ["Alice@tier1.example"]


# -- Jira ---------------------------------------------------------------------------------------
def test_jira_attachment_is_multipart_file_part_with_its_type_and_the_xsrf_header(http):
    post = http.post(f"{JIRA_API}/issue/10001/attachments", json=[
        {"id": "20001", "filename": "shot.png", "mimeType": "image/png", "size": len(CONTENT)}])
    connector = jira()
    assert connector.upload_attachment("10001", upload()) == "20001"
    request = post.calls[0].request
    assert request.headers["X-Atlassian-Token"] == "no-check"
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    body = raw(post.calls[0])
    assert b'Content-Disposition: form-data; name="file"; filename="shot.png"' in body
    assert b"Content-Type: image/png" in body and CONTENT in body


def test_jira_limit_is_the_site_upload_limit_and_users_are_found_by_exact_address(http):
    http.get(f"{JIRA_API}/attachment/meta", json={"enabled": True, "uploadLimit": 10485760})
    http.get(f"{JIRA_API}/user/search", json=[
        {"accountId": "a-1", "emailAddress": "dana@eng.example", "displayName": "Dana", "active": True},
        {"accountId": "a-2", "emailAddress": "dana.old@eng.example", "active": False}])
    connector = jira()
    assert connector.attachment_limit() == 10485760
    connector.attachment_limit()
    assert len([c for c in http.calls if "attachment/meta" in c.request.url]) == 1
    assert connector.find_user("dana@eng.example").ref == "a-1"
    assert connector.find_user("dana.old@eng.example").active is False
    assert connector.find_user("someone@eng.example") is None


# -- Azure DevOps -------------------------------------------------------------------------------
@pytest.fixture
def files_api(ado_api):
    """Route discovery answers the attachments resource (tests/fixtures/azure_devops/options.json,
    the simulator's own list)."""
    assert any(loc["resourceName"] == "attachments" for loc in ado_load("options.json")["value"])
    return ado_api


def test_ado_simple_upload_is_octet_stream_then_an_attached_file_relation(ado, files_api):
    url = f"{WIT}/attachments/0f1e2d3c-aaaa-bbbb-cccc-000000000001?fileName=shot.png"
    post = files_api.post(f"{WIT}/attachments", json={"id": "0f1e2d3c-aaaa-bbbb-cccc-000000000001", "url": url})
    patch = files_api.patch(f"{WIT}/workitems/301", json={"id": 301, "rev": 5, "fields": {}})
    ref = ado.upload_attachment("301", upload())
    assert ref == url
    request = post.calls[0].request
    assert query(post.calls[0])["fileName"] == ["shot.png"] and query(post.calls[0])["uploadType"] == ["Simple"]
    assert request.headers["Content-Type"].startswith("application/octet-stream")  # the SDK adds a charset
    assert raw(post.calls[0]) == CONTENT
    assert ado.attach_upload("301", upload(), ref) == "0f1e2d3c-aaaa-bbbb-cccc-000000000001"
    assert json.loads(patch.calls[0].request.body) == [{"op": "add", "path": "/relations/-", "value": {
        "rel": "AttachedFile", "url": url, "attributes": {
            "comment": f"[tiersync] Attachment shot.png from zendesk record 7 sha256:{SHA}"}}}]
    assert query(patch.calls[0])["suppressNotifications"] == ["true"]


def test_ado_large_file_goes_up_chunked_with_content_ranges(ado, files_api):
    ado.config.attachment_chunk_bytes = 4096
    content = bytes(range(256)) * 40  # 10,240 bytes: three chunks
    guid = "0f1e2d3c-aaaa-bbbb-cccc-000000000002"
    start = files_api.post(f"{WIT}/attachments", json={"id": guid, "url": f"{WIT}/attachments/{guid}?fileName=big.bin"})
    chunk = files_api.put(f"{WIT}/attachments/{guid}", json={"id": guid})
    ado.upload_attachment("301", upload("big.bin", content, "application/octet-stream"))
    assert query(start.calls[0])["uploadType"] == ["Chunked"] and raw(start.calls[0]) == b""
    ranges = [c.request.headers["Content-Range"] for c in chunk.calls]
    assert ranges == ["bytes 0-4095/10240", "bytes 4096-8191/10240", "bytes 8192-10239/10240"]
    assert b"".join(raw(c) for c in chunk.calls) == content
    assert all(query(c)["uploadType"] == ["Chunked"] for c in chunk.calls)


def test_ado_reads_attached_files_with_tiersync_hashes_from_relations(ado, files_api):
    from connectors.azure_devops_attachments import item_files
    relations = [{"rel": "Hyperlink", "url": "https://x.example", "attributes": {}},
                 {"rel": "AttachedFile", "url": f"{WIT}/attachments/11111111-2222-3333-4444-555555555555?fileName=a.png",
                  "attributes": {"name": "a.png", "resourceSize": 12, "comment": f"copied sha256:{SHA}"}}]
    [found] = item_files(relations)
    assert (found.id, found.name, found.size, found.sha256) == (
        "11111111-2222-3333-4444-555555555555", "a.png", 12, SHA)
