"""The azure-devops SDK, made safe for a daemon.

- msrest's urllib3 retry loop is switched off (it retries GETs on 408/5xx and 429 and would
  turn a 500 into an opaque ``RetryError``); ``connectors.retry`` owns retries.
- The SDK's on-disk cache of route discovery (``~/.azure-devops/python-sdk/cache``) is replaced
  by no cache at all: the per-process memory cache stays, so one ``OPTIONS {org}/_apis`` per
  organization URL and process, and a cache written for one simulator port can never answer for
  another. ``AZURE_DEVOPS_CACHE_DIR`` is pointed at a temp dir before import, because importing
  the SDK creates that directory (and fails on a read-only home).
- Every HTTP failure becomes a typed error from ``core.errors`` with its status code (the SDK's
  own ``AzureDevOpsServiceError`` carries none), and a 200 carrying ``Retry-After`` (Azure
  DevOps' "delayed" signal) makes the next request wait that long, bounded.
"""
from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

os.environ.setdefault("AZURE_DEVOPS_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), "tiersync-azure-devops-sdk-cache"))

import azure.devops.client as _sdk_client  # noqa: E402
import requests  # noqa: E402
from azure.devops.v7_1.work_item_tracking import WorkItemTrackingClient  # noqa: E402
from msrest.authentication import BasicAuthentication  # noqa: E402
from msrest.exceptions import ClientRequestError  # noqa: E402
from urllib3.util.retry import Retry  # noqa: E402

from connectors import retry  # noqa: E402
from connectors.answers import check_answer, has_list, is_object  # noqa: E402
from core.errors import (Conflict, ConnectorError, NotFound, PermanentError,  # noqa: E402
                         Retryable)

log = logging.getLogger("tiersync.azure_devops")


# what each endpoint answers (learn.microsoft.com/rest/api/azure/devops/wit, and the recorded
# examples in ../shared/specs/azure-devops/examples); anything else is not Azure DevOps' API
ADO_SHAPES = [
    ("OPTIONS", r"/_apis/?$", has_list("value")),
    ("POST", r"/wiql", has_list("workItems")),
    ("POST", r"/workitemsbatch", has_list("value")),
    ("GET", r"/workitems/\d+/comments", has_list("comments")),
    ("GET", r"/reporting/workitemrevisions", has_list("values")),
    ("GET", r"/states", has_list("value")),
    ("GET", r".", is_object),
]


REPORTING_REVISIONS = "f828fe59-dd87-495d-a17c-7a8d6211ca6c"  # the SDK's location id for it


class _NoDiskCache(dict):
    """Stands in for the SDK's FileCache: never a hit, never written."""

    def __getitem__(self, key: str) -> dict:
        return {}

    def __setitem__(self, key: str, value: Any) -> None:
        return None


_sdk_client.OPTIONS_FILE_CACHE = _NoDiskCache()


def _disable_retries(policy: Retry) -> None:
    """Switch msrest's urllib3 retries off in place: the session built in the constructor already
    holds this object. (``retries = 0`` alone turns a 5xx into an opaque RetryError, because the
    status_forcelist still matches.)"""
    policy.total = policy.connect = policy.read = policy.status = policy.other = 0
    policy.status_forcelist = set()
    policy.raise_on_status = False
    policy.respect_retry_after_header = False


class QueryTooLarge(PermanentError):
    """WIQL answered VS402337: more than 20,000 work items; ask for a smaller window."""


def http_error(tracker: str, response: requests.Response, credential: str) -> ConnectorError:
    """The typed error for a failed Azure DevOps response."""
    message, type_key = _error_text(response)
    status = response.status_code
    if "VS402337" in message:
        return QueryTooLarge(f"HTTP {status}: {message}", tracker=tracker, status=status)
    if "TF26071" in message or "RevisionMismatch" in type_key or "TestPatchOperationFailed" in type_key:
        return Conflict(f"conflict (HTTP {status}): {message}", tracker=tracker, status=status)
    return retry.classify_status(tracker, status, response.headers, message, credential)


def _error_text(response: requests.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:300], ""
    if isinstance(body, dict):
        return str(body.get("message") or body)[:300], str(body.get("typeKey") or "")
    return str(body)[:300], ""


class WitClient(WorkItemTrackingClient):
    """WorkItemTrackingClient with tiersync's error handling and no hidden retries."""

    def __init__(self, base_url: str, pat: str, *, tracker: str, credential: str,
                 timeout: float, max_wait: float):
        super().__init__(base_url=base_url, creds=BasicAuthentication("", pat))
        self.tracker = tracker
        self.credential = credential
        self.max_wait = max_wait
        self.pending_wait = 0.0
        _disable_retries(self.config.retry_policy.policy)
        self.config.connection.timeout = timeout

    def _send_request(self, request: Any, headers: Any = None, content: Any = None,
                      media_type: Any = None, **operation_config: Any) -> requests.Response:
        if self.pending_wait > 0:
            wait, self.pending_wait = min(self.pending_wait, self.max_wait), 0.0
            log.warning("%s: Azure DevOps asked to slow down; waiting %.1f s", self.tracker, wait)
            retry.sleep(wait)
        try:
            response = super()._send_request(request, headers=headers, content=content,
                                             media_type=media_type, **operation_config)
        except NotFound as exc:
            if request.method == "OPTIONS":
                raise PermanentError(f"route discovery failed at {request.url} ({exc}); is "
                                     "base_url the organization URL?", tracker=self.tracker,
                                     status=exc.status) from None
            raise
        except ClientRequestError as exc:
            raise transport_error(self.tracker, exc) from exc
        check_answer(self.tracker, response, ADO_SHAPES)
        self._note_delay(response)
        retry.report_rate_budget(self.tracker, response.headers)
        return response

    def reporting_revisions(self, project: str, *, fields: list[str], types: list[str] | None,
                            continuation_token: str | None, start_date_time: Any,
                            max_page_size: int) -> Any:
        """Reporting Work Item Revisions - Read Reporting Revisions Get, as the SDK's
        ``read_reporting_revisions_get`` sends it (``$expand=fields``, identity refs), the answer
        deserialized as ``StreamedBatch``: the SDK's ``ReportingWorkItemRevisionsBatch`` declares
        an empty ``_attribute_map`` that hides its base's, so ``values``, ``continuation_token``
        and ``is_last_batch`` come back None (azure-devops 7.1.0b4; ../shared/LIBRARIES.md)."""
        query: dict[str, Any] = {
            "fields": self._serialize.query("fields", ",".join(fields), "str"),
            "includeIdentityRef": self._serialize.query("include_identity_ref", True, "bool"),
            "$expand": self._serialize.query("expand", "fields", "str"),
            "$maxPageSize": self._serialize.query("max_page_size", max_page_size, "int")}
        if types:
            query["types"] = self._serialize.query("types", ",".join(types), "str")
        if continuation_token is not None:
            query["continuationToken"] = self._serialize.query("continuation_token",
                                                               continuation_token, "str")
        if start_date_time is not None:
            query["startDateTime"] = self._serialize.query("start_date_time", start_date_time,
                                                           "iso-8601")
        response = self._send(http_method="GET", location_id=REPORTING_REVISIONS,
                              version="7.1-preview.2",
                              route_values={"project": self._serialize.url("project", project, "str")},
                              query_parameters=query)
        return self._deserialize("StreamedBatch", response)

    def _handle_error(self, request: Any, response: requests.Response) -> None:
        raise http_error(self.tracker, response, self.credential)

    def _note_delay(self, response: requests.Response) -> None:
        delay = retry.parse_retry_after(response.headers.get("Retry-After"))
        if delay:
            self.pending_wait = delay


def transport_error(tracker: str, exc: ClientRequestError) -> ConnectorError:
    """msrest's wrapper of a failed request as tiersync's typed error: a timeout or a dropped
    connection is Retryable (the cause chain holds the requests exception)."""
    cause: BaseException | None = exc.__context__ or exc.inner_exception
    while cause is not None:
        typed = retry.classify_transport(tracker, cause)
        if typed is not None:
            return typed
        if isinstance(cause, requests.RequestException):
            return Retryable(f"{type(cause).__name__}: {cause}", tracker=tracker)
        cause = cause.__context__
    return PermanentError(str(exc), tracker=tracker)
