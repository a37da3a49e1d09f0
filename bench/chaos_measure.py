"""Comparing what the trackers hold after the chaos run with the fault-free reference run.

Each tracker's records are reduced to a normalised view, keyed by SR number (the escalation's
business key, the same in both runs). Left out, because they differ between two correct runs:
record ids and keys (creation order differs under faults), creation/update times and revision
counts, who saved last (``System.ChangedBy``), Azure DevOps' ``System.History`` (the latest comment,
whose order may differ) and ``System.CommentCount`` (comments are compared themselves), SLA due
times (computed from the moment tier 2 acted), simulator ports in URLs and the escalation id inside
tiersync's markers. Comments are compared as multisets of (author, visibility, body), a comment
that joins several of tiersync's notes (core/outbox_group.py) counted as its parts: two correct
runs may join them differently (a lost reply, a retry), never post one twice or lose one.

One difference is counted apart: a Jira mirror without its remote link back to the origin
(``missing_back_links``). The link is added after the create and, when that fails, re-added by a
later cycle (connectors/jira_links.py), so after the settle phase the count must be 0.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from core.outbox_group import segments

ZD_SR, ZD_SLA = "360010000001", {"360010000011", "360010000012"}
ADO_SKIP = {"System.Id", "System.Rev", "System.CreatedDate", "System.ChangedDate", "System.ChangedBy",
            "System.AuthorizedDate", "System.RevisedDate", "System.History", "System.CommentCount",
            "System.Watermark", "Custom.AcknowledgementDue", "Custom.SolutionDue", "Custom.CloseDue"}
JIRA_SKIP = {"customfield_10105", "created", "updated", "resolutiondate"}
MARKER = re.compile(r"esc-[0-9a-f]+")
URL = re.compile(r"https?://127\.0\.0\.1:\d+")


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        return URL.sub("<sim>", MARKER.sub("esc-*", value))
    if isinstance(value, list):
        return sorted((_norm(v) for v in value), key=repr)
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


@dataclass
class View:
    """One record, normalised: comparable fields and the comment multiset."""

    fields: dict[str, Any]
    comments: Counter


def views(snapshot: dict[str, Any]) -> dict[tuple[str, str], list[View]]:
    """(tracker, SR number or id) -> the records holding it (more than one is a duplicate)."""
    out: dict[tuple[str, str], list[View]] = {}
    for t in snapshot["zendesk"]["tickets"]:
        fields = {k: v for k, v in t.items() if k not in ("id", "created_at", "updated_at", "comments")}
        fields["custom_fields"] = {k: v for k, v in t["custom_fields"].items() if k not in ZD_SLA}
        comments = _parts((c["author"], c["public"], c["body"]) for c in t["comments"])
        key = t["custom_fields"].get(ZD_SR) or f"id:{t['id']}"
        out.setdefault(("zendesk", str(key)), []).append(View(_norm(fields), _norm_counter(comments)))
    for w in snapshot["azure_devops"]["work_items"]:
        fields = {k: v for k, v in w["fields"].items() if k not in ADO_SKIP}
        fields.update(state=w["state"], tags=w["tags"], links=w["links"])
        # the comment's HTML, its line breaks as the connector reads them (``<br>``)
        comments = _parts(("-", False, (c["text"] or "").replace("<br>", "\n")) for c in w["comments"])
        key = w["fields"].get("Custom.SRNumber") or f"id:{w['id']}"
        out.setdefault(("azure_devops", str(key)), []).append(View(_norm(fields), _norm_counter(comments)))
    for i in snapshot["jira"]["issues"]:
        fields = {k: v for k, v in i["fields"].items() if k not in JIRA_SKIP}
        fields.update(status=i["status"], project=i["project"], links=i["links"],
                      properties=i["properties"])
        comments = _parts((c["author"], c["public"], c["body"]) for c in i["comments"])
        key = i["fields"].get("customfield_10100") or f"id:{i['key']}"
        out.setdefault(("jira", str(key)), []).append(View(_norm(fields), _norm_counter(comments)))
    return out


def _parts(comments: Any) -> Counter:
    """(author, visibility, text) of every comment, a joined one as its parts (whitespace
    normalised, as tiersync compares them)."""
    return Counter((author, public, part) for author, public, body in comments
                   for part in segments(body or ""))


def _norm_counter(counter: Counter) -> Counter:
    out: Counter = Counter()
    for key, n in counter.items():
        out[tuple(_norm(v) for v in key)] += n
    return out


def marker_duplicates(snapshot: dict[str, Any]) -> int:
    """Records beyond the first that carry the same tiersync idempotency marker."""
    markers: Counter = Counter()
    for w in snapshot["azure_devops"]["work_items"]:
        markers.update(t for t in w["tags"] if t.startswith("tiersync:"))
    for i in snapshot["jira"]["issues"]:
        key = (i["properties"].get("tiersync") or {}).get("key")
        if key:
            markers[key] += 1
    for t in snapshot["zendesk"]["tickets"]:
        if t.get("external_id"):
            markers[t["external_id"]] += 1
    return sum(n - 1 for n in markers.values() if n > 1)


KNOWN_GAPS = {("jira", "links"): "missing_back_links"}


@dataclass
class Comparison:
    duplicates: int = 0
    lost_updates: int = 0
    known_gaps: Counter = field(default_factory=Counter)
    details: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.details.append(text)


def compare(reference: dict[str, Any], chaos: dict[str, Any]) -> Comparison:
    """Duplicates and lost (or diverging) updates of the chaos run against the reference."""
    result = Comparison()
    ref, got = views(reference), views(chaos)
    by_records = 0
    for key in sorted(set(ref) | set(got)):
        mine, theirs = got.get(key, []), ref.get(key, [])
        if len(mine) > 1:
            by_records += len(mine) - 1
            result.note(f"{key[0]} {key[1]}: {len(mine)} records")
        if not theirs or not mine:
            result.lost_updates += 1
            result.note(f"{key[0]} {key[1]}: {'missing' if theirs else 'not in the reference run'}")
            continue
        _compare_record(key, theirs[0], mine[0], result)
    result.duplicates += max(by_records, marker_duplicates(chaos))
    return result


def _compare_record(key: tuple[str, str], ref: View, got: View, result: Comparison) -> None:
    where = f"{key[0]} {key[1]}"
    for name in sorted(set(ref.fields) | set(got.fields)):
        if ref.fields.get(name) != got.fields.get(name):
            gap = KNOWN_GAPS.get((key[0], name))
            if gap and not got.fields.get(name):
                result.known_gaps[gap] += 1
                result.note(f"{where}: {name}: missing (known gap: {gap})")
                continue
            result.lost_updates += 1
            result.note(f"{where}: {name}: reference {ref.fields.get(name)!r}, chaos {got.fields.get(name)!r}")
    for comment, n in (got.comments - ref.comments).items():
        if comment in ref.comments:
            result.duplicates += n
            result.note(f"{where}: comment copied {n} more time(s): {comment[2][:80]!r}")
        else:
            result.lost_updates += n
            result.note(f"{where}: unexpected comment: {comment[2][:100]!r}")
    for comment, n in (ref.comments - got.comments).items():
        result.lost_updates += n
        result.note(f"{where}: missing comment: {comment[2][:100]!r}")


def self_duplicates(snapshot: dict[str, Any]) -> int:
    """Comments that appear more than once in one record of a single run (a sanity check)."""
    total = 0
    for records in views(snapshot).values():
        for view in records:
            total += sum(n - 1 for n in view.comments.values() if n > 1)
    return total
