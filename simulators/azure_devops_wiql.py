"""The subset of WIQL the simulator understands (enough for tiersync and for hand-written checks):

    SELECT [f], ... FROM WorkItems
    [WHERE <cond> AND <cond> ...]     cond: [f] op value | [f] [NOT] IN (v, ...) | [f] [NOT] CONTAINS v
    [ORDER BY [f] [ASC|DESC], ...]    op: = <> < > <= >=; value: 'text', number, @project, @today

A parenthesised group of conditions joined by ``OR`` (``([f] CONTAINS 'a' OR [f] CONTAINS 'b')``,
learn.microsoft.com/azure/devops/boards/queries/wiql-syntax, "Logical groupings") matches any of
them; other uses of ``OR`` and parentheses are refused with a clear error rather than misread.
Strings compare case-insensitively; ``[System.Tags] CONTAINS 'x'`` matches whole tags, as the
service does. A date literal with a time needs ``timePrecision=true``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from simulators.azure_devops_types import FieldDef, SimError, parse_date

_TOKEN = re.compile(r"\s*(?:(\[[^\]]+\])|('(?:[^']|'')*')|(<>|<=|>=|=|<|>|\(|\)|,|[+-])|(@\w+)|([\w.]+))")


@dataclass
class Condition:
    field: str
    op: str  # = <> < > <= >= IN NOT IN CONTAINS NOT CONTAINS
    values: list[Any]


@dataclass
class Query:
    fields: list[str]
    conditions: list[Condition]
    order: list[tuple[str, bool]]  # (field, descending)


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise _syntax(f"unexpected text at «{text[pos:pos + 20]}»")
        out.append(next(g for g in match.groups() if g is not None))
        pos = match.end()
    return out


def _syntax(detail: str) -> SimError:
    return SimError(400, f"TF51006: The query statement is not valid: {detail}.",
                    "WorkItemTrackingQueryException")


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok.upper() != expected):
            raise _syntax(f"expected {expected or 'more'} but found «{tok}»")
        self.pos += 1
        return tok

    def accept(self, word: str) -> bool:
        if (self.peek() or "").upper() == word:
            self.pos += 1
            return True
        return False

    def field(self) -> str:
        return self.take().strip("[]").strip()

    def parse(self) -> Query:
        self.take("SELECT")
        fields = [self.field()]
        while self.accept(","):
            fields.append(self.field())
        self.take("FROM")
        if self.take().upper() != "WORKITEMS":
            raise _syntax("only FROM WorkItems is supported")
        conditions, order = [], []
        if self.accept("WHERE"):
            conditions.append(self.condition())
            while self.accept("AND"):
                conditions.append(self.condition())
            if (self.peek() or "").upper() in ("OR", "("):
                raise _syntax("OR outside parentheses is not supported by the simulator")
        if self.accept("ORDER"):
            self.take("BY")
            order.append(self.sort())
            while self.accept(","):
                order.append(self.sort())
        if self.peek() is not None:
            raise _syntax(f"unexpected «{self.peek()}»")
        return Query(fields, conditions, order or [("System.Id", False)])

    def sort(self) -> tuple[str, bool]:
        name = self.field()
        if self.accept("DESC"):
            return name, True
        self.accept("ASC")
        return name, False

    def condition(self) -> Condition:
        if self.accept("("):  # ( cond OR cond ... ): any of them (WIQL's logical grouping)
            group = [self.condition()]
            while self.accept("OR"):
                group.append(self.condition())
            if (self.peek() or "").upper() == "AND":
                raise _syntax("AND inside parentheses is not supported by the simulator")
            self.take(")")
            return Condition("", "ANY", group)
        name = self.field()
        negate = self.accept("NOT")
        if self.accept("IN"):
            self.take("(")
            values = [self.value()]
            while self.accept(","):
                values.append(self.value())
            self.take(")")
            return Condition(name, "NOT IN" if negate else "IN", values)
        if self.accept("CONTAINS"):
            return Condition(name, "NOT CONTAINS" if negate else "CONTAINS", [self.value()])
        op = self.take()
        if op not in ("=", "<>", "<", ">", "<=", ">="):
            raise _syntax(f"unknown operator «{op}»")
        return Condition(name, op, [self.value()])

    def value(self) -> Any:
        tok = self.take()
        if tok.startswith("'"):
            return tok[1:-1].replace("''", "'")
        if tok.startswith("@"):
            macro = tok.lower()
            if macro == "@today" and self.peek() in ("+", "-"):
                sign = self.take()
                return (macro, int(self.take()) * (1 if sign == "+" else -1))
            return (macro, 0)
        try:
            return int(tok)
        except ValueError:
            raise _syntax(f"«{tok}» is not a value") from None


def parse(text: str) -> Query:
    return _Parser(text).parse()


class Evaluator:
    """Evaluates a parsed query against work item field dicts."""

    def __init__(self, fields: dict[str, FieldDef], project: str, time_precision: bool,
                 now: datetime, me: str = ""):
        self.fields = {ref.lower(): fdef for ref, fdef in fields.items()}
        self.project = project
        self.time_precision = time_precision
        self.now = now
        self.me = me

    def fdef(self, name: str) -> FieldDef:
        found = self.fields.get(name.lower())
        if found is None:
            raise SimError(400, f"TF51005: The query references a field that does not exist. The "
                           f"error is caused by «[{name}]».", "WorkItemTrackingQueryException")
        return found

    def check(self, query: Query) -> None:
        conditions = _flat(query.conditions)
        for name in query.fields + [c.field for c in conditions] + [o[0] for o in query.order]:
            self.fdef(name)
        for cond in conditions:
            for value in cond.values:
                self.literal(self.fdef(cond.field), value)

    def matches(self, query: Query, fields: dict[str, Any]) -> bool:
        return all(self._test(cond, fields) for cond in query.conditions)

    def sort_key(self, query: Query) -> Callable[[dict[str, Any]], Any]:
        def key(fields: dict[str, Any]) -> tuple:
            parts = []
            for name, desc in query.order:
                value = self.comparable(self.fdef(name), fields.get(self.fdef(name).ref))
                parts.append(_Desc(value) if desc else _Asc(value))
            return tuple(parts)
        return key

    # -- values ---------------------------------------------------------------------------------
    def literal(self, fdef: FieldDef, value: Any) -> Any:
        if isinstance(value, tuple):
            macro, offset = value
            if macro == "@project":
                return self.project.lower()
            if macro == "@me":
                return self.me.lower()
            if macro == "@today":
                day = self.now.astimezone(timezone.utc).date() + timedelta(days=offset)
                return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            raise _syntax(f"unknown macro {macro}")
        if fdef.type == "dateTime":
            text = str(value)
            has_time = "T" in text or ":" in text
            if has_time and not self.time_precision:
                raise SimError(400, f"The query compares [{fdef.ref}] with a date that has a time "
                               "part; pass timePrecision=true to query with time precision.",
                               "WorkItemTrackingQueryException")
            try:
                return parse_date(text)
            except ValueError:
                raise _syntax(f"«{text}» is not a date") from None
        if fdef.type in ("integer", "double"):
            return float(value)
        return str(value).lower()

    def comparable(self, fdef: FieldDef, value: Any) -> Any:
        if value is None:
            return None
        if fdef.type == "dateTime":
            moment = parse_date(value)
            if not self.time_precision:
                return datetime(moment.year, moment.month, moment.day, tzinfo=timezone.utc)
            return moment
        if fdef.type == "identity" and isinstance(value, dict):
            return str(value.get("uniqueName", "")).lower()
        if fdef.type == "boolean":
            return str(bool(value)).lower()
        if fdef.type in ("integer", "double"):
            return float(value)
        return str(value).lower()

    def _test(self, cond: Condition, fields: dict[str, Any]) -> bool:
        if cond.op == "ANY":
            return any(self._test(c, fields) for c in cond.values)
        fdef = self.fdef(cond.field)
        raw = fields.get(fdef.ref)
        have = self.comparable(fdef, raw)
        wanted = [self.literal(fdef, v) for v in cond.values]
        if cond.op in ("CONTAINS", "NOT CONTAINS"):
            found = self._contains(fdef, raw, wanted[0])
            return found if cond.op == "CONTAINS" else not found
        if cond.op in ("IN", "NOT IN"):
            return (have in wanted) == (cond.op == "IN")
        if have is None:
            return cond.op == "<>"
        target = wanted[0]
        return {"=": have == target, "<>": have != target, "<": have < target,
                ">": have > target, "<=": have <= target, ">=": have >= target}[cond.op]

    @staticmethod
    def _contains(fdef: FieldDef, raw: Any, wanted: Any) -> bool:
        if raw is None:
            return False
        if fdef.ref == "System.Tags":
            return str(wanted) in {t.strip().lower() for t in str(raw).split(";") if t.strip()}
        return str(wanted) in str(raw).lower()


class _Asc:
    def __init__(self, value: Any):
        self.value = value

    def __lt__(self, other: "_Asc") -> bool:
        if self.value is None or other.value is None:
            return self.value is None and other.value is not None
        return self.value < other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Asc) and self.value == other.value


class _Desc(_Asc):
    def __lt__(self, other: "_Asc") -> bool:
        return _Asc(other.value) < _Asc(self.value)


def _flat(conditions: list[Condition]) -> list[Condition]:
    """The conditions with the members of ``OR`` groups in place of the groups."""
    out: list[Condition] = []
    for cond in conditions:
        out.extend(_flat(cond.values) if cond.op == "ANY" else [cond])
    return out
