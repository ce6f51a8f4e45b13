#!/usr/bin/env python3
"""Server time of the operations insight screens on a large history.

    python3 tools/generate_history.py DB            # once: 100,000 deployments
    python3 benchmarks/bench_insight.py DB [--runs 7] [--login admin] [--budget-ms 300]

Runs, inside Odoo (no HTTP, no browser: the time the server spends), what the
web client asks for when each screen opens, as the given user, with the ORM
cache cleared before each run:

* the KPI dashboard: the form's ``onchange`` of a new record (the default
  period, 30 days) computing every line, then the lines read as the form reads
  them; and the same for the whole history (365 days);
* the KPI analysis pivot (``formatted_read_grouping_sets`` by app and
  environment, every measure of its view, the p95 included) and its graph, over
  the last 30 days and the whole history;
* the stage benchmark report (default 30 days, and the whole history) and the
  HTML of its PDF;
* DORA (default 30 days, and the whole history).

Prints the median and worst of ``--runs`` runs per call; exits 1 if a median is
over ``--budget-ms``.

A copy of the database (``createdb -T``) needs a copy of its filestore too: the
printed report reads its assets from attachments, and times a missing file's
error otherwise. Record ``uptime`` before and after: the load moves every figure.
"""

import sys
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

from server_time import run

WHOLE_HISTORY_DAYS = 366


def form_spec(env, model):
    """The onchange specification of the model's form: its fields, x2many with the
    fields of their sub-views."""
    views = env[model].get_views([(False, "form")])
    fields_of = views["models"]
    spec = {}
    for name in fields_of[model]["fields"]:
        field = env[model]._fields[name]
        if field.type in ("one2many", "many2many"):
            sub_fields = fields_of.get(field.comodel_name, {}).get("fields", {})
            spec[name] = {"fields": {sub_field: {} for sub_field in sub_fields}}
        elif field.type == "many2one":
            spec[name] = {"fields": {"display_name": {}}}
        else:
            spec[name] = {}
    return spec


def open_form(env, model, days=None):
    """What opening the screen costs: the onchange of a new record with its defaults
    (or a period of ``days`` up to today)."""
    Model = env[model]
    spec = form_spec(env, model)

    def call():
        values = {}
        if days:
            values = {"date_from": str(date.today() - timedelta(days=days - 1)),
                      "date_to": str(date.today())}
        return Model.onchange(values, list(values), spec) if values else Model.onchange(
            {}, [], spec)

    return call


def benchmarks(env):
    Report = env["do.kpi.report"]
    pivot_measures = ["success_rate:avg", "duration:avg", "duration_p95:max",
                      "rollback_rate:avg", "health_check_consecutive:max",
                      "zero_downtime_rate:avg", "__count"]
    yield "dashboard: open (30 days)", open_form(env, "do.kpi.dashboard")
    yield "dashboard: whole history", open_form(env, "do.kpi.dashboard", WHOLE_HISTORY_DAYS)
    for label, days in (("30 days", 30), ("whole history", WHOLE_HISTORY_DAYS)):
        domain = [("date", ">=", str(date.today() - timedelta(days=days)))]
        yield f"KPI pivot: app x environment, {label}", lambda domain=domain: (
            Report.formatted_read_grouping_sets(
                domain, [[], ["app_id"], ["environment"], ["app_id", "environment"]],
                pivot_measures))
        yield f"KPI graph: success rate by week, {label}", lambda domain=domain: (
            Report.formatted_read_group(domain, ["date:week"], ["success_rate:avg"]))
    yield "stage benchmarks: open (30 days)", open_form(env, "do.kpi.stage.benchmark")
    yield "stage benchmarks: whole history", open_form(
        env, "do.kpi.stage.benchmark", WHOLE_HISTORY_DAYS)

    def report_html():
        report = env["do.kpi.stage.benchmark"].create({})
        env["ir.actions.report"]._render_qweb_html(
            "do_deploy.action_report_stage_benchmark", report.ids)

    yield "stage benchmarks: printed (HTML of the PDF)", report_html
    yield "DORA: open (30 days)", open_form(env, "do.dora.report")
    yield "DORA: whole history", open_form(env, "do.dora.report", WHOLE_HISTORY_DAYS)


def main():
    return run(__doc__.split("\n\n")[0], benchmarks,
               lambda env: f"{env['do.deployment'].search_count([]):,} deployments")


if __name__ == "__main__":
    sys.exit(main())
