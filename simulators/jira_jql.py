"""The subset of JQL the simulated Jira understands.

``clause (AND clause)* [ORDER BY field [ASC|DESC] (, field [ASC|DESC])*]`` where a clause is
``project = X``, ``updated|created  = >= > <= <  "yyyy/MM/dd HH:mm"`` (also ``yyyy-MM-dd``
forms, read in the account's time zone), ``key = ENG-1``, ``labels = x``, ``status = x`` /
``status != x`` or ``issue.property[key].path = "value"``, and ``in (v, ...)`` for labels, key
and issue properties. ORDER BY takes updated, created, key,
id. Anything else is refused with HTTP 400 in Jira's ``errorMessages`` shape, as Jira refuses
JQL it cannot parse, and so is a query without any restriction (Jira Cloud's "unbounded").
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Callable

from simulators.jira_site import Site
from simulators.jira_state import SimIssue

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')|(?P<op>>=|<=|!=|=|>|<|~|!~)'
                    r'|(?P<punct>[(),])|(?P<word>[A-Za-z0-9_.\[\]\-:/*+@]+))')
_PROPERTY = re.compile(r"^issue\.property\[(?P<key>[^\]]+)\]\.(?P<path>[A-Za-z0-9_.]+)$", re.I)
_DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ORDERABLE = {"updated": lambda i: _ms(i.updated), "created": lambda i: _ms(i.created),
             "key": lambda i: i.id, "issuekey": lambda i: i.id, "id": lambda i: i.id}


IN_FIELDS = ("labels", "key", "issuekey", "id")


class JqlError(ValueError):
    pass


@dataclass
class Query:
    tests: list[Callable[[SimIssue], bool]] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)

    def matches(self, issue: SimIssue) -> bool:
        return all(test(issue) for test in self.tests)

    def sort_key(self, issue: SimIssue) -> list[int]:
        """A list of ints (descending fields negated); the issue id breaks ties."""
        key = [(-1 if desc else 1) * ORDERABLE[name](issue) for name, desc in self.order]
        return key + [issue.id]


def parse(jql: str, site: Site) -> Query:
    tokens = _tokenize(jql)
    query, pos = Query(), 0
    while pos < len(tokens) and not _is(tokens, pos, "order"):
        if query.tests:
            _expect(tokens, pos, "and")
            pos += 1
        test, pos = _clause(tokens, pos, site)
        query.tests.append(test)
    if pos < len(tokens):
        pos = _expect(tokens, pos + 1, "by") + 1
        while True:
            name = _value(tokens, pos, "a field to order by").lower()
            if name not in ORDERABLE:
                raise JqlError(f"Not able to sort using field '{name}'.")
            pos += 1
            desc = False
            if _is(tokens, pos, "asc") or _is(tokens, pos, "desc"):
                desc, pos = tokens[pos][1].lower() == "desc", pos + 1
            query.order.append((name, desc))
            if pos >= len(tokens):
                break
            pos = _expect(tokens, pos, ",") + 1
    if not query.tests:
        raise JqlError("Unbounded JQL queries are not allowed here. Please add a search "
                       "restriction to your query.")
    return query


def _tokenize(jql: str) -> list[tuple[str, str]]:
    tokens, pos, text = [], 0, jql.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise JqlError(f"Error in the JQL Query: The character '{text[pos]}' is a reserved "
                           f"JQL character. (line 1, character {pos + 1})")
        kind = match.lastgroup or "word"
        value = match.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append((kind, value))
        pos = match.end()
    return tokens


def _is(tokens: list[tuple[str, str]], pos: int, word: str) -> bool:
    return pos < len(tokens) and tokens[pos][0] in ("word", "punct") and tokens[pos][1].lower() == word


def _expect(tokens: list[tuple[str, str]], pos: int, word: str) -> int:
    if not _is(tokens, pos, word):
        got = tokens[pos][1] if pos < len(tokens) else "end of query"
        raise JqlError(f"Error in the JQL Query: Expecting '{word.upper()}' but got '{got}'. "
                       f"(the simulator supports only AND-joined clauses)")
    return pos


def _value(tokens: list[tuple[str, str]], pos: int, what: str) -> str:
    if pos >= len(tokens) or tokens[pos][0] not in ("word", "str"):
        got = tokens[pos][1] if pos < len(tokens) else "end of query"
        raise JqlError(f"Error in the JQL Query: Expecting {what} but got '{got}'.")
    return tokens[pos][1]


def _clause(tokens: list[tuple[str, str]], pos: int, site: Site) -> tuple[Callable[[SimIssue], bool], int]:
    name = _value(tokens, pos, "a field name")
    if _is(tokens, pos + 1, "in") and (_PROPERTY.match(name) or name.lower() in IN_FIELDS):
        return _in_clause(tokens, pos, name, site)
    if pos + 1 >= len(tokens) or tokens[pos + 1][0] != "op":
        got = tokens[pos + 1][1] if pos + 1 < len(tokens) else "end of query"
        raise JqlError(f"Error in the JQL Query: Expecting an operator but got '{got}'. "
                       f"(the simulator supports = != >= > <= <)")
    op = tokens[pos + 1][1]
    value = _value(tokens, pos + 2, "a value")
    return _test(name, op, value, site), pos + 3


def _in_clause(tokens: list[tuple[str, str]], pos: int, name: str,
               site: Site) -> tuple[Callable[[SimIssue], bool], int]:
    """``field in (v1, v2, ...)``: any of the values (developer.atlassian.com/cloud/jira/
    software/jql-operators/#in); only where the simulator knows ``=`` for the field (labels, key,
    an issue property); on other fields ``in`` is refused as an unknown operator."""
    pos = _expect(tokens, pos + 2, "(") + 1
    values: list[str] = []
    while True:
        values.append(_value(tokens, pos, "a value"))
        pos += 1
        if _is(tokens, pos, ")"):
            break
        pos = _expect(tokens, pos, ",") + 1
    tests = [_test(name, "=", value, site) for value in values]
    return (lambda i: any(test(i) for test in tests)), pos + 1


def _test(name: str, op: str, value: str, site: Site) -> Callable[[SimIssue], bool]:
    lowered = name.lower()
    prop = _PROPERTY.match(name)
    if prop and op == "=":
        return lambda i: str(_dig(i.properties.get(prop["key"]), prop["path"])) == value
    if lowered == "project" and op == "=":
        project = site.project(value) or site.project(value.upper())
        if project is None:
            raise JqlError(f"The value '{value}' does not exist for the field 'project'.")
        return lambda i: i.project is project
    if lowered in ("updated", "created") and op in ("=", ">=", ">", "<=", "<"):
        bound = _date(value, site.tz, lowered)
        compare = {"=": lambda a: a == bound, ">=": lambda a: a >= bound, ">": lambda a: a > bound,
                   "<=": lambda a: a <= bound, "<": lambda a: a < bound}[op]
        return lambda i: compare(getattr(i, lowered))
    if lowered in ("key", "issuekey", "id") and op == "=":
        return lambda i: value.upper() in (i.key, str(i.id))
    if lowered == "labels" and op == "=":
        return lambda i: value in (i.values.get("labels") or [])
    if lowered == "status" and op in ("=", "!="):
        return lambda i: (i.status.lower() == value.lower()) == (op == "=")
    known = {f["id"].lower() for f in site.field_details()} | {"key", "issuekey", "id"}
    if lowered in known or prop:
        raise JqlError(f"The operator '{op}' on the field '{name}' is not supported by the simulator.")
    raise JqlError(f"Field '{name}' does not exist or you do not have permission to view it.")


def _date(value: str, tz: tzinfo, name: str) -> datetime:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    raise JqlError(f"Date value '{value}' for field '{name}' is invalid. Valid formats include: "
                   f"'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd'.")


def _dig(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _ms(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(milliseconds=1)
