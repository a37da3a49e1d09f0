"""Moving a Jira issue to a wanted status through its workflow, with the transition screens.

Rules:
- Jira lists only the transitions available from the issue's current status, and with
  ``expand=transitions.fields`` the fields of each transition's screen (``required``,
  ``allowedValues``). A field not on the screen must not be sent; a required one must be
  (REST "Get transitions" / "Transition issue").
- A transition whose target (``to.id`` or ``to.name``) is the wanted status is taken directly.
  Otherwise the walk follows the shortest path over the workflow learned so far (every list of
  transitions read adds its edges, per project and issue type); where that knows no path it
  explores: a transition to a status not visited in this walk, unexplored statuses first, then the
  one whose status category is nearest the wanted one. At most ``MAX_STEPS`` transitions.
- Screen fields come from the mapping's ``transition_fields`` of the transition's target status,
  else of the wanted status (a Resolve on the way to Done takes Done's resolution).
- No way to the status, or a required field the mapping does not give: ``PermanentError`` (a dead
  letter) naming the issue, the from and to status and the missing field.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from core.errors import PermanentError

if TYPE_CHECKING:
    from connectors.jira import JiraConnector

MAX_STEPS = 8
CATEGORY_ORDER = {"new": 0, "indeterminate": 1, "done": 2}


@dataclass
class WorkflowGraph:
    """Edges learned from transition lists: scope -> from status id -> {to status id: name}."""

    edges: dict[tuple[str, str], dict[str, dict[str, str]]] = field(default_factory=dict)

    def learn(self, scope: tuple[str, str], from_id: str, transitions: list[dict[str, Any]]) -> None:
        self.edges.setdefault(scope, {})[from_id] = {
            str(t["to"]["id"]): str(t.get("name", "")) for t in transitions if t.get("to")}

    def explored(self, scope: tuple[str, str], status_id: str) -> bool:
        return status_id in self.edges.get(scope, {})

    def path(self, scope: tuple[str, str], start: str, goal: str) -> list[str] | None:
        """Status ids after ``start`` up to ``goal`` along learned edges (BFS), or None."""
        graph, back = self.edges.get(scope, {}), {start: ""}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            if node == goal:
                hops = []
                while node != start:
                    hops.append(node)
                    node = back[node]
                return hops[::-1]
            for nxt in graph.get(node, {}):
                if nxt not in back:
                    back[nxt] = node
                    queue.append(nxt)
        return None


@dataclass(frozen=True)
class Position:
    """Where an issue is: status (id, name, category), scope (project id, issue type id)."""

    status_id: str
    status_name: str
    category: str
    scope: tuple[str, str]

    @classmethod
    def of(cls, fields: dict[str, Any]) -> "Position":
        status = fields.get("status") or {}
        scope = (str((fields.get("project") or {}).get("id", "")),
                 str((fields.get("issuetype") or {}).get("id", "")))
        return cls(str(status.get("id", "")), str(status.get("name", "")),
                   str((status.get("statusCategory") or {}).get("key", "")), scope)

    def is_(self, wanted: str) -> bool:
        return wanted.lower() in (self.status_name.lower(), self.status_id)


class Walker:
    """One connector's workflow walks (the learned graph lives as long as the connector).

    It also keeps, for as long, the transitions each status offered when last read (per project
    and issue type) and the status new issues start in (per project key and issue type name):
    where the walk knows where the issue is (just created, or moved by a transition Jira accepted)
    it takes the next step without reading the issue. Jira refuses a transition that is not
    available from the issue's real status (400, nothing changes); such a step is then taken again
    from a read of the issue (``JiraWrites.transition``)."""

    def __init__(self, connector: "JiraConnector"):
        self.c = connector
        self.graph = WorkflowGraph()
        self.offered: dict[tuple[tuple[str, str], str], list[dict[str, Any]]] = {}
        self.initial: dict[tuple[str, str], dict[str, Any]] = {}

    def remember_initial(self, created: tuple[str, str], issue: dict[str, Any]) -> None:
        """The fields of a just-created issue, read: where the next one of its kind starts."""
        fields = issue.get("fields") or {}
        if fields.get("status") and issue.get("transitions") is not None:
            self.initial[created] = {k: fields.get(k) for k in ("status", "project", "issuetype")}
            self.learn(Position.of(fields), list(issue["transitions"]))

    def created(self, created: tuple[str, str], ref: str, key: str,
                properties: dict[str, Any]) -> dict[str, Any] | None:
        """A just-created issue as the walk expects to find it (its kind's initial status and
        the transitions that offered), or None while that is not known."""
        fields = self.initial.get(created)
        if fields is None:
            return None
        transitions = self.offered.get((Position.of(fields).scope, Position.of(fields).status_id))
        if transitions is None:
            return None
        return {"id": ref, "key": key, "fields": dict(fields), "properties": dict(properties),
                "transitions": list(transitions)}

    def after(self, issue: dict[str, Any], transition: dict[str, Any],
              properties: dict[str, Any]) -> dict[str, Any] | None:
        """The issue as an accepted ``transition`` left it (its target status and the
        transitions that status offered when last read), or None when that is not known."""
        to = transition.get("to") or {}
        if not to.get("id") or not to.get("name"):
            return None
        fields = {**(issue.get("fields") or {}), "status": to}
        at = Position.of(fields)
        transitions = self.offered.get((at.scope, at.status_id))
        if transitions is None:
            return None
        return {**issue, "fields": fields, "properties": dict(properties),
                "transitions": list(transitions)}

    def learn(self, at: "Position", available: list[dict[str, Any]]) -> None:
        self.graph.learn(at.scope, at.status_id, available)
        self.offered[(at.scope, at.status_id)] = list(available)

    def transitions(self, ref: str, key: str) -> list[dict[str, Any]]:
        page = self.c.api.call(f"list transitions of {key}", lambda: self.c.api.get_json(
            f"issue/{ref}/transitions", {"expand": "transitions.fields"}))
        return list(page.get("transitions") or [])

    def step(self, ref: str, key: str, at: Position, wanted: str, visited: set[str],
             offered: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The transition to take next from ``at`` towards ``wanted`` (learning on the way);
        ``ref`` addresses the issue, ``key`` names it in messages. ``offered``: the transitions
        read with the issue at ``at`` (``expand=transitions.fields``); else they are read now."""
        available = list(offered) if offered is not None else self.transitions(ref, key)
        self.learn(at, available)
        direct = [t for t in available if target_is(t, wanted)]
        if direct:
            return direct[0]
        goal = self.c.status_id(wanted)
        hops = self.graph.path(at.scope, at.status_id, goal) if goal else None
        if hops:
            return next(t for t in available if str(t["to"]["id"]) == hops[0])
        choice = self._explore(at, available, wanted, visited)
        if choice is None:
            raise PermanentError(
                f"issue {key}: no workflow path from {at.status_name!r} to {wanted!r} (transitions "
                f"from {at.status_name!r}: {', '.join(_describe(t) for t in available) or 'none'}; "
                f"statuses visited: {', '.join(sorted(visited))})", tracker=self.c.name)
        return choice

    def _explore(self, at: Position, available: list[dict[str, Any]], wanted: str,
                 visited: set[str]) -> dict[str, Any] | None:
        target_category = CATEGORY_ORDER.get(self.c.status_category(wanted), 1)
        fresh = [t for t in available if str(t["to"].get("name", "")) not in visited]

        def rank(t: dict[str, Any]) -> tuple[int, int]:
            category = (t["to"].get("statusCategory") or {}).get("key", "")
            return (int(self.graph.explored(at.scope, str(t["to"]["id"]))),
                    abs(CATEGORY_ORDER.get(category, 1) - target_category))
        return min(fresh, key=rank) if fresh else None

    def screen_fields(self, key: str, at: Position, transition: dict[str, Any], wanted: str,
                      resolve_user: Callable[[str], str]) -> dict[str, Any]:
        """The ``fields`` of the transition request: what the mapping gives for this screen."""
        screen = transition.get("fields") or {}
        to_name = str(transition["to"].get("name", ""))
        given = {**self.c.transition_fields_for(wanted), **self.c.transition_fields_for(to_name)}
        out = {}
        for fid, meta in screen.items():
            if fid in given:
                out[fid] = _screen_value(key, fid, meta, given[fid], resolve_user, self.c.name)
            elif meta.get("required") and not meta.get("hasDefaultValue"):
                raise PermanentError(
                    f"issue {key}: moving from {at.status_name!r} to {to_name!r} (on the way to "
                    f"{wanted!r}) needs the field {fid!r} ({meta.get('name', fid)}), required on the "
                    f"transition screen of {transition.get('name')!r}; give it in the Jira mapping: "
                    f"transition_fields: {{{to_name}: {{{fid}: ...}}}}", tracker=self.c.name)
        return out


def _screen_value(key: str, fid: str, meta: dict[str, Any], value: Any,
                  resolve_user: Callable[[str], str], tracker: str) -> Any:
    allowed = meta.get("allowedValues")
    if allowed is not None:
        match = next((a for a in allowed if str(value).lower() in
                      {str(a.get(k, "")).lower() for k in ("name", "value", "id")}), None)
        if match is None:
            names = ", ".join(str(a.get("name") or a.get("value")) for a in allowed)
            raise PermanentError(f"issue {key}: {fid} {value!r} is not allowed on the transition "
                                 f"screen (allowed: {names})", tracker=tracker)
        return {"id": str(match["id"])} if "id" in match else {"name": str(value)}
    if (meta.get("schema") or {}).get("type") == "user":
        return {"accountId": resolve_user(str(value))}
    return value


def target_is(transition: dict[str, Any], wanted: str) -> bool:
    to = transition.get("to") or {}
    return wanted.lower() in (str(to.get("name", "")).lower(), str(to.get("id", "")))


def _describe(transition: dict[str, Any]) -> str:
    return f"{transition.get('name')} -> {(transition.get('to') or {}).get('name')}"
