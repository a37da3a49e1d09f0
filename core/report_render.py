"""Writes the SLA report as one self-contained HTML file, CSV or JSON.

The HTML holds its styles and its charts (inline SVG) and loads nothing: it opens offline, from
an e-mail attachment or an evidence folder, and prints (one section per page break where it fits).
CSV is one table with a ``section`` column; JSON holds every figure as built.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from core.report_template import REPORT_TEMPLATE
from core.sla_report import DIMENSIONS, METRICS

CSV_COLUMNS = ["section", "metric", "dimension", "value", "met", "late", "breached", "running",
               "decided", "on_time_share", "hours", "mean_hours", "count", "escalation_id",
               "sr_number", "outcome", "due_at", "met_at", "delayed_reason"]
DIMENSION_NAMES = {"severity": "severity", "support_plan": "support plan", "queue": "queue",
                   "tier": "tier", "tracker": "tracker"}


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if isinstance(value, datetime) else (value or "")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def html(data: dict[str, Any]) -> str:
    # imported here: CSV and JSON need neither jinja2 nor matplotlib (CLI start-up, issue 13)
    from jinja2 import Environment, select_autoescape

    from core import report_charts as charts
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters.update(when=_when, pct=_pct)
    compliance = data["compliance"]
    figures = {"severity": charts.share_chart(compliance, "severity", "Met on time by severity"),
               "queue": charts.share_chart(compliance, "queue", "Met on time by queue"),
               "volume": charts.volume_chart(data["volume"]),
               "states": charts.state_chart(data["state_hours"]),
               "escalations": charts.escalation_chart(data["management_escalations"]["by_level"])}
    return env.from_string(REPORT_TEMPLATE).render(
        data=data, charts=figures, metrics=METRICS, dimensions=DIMENSIONS,
        metric_names=charts.METRIC_NAMES, dimension_names=DIMENSION_NAMES)


def csv_rows(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for metric, figures in data["compliance"].items():
        yield dict(figures["overall"], section="compliance", metric=metric, dimension="overall")
        for dimension, values in figures["by"].items():
            for value, counts in values.items():
                yield dict(counts, section="compliance", metric=metric, dimension=dimension,
                           value=value)
    for row in data["breaches"]:
        yield dict(row, section="breach", value=row["title"])
    for state, figures in data["state_hours"].items():
        yield dict(section="state_time", value=state, hours=figures["hours"],
                   mean_hours=figures["mean_hours"], count=figures["escalations"])
    for level, counts in data["management_escalations"]["by_level"].items():
        for outcome, count in counts.items():
            yield dict(section="management_escalation", value=level, outcome=outcome, count=count)
    for rule, count in data["management_escalations"]["refused_by_rule"].items():
        yield dict(section="refused_escalation", value=rule, count=count)
    for reason, count in data["rejections"].items():
        yield dict(section="rejected", value=reason, count=count)
    for kind in ("requesters", "partners"):  # priority abuse flags (seed 003, issue 14)
        for who, count in data.get("priority_abuse", {}).get(kind, {}).items():
            yield dict(section=f"priority_abuse_{kind[:-1]}", value=who, count=count)
    for row in data["volume"]:
        for kind in ("opened", "closed", "rejected"):
            yield dict(section="volume", value=row["bucket"], outcome=kind, count=row[kind])


def to_csv(data: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in csv_rows(data):
        writer.writerow({k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()})
    return buffer.getvalue()


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v),
                      indent=2, ensure_ascii=False) + "\n"


def render(data: dict[str, Any], fmt: str, out: Path) -> None:
    text = {"html": html, "csv": to_csv, "json": to_json}[fmt](data)
    out.write_text(text, encoding="utf-8")
