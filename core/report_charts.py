"""Charts of the SLA report, drawn by pygal as inline SVG (readable offline, printable at any
size). Each function takes report figures and returns one ``<svg>`` element.

Rules:
- an SVG holds its own styles and no script: pygal's tooltip script (and its configuration
  script) is left out, so the report stays a file that runs nothing and loads nothing;
- a chart with nothing to show says so in its body instead of drawing empty axes;
- pygal rather than matplotlib: it imports in ~0.05 s and draws the five charts in ~0.05 s,
  where matplotlib took ~1.5 s of CPU, most of ``tiersync report``'s time (bench/audit.py).
"""
from __future__ import annotations

from typing import Any

import pygal
from pygal.style import Style

COLOURS = {"met": "#2e7d32", "late": "#f9a825", "breached": "#c62828", "running": "#90a4ae",
           "accepted": "#1565c0", "refused": "#ef6c00", "opened": "#1565c0",
           "closed": "#2e7d32", "rejected": "#c62828"}
METRIC_COLOURS = ("#1565c0", "#ef6c00", "#2e7d32")
METRIC_NAMES = {"acknowledgement": "acknowledgement", "first_solution": "first solution",
                "close": "close"}
SVG_NS = "{http://www.w3.org/2000/svg}"


def _no_script(root):
    """An xml filter (pygal's add_xml_filter): drop every <script> (the tooltips need network and JavaScript)."""
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag in ("script", SVG_NS + "script"):
                parent.remove(child)
    return root


def _chart(kind, title: str, colours: tuple[str, ...], height: int,
           no_data: str = "no data in this period", **options: Any):
    style = Style(colors=colours, background="white", plot_background="white",
                  foreground="#212121", foreground_strong="#212121", foreground_subtle="#9e9e9e",
                  font_family="sans-serif", title_font_size=14, label_font_size=11,
                  legend_font_size=11, major_label_font_size=11, value_font_size=10,
                  no_data_font_size=14)
    chart = kind(title=title, style=style, width=700, height=height, js=[],
                 disable_xml_declaration=True, legend_at_bottom=True, no_data_text=no_data,
                 **options)
    return chart.add_xml_filter(_no_script)


def _count_labels(counts: list[int]) -> dict[str, Any]:
    """Whole numbers for an axis of counts (at most ~10 labels): no "0.2 escalations"; none
    for an empty chart (pygal draws "no data" then, and fails on labels without series)."""
    if not counts:
        return {}
    highest = max(max(counts), 1)
    step = -(-highest // 10)
    return {"y_labels": list(range(0, highest + step, step))}


def _svg(chart) -> str:
    text = chart.render(is_unicode=True)
    return text[text.index("<svg"):]


def share_chart(compliance: dict[str, Any], dimension: str, title: str) -> str:
    """On-time share (%) per value of ``dimension``, one bar per metric."""
    chart = _chart(pygal.Bar, title, METRIC_COLOURS, 300, range=(0, 100), print_values=True,
                   value_formatter=lambda v: f"{v:.0f}", y_title="met on time (%)")
    values = sorted({v for m in compliance.values() for v in m["by"][dimension]})
    chart.x_labels = values
    for metric, figures in compliance.items() if values else ():
        shares = [(figures["by"][dimension].get(v) or {}).get("on_time_share") for v in values]
        chart.add(METRIC_NAMES.get(metric, metric), [None if s is None else 100 * s for s in shares])
    return _svg(chart)


def volume_chart(volume: list[dict[str, Any]]) -> str:
    """Opened, closed and rejected escalations per bucket (day, week or month)."""
    kinds = ("opened", "closed", "rejected")
    chart = _chart(pygal.Line, "Escalation volume over time", tuple(COLOURS[k] for k in kinds),
                   280, x_label_rotation=30, show_minor_x_labels=False, y_title="escalations",
                   **_count_labels([v[k] for v in volume for k in kinds]))
    chart.x_labels = [v["bucket"] for v in volume]
    chart.x_labels_major = [v["bucket"] for v in volume][::max(1, len(volume) // 10)]
    for kind in kinds if volume else ():
        chart.add(kind, [v[kind] for v in volume])
    return _svg(chart)


def state_chart(state_hours: dict[str, dict[str, float]]) -> str:
    """Mean hours per escalation in each open state, the first state on top."""
    chart = _chart(pygal.HorizontalBar, "Time spent in each state", ("#546e7a",), 260,
                   print_values=True, value_formatter=lambda v: f"{v:.1f} h", show_legend=False,
                   x_title="mean hours per escalation in the state")
    names = list(state_hours)[::-1]  # pygal draws the first label at the bottom
    chart.x_labels = names
    if names:
        chart.add("mean hours", [state_hours[n]["mean_hours"] for n in names])
    return _svg(chart)


def escalation_chart(by_level: dict[str, dict[str, int]]) -> str:
    """Management escalation requests per level asked, accepted and refused stacked."""
    chart = _chart(pygal.StackedBar, "Management escalations by level and outcome",
                   (COLOURS["accepted"], COLOURS["refused"]), 260, y_title="requests",
                   x_title="management escalation level requested",
                   **_count_labels([sum(c.values()) for c in by_level.values()]),
                   no_data="no management escalation requests in this period")
    levels = list(by_level)
    chart.x_labels = levels
    for outcome in ("accepted", "refused") if levels else ():
        chart.add(outcome, [by_level[lv][outcome] for lv in levels])
    return _svg(chart)
