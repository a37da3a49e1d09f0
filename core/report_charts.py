"""Charts of the SLA report, drawn by matplotlib as inline SVG (no script, readable offline,
printable at any size). Each function takes report figures and returns one ``<svg>`` element."""
from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402

matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "tiersync",
                            "font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
COLOURS = {"met": "#2e7d32", "late": "#f9a825", "breached": "#c62828", "running": "#90a4ae",
           "accepted": "#1565c0", "refused": "#ef6c00", "opened": "#1565c0",
           "closed": "#2e7d32", "rejected": "#c62828"}
METRIC_NAMES = {"acknowledgement": "acknowledgement", "first_solution": "first solution",
                "close": "close"}


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _empty(ax, message: str = "no data in this period") -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def share_chart(compliance: dict[str, Any], dimension: str, title: str) -> str:
    """On-time share (%) per value of ``dimension``, one bar per metric."""
    fig, ax = plt.subplots(figsize=(7, 2.8))
    values = sorted({v for m in compliance.values() for v in m["by"][dimension]})
    width = 0.8 / max(len(compliance), 1)
    for index, (metric, figures) in enumerate(compliance.items()):
        shares = [(figures["by"][dimension].get(v) or {}).get("on_time_share") for v in values]
        xs = [i + index * width for i in range(len(values))]
        bars = ax.bar(xs, [100 * s if s is not None else 0 for s in shares], width,
                      label=METRIC_NAMES.get(metric, metric))
        ax.bar_label(bars, ["" if s is None else f"{100 * s:.0f}" for s in shares], fontsize=7)
    if not values:
        _empty(ax)
    else:
        ax.set_xticks([i + width * (len(compliance) - 1) / 2 for i in range(len(values))], values)
        ax.set_ylim(0, 115)
        ax.set_ylabel("met on time (%)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    ax.set_title(title)
    return _svg(fig)


def volume_chart(volume: list[dict[str, Any]]) -> str:
    fig, ax = plt.subplots(figsize=(7, 2.6))
    if not volume:
        _empty(ax)
    else:
        xs = range(len(volume))
        ax.bar(xs, [v["opened"] for v in volume], color=COLOURS["opened"], label="opened")
        for kind in ("closed", "rejected"):
            ax.plot(xs, [v[kind] for v in volume], marker="o", color=COLOURS[kind], label=kind)
        step = max(1, len(volume) // 10)
        ax.set_xticks(list(xs)[::step], [v["bucket"] for v in volume][::step], rotation=30,
                      ha="right")
        ax.set_ylabel("escalations")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    ax.set_title("Escalation volume over time")
    return _svg(fig)


def state_chart(state_hours: dict[str, dict[str, float]]) -> str:
    fig, ax = plt.subplots(figsize=(7, 2.4))
    if not state_hours:
        _empty(ax)
    else:
        names = list(state_hours)
        ax.barh(names, [state_hours[n]["mean_hours"] for n in names], color="#546e7a")
        ax.set_xlabel("mean hours per escalation in the state")
        ax.invert_yaxis()
    ax.set_title("Time spent in each state")
    return _svg(fig)


def escalation_chart(by_level: dict[str, dict[str, int]]) -> str:
    fig, ax = plt.subplots(figsize=(7, 2.4))
    if not by_level:
        _empty(ax, "no management escalation requests in this period")
    else:
        levels = list(by_level)
        accepted = [by_level[lv]["accepted"] for lv in levels]
        ax.bar(levels, accepted, color=COLOURS["accepted"], label="accepted")
        ax.bar(levels, [by_level[lv]["refused"] for lv in levels], bottom=accepted,
               color=COLOURS["refused"], label="refused")
        ax.set_xlabel("management escalation level requested")
        ax.set_ylabel("requests")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    ax.set_title("Management escalations by level and outcome")
    return _svg(fig)
