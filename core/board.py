"""The queue managers' board (seed 000 step 6): open escalations with each SLA's due time,
remaining business time, warning and breach, grouped by queue and tier, as one HTML page that
reloads itself. The figures are those of ``tiersync status`` (core/policy/report.py), evaluated
at the moment the page is drawn, so a breach shows before the next cycle records it."""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from jinja2 import Environment, select_autoescape

from core.policy.report import status_rows
from core.report_render import _when
from core.report_template import BOARD_TEMPLATE
from core.sla_report import METRICS

# as the report's charts name them, without importing matplotlib for a board
METRIC_NAMES = {metric: metric.replace("_", " ") for metric in METRICS}


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:+.1f}"


def groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by (queue, tier), queues by name, tiers L1 to L4; rows keep the board's order."""
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        by_key.setdefault((row["queue"] or "no queue", row["tier"]), []).append(row)
    return [{"queue": queue, "tier": tier, "rows": items}
            for (queue, tier), items in sorted(by_key.items())]


def render_board(rows: list[dict[str, Any]], now: datetime, refresh: int) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters.update(when=_when, hours=_hours)
    counts = Counter(row["flag"] for row in rows)
    return env.from_string(BOARD_TEMPLATE).render(
        groups=groups(rows), total=len(rows), counts=counts, now=now, refresh=max(5, refresh),
        metrics=METRICS, metric_names=METRIC_NAMES)


def board_html(store: Any, policy: Any, now: datetime, refresh: int = 60) -> str:
    escalations = [item.escalation for batch in store.iter_escalations(open_only=True)
                   for item in batch]
    return render_board(status_rows(escalations, policy, now), now, refresh)


def board_route(store: Any, policy: Any, refresh: int = 60):
    """The listener's ``/board`` handler: the page drawn afresh for every request."""
    from werkzeug.wrappers import Response

    from core.model import utcnow

    def handler(request) -> Response:
        seconds = request.args.get("refresh", type=int) or refresh
        page = board_html(store, policy, utcnow(), seconds)
        return Response(page, mimetype="text/html", headers={"Cache-Control": "no-store"})
    return handler
