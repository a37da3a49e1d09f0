"""The HTML of the SLA report and of the board: Jinja2 templates with their styles inline."""

STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 1.5rem auto; max-width: 64rem; color: #212121; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 1.8rem;
  border-bottom: 1px solid #bdbdbd; padding-bottom: .2rem; } h3 { font-size: 1rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: .85rem; }
th, td { border: 1px solid #e0e0e0; padding: .25rem .45rem; text-align: left; vertical-align: top; }
th { background: #f5f5f5; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.meta { color: #616161; font-size: .85rem; } .chart svg { max-width: 100%; height: auto; }
.breached, .late { color: #b71c1c; font-weight: 600; } .warning { color: #e65100; font-weight: 600; }
.met { color: #1b5e20; } section { page-break-inside: avoid; break-inside: avoid; }
@media print { body { margin: 0; max-width: none; } h2 { page-break-after: avoid; }
  a { color: inherit; text-decoration: none; } .noprint { display: none; } }
"""

REPORT_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SLA compliance {{ data.period.label }}</title>
<link rel="icon" href="data:,">
<style>""" + STYLE + """</style></head>
<body>
<h1>SLA compliance report</h1>
<p class="meta">Period {{ data.period.from | when }} to {{ data.period.to | when }} (exclusive) ·
{{ data.escalations }} escalation(s) opened in the period · generated {{ data.generated_at | when }}
by tiersync</p>

<section><h2>Met on time, per metric</h2>
<table><tr><th>metric</th><th>met on time</th><th>met late</th><th>breached</th><th>running</th>
<th>on-time share</th></tr>
{% for metric in metrics %}{% set o = data.compliance[metric].overall %}
<tr><td>{{ metric_names[metric] }}</td><td class="n">{{ o.met }}</td><td class="n">{{ o.late }}</td>
<td class="n">{{ o.breached }}</td><td class="n">{{ o.running }}</td>
<td class="n">{{ o.on_time_share | pct }}</td></tr>{% endfor %}
</table>
<div class="chart">{{ charts.severity | safe }}</div>
<div class="chart">{{ charts.queue | safe }}</div></section>

{% for dimension in dimensions %}
<section><h2>On-time share by {{ dimension_names[dimension] }}</h2>
<table><tr><th>{{ dimension_names[dimension] }}</th>
{% for metric in metrics %}<th>{{ metric_names[metric] }}</th>{% endfor %}</tr>
{% set values = [] %}{% for metric in metrics %}{% for v in data.compliance[metric].by[dimension] %}
{% if v not in values %}{% set _ = values.append(v) %}{% endif %}{% endfor %}{% endfor %}
{% for value in values | sort %}<tr><td>{{ value }}</td>
{% for metric in metrics %}{% set c = data.compliance[metric].by[dimension].get(value) %}
<td class="n">{% if c %}{{ c.on_time_share | pct }} ({{ c.met }}/{{ c.decided }}){% else %}-{% endif %}</td>
{% endfor %}</tr>{% else %}<tr><td colspan="4">no escalation in this period</td></tr>{% endfor %}
</table></section>
{% endfor %}

<section><h2>Breaches ({{ data.breaches | length }})</h2>
<table><tr><th>escalation</th><th>metric</th><th>outcome</th><th>due</th><th>met</th>
<th>severity · plan · queue · tier · tracker</th><th>delayed reason</th></tr>
{% for b in data.breaches %}<tr><td>{{ b.sr_number or b.escalation_id }}<br><span class="meta">{{ b.title or "" }}</span></td>
<td>{{ metric_names[b.metric] }}</td><td class="{{ b.outcome }}">{{ b.outcome }}</td>
<td>{{ b.due_at | when }}</td><td>{{ b.met_at | when }}</td>
<td>{{ b.severity }} · {{ b.support_plan }} · {{ b.queue }} · {{ b.tier }} · {{ b.tracker }}</td>
<td>{{ b.delayed_reason or "not given" }}</td></tr>
{% else %}<tr><td colspan="7">no breach in this period</td></tr>{% endfor %}
</table></section>

<section><h2>Time spent in each state</h2>
<table><tr><th>state</th><th>hours in the period</th><th>escalations</th><th>mean hours</th></tr>
{% for state, s in data.state_hours.items() %}<tr><td>{{ state }}</td><td class="n">{{ "%.1f" | format(s.hours) }}</td>
<td class="n">{{ s.escalations }}</td><td class="n">{{ "%.2f" | format(s.mean_hours) }}</td></tr>
{% else %}<tr><td colspan="4">no state history in this period</td></tr>{% endfor %}</table>
<div class="chart">{{ charts.states | safe }}</div></section>

{% set m = data.management_escalations %}
<section><h2>Management escalations</h2>
<table><tr><th>level requested</th><th>accepted</th><th>refused</th></tr>
{% for level, c in m.by_level.items() %}<tr><td>{{ level }}</td><td class="n">{{ c.accepted }}</td>
<td class="n">{{ c.refused }}</td></tr>{% else %}<tr><td colspan="3">no request in this period</td></tr>{% endfor %}</table>
<h3>Refused requests by rule</h3>
<table><tr><th>rule</th><th>requests</th></tr>
{% for rule, n in m.refused_by_rule.items() %}<tr><td>{{ rule }}</td><td class="n">{{ n }}</td></tr>
{% else %}<tr><td colspan="2">none</td></tr>{% endfor %}</table>
<div class="chart">{{ charts.escalations | safe }}</div></section>

<section><h2>Rejected escalations by reason</h2>
<table><tr><th>reason</th><th>escalations</th></tr>
{% for reason, n in data.rejections.items() %}<tr><td>{{ reason }}</td><td class="n">{{ n }}</td></tr>
{% else %}<tr><td colspan="2">none</td></tr>{% endfor %}</table></section>

<section><h2>Priority abuse flags</h2>
<table><tr><th>by</th><th>who</th><th>flagged cases</th></tr>
{% for kind in ["requesters", "partners"] %}{% for who, n in data.priority_abuse[kind].items() %}<tr><td>{{ kind[:-1] }}</td><td>{{ who }}</td><td class="n">{{ n }}</td></tr>
{% endfor %}{% endfor %}{% if not data.priority_abuse.requesters %}<tr><td colspan="3">none</td></tr>{% endif %}</table></section>

<section><h2>Escalation volume over time</h2>
<div class="chart">{{ charts.volume | safe }}</div>
<table><tr><th>period</th><th>opened</th><th>closed</th><th>rejected</th></tr>
{% for v in data.volume %}<tr><td>{{ v.bucket }}</td><td class="n">{{ v.opened }}</td>
<td class="n">{{ v.closed }}</td><td class="n">{{ v.rejected }}</td></tr>
{% else %}<tr><td colspan="4">none</td></tr>{% endfor %}</table></section>
</body></html>
"""

BOARD_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{{ refresh }}">
<title>tiersync board: {{ total }} open escalation(s)</title>
<link rel="icon" href="data:,">
<style>""" + STYLE + """ body { max-width: 90rem; } td.flag-breached { background: #ffebee; }
td.flag-warning { background: #fff3e0; }</style></head>
<body>
<h1>Open escalations</h1>
<p class="meta">{{ total }} open · {{ counts.breached }} breached · {{ counts.warning }} warning ·
as of {{ now | when }} · this page reloads every {{ refresh }} s</p>
{% for group in groups %}
<section><h2>{{ group.queue }} · {{ group.tier }} ({{ group.rows | length }})</h2>
<table><tr><th>escalation</th><th>state</th><th>severity · plan</th><th>assignee</th>
{% for metric in metrics %}<th>{{ metric_names[metric] }}</th>{% endfor %}</tr>
{% for row in group.rows %}<tr><td>{{ row.sr_number or row.id }}<br><span class="meta">{{ row.title or "" }}<br>{{ row.links | join(", ") }}</span></td>
<td>{{ row.state }}</td><td>Sev {{ row.severity or "-" }} · {{ row.support_plan or "-" }}</td><td>{{ row.assignee or "-" }}</td>
{% for metric in metrics %}{% set s = row.sla.get(metric) %}
<td class="flag-{{ s.status if s else 'none' }}">{% if s %}<span class="{{ s.status.replace(' ', '-') }}">{{ s.status }}</span><br>
due {{ s.due_at | when or "-" }}{% if s.remaining_seconds is not none %}<br>{{ s.remaining_seconds | hours }} business h left{% endif %}
{% else %}-{% endif %}</td>{% endfor %}</tr>{% endfor %}
</table></section>
{% else %}<p>No open escalation.</p>{% endfor %}
</body></html>
"""
