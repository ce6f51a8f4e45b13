#!/usr/bin/env python3
"""Server time of the history screens on a large history.

    python3 tools/generate_history.py DB            # once: 100,000 deployments
    python3 benchmarks/bench_history.py DB [--runs 7] [--login admin] [--budget-ms 300]

Runs, inside Odoo (no HTTP, no browser: the time the server spends), the very
calls the web client makes for the history screens, as the given user, with
the ORM cache cleared before each run:

* the list's first page (``web_search_read`` with the list view's fields,
  80 rows, count up to 10,000), without a filter and with each filter of the
  search view (their domains are read from the view itself);
* the kanban by state (``web_read_group`` + the records of each column);
* the graph (``formatted_read_group`` by day and state);
* the deployment pivot (``formatted_read_grouping_sets`` by app and environment),
  with the total duration only and with every measure of its view (total and
  per-step durations, which the pipeline copies onto the deployment), and the
  step-duration pivot with its action's row and column groupings.

Prints the median and worst of ``--runs`` runs per call; exits 1 if a median is
over ``--budget-ms``. The step-duration pivot over the whole history (a join
over every step row, not a default view: the deployment pivot answers it) is
printed for reference and not held to the budget.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

from server_time import run

LIST_LIMIT = 80
COUNT_LIMIT = 10000
# Measured for comparison with the deployment pivot that replaces it, not budgeted.
REFERENCE_ONLY = {"pivot: step durations, whole history"}


def view_field_spec(env, model, view_type):
    """The web_search_read specification of a view: its fields, m2o with display_name."""
    view = env[model].get_views([(False, view_type)])
    fields_info = view["models"][model]["fields"]
    spec = {}
    for name in fields_info:
        field = env[model]._fields[name]
        spec[name] = {"fields": {"display_name": {}}} if field.type == "many2one" else {}
    return spec


def search_filters(env, model):
    """(name, domain) of every filter with a domain in the model's search view."""
    from lxml import etree

    from odoo.tools.safe_eval import safe_eval

    arch = env[model].get_views([(False, "search")])["views"]["search"]["arch"]
    filters = []
    for node in etree.fromstring(arch).iter("filter"):
        if node.get("domain"):
            domain = safe_eval(node.get("domain"), {"uid": env.uid, "context_today": None})
            filters.append((node.get("name"), domain))
    return filters


def pivot_measures(env, model):
    """The measures of the model's pivot view, in its order."""
    from lxml import etree

    arch = env[model].get_views([(False, "pivot")])["views"]["pivot"]["arch"]
    return [node.get("name") for node in etree.fromstring(arch).iter("field")
            if node.get("type") == "measure"]


def benchmarks(env):
    Deployment = env["do.deployment"]
    Step = env["do.deployment.step"]
    list_spec = view_field_spec(env, "do.deployment", "list")
    kanban_spec = view_field_spec(env, "do.deployment", "kanban")

    def list_page(domain):
        return lambda: Deployment.web_search_read(
            domain, list_spec, limit=LIST_LIMIT, count_limit=COUNT_LIMIT + 1)

    yield "list: first page, no filter", list_page([])
    for name, domain in search_filters(env, "do.deployment"):
        yield f"list: filter '{name}'", list_page(domain)
    yield "list: grouped by app", lambda: Deployment.web_read_group(
        [], ["app_id"], ["__count"])
    yield "kanban: by state", lambda: Deployment.web_read_group(
        [], ["state"], ["__count"], unfold_read_specification=kanban_spec,
        unfold_read_default_limit=40)
    yield "graph: deployments per day by state", lambda: Deployment.with_context(
        fill_temporal=True).formatted_read_group([], ["create_date:day", "state"], ["__count"])
    yield "pivot: duration by app x environment", lambda: Deployment.formatted_read_grouping_sets(
        [], [[], ["app_id"], ["environment"], ["app_id", "environment"]],
        ["duration:avg", "__count"])
    measures = [f"{name}:avg" for name in pivot_measures(env, "do.deployment")]
    yield "pivot: all step durations by app x environment", lambda: (
        Deployment.formatted_read_grouping_sets(
            [], [[], ["app_id"], ["environment"], ["app_id", "environment"]],
            [*measures, "__count"]))
    app, environment = "app_id", "environment"
    step_sets = [[], [app], [app, environment], ["code"], [app, "code"], [app, environment, "code"]]
    for label, domain in (("last 30 days (default)", [("start_date", ">=", "-30d")]),
                          ("whole history", [])):
        yield f"pivot: step durations, {label}", lambda domain=domain: (
            Step.formatted_read_grouping_sets(domain, step_sets, ["duration:avg", "__count"]))



def main():
    return run(__doc__.split("\n\n")[0], benchmarks, describe, reference_only=REFERENCE_ONLY)


def describe(env):
    return (f"{env['do.deployment'].search_count([]):,} deployments, "
            f"{env['do.deployment.step'].search_count([]):,} steps")


if __name__ == "__main__":
    sys.exit(main())
